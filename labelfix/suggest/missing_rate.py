"""Estimate the share of validation positives annotators missed, from the positives hidden on purpose.

Why: hide-and-measure (:mod:`~labelfix.suggest.thresholds`) counts val's own missed positives as false
positives, so with no correction its precision is a lower bound and a class can look below target when it is
not. ``--expected-missing-rate`` corrects it, but a user rarely knows the rate; this estimates it from the data.

How: the hidden positives are a uniformly random draw of the labelled ones, so, if annotators miss positives
at random with respect to the model's score (SCAR, as in Elkan & Noto 2008), a missed positive scores like a
hidden one. At a threshold ``t`` the val cells that are unknown (not hidden) and score at least ``t`` are then
``m S(t) + n(t)``, against ``h S(t)`` hidden ones: ``m`` missed positives, ``h`` hidden, ``S(t)`` the share of
positives scoring at least ``t`` and ``n(t) >= 0`` the negatives. Their ratio is ``m / h + n(t) / (h S(t))``:
at least ``m / h``, and close to it where few negatives score that high. So ``m / h`` is estimated by the
smallest ratio over thresholds set at the top quantiles of each class's hidden scores (pooled over classes,
each class at its own thresholds, since scores of different classes are not comparable), with at least
``min_hits`` hidden positives at or above them. This is the mixture-proportion bound of Scott (2015) with the
hidden positives as the positive sample.

Which way it errs: real annotators miss small or unusual objects, which score lower than the random hidden
ones, which makes the estimate low; the minimum over a few thresholds is slightly low on average too. But
negatives among the top-scoring unknown cells push it up, and on a weak model they are many: a fresh test
(FRESH_REPORT5) measured 54-56 % on stores whose val misses 44 %, with "calibrated" classes 45-77 % true at
target 0.9, and on the demo store 24-33 % over 15 seeds (truth 40 %), where one class's precision curve is
so flat near 0.9 that 28 % gave it 293 suggestions at 90 % true and 30 % gave 736 at 77 %. Hence ``suggest``
uses it only on request (``--expected-missing-rate auto``) and files its thresholds as estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

# Top shares of each class's hidden positives at which the ratio is measured: the top quarter holds the fewest
# negatives, the top three quarters the most hits (less noise); the smallest ratio wins.
QUANTILES = (0.25, 0.5)
MIN_HITS = 20  # hidden positives (pooled) at or above the thresholds: fewer, and the ratio is too noisy to use
# A class with fewer hidden positives sets its thresholds too far down its ranking (one hidden positive that
# scores low lets hundreds of negatives in): it is left out of the ratio.
MIN_CLASS_HIDDEN = 5
MAX_RATE = 0.9  # an estimate above this means a model that ranks nothing, not annotators that miss 9 in 10


@dataclass(frozen=True)
class MissingRateEstimate:
    """The estimated missed share of val positives, and the numbers behind it.

    Attributes
    ----------
    rate : float
        Estimated share of all true val positives (labelled + missed) that are missed, in [0, ``MAX_RATE``];
        NaN when not estimable (``reason`` says why).
    missed_per_hidden : float
        ``m / h``: missed val positives per hidden one, the ratio measured; NaN when not estimable.
    hits : int
        Hidden positives at or above the thresholds where the smallest ratio was measured.
    quantile : float
        The top share of each class's hidden positives that set those thresholds; NaN when not estimable.
    reason : str
        In words: the estimate and where it came from, or why there is none.
    """

    rate: float
    missed_per_hidden: float
    hits: int
    quantile: float
    reason: str

    @property
    def estimable(self) -> bool:
        return math.isfinite(self.rate)


def estimate_missing_rate(*, scores: np.ndarray, observed: np.ndarray, hidden: np.ndarray, candidate: np.ndarray,
                          min_hits: int = MIN_HITS, min_class_hidden: int = MIN_CLASS_HIDDEN) -> MissingRateEstimate:
    """Estimate the share of val positives annotators missed, from the unknown cells scoring like hidden ones.

    See the module notes for the estimator (Scott 2015's mixture-proportion bound, hidden positives as the
    positive sample) and which way it errs.

    Parameters
    ----------
    scores : np.ndarray
        float (M, C) scores of the val cells, from a model that did not train on them (NaN: not scored).
    observed : np.ndarray
        bool (M, C) labelled positives before hiding (the hidden ones included).
    hidden : np.ndarray
        bool (M, C) the positives hidden on purpose (a uniformly random draw of ``observed``).
    candidate : np.ndarray
        bool (M, C) cells that could be missed positives: unknown or hidden (verified negatives excluded).
    min_hits : int
        Fewest pooled hidden positives at or above the thresholds for a ratio to count.

    Returns
    -------
    MissingRateEstimate
        ``rate`` is NaN with the reason in words when fewer than ``min_hits`` hidden positives could be used.

    Raises
    ------
    ValueError
        If the arrays are not of one (M, C) shape.

    Examples
    --------
    One class, 40 positives of which 10 were hidden; 10 more missed by the annotators score like them, and 60
    negatives score low. The ratio at the top is 10 missed per 10 hidden: 10 missed of 50 positives, 20 %.

    >>> pos = np.linspace(0.6, 0.99, 10)
    >>> scores = np.concatenate([pos, pos, pos, pos, pos + 0.001, np.full(60, 0.1)])[:, None]
    >>> observed = np.zeros((110, 1), bool); observed[:40] = True
    >>> hidden = np.zeros((110, 1), bool); hidden[30:40] = True
    >>> candidate = ~observed | hidden
    >>> estimate = estimate_missing_rate(scores=scores, observed=observed, hidden=hidden, candidate=candidate,
    ...                                  min_hits=5)
    >>> round(estimate.missed_per_hidden, 2), round(estimate.rate, 2)
    (1.0, 0.2)
    """
    scores = np.asarray(scores, dtype=np.float64)
    observed, hidden, candidate = (np.asarray(a, dtype=bool) for a in (observed, hidden, candidate))
    if scores.ndim != 2 or not scores.shape == observed.shape == hidden.shape == candidate.shape:
        raise ValueError(f"scores, observed, hidden and candidate must be (M, C) arrays of one shape, got "
                         f"{scores.shape}, {observed.shape}, {hidden.shape} and {candidate.shape}")
    scored = ~np.isnan(scores)
    hidden, unknown = hidden & scored, candidate & ~hidden & ~observed & scored
    # Per counted class: its hidden positives' scores, highest first, and its unknown cells' scores (once, not per
    # quantile).
    classes = [(np.sort(scores[hidden[:, k], k])[::-1], scores[unknown[:, k], k])
               for k in np.flatnonzero(hidden.sum(axis=0) >= max(min_class_hidden, 1))]
    best: tuple[float, int, float] | None = None
    most_hits = 0
    for quantile in QUANTILES:
        hits = others = 0
        for hidden_scores, unknown_scores in classes:
            # The threshold keeps the top `quantile` share of the class's hidden positives (at least one).
            threshold = hidden_scores[max(int(math.ceil(quantile * hidden_scores.size)), 1) - 1]
            hits += int((hidden_scores >= threshold).sum())
            others += int((unknown_scores >= threshold).sum())
        most_hits = max(most_hits, hits)
        if hits >= max(min_hits, 1) and (best is None or others / hits < best[0]):
            best = (others / hits, hits, quantile)
    total_hidden = int(hidden.sum())
    if best is None:
        return MissingRateEstimate(
            rate=math.nan, missed_per_hidden=math.nan, hits=0, quantile=math.nan,
            reason=(f"val's missed positives could not be estimated: of the {total_hidden} hidden val positive(s), "
                    f"{most_hits} are in classes with at least {max(min_class_hidden, 1)} hidden and in the top "
                    f"{max(QUANTILES):.0%} of their class's hidden ones, fewer than the {max(min_hits, 1)} the "
                    "estimate needs"))
    ratio, hits, quantile = best
    missed = ratio * total_hidden
    labelled = int((observed & scored).sum())
    rate = min(missed / (labelled + missed), MAX_RATE) if labelled + missed > 0 else 0.0
    capped = " (capped)" if rate == MAX_RATE else ""
    return MissingRateEstimate(
        rate=float(rate), missed_per_hidden=float(ratio), hits=hits, quantile=quantile,
        reason=(f"about {rate:.0%} of val's positives look missed by the annotators{capped} (an estimate, "
                f"--expected-missing-rate auto): {ratio:.2f} unknown val "
                f"cells per hidden positive score like the top {quantile:.0%} of the hidden ones ({hits} hidden); "
                "the precision below is corrected with it (--expected-missing-rate R sets a rate you know)"))


AUTO: Literal["auto"] = "auto"  # the expected_missing_rate setting that asks for estimate_missing_rate
MissingRate = float | Literal["auto"]


def resolve_missing_rate(expected_missing_rate: MissingRate, *, scores: np.ndarray, observed: np.ndarray,
                         hidden: np.ndarray, candidate: np.ndarray) -> tuple[float, str | None]:
    """The miss rate to correct hide-and-measure with, and the words saying where it came from.

    A number is used as given (words for a rate above 0). ``"auto"``: :func:`estimate_missing_rate` on the same val cells; where
    it is not estimable, 0 (every unknown val cell counts as a false positive, a conservative precision), and the
    words say so. Arrays as :func:`estimate_missing_rate`.

    Examples
    --------
    >>> resolve_missing_rate(0.3, scores=np.zeros((2, 1)), observed=np.ones((2, 1), bool),
    ...                      hidden=np.zeros((2, 1), bool), candidate=np.zeros((2, 1), bool))
    (0.3, "the precision is corrected for val's own missed positives with the miss rate given, 30% (--expected-missing-rate 0.3)")
    >>> rate, words = resolve_missing_rate("auto", scores=np.zeros((2, 1)), observed=np.ones((2, 1), bool),
    ...                                    hidden=np.zeros((2, 1), bool), candidate=np.zeros((2, 1), bool))
    >>> rate, words[:50]
    (0.0, "val's missed positives could not be estimated: of ")
    """
    if expected_missing_rate != AUTO:
        rate = float(expected_missing_rate)
        return rate, (None if rate == 0 else f"the precision is corrected for val's own missed positives with the "
                      f"miss rate given, {rate:.0%} (--expected-missing-rate {rate:g})")
    estimate = estimate_missing_rate(scores=scores, observed=observed, hidden=hidden, candidate=candidate)
    if estimate.estimable:
        return estimate.rate, estimate.reason
    return 0.0, (f"{estimate.reason}, so every unknown val cell counts as a false positive: the precision measured "
                 "is a lower bound (--expected-missing-rate R sets a rate you know)")
