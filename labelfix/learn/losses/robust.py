"""Robust losses of seed 002 (Zhang et al.): Hill, Focal margin and SPLC.

Paper notation: p = sigmoid(z). Positives always use the Focal margin loss (eq. 11)
``-(1 - p_m)^gamma log p_m`` with ``p_m = sigmoid(z - m)``, m = 1, gamma = 2. The methods differ in
how an unknown cell is treated:

* ``HillLoss`` ("Hill" in the paper's tables = Focal margin+ and Hill-): ``(lambda - p) p^2``, eq. 5,
  lambda = 1.5. Its gradient w.r.t. z is ``3 p^2 (1 - p)^2``: it peaks at p = 0.5 and falls for the
  likely false negatives with high p, where BCE's gradient ``p`` keeps growing.
* ``FocalMarginLoss``: focal (gamma = 2) negatives; SPLC without the correction (the paper's
  "Focal margin" ablation row).
* ``SPLCLoss``: eq. 10, an unknown cell with p > tau (tau = 0.6) uses the positive loss from epoch 1
  on (the paper corrects "after the first epoch"); the other unknowns use focal (gamma = 2)
  negatives, which is loss^- in the authors' code (the paper leaves loss^- generic).

Departures from the authors' code, following the paper: a corrected cell gets the full Focal margin
positive loss (``loss^+(p)`` of eq. 10); the authors apply the margin before correcting, so their
corrected cells get no margin. The correction test uses the unshifted p.

Reduction default: ``"sum_classes"``; eq. 1 sums the loss over the classes of an image. Verified
negatives (-1) get BCE negatives and are never corrected.
"""

from __future__ import annotations

import torch
from torch import Tensor

from labelfix.learn.losses.base import (
    PartialLabelLoss,
    Reduction,
    assemble,
    bce_negative,
    focal_margin_positive,
    focal_negative,
    split_states,
)


def hill_negative(logits: Tensor, *, lambda_: float = 1.5) -> Tensor:
    """Per-cell Hill loss of a negative, ``(lambda - p) p^2`` (seed 002, eq. 5)."""
    probs = torch.sigmoid(logits)
    return (lambda_ - probs) * probs.square()


class HillLoss(PartialLabelLoss):
    """Focal margin for positives, Hill for unknown cells, BCE for verified negatives.

    Parameters
    ----------
    lambda_ : float
        Hill's lambda, default 1.5 (makes the second derivative vanish at p = 0.5).
    margin, gamma : float
        Focal margin parameters for positives, default m = 1, gamma = 2.
    reduction : {"mean", "sum_classes", "sum"}
        Default ``"sum_classes"`` (eq. 1).
    """

    default_reduction: Reduction = "sum_classes"

    def __init__(
        self,
        *,
        lambda_: float = 1.5,
        margin: float = 1.0,
        gamma: float = 2.0,
        reduction: Reduction | None = None,
    ) -> None:
        super().__init__(reduction=reduction)
        self.lambda_ = float(lambda_)
        self.margin = float(margin)
        self.gamma = float(gamma)

    def cell_losses(self, logits: Tensor, states: Tensor, *, index: Tensor | None = None) -> Tensor:
        masks = split_states(states)
        return assemble(
            masks,
            positive=focal_margin_positive(logits, margin=self.margin, gamma=self.gamma),
            unknown=hill_negative(logits, lambda_=self.lambda_),
            negative=bce_negative(logits),
        )


class SPLCLoss(PartialLabelLoss):
    """Self-paced loss correction (seed 002, eq. 10) with Focal margin positives.

    Parameters
    ----------
    tau : float
        Correction threshold on p = sigmoid(z), default 0.6 (the authors used 0.65 for COCO-75%).
        An unknown cell with p > tau is treated as positive.
    start_epoch : int
        First 0-based epoch (see :meth:`set_epoch`) at which cells are corrected; default 1, i.e.
        after the first epoch, as in all of the paper's SPLC experiments.
    margin, gamma : float
        Focal margin parameters for positives and corrected cells, default m = 1, gamma = 2.
    negative_gamma : float
        Focal gamma of the uncorrected unknown cells, default 2 (0 gives BCE).
    correct : bool
        ``False`` turns the correction off (the ``focal_margin`` registry entry).
    reduction : {"mean", "sum_classes", "sum"}
        Default ``"sum_classes"`` (eq. 1).

    Attributes
    ----------
    last_corrections : Tensor or None
        Boolean [N, C] mask of the unknown cells treated as positive in the last forward (all
        False before ``start_epoch``). The correction is recomputed every batch from the current p,
        as in the paper; the trainer records it to know which cells were corrected and when.
    """

    default_reduction: Reduction = "sum_classes"

    def __init__(
        self,
        *,
        tau: float = 0.6,
        start_epoch: int = 1,
        margin: float = 1.0,
        gamma: float = 2.0,
        negative_gamma: float = 2.0,
        correct: bool = True,
        reduction: Reduction | None = None,
    ) -> None:
        super().__init__(reduction=reduction)
        if not 0.0 < tau < 1.0:
            raise ValueError(f"tau must be in (0, 1), got {tau}")
        self.tau = float(tau)
        self.start_epoch = int(start_epoch)
        self.margin = float(margin)
        self.gamma = float(gamma)
        self.negative_gamma = float(negative_gamma)
        self.correct = bool(correct)

    def corrections(self, logits: Tensor, states: Tensor) -> Tensor:
        """Boolean mask of the unknown cells SPLC treats as positive at the current epoch."""
        unknown = split_states(states).unknown
        if not self.correct or self.epoch < self.start_epoch:
            return torch.zeros_like(unknown)
        # The indicator of eq. 10 is a selection, not a differentiable weight: use detached p.
        with torch.no_grad():
            return unknown & (torch.sigmoid(logits) > self.tau)

    def cell_losses(self, logits: Tensor, states: Tensor, *, index: Tensor | None = None) -> Tensor:
        masks = split_states(states)
        corrected = self.corrections(logits, states)
        self.last_corrections = corrected.detach() if self.correct else None
        positive = focal_margin_positive(logits, margin=self.margin, gamma=self.gamma)
        unknown = torch.where(corrected, positive, focal_negative(logits, gamma=self.negative_gamma))
        return assemble(masks, positive=positive, unknown=unknown, negative=bce_negative(logits))


class FocalMarginLoss(SPLCLoss):
    """Focal margin positives and focal (gamma = 2) unknown negatives: SPLC without correction.

    Takes SPLC's parameters except ``tau`` / ``start_epoch`` / ``correct``.
    """

    def __init__(
        self,
        *,
        margin: float = 1.0,
        gamma: float = 2.0,
        negative_gamma: float = 2.0,
        reduction: Reduction | None = None,
    ) -> None:
        super().__init__(margin=margin, gamma=gamma, negative_gamma=negative_gamma, correct=False, reduction=reduction)


__all__ = ["FocalMarginLoss", "HillLoss", "SPLCLoss", "hill_negative"]
