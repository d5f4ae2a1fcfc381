"""The score both training regimes select their best epoch by: mAP against the observed labels."""

from __future__ import annotations

import numpy as np

from labelfix.evaluate.metrics import mean_average_precision
from labelfix.internal.words import counted
from labelfix.states import POSITIVE


def observed_map(probs: np.ndarray, states: np.ndarray) -> float:
    """mAP of ``probs`` against the observed positives (unknown and verified negatives count as negatives).

    Parameters
    ----------
    probs : np.ndarray
        float [N, C] scores.
    states : np.ndarray
        int8 [N, C] label states (+1 / 0 / -1).

    Returns
    -------
    float
        NaN when there are no rows.
    """
    if not len(probs):
        return float("nan")
    return float(mean_average_precision(probs=probs, truth=states == POSITIVE).mean_ap)



def val_map_text(value: float | None) -> str:
    """``"  val mAP 0.7123"`` for an epoch line, or ``""`` when there is no val mAP to show (no val split,
    or no val positives): an epoch line never says "val mAP nan".

    Examples
    --------
    >>> val_map_text(0.71234), val_map_text(float("nan")), val_map_text(None)
    ('  val mAP 0.7123', '', '')
    """
    return "" if value is None or not np.isfinite(value) else f"  val mAP {value:.4f}"


def chosen_epoch_text(*, best_epoch: int, epochs_trained: int, val_map: float | None) -> str:
    """How the kept model was chosen, for a run's summary line.

    Examples
    --------
    >>> chosen_epoch_text(best_epoch=6, epochs_trained=12, val_map=0.7)
    'best epoch 7, val mAP 0.7000 (observed labels)'
    >>> chosen_epoch_text(best_epoch=29, epochs_trained=30, val_map=float("nan"))
    'kept the last of 30 epochs (no val positives to choose an epoch by)'
    """
    if val_map is None or not np.isfinite(val_map):
        return f"kept the last of {epochs_trained} epochs (no val positives to choose an epoch by)"
    return f"best epoch {best_epoch + 1}, val mAP {val_map:.4f} (observed labels)"


# Val mAP chooses the epoch (and suggest calibrates each class on val): with fewer labelled val positives than
# this per trained class on average, one positive moves a class's AP by 0.2 or more, so the "best" epoch is
# noise (a fresh tester's 5-image val split kept epoch 1 of an underfit model). Per class on average rather
# than per class, so that a few rare classes do not set it off; suggest's own per-class minimum (min_support,
# also 5) covers those.
MIN_VAL_POSITIVES_PER_CLASS = 5


def small_validation_text(*, val_positives: int, trained_classes: int) -> str | None:
    """Why a val split with positives is too small to choose an epoch by, in words; ``None`` when it is not.

    Parameters
    ----------
    val_positives : int
        Labelled positive cells of the val split (0 is the separate "no val positives" case: ``None``).
    trained_classes : int
        Classes with at least one labelled train positive.

    Examples
    --------
    >>> small_validation_text(val_positives=3, trained_classes=10)
    'the validation split has only 3 labelled positives for 10 trained classes (fewer than 5 per class)'
    >>> small_validation_text(val_positives=56, trained_classes=8) is None
    True
    """
    if val_positives <= 0 or val_positives >= MIN_VAL_POSITIVES_PER_CLASS * max(trained_classes, 1):
        return None
    return (f"the validation split has only {counted(val_positives, 'labelled positive')} for "
            f"{counted(trained_classes, 'trained class', 'trained classes')} (fewer than {MIN_VAL_POSITIVES_PER_CLASS} "
            f"per class)")


__all__ = ["MIN_VAL_POSITIVES_PER_CLASS", "chosen_epoch_text", "observed_map", "small_validation_text",
           "val_map_text"]
