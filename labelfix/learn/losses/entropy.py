"""Entropy maximization (EM) and asymmetric pseudo-labeling (APL), seed 003 (Zhou et al.).

EM (eq. 3): an observed positive gets ``-log p``; an unknown cell gets ``-alpha H(p)`` with the binary
entropy ``H(p) = -[p log p + (1 - p) log(1 - p)]``. The unknown term is negative by construction,
so a batch of only unknowns has a negative loss (expected). Its gradient w.r.t. the logit z is
``alpha * z * p (1 - p)`` (eq. 5): zero at p = 0.5, positive above (gradient descent pulls p back to
0.5, "keeping unknowns ambiguous"), and vanishing as p -> 0 or 1, so confident predictions on
unknown cells are left alone. Reduction: mean over N * C (eq. 3, ``-1/C sum_c``, averaged over
images). Verified negatives (-1) get the BCE negative loss with weight 1.

APL (Algorithm 1, eqs. 6-8): after ``warmup_epochs`` epochs, once per epoch, for each class the
lowest-p unknown cells become soft negatives whose target is frozen at their p of that moment; they
leave the entropy term and get ``beta * BCE(p, target)`` (eq. 7-8: ``-beta [s log p + (1 - s)
log(1 - p)]``). No positive pseudo-labels (the paper shows they hurt).

Defaults: alpha = 0.1, beta = 0.9, theta = 0.9, warm-up 5 epochs: the authors' COCO row (batch 16,
lr 1e-5, 10 epochs), the dataset closest to labelfix's use (many classes, few positives per image).
The other rows (METHODS.md): VOC alpha 0.2 / beta 0.02, NUS 0.1 / 0.2, CUB 0.01 / 0.4.
"""

from __future__ import annotations

import torch
from torch import Tensor

from labelfix.learn.losses.base import (
    PartialLabelLoss,
    Reduction,
    assemble,
    bce_negative,
    bce_positive,
    log_probs,
    split_states,
)


def negative_entropy(logits: Tensor) -> Tensor:
    """Per-cell ``-H(p) = p log p + (1 - p) log(1 - p)``, finite for every finite logit."""
    log_p, log_not_p = log_probs(logits)
    probs = torch.sigmoid(logits)
    return probs * log_p + (1.0 - probs) * log_not_p


class EntropyMaximizationLoss(PartialLabelLoss):
    """EM loss (seed 003, eq. 3).

    Parameters
    ----------
    alpha : float
        Weight of the entropy term of unknown cells, default 0.1 (COCO).
    reduction : {"mean", "sum_classes", "sum"}
        Default ``"mean"``.
    """

    def __init__(self, *, alpha: float = 0.1, reduction: Reduction | None = None) -> None:
        super().__init__(reduction=reduction)
        self.alpha = float(alpha)

    def cell_losses(self, logits: Tensor, states: Tensor, *, index: Tensor | None = None) -> Tensor:
        masks = split_states(states)
        return assemble(
            masks,
            positive=bce_positive(logits),
            unknown=self.alpha * negative_entropy(logits),
            negative=bce_negative(logits),
        )


class EntropyMaximizationAPLLoss(EntropyMaximizationLoss):
    """EM + asymmetric pseudo-labeling (seed 003, Algorithm 1 and eq. 8).

    The loss keeps a buffer ``pseudo_targets`` [num_train, C] (NaN = no pseudo-label) that the
    trainer fills by calling :meth:`update_pseudo_labels` once per epoch, and ``forward`` needs
    ``index`` (the rows' positions in the training set) to look the targets up.

    Parameters
    ----------
    num_train : int
        Number of training images (rows of the pseudo-label buffer).
    num_classes : int
        C.
    alpha : float
        EM weight of unknown cells, default 0.1.
    beta : float
        Weight of the soft-negative BCE term, default 0.9 (COCO).
    theta : float
        Fraction of each class's unknown cells that end up pseudo-labelled at the last epoch,
        default 0.9.
    warmup_epochs : int
        T_w: epochs trained with plain EM before the first pseudo-labels, default 5 (COCO, of 10).
    reduction : {"mean", "sum_classes", "sum"}
        Default ``"mean"``.
    """

    def __init__(
        self,
        *,
        num_train: int,
        num_classes: int,
        alpha: float = 0.1,
        beta: float = 0.9,
        theta: float = 0.9,
        warmup_epochs: int = 5,
        reduction: Reduction | None = None,
    ) -> None:
        super().__init__(alpha=alpha, reduction=reduction)
        if not 0.0 <= theta <= 1.0:
            raise ValueError(f"theta must be in [0, 1], got {theta}")
        self.beta = float(beta)
        self.theta = float(theta)
        self.warmup_epochs = int(warmup_epochs)
        self.pseudo_targets: Tensor  # a buffer, declared so a type checker reads it as a tensor
        self.register_buffer("pseudo_targets", torch.full((int(num_train), int(num_classes)), float("nan")))

    @property
    def has_pseudo_label(self) -> Tensor:
        """Boolean [num_train, C] mask of the cells holding a pseudo-label."""
        return ~torch.isnan(self.pseudo_targets)

    def reset_pseudo_labels(self) -> None:
        """Forget every pseudo-label (e.g. before a new training run with the same module)."""
        self.pseudo_targets.fill_(float("nan"))

    @torch.no_grad()
    def update_pseudo_labels(self, *, probs: Tensor, states: Tensor, epoch: int, num_epochs: int) -> int:
        """Assign this epoch's negative pseudo-labels (Algorithm 1, step 3; eq. 6).

        Call once at the start of every epoch ``epoch`` (0-based) with the current model's
        probabilities on the whole training set, scored with evaluation transforms (the authors
        scored with training augmentation on; METHODS.md). Nothing happens before
        ``warmup_epochs``. From then on, epoch ``warmup_epochs + r - 1`` (round r of
        ``R = num_epochs - warmup_epochs``) brings each class c to ``round(theta * r / R * U_c)``
        pseudo-labels, U_c being its number of unknown cells, by taking the lowest-p unknown cells
        without one; their target is frozen at that p. So each round adds the theta / R fraction
        of U_c of the paper and the last round reaches theta exactly. (Counting against the
        cumulative target keeps rounding errors from piling up and makes a repeated call within
        one epoch a no-op.)

        Parameters
        ----------
        probs : Tensor
            [num_train, C] sigmoid probabilities.
        states : Tensor
            [num_train, C] current label states; only UNKNOWN cells are ever pseudo-labelled.
        epoch, num_epochs : int
            0-based index of the epoch about to be trained, and T.

        Returns
        -------
        int
            Number of cells pseudo-labelled by this call.
        """
        if probs.shape != self.pseudo_targets.shape or states.shape != probs.shape:
            raise ValueError(
                f"probs and states must be {tuple(self.pseudo_targets.shape)}, got "
                f"{tuple(probs.shape)} and {tuple(states.shape)}"
            )
        rounds = num_epochs - self.warmup_epochs
        if epoch < self.warmup_epochs or rounds <= 0:
            return 0
        round_index = min(epoch - self.warmup_epochs + 1, rounds)
        device = self.pseudo_targets.device
        probs = probs.detach().to(device=device, dtype=self.pseudo_targets.dtype)
        unknown = split_states(states.to(device)).unknown
        labelled = self.has_pseudo_label

        unknown_per_class = unknown.sum(dim=0).to(probs.dtype)
        cumulative_target = torch.round(self.theta * round_index / rounds * unknown_per_class).long()
        already = (unknown & labelled).sum(dim=0)
        to_add = (cumulative_target - already).clamp(min=0)

        candidates = unknown & ~labelled
        # Rank each class's candidates by p; non-candidates sort last.
        ranked = torch.where(candidates, probs, torch.full_like(probs, float("inf")))
        order = torch.argsort(ranked, dim=0, stable=True)
        rank = torch.empty_like(order)
        rank.scatter_(0, order, torch.arange(order.shape[0], device=device).unsqueeze(1).expand_as(order))
        selected = candidates & (rank < to_add.unsqueeze(0))
        self.pseudo_targets[selected] = probs[selected]
        return int(selected.sum().item())

    def cell_losses(self, logits: Tensor, states: Tensor, *, index: Tensor | None = None) -> Tensor:
        cell_loss = super().cell_losses(logits, states)
        if index is None:
            if self.training and bool(self.has_pseudo_label.any()):
                raise ValueError("EM+APL holds pseudo-labels: pass index= (the rows' training-set positions)")
            return cell_loss
        targets = self.pseudo_targets[index.to(self.pseudo_targets.device)].to(device=logits.device, dtype=logits.dtype)
        pseudo = split_states(states).unknown & ~torch.isnan(targets)
        # NaN targets are replaced before use: a NaN in an unselected cell would still turn the
        # backward of the product into NaN.
        targets = torch.nan_to_num(targets, nan=0.0)
        soft_bce = targets * bce_positive(logits) + (1.0 - targets) * bce_negative(logits)
        return torch.where(pseudo, self.beta * soft_bce, cell_loss)


__all__ = ["EntropyMaximizationAPLLoss", "EntropyMaximizationLoss", "negative_entropy"]
