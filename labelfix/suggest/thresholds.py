"""Per-class score thresholds that reach a target precision, estimated by hiding known labels.

A model's scores for unknown cells cannot be checked directly, so we calibrate on validation:
hide a known fraction of its positives (``simulate_validation_hiding``), score the unknown cells,
and see where the hidden ones rank. For each class the lowest threshold whose precision on those
cells reaches the target is the one that finds the most missing labels at that precision.

Two caveats make the precisions here estimates rather than guarantees:

* validation has genuinely missing labels too; they count as false positives, so the estimated
  precision is, if anything, too low (conservative);
* precision depends on how many positives hide among the unknown cells, so hide a fraction close
  to the missing rate you expect in the training data.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from labelfix.evaluate.metrics import (
    RankingCurve,
    check_hidden_within_candidate,
    ranking_curve,
)
from labelfix.internal.json_values import finite_or_none

# Hidden positives a threshold needs at or above it (at most min_support) to count as measured: 1 or 2 lucky
# scores set no threshold (a fresh test found "precision 1.00" from 1 of 16 hidden). With 3 of 3 on top, a
# ranking of precision 0.5 does that 1 time in 8; 5 refused a class of that test that was right 9 of 9 on train.
MIN_HITS = 3

# Rows per chunk when comparing scores with thresholds, to bound temporary (N, C) memory.
_ROW_CHUNK = 65_536


@dataclass(frozen=True)
class ThresholdReport:
    """Chosen threshold per class and what it is expected to achieve.

    Attributes
    ----------
    thresholds : np.ndarray
        (C,) flag a candidate cell when its score is >= this; ``inf`` flags nothing.
    estimated_precision, estimated_recall : np.ndarray
        (C,) measured on the validation candidate cells; for pooled classes the pooled values.
    support : np.ndarray
        (C,) int, hidden labels of the class among its candidate cells.
    pooled : np.ndarray
        (C,) bool, the class had fewer than ``min_support`` hidden labels and uses the pooled one.
    source : np.ndarray
        (C,) str: "class", "pooled", "fallback" (target unreachable, ``fallback`` used) or
        "unreachable" (target unreachable and no fallback: threshold ``inf``). The report of the
        thresholds ``suggest`` used (:meth:`labelfix.suggest.calibration.ClassCalibration.threshold_report`)
        adds "pu", "pu-fallback", "pu-unreachable" and "uncalibrated".
    pooled_threshold, pooled_precision, pooled_recall : float
        Operating point of all classes' candidate cells ranked together.
    """

    thresholds: np.ndarray
    estimated_precision: np.ndarray
    estimated_recall: np.ndarray
    support: np.ndarray
    pooled: np.ndarray
    source: np.ndarray
    pooled_threshold: float
    pooled_precision: float
    pooled_recall: float
    target_precision: float
    min_support: int

    def flag(self, *, scores: np.ndarray, candidate: np.ndarray) -> np.ndarray:
        """(N, C) bool: candidate cells whose score reaches their class threshold."""
        return np.asarray(candidate, dtype=bool) & (np.asarray(scores) >= self.thresholds)

    def to_dict(self) -> dict:
        """JSON-friendly: Python scalars and lists, NaN and infinity as None."""
        return {
            "target_precision": float(self.target_precision),
            "min_support": int(self.min_support),
            "pooled_threshold": finite_or_none(self.pooled_threshold),
            "pooled_precision": finite_or_none(self.pooled_precision),
            "pooled_recall": finite_or_none(self.pooled_recall),
            "thresholds": [finite_or_none(v) for v in self.thresholds],
            "estimated_precision": [finite_or_none(v) for v in self.estimated_precision],
            "estimated_recall": [finite_or_none(v) for v in self.estimated_recall],
            "support": [int(v) for v in self.support],
            "pooled": [bool(v) for v in self.pooled],
            "source": [str(v) for v in self.source],
        }


def thresholds_for_precision(
    *,
    scores: np.ndarray,
    hidden: np.ndarray,
    candidate: np.ndarray,
    target_precision: float = 0.9,
    min_support: int = 5,
    fallback: float | None = None,
    unseen_positive_ratio: float | np.ndarray = 0.0,
) -> ThresholdReport:
    """Choose, per class, the lowest threshold whose precision on candidate cells is >= target.

    Validation is usually missing labels too: its genuinely missing positives sit among the
    candidates and count as false positives, so the plain estimate is a lower bound on precision.
    ``unseen_positive_ratio`` (scalar or per class) is the expected number of such genuinely missing
    positives per hidden one, ``m / h``; with it the precision is that of val's unknown cells, the ones
    like a train search's (:func:`corrected_precision`). ``0`` keeps the conservative estimate.
    :func:`unseen_positive_ratio_for` computes it from an expected miss rate.

    Why per class, with a pooled fallback: score scales differ between classes, so one global
    threshold would be set by the head classes, which dominate the pooled ranking, and tail
    classes would be drowned (flagged far too little or far too much). But a class with only a
    couple of hidden labels would get a threshold set by noise (one lucky score decides it). So
    classes with at least ``min_support`` hidden labels get their own threshold and the others the
    threshold of all candidate cells ranked together, whose estimate is stable.

    Parameters
    ----------
    scores : np.ndarray
        (N, C) validation scores.
    hidden : np.ndarray
        (N, C) bool, the positives hidden on purpose (see ``simulate_validation_hiding``).
    candidate : np.ndarray
        (N, C) bool, unknown cells after hiding; must include every hidden cell.
    target_precision : float
        Precision the thresholds should reach.
    min_support : int
        Hidden labels a class needs for its own threshold (a class with none is always pooled). A threshold
        (own or pooled) also needs ``min(MIN_HITS, min_support)`` hidden labels at or above it to count as
        reaching the target: fewer hits say nothing about precision (see ``MIN_HITS``).
    fallback : float, optional
        Threshold when the target is unreachable (for the class, or for the pool if the class is
        pooled). Without it such classes get ``inf`` and nothing is flagged for them.

    Returns
    -------
    ThresholdReport

    Examples
    --------
    >>> scores = np.array([[0.9], [0.8], [0.7], [0.6]])
    >>> hidden = np.array([[1], [1], [0], [1]], dtype=bool)
    >>> report = thresholds_for_precision(scores=scores, hidden=hidden,
    ...                                   candidate=np.ones((4, 1), bool), min_support=1)
    >>> report.thresholds.tolist(), report.estimated_recall.round(3).tolist()
    ([0.8], [0.667])
    """
    scores = np.asarray(scores)
    hidden, candidate = np.asarray(hidden, dtype=bool), np.asarray(candidate, dtype=bool)
    if scores.ndim != 2 or scores.shape != hidden.shape or scores.shape != candidate.shape:
        raise ValueError("scores, hidden and candidate must be (N, C) arrays of one shape")
    if not 0.0 < target_precision <= 1.0:
        raise ValueError(f"target_precision must be in (0, 1], got {target_precision}")
    check_hidden_within_candidate(hidden=hidden, candidate=candidate)

    num_classes = scores.shape[1]
    ratios = np.broadcast_to(np.asarray(unseen_positive_ratio, dtype=np.float64), (num_classes,))
    support_all = hidden.sum(axis=0)
    pooled_ratio = float((ratios * support_all).sum() / max(support_all.sum(), 1))
    pooled_curve = ranking_curve(scores=scores[candidate], targets=hidden[candidate])
    min_hits = min(MIN_HITS, max(min_support, 1))
    pooled_point = _operating_point(pooled_curve, target_precision, pooled_ratio, min_hits)
    thresholds = np.full(num_classes, np.inf)
    precision = np.full(num_classes, np.nan)
    recall = np.full(num_classes, np.nan)
    source = np.empty(num_classes, dtype=object)
    support = hidden.sum(axis=0).astype(np.int64)
    pooled = support < max(min_support, 1)

    for class_index in range(num_classes):
        keep = candidate[:, class_index]
        curve = None if pooled[class_index] else ranking_curve(
            scores=scores[keep, class_index], targets=hidden[keep, class_index]
        )
        point = pooled_point if curve is None else _operating_point(curve, target_precision, ratios[class_index],
                                                                    min_hits)
        if math.isfinite(point[0]):
            thresholds[class_index], precision[class_index], recall[class_index] = point
            source[class_index] = "pooled" if pooled[class_index] else "class"
        elif fallback is not None:
            # The class's own (possibly noisy) numbers are the only estimate at a hand-set threshold.
            if curve is None:
                curve = ranking_curve(
                    scores=scores[keep, class_index], targets=hidden[keep, class_index]
                )
            thresholds[class_index] = fallback
            precision[class_index], recall[class_index] = _measure_at(curve, fallback)
            source[class_index] = "fallback"
        else:
            recall[class_index] = 0.0 if support[class_index] else math.nan
            source[class_index] = "unreachable"

    return ThresholdReport(
        thresholds=thresholds,
        estimated_precision=precision,
        estimated_recall=recall,
        support=support,
        pooled=pooled,
        source=source.astype(str),
        pooled_threshold=pooled_point[0],
        pooled_precision=pooled_point[1],
        pooled_recall=pooled_point[2],
        target_precision=target_precision,
        min_support=min_support,
    )


def _operating_point(curve: RankingCurve, target_precision: float, ratio: float, min_hits: int
                     ) -> tuple[float, float, float]:
    """(threshold, precision, recall) at the lowest threshold whose precision, corrected for unseen positives
    (see above), reaches the target with at least ``min_hits`` hidden positives at or above it.

    Why a minimum: 1 of 1 hidden positive above a threshold is "precision 1.00" from one cell (see
    ``MIN_HITS``). Fewer hits: target not reached (``inf``).
    """
    if curve.num_positives == 0:
        return math.inf, math.nan, math.nan
    precision = corrected_precision(hits=curve.true_positives, flagged=curve.true_positives + curve.false_positives,
                                    ratio=ratio)
    qualifying = np.flatnonzero((precision >= target_precision) & (curve.true_positives >= max(min_hits, 1)))
    if qualifying.size == 0:
        return math.inf, math.nan, 0.0
    i = qualifying[-1]
    return float(curve.thresholds[i]), float(precision[i]), float(curve.true_positives[i] / curve.num_positives)


def corrected_precision(*, hits: np.ndarray, flagged: np.ndarray, ratio: float) -> np.ndarray:
    """Precision at each threshold from ``hits`` hidden positives among ``flagged`` candidate cells.

    ``ratio`` 0: ``hits / flagged``, val's own missed positives counted as false positives (a lower bound).
    ``ratio`` ``r = m / h`` > 0 (missed val positives per hidden one): the precision of flagging val's *unknown*
    cells (``flagged - hits`` of them), as a train search flags unknown cells. Missed positives rank like hidden
    ones (both are a random share of the positives), so about ``r hits`` of them are flagged: ``min(r hits,
    unknown) / unknown`` (1 where no unknown cell is flagged). Counting the hidden ones as true positives instead
    would overstate it: they raise the share of positives among the flagged cells above what a train search sees.

    Parameters
    ----------
    hits, flagged : np.ndarray
        (T,) counts at each threshold, ``hits <= flagged``, ``flagged >= 1``.
    ratio : float
        Missed val positives per hidden one (``>= 0``).

    Examples
    --------
    >>> corrected_precision(hits=np.array([2, 4]), flagged=np.array([2, 10]), ratio=0.0).tolist()
    [1.0, 0.4]
    >>> corrected_precision(hits=np.array([2, 4]), flagged=np.array([2, 10]), ratio=1.0).tolist()
    [1.0, 0.6666666666666666]
    """
    hits, flagged = np.asarray(hits, dtype=np.float64), np.asarray(flagged, dtype=np.float64)
    if ratio <= 0:
        return hits / flagged
    unknown = flagged - hits
    return np.where(unknown > 0, np.minimum(ratio * hits, unknown) / np.maximum(unknown, 1.0), 1.0)


def unseen_positive_ratio_for(*, observed_before_hiding: np.ndarray, hidden: np.ndarray,
                              expected_missing_rate: float) -> np.ndarray:
    """Per class ``m / h``: genuinely missing val positives per hidden one, from an expected miss rate.

    With a miss rate ``rho``, ``O`` observed positives stand for ``O / (1 - rho)`` true ones, so
    ``m = O * rho / (1 - rho)`` are missing. ``h`` is the number hidden on purpose.

    Examples
    --------
    >>> observed = np.array([[1, 1], [1, 0], [1, 1]], dtype=bool)
    >>> hidden = np.array([[1, 0], [0, 0], [0, 1]], dtype=bool)
    >>> unseen_positive_ratio_for(observed_before_hiding=observed, hidden=hidden,
    ...                           expected_missing_rate=0.5).tolist()
    [3.0, 2.0]
    """
    if not 0.0 <= expected_missing_rate < 1.0:
        raise ValueError(f"expected_missing_rate must be in [0, 1), got {expected_missing_rate}")
    observed_counts = np.asarray(observed_before_hiding, dtype=bool).sum(axis=0).astype(np.float64)
    hidden_counts = np.asarray(hidden, dtype=bool).sum(axis=0).astype(np.float64)
    missing = observed_counts * expected_missing_rate / (1.0 - expected_missing_rate)
    return np.divide(missing, hidden_counts, out=np.zeros_like(missing), where=hidden_counts > 0)


@dataclass(frozen=True)
class MissingCountEstimate:
    """Expected missing labels per class among the unknown cells of the data being fixed.

    Attributes
    ----------
    flagged : np.ndarray
        (C,) int, unknown cells at or above the class threshold.
    expected_among_flagged : np.ndarray
        (C,) ``flagged x estimated precision``: missing labels a reviewer should confirm.
    expected_total : np.ndarray
        (C,) ``expected_among_flagged / estimated recall``: missing labels including those below
        the threshold; NaN where recall is 0 or unknown.
    """

    flagged: np.ndarray
    expected_among_flagged: np.ndarray
    expected_total: np.ndarray


def estimate_missing_counts(
    *, scores: np.ndarray, candidate: np.ndarray, report: ThresholdReport
) -> MissingCountEstimate:
    """Estimate how many labels are missing per class, from thresholds set on validation.

    The estimator is deliberately simple: among ``flagged`` cells a share equal to the validation
    precision should be real missing labels, and those found are the validation recall's share of
    all of them. It assumes training and validation scores behave alike (same model, same missing
    rate); see the module notes for why the precision is a conservative estimate.

    Parameters
    ----------
    scores : np.ndarray
        (N, C) scores on the data being fixed (usually the train split).
    candidate : np.ndarray
        (N, C) bool, its unknown cells.
    report : ThresholdReport
        From ``thresholds_for_precision`` on validation.

    Examples
    --------
    >>> report = thresholds_for_precision(scores=np.array([[0.9], [0.8], [0.7], [0.6]]),
    ...     hidden=np.array([[1], [1], [0], [1]], bool), candidate=np.ones((4, 1), bool),
    ...     min_support=1)
    >>> estimate = estimate_missing_counts(scores=np.array([[0.95], [0.85], [0.1]]),
    ...                                    candidate=np.ones((3, 1), bool), report=report)
    >>> estimate.flagged.tolist(), estimate.expected_total.tolist()
    ([2], [3.0])
    """
    scores, candidate = np.asarray(scores), np.asarray(candidate, dtype=bool)
    if scores.ndim != 2 or scores.shape != candidate.shape or scores.shape[1] != len(report.thresholds):
        raise ValueError("scores and candidate must be (N, C) with C matching the report")
    flagged = np.zeros(scores.shape[1], dtype=np.int64)
    for start in range(0, scores.shape[0], _ROW_CHUNK):
        rows = slice(start, start + _ROW_CHUNK)
        flagged += np.count_nonzero(candidate[rows] & (scores[rows] >= report.thresholds), axis=0)
    # Nothing flagged means nothing expected, even where the precision estimate is NaN.
    among_flagged = np.where(flagged == 0, 0.0, flagged * report.estimated_precision)
    with np.errstate(divide="ignore", invalid="ignore"):
        total = among_flagged / report.estimated_recall
    total[~(report.estimated_recall > 0)] = np.nan
    return MissingCountEstimate(flagged, among_flagged, total)


def simulate_validation_hiding(
    *, observed: np.ndarray, fraction: float, seed: int, keep_one_per_image: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Hide a known fraction of the positives, keeping at least one positive per image.

    Exactly ``round(fraction x positives)`` labels are hidden, drawn uniformly from the positives
    that are not each image's one kept label (chosen at random). Keeping one per image mirrors
    real annotations, where an image is rarely left with no label at all. If too few positives
    are eligible, all eligible ones are hidden and a warning says so.

    Parameters
    ----------
    observed : np.ndarray
        (N, C) bool, annotated positives.
    fraction : float
        Share of all positives to hide, in [0, 1].
    seed : int
        Seed for the random choice.
    keep_one_per_image : bool
        False: any positive may be hidden, so an image can be left with none. For single-positive and
        one-class data, where keeping one per image hides nothing: the hidden cell is still a known positive,
        and the image's other (missed) positives sit among the unknown cells as false positives, so the
        precision measured is conservative.

    Returns
    -------
    observed_after : np.ndarray
        (N, C) bool, ``observed`` without the hidden labels.
    hidden : np.ndarray
        (N, C) bool, the hidden labels.

    Examples
    --------
    >>> observed = np.array([[1, 1, 1, 1], [1, 0, 0, 0]], dtype=bool)
    >>> after, hidden = simulate_validation_hiding(observed=observed, fraction=0.6, seed=0)
    >>> int(hidden.sum()), after.sum(axis=1).tolist()
    (3, [1, 1])
    """
    observed = np.asarray(observed, dtype=bool)
    if observed.ndim != 2:
        raise ValueError("observed must be an (N, C) array")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    rows, cols = np.nonzero(observed)  # positives only, so memory scales with labels, not N x C
    num_to_hide = int(math.floor(fraction * rows.size + 0.5))

    # Sort positives by image, then by a random key: the first of each image is the one kept.
    order = np.lexsort((rng.random(rows.size), rows))
    is_kept = np.ones(order.size, dtype=bool)
    is_kept[1:] = rows[order][1:] != rows[order][:-1]
    if not keep_one_per_image:
        is_kept[:] = False
    eligible = order[~is_kept]
    if num_to_hide > eligible.size:
        warnings.warn(
            f"asked to hide {num_to_hide} of {rows.size} positives but only {eligible.size} can be "
            "hidden while keeping one per image; hiding those",
            stacklevel=2,
        )
        num_to_hide = eligible.size
    chosen = rng.choice(eligible, size=num_to_hide, replace=False)
    hidden = np.zeros_like(observed)
    hidden[rows[chosen], cols[chosen]] = True
    return observed & ~hidden, hidden


def _measure_at(curve: RankingCurve, threshold: float) -> tuple[float, float]:
    """(precision, recall) when flagging scores >= ``threshold`` on one ranking."""
    reached = int(np.count_nonzero(curve.thresholds >= threshold))
    recall = math.nan if curve.num_positives == 0 else 0.0
    if reached == 0:
        return math.nan, recall
    index = reached - 1
    if curve.num_positives:
        recall = float(curve.true_positives[index] / curve.num_positives)
    return float(curve.precision[index]), recall
