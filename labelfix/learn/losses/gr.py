"""GR loss, seed 004 (Chen et al.): generalized robust loss with scheduled soft pseudo-labels.

Per cell (eq. 4-5, 14): an observed positive gets ``L1 = (1 - p^q1) / q1``; an unknown cell gets
``v(p) [k(p) L2 + (1 - k(p)) L3]`` with ``L2 = (1 - p^q2) / q2`` (-> -log p as q2 -> 0) and
``L3 = (1 - (1 - p)^q3) / q3`` (q3 = 1: MAE, ``p``). Here ``k(p) = sigmoid(w p + b)`` (eq. 7) is a
soft pseudo-label and ``v(p) = exp(-(p - mu)^2 / (2 sigma^2))`` (eq. 11) a weight, both evaluated on
the detached p. Verified negatives (-1) get the BCE negative loss with weight 1.

Schedules (eqs. 9-10, 12-13): w, b, mu, sigma move linearly from their start to their end values
over the epochs. The paper writes ``t / T`` with ``t = 0..T``; labelfix's epochs are ``0..T-1``, so
the fraction is ``epoch / (T - 1)`` and the last trained epoch uses the end values exactly (the
authors' code uses ``t / T`` and never reaches them: w stops at 1.75 of 2). The end values are the
paper's Table 6 for COCO/NUS/CUB: (w_T, b_T) = (10, -8), (mu_T, sigma_T) = (0.8, 0.5).

Start values: the paper fixes w_0, b_0 "according to Assumption 1" (k starts as a constant, about
#hidden positives / #unknown cells, so w_0 = 0 and b_0 = logit of that rate, see
:func:`gr_bias_from_prior`) and gives no numbers for mu_0, sigma_0. The defaults are the authors'
code's: w_0 = 0, b_0 = -2 (k = 0.12), mu_0 = 0.5, sigma_0 = 2 (v nearly flat, about 0.97 to 1).
The positive loss uses q1 = 0.01 as in the paper (the authors' code uses -log p).

Reduction default: ``"sum_classes"`` (eq. 4: ``1/N sum_n sum_i``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from labelfix.learn.losses.base import PartialLabelLoss, Reduction, assemble, bce_negative, log_probs, split_states


class GRSchedule(NamedTuple):
    """Values of the GR schedule at one epoch."""

    w: float
    b: float
    mu: float
    sigma: float


def gr_bias_from_prior(hidden_positive_rate: float) -> float:
    """Start bias b_0 making ``k = sigmoid(b_0)`` equal the expected hidden-positive rate.

    Assumption 1 of seed 004: at the start, k is about #{y = 1, s = 0} / #{s = 0}.
    """
    if not 0.0 < hidden_positive_rate < 1.0:
        raise ValueError(f"hidden_positive_rate must be in (0, 1), got {hidden_positive_rate}")
    return math.log(hidden_positive_rate / (1.0 - hidden_positive_rate))


def generalized_loss(log_prob: Tensor, *, q: float) -> Tensor:
    """``(1 - P^q) / q`` from ``log P``; the limit ``-log P`` when q == 0."""
    if q == 0:
        return -log_prob
    # -expm1(q log P) / q is (1 - P^q) / q without cancellation for small q.
    return -torch.expm1(q * log_prob) / q


class GRLoss(PartialLabelLoss):
    """GR loss with the paper's linear schedules of w, b, mu, sigma.

    Parameters
    ----------
    q1, q2, q3 : float
        Robustness exponents of L1 (positives), L2 (unknown as positive), L3 (unknown as
        negative); defaults 0.01, 0.01, 1 (paper).
    w_start, w_end, b_start, b_end : float
        Schedule of k(p) = sigmoid(w p + b); defaults 0 -> 10 and -2 -> -8.
    mu_start, mu_end, sigma_start, sigma_end : float
        Schedule of v(p); defaults 0.5 -> 0.8 and 2 -> 0.5.
    reduction : {"mean", "sum_classes", "sum"}
        Default ``"sum_classes"``.
    """

    default_reduction: Reduction = "sum_classes"

    def __init__(
        self,
        *,
        q1: float = 0.01,
        q2: float = 0.01,
        q3: float = 1.0,
        w_start: float = 0.0,
        w_end: float = 10.0,
        b_start: float = -2.0,
        b_end: float = -8.0,
        mu_start: float = 0.5,
        mu_end: float = 0.8,
        sigma_start: float = 2.0,
        sigma_end: float = 0.5,
        reduction: Reduction | None = None,
    ) -> None:
        super().__init__(reduction=reduction)
        if sigma_start <= 0 or sigma_end <= 0:
            raise ValueError("sigma_start and sigma_end must be > 0")
        self.q1, self.q2, self.q3 = float(q1), float(q2), float(q3)
        self.start = GRSchedule(w=float(w_start), b=float(b_start), mu=float(mu_start), sigma=float(sigma_start))
        self.end = GRSchedule(w=float(w_end), b=float(b_end), mu=float(mu_end), sigma=float(sigma_end))

    def schedule(self) -> GRSchedule:
        """w, b, mu, sigma at the current epoch (start values at epoch 0, end values at the last)."""
        fraction = self.epoch / (self.num_epochs - 1) if self.num_epochs > 1 else 0.0
        return GRSchedule(*(s + (e - s) * fraction for s, e in zip(self.start, self.end)))

    def pseudo_label(self, probs: Tensor) -> Tensor:
        """k(p) = sigmoid(w p + b) at the current epoch (eq. 7)."""
        current = self.schedule()
        return torch.sigmoid(current.w * probs + current.b)

    def weight(self, probs: Tensor) -> Tensor:
        """v(p) = exp(-(p - mu)^2 / (2 sigma^2)) at the current epoch (eq. 11)."""
        current = self.schedule()
        return torch.exp(-(probs - current.mu).square() / (2.0 * current.sigma**2))

    def cell_losses(self, logits: Tensor, states: Tensor, *, index: Tensor | None = None) -> Tensor:
        masks = split_states(states)
        log_p, log_not_p = log_probs(logits)
        # k and v calibrate the target and weight; the paper stops their gradient.
        detached_probs = torch.sigmoid(logits.detach())
        k = self.pseudo_label(detached_probs)
        v = self.weight(detached_probs)
        unknown = v * (k * generalized_loss(log_p, q=self.q2) + (1.0 - k) * generalized_loss(log_not_p, q=self.q3))
        return assemble(
            masks,
            positive=generalized_loss(log_p, q=self.q1),
            unknown=unknown,
            negative=bce_negative(logits),
        )


__all__ = ["GRLoss", "GRSchedule", "generalized_loss", "gr_bias_from_prior"]
