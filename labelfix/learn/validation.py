"""The score both training regimes select their best epoch by: mAP against the observed labels."""

from __future__ import annotations

import numpy as np

from labelfix.evaluate.metrics import mean_average_precision
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


__all__ = ["observed_map"]
