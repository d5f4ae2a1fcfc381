"""Ranking metrics for multi-label benchmarks and for finding missing labels.

Everything here is pure numpy. Scores may be float32 and flat or 2-D; a ranking only needs a sort
order, so scores are never upcast to float64 as a whole. Ties follow scikit-learn: cells with equal
scores share one threshold, so they enter a precision-recall curve together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from labelfix.internal.json_values import finite_floats, finite_or_none


@dataclass(frozen=True)
class RankingCurve:
    """Counts at each distinct score, highest first: flagging ``score >= thresholds[i]`` gives
    ``true_positives[i]`` positives and ``false_positives[i]`` negatives (int64)."""

    thresholds: np.ndarray
    true_positives: np.ndarray
    false_positives: np.ndarray
    num_positives: int

    @property
    def precision(self) -> np.ndarray:
        return self.true_positives / (self.true_positives + self.false_positives)

    @property
    def recall(self) -> np.ndarray:
        if self.num_positives == 0:
            return np.full(len(self.thresholds), np.nan)
        return self.true_positives / self.num_positives


def ranking_curve(*, scores: np.ndarray, targets: np.ndarray) -> RankingCurve:
    """Group a ranking into distinct-score thresholds with cumulative hit counts.

    Parameters
    ----------
    scores : np.ndarray
        Scores of any shape; higher means "more likely positive". NaN is rejected.
    targets : np.ndarray
        Booleans (or 0/1) of the same shape as ``scores``.

    Examples
    --------
    >>> curve = ranking_curve(scores=np.array([0.9, 0.8, 0.8]), targets=np.array([1, 0, 1]))
    >>> curve.thresholds.tolist(), curve.true_positives.tolist(), curve.false_positives.tolist()
    ([0.9, 0.8], [1, 2], [0, 1])
    """
    flat_scores = np.asarray(scores).reshape(-1)  # a view for contiguous input
    flat_targets = np.asarray(targets, dtype=bool).reshape(-1)
    if flat_scores.shape != flat_targets.shape:
        raise ValueError(f"scores has {flat_scores.size} items but targets has {flat_targets.size}")
    if flat_scores.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return RankingCurve(flat_scores[:0].copy(), empty, empty, 0)
    if np.isnan(flat_scores).any():
        raise ValueError("scores contain NaN; a ranking needs every cell to have a score")
    # Ascending then reversed: the order inside a tie is irrelevant because ties are grouped.
    order = np.argsort(flat_scores, kind="stable")[::-1]
    sorted_scores = flat_scores[order]
    hits = np.cumsum(flat_targets[order], dtype=np.int64)
    del order
    # The last position of each run of equal scores is where that threshold's counts are read.
    group_ends = np.append(np.flatnonzero(sorted_scores[1:] != sorted_scores[:-1]), hits.size - 1)
    true_positives = hits[group_ends]
    false_positives = group_ends + 1 - true_positives
    return RankingCurve(sorted_scores[group_ends], true_positives, false_positives, int(hits[-1]))


def average_precision(*, scores: np.ndarray, targets: np.ndarray) -> float:
    """Non-interpolated average precision, as ``sklearn.metrics.average_precision_score``.

    AP = sum over distinct thresholds of (R_n - R_{n-1}) * P_n. Tied scores form one threshold.

    Parameters
    ----------
    scores, targets : np.ndarray
        Same shape; any number of dimensions (they are flattened).

    Returns
    -------
    float
        NaN when there is no positive: AP is undefined, not zero.

    Examples
    --------
    >>> average_precision(scores=np.array([0.9, 0.8, 0.7, 0.6]), targets=np.array([1, 0, 1, 0]))
    0.8333333333333333
    """
    return _average_precision_of(ranking_curve(scores=scores, targets=targets))


def _average_precision_of(curve: RankingCurve) -> float:
    if curve.num_positives == 0:
        return math.nan
    recall_gain = np.diff(curve.true_positives, prepend=0) / curve.num_positives
    return float(np.sum(recall_gain * curve.precision))


@dataclass(frozen=True)
class MapResult:
    """``mean_ap`` over the ``num_evaluated_classes`` classes with a positive (NaN if none);
    ``per_class_ap`` is (C,) float64 with NaN for classes without a positive."""

    mean_ap: float
    per_class_ap: np.ndarray
    num_evaluated_classes: int

    def to_dict(self) -> dict:
        return {
            "mean_ap": finite_or_none(self.mean_ap),
            "num_evaluated_classes": self.num_evaluated_classes,
            "per_class_ap": finite_floats(self.per_class_ap),
        }


def mean_average_precision(
    *, probs: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None
) -> MapResult:
    """Per-class AP (over images) and their mean over classes with at least one positive.

    Parameters
    ----------
    probs : np.ndarray
        (N, C) scores.
    truth : np.ndarray
        (N, C) bool ground truth.
    mask : np.ndarray, optional
        (N, C) bool; only cells where it is True are ranked (e.g. cells with a known label).

    Examples
    --------
    >>> probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.7]])
    >>> truth = np.array([[1, 0], [0, 1], [0, 0]], dtype=bool)
    >>> mean_average_precision(probs=probs, truth=truth).mean_ap
    1.0
    """
    probs, truth = np.asarray(probs), np.asarray(truth, dtype=bool)
    _check_2d(probs=probs, truth=truth, mask=mask)
    per_class_ap = np.full(probs.shape[1], np.nan)
    for class_index in range(probs.shape[1]):
        class_scores, class_truth = probs[:, class_index], truth[:, class_index]
        if mask is not None:
            keep = np.asarray(mask[:, class_index], dtype=bool)
            class_scores, class_truth = class_scores[keep], class_truth[keep]
        if class_truth.any():
            per_class_ap[class_index] = average_precision(scores=class_scores, targets=class_truth)
    evaluated = ~np.isnan(per_class_ap)
    return MapResult(_mean_or_nan(per_class_ap[evaluated]), per_class_ap, int(evaluated.sum()))


def shot_split_map(
    *, per_class_ap: np.ndarray, train_counts: np.ndarray, many: int = 100, few: int = 20
) -> dict[str, float]:
    """Mean AP by how many training samples a class has (COMIC's many/medium/few-shot split).

    Groups: many-shot has more than ``many`` samples, few-shot fewer than ``few``, medium-shot the
    rest (``few`` to ``many`` inclusive). Classes whose AP is NaN are left out of their group.

    Returns
    -------
    dict
        ``{"many": ..., "medium": ..., "few": ...}``, NaN for a group with no evaluated class.

    Examples
    --------
    >>> shot_split_map(per_class_ap=np.array([0.9, 0.5, 0.1]), train_counts=np.array([500, 50, 3]))
    {'many': 0.9, 'medium': 0.5, 'few': 0.1}
    """
    per_class_ap = np.asarray(per_class_ap, dtype=np.float64)
    train_counts = np.asarray(train_counts)
    if per_class_ap.shape != train_counts.shape:
        raise ValueError("per_class_ap and train_counts must have one entry per class")
    groups = {
        "many": train_counts > many,
        "medium": (train_counts >= few) & (train_counts <= many),
        "few": train_counts < few,
    }
    evaluated = ~np.isnan(per_class_ap)
    return {name: _mean_or_nan(per_class_ap[members & evaluated]) for name, members in groups.items()}


def precision_at_k(*, scores: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Fraction of positives among the ``k`` highest scores.

    A tie straddling rank ``k`` contributes its positive rate times the places it takes, i.e. the
    expected precision under random tie-breaking, so the result never depends on input order.
    ``k`` larger than the number of items is clipped to it.

    Returns
    -------
    float
        NaN when there is no item.

    Examples
    --------
    >>> precision_at_k(scores=np.array([0.9, 0.8, 0.7, 0.6]), targets=np.array([1, 0, 1, 0]), k=3)
    0.6666666666666666
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return _precision_at_k_of(ranking_curve(scores=scores, targets=targets), k)


def _precision_at_k_of(curve: RankingCurve, k: int) -> float:
    counts_at = curve.true_positives + curve.false_positives
    if counts_at.size == 0:
        return math.nan
    k = min(k, int(counts_at[-1]))
    group = int(np.searchsorted(counts_at, k))  # first threshold that reaches rank k
    count_before, hits_before = (
        (int(counts_at[group - 1]), int(curve.true_positives[group - 1])) if group else (0, 0)
    )
    group_size = int(counts_at[group]) - count_before
    group_hits = int(curve.true_positives[group]) - hits_before
    expected_hits = hits_before + group_hits * (k - count_before) / group_size
    return expected_hits / k


def recall_at_precision(*, scores: np.ndarray, targets: np.ndarray, precision: float = 0.9) -> float:
    """Largest recall over thresholds whose precision is at least ``precision``.

    Returns
    -------
    float
        0.0 if no threshold reaches the precision, NaN when there is no positive.

    Examples
    --------
    >>> recall_at_precision(scores=np.array([0.9, 0.8, 0.7, 0.6]), targets=np.array([1, 0, 1, 0]))
    0.5
    """
    return best_operating_point(ranking_curve(scores=scores, targets=targets), precision)[2]


def best_operating_point(curve: RankingCurve, target_precision: float) -> tuple[float, float, float]:
    """(threshold, precision, recall) at the lowest threshold whose precision >= target.

    The lowest such threshold has the largest recall, since recall only grows as it drops.
    Without any qualifying threshold the result is ``(inf, nan, 0.0)`` (flag nothing), and recall
    is NaN when the curve has no positive.
    """
    if curve.num_positives == 0:
        return math.inf, math.nan, math.nan
    qualifying = np.flatnonzero(curve.precision >= target_precision)
    if qualifying.size == 0:
        return math.inf, math.nan, 0.0
    i = qualifying[-1]
    return float(curve.thresholds[i]), float(curve.precision[i]), float(curve.recall[i])


def precision_recall_curve(
    *, scores: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and thresholds in scikit-learn's layout, for plotting.

    Thresholds ascend; ``precision`` and ``recall`` have one more entry, the final (1, 0) point.

    Examples
    --------
    >>> p, r, t = precision_recall_curve(scores=np.array([0.9, 0.6]), targets=np.array([1, 0]))
    >>> p.tolist(), r.tolist(), t.tolist()
    ([0.5, 1.0, 1.0], [1.0, 1.0, 0.0], [0.6, 0.9])
    """
    curve = ranking_curve(scores=scores, targets=targets)
    precision = np.append(curve.precision[::-1], 1.0)
    recall = np.append(curve.recall[::-1], 0.0)
    return precision, recall, curve.thresholds[::-1].copy()


@dataclass(frozen=True)
class MissingLabelReport:
    """How well scores rank hidden (deliberately removed) labels among the unknown cells.

    ``average_precision``, ``precision_at`` (fraction -> precision@k, k = fraction x hidden, at
    least 1) and ``recall_at_target_precision`` rank all candidate cells together; the
    ``per_class_*`` arrays do the same per class (NaN where a class has no hidden label) and
    ``macro_average_precision`` is their mean AP.
    """

    average_precision: float
    macro_average_precision: float
    precision_at: dict[float, float]
    recall_at_target_precision: float
    target_precision: float
    num_hidden: int
    num_candidates: int
    per_class_average_precision: np.ndarray
    per_class_precision_at: dict[float, np.ndarray]
    per_class_recall_at_target_precision: np.ndarray
    per_class_num_hidden: np.ndarray

    def to_dict(self) -> dict:
        """JSON-friendly: Python floats, NaN as None, fractions as string keys ("0.1")."""
        return {
            "average_precision": finite_or_none(self.average_precision),
            "macro_average_precision": finite_or_none(self.macro_average_precision),
            "precision_at": {_fraction_key(f): finite_or_none(v) for f, v in self.precision_at.items()},
            "recall_at_target_precision": finite_or_none(self.recall_at_target_precision),
            "target_precision": float(self.target_precision),
            "num_hidden": self.num_hidden,
            "num_candidates": self.num_candidates,
            "per_class": {
                "average_precision": finite_floats(self.per_class_average_precision),
                "precision_at": {
                    _fraction_key(f): finite_floats(v) for f, v in self.per_class_precision_at.items()
                },
                "recall_at_target_precision": finite_floats(self.per_class_recall_at_target_precision),
                "num_hidden": [int(n) for n in self.per_class_num_hidden],
            },
        }


def missing_label_metrics(
    *,
    scores: np.ndarray,
    hidden: np.ndarray,
    candidate: np.ndarray,
    fractions: tuple[float, ...] = (0.1, 0.25, 0.5),
    target_precision: float = 0.9,
) -> MissingLabelReport:
    """Rank the candidate (unknown) cells and measure how high the hidden labels come.

    Parameters
    ----------
    scores : np.ndarray
        (N, C) model scores.
    hidden : np.ndarray
        (N, C) bool, labels removed on purpose; they are the positives.
    candidate : np.ndarray
        (N, C) bool, the cells a reviewer would be shown (the train split's unknown cells). Every
        hidden cell must be a candidate, otherwise recall would silently ignore it.
    fractions : tuple of float
        Precision@k is reported for k = round(fraction x number of hidden), at least 1.
    target_precision : float
        Precision for ``recall_at_target_precision``.

    Examples
    --------
    >>> scores = np.array([[0.9, 0.1], [0.8, 0.7], [0.3, 0.6]])
    >>> hidden = np.array([[1, 0], [0, 1], [0, 0]], dtype=bool)
    >>> report = missing_label_metrics(scores=scores, hidden=hidden, candidate=np.ones((3, 2), bool))
    >>> round(report.average_precision, 4), report.precision_at[0.5]
    (0.8333, 1.0)
    """
    scores = np.asarray(scores)
    hidden, candidate = np.asarray(hidden, dtype=bool), np.asarray(candidate, dtype=bool)
    _check_2d(scores=scores, hidden=hidden, candidate=candidate)
    check_hidden_within_candidate(hidden=hidden, candidate=candidate)

    pooled = ranking_curve(scores=scores[candidate], targets=hidden[candidate])
    num_classes = scores.shape[1]
    per_class_ap = np.full(num_classes, np.nan)
    per_class_recall = np.full(num_classes, np.nan)
    per_class_precision_at = {f: np.full(num_classes, np.nan) for f in fractions}
    per_class_num_hidden = hidden.sum(axis=0).astype(np.int64)
    for class_index in range(num_classes):
        if per_class_num_hidden[class_index] == 0:
            continue
        keep = candidate[:, class_index]
        curve = ranking_curve(scores=scores[keep, class_index], targets=hidden[keep, class_index])
        per_class_ap[class_index] = _average_precision_of(curve)
        per_class_recall[class_index] = best_operating_point(curve, target_precision)[2]
        for fraction in fractions:
            per_class_precision_at[fraction][class_index] = _precision_at_fraction(curve, fraction)

    return MissingLabelReport(
        average_precision=_average_precision_of(pooled),
        macro_average_precision=_mean_or_nan(per_class_ap[~np.isnan(per_class_ap)]),
        precision_at={f: _precision_at_fraction(pooled, f) for f in fractions},
        recall_at_target_precision=best_operating_point(pooled, target_precision)[2],
        target_precision=target_precision,
        num_hidden=pooled.num_positives,
        num_candidates=int(candidate.sum()),
        per_class_average_precision=per_class_ap,
        per_class_precision_at=per_class_precision_at,
        per_class_recall_at_target_precision=per_class_recall,
        per_class_num_hidden=per_class_num_hidden,
    )


def check_hidden_within_candidate(*, hidden: np.ndarray, candidate: np.ndarray) -> None:
    """Raise if a hidden label lies outside the candidate cells (it could never be found)."""
    outside = int(np.count_nonzero(hidden & ~candidate))
    if outside:
        raise ValueError(f"{outside} hidden labels are not candidate cells; hidden must be a subset")


def _precision_at_fraction(curve: RankingCurve, fraction: float) -> float:
    if curve.num_positives == 0:
        return math.nan
    # Half-up rounding (Python's round() is banker's); at least 1 so tiny classes still count.
    return _precision_at_k_of(curve, max(1, int(math.floor(fraction * curve.num_positives + 0.5))))


def _check_2d(**arrays: np.ndarray | None) -> None:
    present = {name: np.shape(a) for name, a in arrays.items() if a is not None}
    shapes = set(present.values())
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"expected (N, C) arrays of one shape, got {present}")


def _mean_or_nan(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def _fraction_key(fraction: float) -> str:
    return f"{fraction:g}"

