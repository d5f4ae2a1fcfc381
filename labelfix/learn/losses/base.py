"""Shared machinery of the partial-label losses: the base module, state masks and stable log terms.

Every loss in this package maps ``logits`` [N, C] and a label-state matrix ``states`` [N, C]
(``labelfix.states``: +1 positive, 0 unknown, -1 verified negative) to a scalar. The papers only
know +1 / 0; the -1 state is labelfix's reviewer "reject" decision. A verified negative is trusted:
every loss gives it the full BCE negative loss ``-log(1 - p)`` with weight 1 and never corrects it
into a positive (``METHODS.md``), whatever the loss does to unknown cells.

Numerics: logits of a low-precision dtype (bf16 / fp16 under autocast) are upcast to float32 before
any log is taken; float64 stays float64 so that tests can compare against exact arithmetic. Logs of
probabilities come from ``logsigmoid`` (never ``log(sigmoid(z))``), which is finite for every
finite logit, so no clamping of probabilities is needed for the log terms.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from labelfix.states import NEGATIVE, POSITIVE, UNKNOWN

Reduction = Literal["mean", "sum_classes", "sum"]
"""How a per-cell loss matrix [N, C] becomes a scalar.

``"mean"``: sum / (N * C), the mean over cells. ``"sum_classes"``: sum / N, i.e. summed over classes
and averaged over images (the form of papers that write ``1/N sum_n sum_c``). ``"sum"``: plain sum.
"""

REDUCTIONS: tuple[str, ...] = ("mean", "sum_classes", "sum")


class StateMasks(NamedTuple):
    """Boolean [N, C] masks of the three label states."""

    positive: Tensor
    unknown: Tensor
    negative: Tensor


def split_states(states: Tensor) -> StateMasks:
    """Split a label-state matrix into positive / unknown / verified-negative masks.

    Parameters
    ----------
    states : Tensor
        Integer (or float) tensor with values in {+1, 0, -1}.

    Returns
    -------
    StateMasks
        ``positive``, ``unknown`` and ``negative`` boolean masks of the same shape.
    """
    return StateMasks(
        positive=states == POSITIVE,
        unknown=states == UNKNOWN,
        negative=states == NEGATIVE,
    )


def working_precision(logits: Tensor) -> Tensor:
    """Return ``logits`` in at least float32 (float64 stays float64) so log terms are accurate."""
    if logits.dtype in (torch.float32, torch.float64):
        return logits
    return logits.float()


def log_probs(logits: Tensor) -> tuple[Tensor, Tensor]:
    """``(log p, log(1 - p))`` for ``p = sigmoid(logits)``, finite for every finite logit."""
    return F.logsigmoid(logits), F.logsigmoid(-logits)


def bce_positive(logits: Tensor) -> Tensor:
    """Per-cell ``-log p``."""
    return -F.logsigmoid(logits)


def bce_negative(logits: Tensor) -> Tensor:
    """Per-cell ``-log(1 - p)``; the loss every verified negative gets."""
    return -F.logsigmoid(-logits)


def _is_zero(gamma: float | Tensor) -> bool:
    return not isinstance(gamma, Tensor) and gamma == 0


def focal_positive(logits: Tensor, *, gamma: float | Tensor) -> Tensor:
    """Per-cell focal loss of a positive, ``-(1 - p)^gamma log p``; gamma may be per class [C]."""
    log_p = F.logsigmoid(logits)
    if _is_zero(gamma):
        return -log_p
    return -torch.sigmoid(-logits).pow(gamma) * log_p


def focal_negative(logits: Tensor, *, gamma: float | Tensor) -> Tensor:
    """Per-cell focal loss of a negative, ``-p^gamma log(1 - p)``; gamma may be per class [C]."""
    log_not_p = F.logsigmoid(-logits)
    if _is_zero(gamma):
        return -log_not_p
    return -torch.sigmoid(logits).pow(gamma) * log_not_p


def focal_margin_positive(logits: Tensor, *, margin: float, gamma: float) -> Tensor:
    """Per-cell Focal margin loss of a positive (seed 002, eq. 11).

    ``-(1 - p_m)^gamma log p_m`` with ``p_m = sigmoid(z - margin)``: the focal loss evaluated at a
    logit shifted down by ``margin``, which moves its gradient peak to semi-hard positives.
    """
    return focal_positive(logits - margin, gamma=gamma)


class PartialLabelLoss(nn.Module):
    """Base class of every partial-label loss in labelfix.

    Subclasses implement :meth:`cell_losses`, which returns the per-cell loss matrix; the base
    ``forward`` checks shapes, upcasts low-precision logits and reduces with ``reduction``.

    Parameters
    ----------
    reduction : {"mean", "sum_classes", "sum"}
        See :data:`Reduction`. Each subclass documents its paper's default.

    Attributes
    ----------
    last_corrections : Tensor or None
        For correction-based losses (SPLC, COMIC's RLC): a detached boolean [N, C] mask of the
        unknown cells treated as positive in the last ``forward``. ``None`` for the other losses.
    epoch, num_epochs : int
        Set by :meth:`set_epoch`; ``0`` and ``1`` until the trainer calls it.
    """

    default_reduction: Reduction = "mean"

    def __init__(self, *, reduction: Reduction | None = None) -> None:
        super().__init__()
        reduction = self.default_reduction if reduction is None else reduction
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction: Reduction = reduction
        self.last_corrections: Tensor | None = None
        self.epoch = 0
        self.num_epochs = 1

    def set_epoch(self, epoch: int, num_epochs: int) -> None:
        """Tell the loss which epoch (0-based) of ``num_epochs`` is about to be trained.

        Schedules (SPLC's start, GR's linear k/v schedules) read these; call it before each epoch.
        """
        if num_epochs < 1 or not 0 <= epoch < num_epochs:
            raise ValueError(f"need 0 <= epoch < num_epochs, got epoch={epoch}, num_epochs={num_epochs}")
        self.epoch = int(epoch)
        self.num_epochs = int(num_epochs)

    def forward(self, logits: Tensor, states: Tensor, *, index: Tensor | None = None) -> Tensor:
        """Scalar loss of a batch.

        Parameters
        ----------
        logits : Tensor
            [N, C] raw scores, any float dtype.
        states : Tensor
            [N, C] label states (+1 / 0 / -1), on the same device.
        index : Tensor, optional
            [N] positions of the rows in the training set; only losses with per-sample memory
            (EM+APL) use it.

        Returns
        -------
        Tensor
            0-dim loss in float32 (float64 if the logits are float64).
        """
        if logits.dim() != 2 or states.shape != logits.shape:
            raise ValueError(
                f"logits and states must both be [N, C]; got {tuple(logits.shape)} and {tuple(states.shape)}"
            )
        logits = working_precision(logits)
        return self.reduce(self.cell_losses(logits, states, index=index))

    def cell_losses(self, logits: Tensor, states: Tensor, *, index: Tensor | None = None) -> Tensor:
        """Per-cell loss matrix [N, C] (before reduction). Implemented by subclasses."""
        raise NotImplementedError

    def reduce(self, cell_loss: Tensor) -> Tensor:
        """Reduce a per-cell loss matrix [N, C] with this loss's ``reduction``."""
        if self.reduction == "sum":
            return cell_loss.sum()
        num_rows = max(cell_loss.shape[0], 1)
        if self.reduction == "sum_classes":
            return cell_loss.sum() / num_rows
        return cell_loss.sum() / max(cell_loss.numel(), 1)


def assemble(
    masks: StateMasks,
    *,
    positive: Tensor,
    unknown: Tensor,
    negative: Tensor,
) -> Tensor:
    """Pick each cell's loss from the per-state candidate matrices (unused states give 0).

    ``torch.where`` rather than multiplication by masks, so that a large or infinite candidate value
    in a cell of another state cannot leak into the sum (``0 * inf`` would be NaN).
    """
    zero = torch.zeros((), dtype=positive.dtype, device=positive.device)
    out = torch.where(masks.positive, positive, zero)
    out = torch.where(masks.unknown, unknown, out)
    return torch.where(masks.negative, negative, out)


__all__ = [
    "REDUCTIONS",
    "PartialLabelLoss",
    "Reduction",
    "StateMasks",
    "assemble",
    "bce_negative",
    "bce_positive",
    "focal_margin_positive",
    "focal_negative",
    "focal_positive",
    "log_probs",
    "split_states",
    "working_precision",
]
