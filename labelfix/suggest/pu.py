"""Threshold precision without hiding: the positive-unlabelled (PU) correction of Elkan & Noto (2008).

When no validation positive can be hidden (one label per image, a one-class dataset) hide-and-measure
has nothing to measure. The labelled validation positives still say two things, if they are a random
sample of all positives (SCAR, "selected completely at random"):

* **where positives score**: missed positives score like labelled ones (validation labels are never
  training targets), so a threshold ``t`` keeps the share ``S(t)`` of the missed ones that it keeps of
  the labelled ones: that is its recall;
* **how many are missed**: a model trained to tell labelled from unlabelled cells scores a positive
  about ``c = P(labelled | positive)`` (Elkan & Noto, "Learning classifiers from only positive and
  unlabeled data", KDD 2008, estimator e1: the mean score over labelled positives). ``L`` labelled
  positives then stand for ``L / c`` in all, so ``M = L (1 - c) / c`` hide among the unknown cells.

Precision of flagging the unknown cells scoring at least ``t`` is then ``M S(t) / U(t)``, ``U(t)`` the
number of unknown cells flagged: the hide-and-measure estimate with the labelled positives standing in
for the hidden ones. ``M`` is capped at ``U(t) / S(t)`` (a mixture-proportion bound, cf. Scott 2015),
taken at the labelled positives' quartiles: more missed positives than that cannot fit among the unknown
cells. The cap matters for a weak model: for calibrated scores e1 is at most the true ``c`` (equal only
when positives and negatives separate), so e1's ``M`` comes out too high and the precision optimistic.
Measured on the single-positive demo (head mode, in-sample train scores, val truth known): e1 alone
claimed 0.90-0.93 where the truth on val was 0.22-0.73; with the cap, 0.22-0.82 (the cap cannot help a
class the model does not rank: there the estimate stays optimistic, and the note shows its low ``c``). A known miss rate ``rho`` replaces e1 (``c = 1 - rho``).

A class whose e1 is below ``min_label_frequency`` (0.1) gets no estimate: that would mean more than 9 in
10 of its positives missed, and is far more often a class the model has not learned.

Caveats, all stated in the report: e1 assumes the scores estimate ``P(labelled | x)`` (as a model
trained with "assume negative" does); a model that corrects for missing labels (SPLC, EM, ROLE) scores
positives higher, e1 comes out high and ``M`` low, so the precision estimate is conservative. In
single-positive data the kept label is not quite SCAR: a positive of a busy image is less likely to be
the one kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from labelfix.internal.json_values import finite_floats

# Standard errors of slack in the cap on missed positives (see _missing_bound). 0: the cap is itself an
# estimate (of the missed positives where the top scores hold few negatives), and M is the lower of it and
# e1's; on the single-positive demo (head mode, weak tail classes) 2 left e1's over-count in place.
_SLACK_SIGMAS = 0.0


@dataclass(frozen=True)
class PUReport:
    """Per-class PU thresholds and the numbers behind them; arrays are (C,).

    Attributes
    ----------
    thresholds : np.ndarray
        Flag an unknown cell when its score is >= this; ``inf`` flags nothing.
    estimated_precision, estimated_recall : np.ndarray
        At the chosen threshold; NaN where the class was not estimable or the target is unreachable.
    best_precision, best_recall : np.ndarray
        The highest precision estimate at any threshold, and its recall (to say how far off the target is).
    label_frequency : np.ndarray
        ``c``, the share of positives labelled (e1 or from a given miss rate); NaN where not estimable.
    labelled : np.ndarray
        int, labelled positives per class.
    expected_missing : np.ndarray
        ``M``, expected positives among the class's unknown cells (after the cap); NaN where not estimable.
    estimable : np.ndarray
        bool: at least ``min_positives`` labelled positives, one unknown cell and a plausible ``c``.
    implausible : np.ndarray
        bool: enough positives, but ``c`` (e1) below ``min_label_frequency``: the model has more likely not
        learned the class than missed 9 in 10 of its labels, so no estimate is made.
    """

    thresholds: np.ndarray
    estimated_precision: np.ndarray
    estimated_recall: np.ndarray
    best_precision: np.ndarray
    best_recall: np.ndarray
    label_frequency: np.ndarray
    labelled: np.ndarray
    expected_missing: np.ndarray
    estimable: np.ndarray
    implausible: np.ndarray
    target_precision: float
    min_positives: int

    def to_dict(self) -> dict:
        """JSON-friendly: NaN and infinity as None."""
        return {"target_precision": float(self.target_precision), "min_positives": int(self.min_positives),
                "thresholds": finite_floats(self.thresholds),
                "estimated_precision": finite_floats(self.estimated_precision),
                "estimated_recall": finite_floats(self.estimated_recall),
                "label_frequency": finite_floats(self.label_frequency),
                "labelled": [int(v) for v in self.labelled],
                "expected_missing": finite_floats(self.expected_missing),
                "estimable": [bool(v) for v in self.estimable],
                "implausible": [bool(v) for v in self.implausible]}


def label_frequency_e1(*, scores: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """Elkan & Noto's e1 per class: the mean score of the labelled positives (NaN where there are none).

    Examples
    --------
    >>> label_frequency_e1(scores=np.array([[0.4, 0.9], [0.6, 0.1]]),
    ...                    labelled=np.array([[1, 0], [1, 0]], bool)).tolist()
    [0.5, nan]
    """
    scores, labelled = np.asarray(scores, dtype=np.float64), np.asarray(labelled, dtype=bool)
    counts = labelled.sum(axis=0)
    totals = np.where(labelled, scores, 0.0).sum(axis=0)
    return np.divide(totals, counts, out=np.full(scores.shape[1], np.nan), where=counts > 0)


def pu_thresholds_for_precision(
    *,
    scores: np.ndarray,
    labelled: np.ndarray,
    candidate: np.ndarray,
    target_precision: float = 0.9,
    min_positives: int = 5,
    label_frequency: float | np.ndarray | None = None,
    fallback: float | None = None,
    min_label_frequency: float = 0.1,
) -> PUReport:
    """Per class, the lowest threshold whose PU-estimated precision on candidate cells is >= target.

    Parameters
    ----------
    scores : np.ndarray
        (N, C) validation scores (out of sample: validation labels must not have been training targets).
    labelled : np.ndarray
        (N, C) bool, the labelled positives.
    candidate : np.ndarray
        (N, C) bool, the unknown cells (no labelled positive among them).
    target_precision : float
        Precision the thresholds should reach.
    min_positives : int
        Labelled positives a class needs for an estimate.
    label_frequency : float or np.ndarray, optional
        ``c`` per class (or one for all) if known, e.g. ``1 - expected miss rate``; default e1.
    fallback : float, optional
        Threshold for a class whose target is unreachable (its estimate at that threshold is reported).
    min_label_frequency : float
        An e1 below this makes no estimate (``implausible``): e1 is at most the true ``c`` for calibrated
        scores and far below it for a class the model has not learned, where it would claim ``1 / c``
        missed labels per labelled one. 0.1 means 10 labels per positive image in single-positive data.
        A given ``label_frequency`` is taken as is.

    Returns
    -------
    PUReport

    Examples
    --------
    Half the positives are labelled and score 0.5 as a labelled-vs-unlabelled model would; the
    unknown cells are 4 missed positives (0.5) and 4 negatives (0.1):

    >>> scores = np.array([[0.5]] * 8 + [[0.1]] * 4)
    >>> labelled = np.array([[True]] * 4 + [[False]] * 8)
    >>> report = pu_thresholds_for_precision(scores=scores, labelled=labelled, candidate=~labelled,
    ...                                      min_positives=2)
    >>> report.label_frequency.tolist(), report.expected_missing.tolist(), report.thresholds.tolist()
    ([0.5], [4.0], [0.5])
    >>> report.estimated_precision.tolist(), report.estimated_recall.tolist()
    ([1.0], [1.0])
    """
    scores = np.asarray(scores, dtype=np.float64)
    labelled, candidate = np.asarray(labelled, dtype=bool), np.asarray(candidate, dtype=bool)
    if scores.ndim != 2 or scores.shape != labelled.shape or scores.shape != candidate.shape:
        raise ValueError("scores, labelled and candidate must be (N, C) arrays of one shape")
    if not 0.0 < target_precision <= 1.0:
        raise ValueError(f"target_precision must be in (0, 1], got {target_precision}")
    if (labelled & candidate).any():
        raise ValueError("a labelled positive cannot be a candidate cell")
    num_classes = scores.shape[1]
    frequency = label_frequency_e1(scores=scores, labelled=labelled) if label_frequency is None else \
        np.broadcast_to(np.asarray(label_frequency, dtype=np.float64), (num_classes,)).copy()
    out = {name: np.full(num_classes, np.nan) for name in
           ("precision", "recall", "best_precision", "best_recall", "missing", "frequency")}
    thresholds = np.full(num_classes, np.inf)
    counts = labelled.sum(axis=0).astype(np.int64)
    estimable = np.zeros(num_classes, dtype=bool)
    implausible = np.zeros(num_classes, dtype=bool)
    for k in range(num_classes):
        unknown = scores[candidate[:, k], k]
        if counts[k] < max(min_positives, 1) or unknown.size == 0 or not math.isfinite(frequency[k]):
            continue
        if label_frequency is None and frequency[k] < min_label_frequency:
            implausible[k] = True
            out["frequency"][k] = frequency[k]
            continue
        estimable[k] = True
        c = min(max(float(frequency[k]), 1e-6), 1.0)
        curve = _pu_curve(positives=np.sort(scores[labelled[:, k], k]), unknown=unknown, label_frequency=c,
                          min_positives=min_positives)
        cut, precision, recall, missing = curve
        out["frequency"][k], out["missing"][k] = c, missing
        # A threshold with fewer than min_positives labelled positives above it is an estimate from noise.
        precision = np.where(recall * counts[k] >= max(min_positives, 1), precision, 0.0)
        best = int(np.flatnonzero(precision == precision.max())[-1])
        out["best_precision"][k], out["best_recall"][k] = precision[best], recall[best]
        qualifying = np.flatnonzero(precision >= target_precision)
        if qualifying.size:
            i = int(qualifying[-1])
        elif fallback is not None:
            reached = np.flatnonzero(cut >= fallback)
            thresholds[k] = fallback
            if reached.size:
                out["precision"][k], out["recall"][k] = precision[reached[-1]], recall[reached[-1]]
            continue
        else:
            continue
        thresholds[k], out["precision"][k], out["recall"][k] = cut[i], precision[i], recall[i]
    return PUReport(thresholds=thresholds, estimated_precision=out["precision"], estimated_recall=out["recall"],
                    best_precision=out["best_precision"], best_recall=out["best_recall"],
                    label_frequency=out["frequency"], labelled=counts, expected_missing=out["missing"],
                    estimable=estimable, implausible=implausible, target_precision=target_precision,
                    min_positives=min_positives)


def _pu_curve(*, positives: np.ndarray, unknown: np.ndarray, label_frequency: float, min_positives: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(thresholds, precision, recall, M) at each distinct unknown score, highest first (module notes).

    ``positives`` must be sorted ascending.
    """
    ordered = np.sort(unknown)
    cut = np.unique(ordered)[::-1]  # distinct unknown scores, highest first
    flagged = (ordered.size - np.searchsorted(ordered, cut, side="left")).astype(np.float64)  # U(t): unknown >= t
    kept = (positives.size - np.searchsorted(positives, cut, side="left")).astype(np.float64)  # #labelled >= t
    share = kept / positives.size
    missing = min(positives.size * (1.0 - label_frequency) / label_frequency,
                  _missing_bound(positives=positives, ordered_unknown=ordered, min_positives=min_positives))
    precision = np.minimum(missing * share / flagged, 1.0)
    return cut, precision, share, missing


def _missing_bound(*, positives: np.ndarray, ordered_unknown: np.ndarray, min_positives: int) -> float:
    """Cap on the missed positives among the unknown cells (module notes).

    At a threshold ``t`` keeping the share ``S`` of labelled positives, SCAR says the unknown cells above
    ``t`` hold ``S M`` missed positives plus some negatives, so ``M <= U(t) / S``. Taken at three fixed
    points (the labelled positives' quartiles, each with at least ``min_positives`` above it), not as a
    minimum over every threshold, which noise would drag far below the truth.
    """
    bound = float(ordered_unknown.size)
    for share in (0.75, 0.5, 0.25):
        index = int(math.floor((1.0 - share) * positives.size))
        kept = positives.size - index
        if kept < max(min_positives, 1):
            continue
        threshold = positives[index]
        s = kept / positives.size
        above = ordered_unknown.size - int(np.searchsorted(ordered_unknown, threshold, side="left"))
        denominator = s - _SLACK_SIGMAS * math.sqrt(s * (1.0 - s) / positives.size)
        if denominator > 0:
            bound = min(bound, (above + _SLACK_SIGMAS * math.sqrt(above + 1.0)) / denominator)
    return bound
