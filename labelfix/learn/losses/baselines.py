"""Baseline losses: assume-negative BCE (AN), weak AN (WAN), Focal and ASL.

All four treat an unknown cell as a negative; they differ only in how strongly. Verified negatives
(-1) always get the plain BCE negative loss with weight 1 (see ``base``). Default reduction: the mean
over the N * C cells, as in the AN loss of seed 003 (eq. 1: ``-1/C sum_c``, averaged over images).
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
    focal_negative,
    focal_positive,
    split_states,
)


class AssumeNegativeLoss(PartialLabelLoss):
    """AN: binary cross-entropy with every unknown cell taken as a negative.

    Positive: ``-log p``; unknown and verified negative: ``-log(1 - p)``. Given a fully labelled
    matrix (no unknowns) it is plain BCE, which is what the ``oracle`` registry entry uses.
    """

    def cell_losses(self, logits: Tensor, states: Tensor, *, index: Tensor | None = None) -> Tensor:
        masks = split_states(states)
        negative = bce_negative(logits)
        return assemble(masks, positive=bce_positive(logits), unknown=negative, negative=negative)


class WeakAssumeNegativeLoss(PartialLabelLoss):
    """WAN: AN with the unknown negatives down-weighted by ``unknown_weight``.

    Parameters
    ----------
    num_classes : int
        C; the default weight is ``1 / (C - 1)`` (Cole et al., as cited by seed 002).
    unknown_weight : float, optional
        Weight of an unknown cell's ``-log(1 - p)``. Verified negatives keep weight 1.
    reduction : {"mean", "sum_classes", "sum"}
        Default ``"mean"``.
    """

    def __init__(
        self, *, num_classes: int, unknown_weight: float | None = None, reduction: Reduction | None = None
    ) -> None:
        super().__init__(reduction=reduction)
        if unknown_weight is None:
            if num_classes < 2:
                raise ValueError("WAN's default weight 1/(C-1) needs num_classes >= 2")
            unknown_weight = 1.0 / (num_classes - 1)
        self.unknown_weight = float(unknown_weight)

    def cell_losses(self, logits: Tensor, states: Tensor, *, index: Tensor | None = None) -> Tensor:
        masks = split_states(states)
        negative = bce_negative(logits)
        return assemble(
            masks, positive=bce_positive(logits), unknown=self.unknown_weight * negative, negative=negative
        )


class FocalLoss(PartialLabelLoss):
    """Focal loss with unknown = negative (seed 002, eq. 3, with alpha+ = alpha- = 1).

    Positive: ``-(1 - p)^gamma log p``; unknown: ``-p^gamma log(1 - p)``; verified negative: BCE.

    Parameters
    ----------
    gamma : float
        Focusing parameter, default 2.
    reduction : {"mean", "sum_classes", "sum"}
        Default ``"mean"``.
    """

    def __init__(self, *, gamma: float = 2.0, reduction: Reduction | None = None) -> None:
        super().__init__(reduction=reduction)
        self.gamma = float(gamma)

    def cell_losses(self, logits: Tensor, states: Tensor, *, index: Tensor | None = None) -> Tensor:
        masks = split_states(states)
        return assemble(
            masks,
            positive=focal_positive(logits, gamma=self.gamma),
            unknown=focal_negative(logits, gamma=self.gamma),
            negative=bce_negative(logits),
        )


class AsymmetricLoss(PartialLabelLoss):
    """ASL with unknown = negative (seed 002, eq. 4; Ridnik et al.).

    Positive: ``-(1 - p)^gamma_pos log p``. Unknown: ``-p_m^gamma_neg log(1 - p_m)`` with the
    shifted probability ``p_m = max(p - clip, 0)``, which discards easy negatives entirely.
    Verified negative: BCE.

    Parameters
    ----------
    gamma_pos, gamma_neg : float
        Focusing parameters, default 0 and 4.
    clip : float
        Probability margin m, default 0.05.
    reduction : {"mean", "sum_classes", "sum"}
        Default ``"mean"``.
    """

    def __init__(
        self,
        *,
        gamma_pos: float = 0.0,
        gamma_neg: float = 4.0,
        clip: float = 0.05,
        reduction: Reduction | None = None,
    ) -> None:
        super().__init__(reduction=reduction)
        if not 0.0 <= clip < 1.0:
            raise ValueError(f"clip must be in [0, 1), got {clip}")
        self.gamma_pos = float(gamma_pos)
        self.gamma_neg = float(gamma_neg)
        self.clip = float(clip)

    def cell_losses(self, logits: Tensor, states: Tensor, *, index: Tensor | None = None) -> Tensor:
        masks = split_states(states)
        probs = torch.sigmoid(logits)
        shifted = (probs - self.clip).clamp(min=0.0)
        # log(1 - p_m) from the shifted probability; 1 - p_m >= clip > 0 unless clip == 0, where the
        # stable logsigmoid form is used instead.
        if self.clip > 0:
            log_not_shifted = torch.log1p(-shifted)
        else:
            log_not_shifted = torch.nn.functional.logsigmoid(-logits)
        unknown = -shifted.pow(self.gamma_neg) * log_not_shifted
        return assemble(
            masks,
            positive=focal_positive(logits, gamma=self.gamma_pos),
            unknown=unknown,
            negative=bce_negative(logits),
        )


class OracleLoss(AssumeNegativeLoss):
    """Full-label oracle (benchmark only): BCE on the hidden true labels.

    Identical to AN; pass the fully labelled state matrix (+1 / -1, or 0 for absent).
    """


__all__ = ["AssumeNegativeLoss", "AsymmetricLoss", "FocalLoss", "OracleLoss", "WeakAssumeNegativeLoss"]
