"""Partial-label losses of the seed methods, as plain ``torch.nn.Module`` s, and their registry.

Every loss is a :class:`PartialLabelLoss`: ``loss(logits [N, C], states [N, C], index=None)`` gives a
scalar, ``loss.set_epoch(epoch, num_epochs)`` drives schedules, ``loss.last_corrections`` exposes the
cells a correcting loss (SPLC, COMIC) treated as positive. Build one by name with
:func:`build_loss`. CLS (co-label selection over two networks) and COMIC's head-tail balancer are
training schemes rather than single losses; see :mod:`.cls` and :class:`HeadTailBalancer`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from labelfix.learn.losses.base import PartialLabelLoss, StateMasks, split_states
from labelfix.learn.losses.baselines import (
    AssumeNegativeLoss,
    AsymmetricLoss,
    FocalLoss,
    OracleLoss,
    WeakAssumeNegativeLoss,
)
from labelfix.learn.losses.cls import assume_negative_cell_loss, cls_rates, co_label_selection, selected_loss
from labelfix.learn.losses.comic import ComicLoss, HeadTailBalancer, htb_loss
from labelfix.learn.losses.entropy import EntropyMaximizationAPLLoss, EntropyMaximizationLoss
from labelfix.learn.losses.gr import GRLoss, gr_bias_from_prior
from labelfix.learn.losses.robust import FocalMarginLoss, HillLoss, SPLCLoss


def _require_counts(name: str, class_counts: Sequence[int] | None, num_classes: int) -> Sequence[int]:
    if class_counts is None:
        raise ValueError(f"loss {name!r} needs class_counts (positives per class)")
    if len(class_counts) != num_classes:
        raise ValueError(f"class_counts has {len(class_counts)} entries, expected num_classes={num_classes}")
    return class_counts


# Each builder gets (num_classes, class_counts, params) and returns the loss.
_BUILDERS: dict[str, Callable[[int, Sequence[int] | None, dict[str, Any]], PartialLabelLoss]] = {
    "an": lambda c, counts, p: AssumeNegativeLoss(**p),
    "wan": lambda c, counts, p: WeakAssumeNegativeLoss(num_classes=c, **p),
    "focal": lambda c, counts, p: FocalLoss(**p),
    "asl": lambda c, counts, p: AsymmetricLoss(**p),
    "hill": lambda c, counts, p: HillLoss(**p),
    "focal_margin": lambda c, counts, p: FocalMarginLoss(**p),
    "splc": lambda c, counts, p: SPLCLoss(**p),
    "em": lambda c, counts, p: EntropyMaximizationLoss(**p),
    "em_apl": lambda c, counts, p: EntropyMaximizationAPLLoss(num_classes=c, **p),
    "gr": lambda c, counts, p: GRLoss(**p),
    "comic": lambda c, counts, p: ComicLoss(class_counts=_require_counts("comic", counts, c), **p),
    "oracle": lambda c, counts, p: OracleLoss(**p),
}

LOSS_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def build_loss(
    name: str,
    *,
    num_classes: int,
    class_counts: Sequence[int] | None = None,
    **params: Any,
) -> PartialLabelLoss:
    """Build a partial-label loss by name.

    Parameters
    ----------
    name : str
        One of :data:`LOSS_NAMES`.
    num_classes : int
        C (WAN's default weight, EM+APL's buffer, COMIC's check of ``class_counts``).
    class_counts : sequence of int, optional
        Positive training labels per class; required by ``comic``.
    **params
        Constructor parameters of the loss (e.g. ``tau=0.65`` for ``splc``, ``num_train=...``
        for ``em_apl``, ``reduction="mean"`` for any).

    Raises
    ------
    ValueError
        Unknown name (the message lists the valid ones), or a missing required argument.
    """
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(LOSS_NAMES)}") from None
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return builder(int(num_classes), class_counts, dict(params))


__all__ = [
    "LOSS_NAMES",
    "AssumeNegativeLoss",
    "AsymmetricLoss",
    "ComicLoss",
    "EntropyMaximizationAPLLoss",
    "EntropyMaximizationLoss",
    "FocalLoss",
    "FocalMarginLoss",
    "GRLoss",
    "HeadTailBalancer",
    "HillLoss",
    "OracleLoss",
    "PartialLabelLoss",
    "SPLCLoss",
    "StateMasks",
    "WeakAssumeNegativeLoss",
    "assume_negative_cell_loss",
    "build_loss",
    "cls_rates",
    "co_label_selection",
    "gr_bias_from_prior",
    "htb_loss",
    "selected_loss",
    "split_states",
]
