"""Choose, per class, how its threshold is calibrated on validation, and say why in words (arrays only).

Three methods, tried in this order:

1. ``hide-and-measure`` (:mod:`~labelfix.suggest.thresholds`): the class has at least ``min_support``
   hidden validation positives and gets its own threshold; a class with fewer (but some) hidden uses
   the pooled threshold of all classes, as before.
2. ``pu`` (:mod:`~labelfix.suggest.pu`): no validation positive of the class could be hidden (one label
   per image, a one-class dataset), or it has too few hidden and the pooled target is unreachable, but
   it has at least ``min_support`` labelled validation positives: the Elkan & Noto correction.
3. ``uncalibrated``: no estimate is possible (no validation positives, or too few for either method):
   the class still gets a ranked list of its ``top_k`` best-scoring unknown train cells, marked
   ``calibrated = false``; their precision is unknown.

Before all three: a class with no train positives (``train_positives`` 0) was not learned -- the model
had nothing to learn it from, so its scores rank nothing. It gets no threshold and no ranked list
(source ``no-train-positives``), and the reason in words.

A method that yields an estimate saying the target is unreachable keeps that answer (with the best
precision it found, in words) rather than falling through to another method: the estimate *is* the answer.
The class still gets a short ranked list, marked ``below target`` (``calibrated = false`` on its rows, like
an uncalibrated list, so never auto-accepted and queued after calibrated items): its ``below_target_k``
best unknown train cells, ``k`` bounded by the class's expected missing count (from the PU estimate's
missed positives per labelled one, times the class's train positives) and a small cap. A reviewer then
sees the best the model has for every class instead of nothing; the note says it is below the target
precision and by how much. The same list goes to a class whose threshold is reachable on validation
but that no unknown train cell reaches (``labelfix suggest`` finds that out on the train split).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from labelfix.internal.json_values import finite_floats
from labelfix.internal.words import counted
from labelfix.suggest.pu import PUReport, pu_thresholds_for_precision
from labelfix.suggest.thresholds import MIN_HITS, ThresholdReport, corrected_precision, thresholds_for_precision

HIDE, PU, UNCALIBRATED = "hide-and-measure", "pu", "uncalibrated"
PU_IMPLAUSIBLE = "pu-implausible"  # a PU estimate refused by a plausibility guard (_pu_implausible): ranked list
# Guards on a PU threshold, checked on the class's unknown val cells (why: a fresh test where the e1 estimate
# of c was far too low and claimed precision 0.92 at a true 0.27): a threshold flagging more than one share of
# them, or an estimate putting more missed positives than the other among them, is refused (a below-target
# ranked list, with the reason in words).
# Missed positives can truly be half the unknown cells (single-positive data with two labels per image, where a
# correct PU threshold flags 59 % of them), so: more than 3 in 4 flagged, or more than 0.6 of them claimed missed
# (the fresh test's c = 0.17 class claimed 0.62, truth 0.19; its c = 0.28 class flagged 26 of 30).
PU_MAX_FLAGGED_SHARE, PU_MAX_MISSING_SHARE = 0.75, 0.6
# A class with fewer train positives than this is too weakly trained to learn: its scores say little. Its ranked
# list is cut to WEAK_CLASS_TOP_K cells -- enough for a reviewer to see what the model makes of it, not the 20
# near-certainly-wrong cells a fresh test found (classes with 1-2 train positives: 20 cells each, none right).
FEW_TRAIN_POSITIVES = 5
WEAK_CLASS_TOP_K = 3
NOT_LEARNED = "no-train-positives"  # the source of a class with no train positives (method uncalibrated)
NOT_LEARNED_NOTE = ("no train positives: nothing to learn from, so no suggestions (label a few train images "
                    "with this class and train again)")


@dataclass(frozen=True)
class ClassCalibration:
    """Each class's calibration method, threshold, estimates and the reason in words; arrays are (C,).

    Attributes
    ----------
    method : np.ndarray
        str: ``hide-and-measure``, ``pu`` or ``uncalibrated``.
    source : np.ndarray
        str, finer: ``class``, ``pooled``, ``fallback``, ``unreachable`` (hide-and-measure),
        ``pu``, ``pu-fallback``, ``pu-unreachable``, ``uncalibrated``, ``no-train-positives`` (no list).
    thresholds : np.ndarray
        Calibrated threshold; ``inf`` flags nothing (also for uncalibrated classes, ranked by ``top_k``).
    calibrated : np.ndarray
        bool, False for uncalibrated classes.
    estimated_precision, estimated_recall : np.ndarray
        On validation at the threshold; NaN where unknown.
    notes : list[str]
        Why the class got this threshold (or none), in words.
    top_k : int
        Length of an uncalibrated class's ranked list.
    below_target : np.ndarray
        bool: the class was calibrated, but no threshold reaches the target precision on validation (and
        there is no fallback); it gets a ranked list of ``below_target_k`` cells.
    below_target_k : np.ndarray
        int, the length of the class's list should its suggestions fall below the target (``below_target``,
        or no train cell reaching its threshold): at most the cap and the expected missing count; 0 for a
        class that was not learned or a cap of 0.
    expected_missing : np.ndarray
        Expected missed positives among the searched (train) cells, from the PU estimate; NaN where unknown.
    weakly_trained : np.ndarray
        bool: fewer than ``FEW_TRAIN_POSITIVES`` train positives (but some): its ranked list has at most
        ``WEAK_CLASS_TOP_K`` cells.
    """

    method: np.ndarray
    source: np.ndarray
    thresholds: np.ndarray
    calibrated: np.ndarray
    estimated_precision: np.ndarray
    estimated_recall: np.ndarray
    notes: list[str]
    top_k: int
    val_positives: np.ndarray
    hidden: np.ndarray
    hide: ThresholdReport
    pu: PUReport
    below_target: np.ndarray
    below_target_k: np.ndarray
    expected_missing: np.ndarray
    weakly_trained: np.ndarray
    # The miss rate of val's own positives the precision was corrected with (0: none), and whether it was
    # estimated (``expected_missing_rate="auto"``) rather than given: then no threshold is a pure measurement.
    missing_rate: float = 0.0
    missing_rate_estimated: bool = False

    @property
    def ranked(self) -> np.ndarray:
        """(C,) bool: the classes that get a ranked list, uncalibrated or below target (not those with no train
        positives); their rows are ``calibrated = false``."""
        return (~self.calibrated & (self.source != NOT_LEARNED)) | self.below_target

    @property
    def measured(self) -> np.ndarray:
        """(C,) bool: calibrated by hide-and-measure, the only method whose precision is measured on known
        positives; a PU threshold's precision is an estimate from assumptions (SCAR, e1), so its suggestions
        are not auto-accepted unless the caller opts in. A hide-and-measure threshold corrected with an estimated
        miss rate (``missing_rate_estimated``) rests on that estimate too, so it is not counted as measured."""
        return self.calibrated & (self.method == HIDE) & ~self.below_target & (not self.missing_rate_estimated)

    @property
    def list_lengths(self) -> np.ndarray:
        """(C,) int: the length of each ranked class's list (``top_k`` or ``below_target_k``, at most
        ``WEAK_CLASS_TOP_K`` for a weakly trained class); 0 elsewhere."""
        lengths = np.where(self.below_target, self.below_target_k, np.where(self.ranked, self.top_k, 0))
        return np.where(self.weakly_trained, np.minimum(lengths, WEAK_CLASS_TOP_K), lengths).astype(np.int64)

    def threshold_report(self) -> ThresholdReport:
        """The thresholds actually used, as a :class:`ThresholdReport` (``source`` as here)."""
        h = self.hide
        return ThresholdReport(thresholds=self.thresholds, estimated_precision=self.estimated_precision,
                               estimated_recall=self.estimated_recall, support=h.support, pooled=h.pooled & (
                                   self.source == "pooled"), source=self.source, pooled_threshold=h.pooled_threshold,
                               pooled_precision=h.pooled_precision, pooled_recall=h.pooled_recall,
                               target_precision=h.target_precision, min_support=h.min_support)

    def to_dict(self) -> dict:
        """JSON-friendly (NaN and infinity as None)."""
        return {"method": [str(v) for v in self.method], "source": [str(v) for v in self.source],
                "calibrated": [bool(v) for v in self.calibrated], "top_k": int(self.top_k),
                "val_positives": [int(v) for v in self.val_positives], "hidden": [int(v) for v in self.hidden],
                "label_frequency": finite_floats(self.pu.label_frequency), "notes": list(self.notes),
                "below_target": [bool(v) for v in self.below_target],
                "below_target_k": [int(v) for v in self.below_target_k],
                "expected_missing": finite_floats(self.expected_missing),
                "weakly_trained": [bool(v) for v in self.weakly_trained],
                "pu": self.pu.to_dict()}


def calibrate_classes(
    *,
    scores: np.ndarray,
    observed: np.ndarray,
    hidden: np.ndarray,
    candidate: np.ndarray,
    target_precision: float = 0.9,
    min_support: int = 5,
    fallback: float | None = None,
    unseen_positive_ratio: float | np.ndarray = 0.0,
    label_frequency: float | None = None,
    top_k: int = 20,
    train_positives: np.ndarray | None = None,
    below_target_top_k: int = 10,
    searched_positives: np.ndarray | None = None,
    found_positives: np.ndarray | None = None,
) -> ClassCalibration:
    """Calibrate every class with the first method that applies (module notes).

    Parameters
    ----------
    scores : np.ndarray
        (N, C) validation scores (no NaN).
    observed : np.ndarray
        (N, C) bool, labelled validation positives *before* hiding.
    hidden : np.ndarray
        (N, C) bool, the positives hidden on purpose (may be all False).
    candidate : np.ndarray
        (N, C) bool, unknown cells after hiding (so including ``hidden``).
    target_precision, min_support, fallback, unseen_positive_ratio
        As :func:`~labelfix.suggest.thresholds.thresholds_for_precision`; ``min_support`` is also the
        labelled positives a PU estimate needs.
    label_frequency : float, optional
        Known share of positives labelled (``1 -`` expected miss rate) for the PU estimate; default e1.
    top_k : int
        Ranked list length of an uncalibrated class (0: none).
    train_positives : np.ndarray, optional
        (C,) positive labels per class on the train split; a class with 0 gets neither a threshold nor a
        ranked list (it was not learned), one with fewer than ``FEW_TRAIN_POSITIVES`` a ranked list of at most
        ``WEAK_CLASS_TOP_K`` cells. ``None``: not known, every class is calibrated as above.
    below_target_top_k : int
        Cap on the ranked list of a class below the target precision (module notes; 0: none).
    searched_positives : np.ndarray, optional
        (C,) labelled positives among the cells searched for missing labels, to bound that list by the
        class's expected missing count; default ``train_positives``; neither: the cap alone. Pass the
        annotator's (original) positives, so accepting suggestions does not raise the count.
    found_positives : np.ndarray, optional
        (C,) positives added since (accepted, auto-accepted, manual): missed labels already found, subtracted
        from the expected missing count (never below 0).

    Returns
    -------
    ClassCalibration

    Examples
    --------
    One class, single-positive: nothing can be hidden, so the PU estimate decides.

    >>> scores = np.array([[0.5]] * 8 + [[0.1]] * 4)
    >>> observed = np.array([[True]] * 4 + [[False]] * 8)
    >>> result = calibrate_classes(scores=scores, observed=observed, hidden=np.zeros_like(observed),
    ...                            candidate=~observed, min_support=2)
    >>> result.method.tolist(), result.thresholds.tolist(), result.calibrated.tolist()
    (['pu'], [0.5], [True])

    A class with no train positives was not learned: no threshold, no ranked list.

    >>> result = calibrate_classes(scores=scores, observed=observed, hidden=np.zeros_like(observed),
    ...                            candidate=~observed, min_support=2, train_positives=np.array([0]))
    >>> result.source.tolist(), result.ranked.tolist(), result.notes[0][:48]
    (['no-train-positives'], [False], 'no train positives: nothing to learn from, so no')

    Negatives score like positives: precision 0.9 is out of reach, so the class gets a short ranked list,
    bounded by its expected missing count: the labelled positives score 0.9, so c = 0.9 and the 20 train
    positives stand for about 20 x 0.1 / 0.9 = 2.2 missed: 3 cells.

    >>> scores = np.array([[0.9]] * 4 + [[0.9]] * 4 + [[0.9]] * 4 + [[0.1]] * 4)
    >>> observed = np.array([[True]] * 4 + [[False]] * 12)
    >>> result = calibrate_classes(scores=scores, observed=observed, hidden=np.zeros_like(observed),
    ...                            candidate=~observed, min_support=2, train_positives=np.array([20]),
    ...                            below_target_top_k=50)
    >>> result.source.tolist(), result.below_target.tolist(), result.list_lengths.tolist()
    (['pu-unreachable'], [True], [3])
    >>> result.notes[0][:70]
    'below target precision: ranked only, best precision on validation 0.06'
    """
    scores = np.asarray(scores, dtype=np.float64)
    observed, hidden = np.asarray(observed, dtype=bool), np.asarray(hidden, dtype=bool)
    candidate = np.asarray(candidate, dtype=bool)
    hide = thresholds_for_precision(scores=scores, hidden=hidden, candidate=candidate,
                                    target_precision=target_precision, min_support=min_support, fallback=fallback,
                                    unseen_positive_ratio=unseen_positive_ratio)
    pu = pu_thresholds_for_precision(scores=scores, labelled=observed, candidate=candidate & ~hidden,
                                     target_precision=target_precision, min_positives=min_support,
                                     label_frequency=label_frequency, fallback=fallback)
    num_classes = scores.shape[1]
    ratios = np.broadcast_to(np.asarray(unseen_positive_ratio, dtype=np.float64), (num_classes,))
    val_positives, n_hidden = observed.sum(axis=0).astype(np.int64), hidden.sum(axis=0).astype(np.int64)
    method = np.empty(num_classes, dtype=object)
    source = np.empty(num_classes, dtype=object)
    thresholds = np.full(num_classes, np.inf)
    precision, recall = np.full(num_classes, np.nan), np.full(num_classes, np.nan)
    notes = []
    learned = (np.ones(num_classes, dtype=bool) if train_positives is None else
               np.asarray(train_positives).reshape(num_classes) > 0)
    searched = searched_positives if searched_positives is not None else train_positives
    expected, list_k = _below_target_lengths(pu, searched=searched, cap=below_target_top_k, learned=learned,
                                             found=found_positives)
    weak = learned & (np.zeros(num_classes, dtype=bool) if train_positives is None else
                      np.asarray(train_positives).reshape(num_classes) < FEW_TRAIN_POSITIVES)
    list_k = np.where(weak, np.minimum(list_k, WEAK_CLASS_TOP_K), list_k)
    below = np.zeros(num_classes, dtype=bool)
    for k in range(num_classes):
        if not learned[k]:
            method[k], source[k] = UNCALIBRATED, NOT_LEARNED
            notes.append(NOT_LEARNED_NOTE)
            continue
        own, some_hidden = n_hidden[k] >= max(min_support, 1), n_hidden[k] > 0
        pooled_ok = some_hidden and hide.source[k] in ("pooled", "fallback")
        if own or pooled_ok:
            method[k], source[k] = HIDE, hide.source[k]
            thresholds[k], precision[k], recall[k] = hide.thresholds[k], hide.estimated_precision[k], \
                hide.estimated_recall[k]
            below[k] = hide.source[k] == "unreachable"
            notes.append(_hide_note(hide, k, val_positives[k], target_precision, min_support, scores=scores,
                                    hidden=hidden, candidate=candidate, ratio=float(ratios[k]),
                                    ranked=ranked_list_words(int(list_k[k]), expected[k], weak=bool(weak[k]))))
        elif pu.estimable[k]:
            method[k] = PU
            source[k] = "pu" if pu.estimated_precision[k] >= target_precision else (
                "pu-fallback" if math.isfinite(pu.thresholds[k]) else "pu-unreachable")
            refused = _pu_implausible(pu, k, unknown=scores[candidate[:, k] & ~hidden[:, k], k],
                                      labelled=scores[observed[:, k], k])
            if refused:
                # The estimate contradicts what val can support: no threshold, a ranked list bounded by the cap
                # alone (the estimate's missing count is the implausible part).
                source[k], below[k], expected[k] = PU_IMPLAUSIBLE, True, math.nan
                list_k[k] = max(below_target_top_k, 1) if below_target_top_k > 0 else 0
                list_k[k] = min(list_k[k], WEAK_CLASS_TOP_K) if weak[k] else list_k[k]
                notes.append(_pu_refused_note(pu, k, n_hidden[k], target_precision, min_support, refused,
                                              ranked=ranked_list_words(int(list_k[k]), expected[k],
                                                                       weak=bool(weak[k]))))
                continue
            thresholds[k], precision[k], recall[k] = pu.thresholds[k], pu.estimated_precision[k], \
                pu.estimated_recall[k]
            below[k] = source[k] == "pu-unreachable"
            notes.append(_pu_note(pu, k, n_hidden[k], target_precision, min_support,
                                  ranked=ranked_list_words(int(list_k[k]), expected[k], weak=bool(weak[k]))))
        else:
            method[k], source[k] = UNCALIBRATED, UNCALIBRATED
            notes.append(_uncalibrated_note(val_positives[k], n_hidden[k], min_support,
                                            min(top_k, WEAK_CLASS_TOP_K) if weak[k] else top_k,
                                            weakly_trained=bool(weak[k]),
                                            pool_unreachable=some_hidden,
                                            weak=float(pu.label_frequency[k]) if pu.implausible[k] else None))
    return ClassCalibration(method=method.astype(str), source=source.astype(str), thresholds=thresholds,
                            calibrated=method != UNCALIBRATED, estimated_precision=precision,
                            estimated_recall=recall, notes=notes, top_k=top_k, val_positives=val_positives,
                            hidden=n_hidden, hide=hide, pu=pu, below_target=below, below_target_k=list_k,
                            expected_missing=expected, weakly_trained=weak)


def _below_target_lengths(pu: PUReport, *, searched: np.ndarray | None, cap: int, learned: np.ndarray,
                          found: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(expected missed positives among the searched cells, list length) per class.

    The PU estimate's missed positives per labelled one on validation (after its cap) times the class's
    labelled positives among the searched cells; the list is at least one cell (a reviewer sees the class's
    best candidate) and at most ``cap``. Where the estimate is not possible, the cap alone.
    """
    num_classes = pu.labelled.shape[0]
    expected = np.full(num_classes, np.nan)
    if searched is not None:
        per_labelled = np.divide(pu.expected_missing, pu.labelled, out=np.full(num_classes, np.nan),
                                 where=pu.estimable & (pu.labelled > 0))
        expected = np.asarray(searched, dtype=np.float64).reshape(num_classes) * per_labelled
        if found is not None:
            expected = np.maximum(expected - np.asarray(found, dtype=np.float64).reshape(num_classes), 0.0)
    bound = np.where(np.isfinite(expected), np.ceil(np.nan_to_num(expected, nan=0.0)), cap)
    lengths = np.where(learned & (cap > 0), np.clip(bound, 1, max(cap, 1)), 0).astype(np.int64)
    return expected, lengths


# -- the reasons, in words ----------------------------------------------------------------------------------
def ranked_list_words(k: int, expected: float, *, weak: bool = False) -> str:
    """How long a below-target list is and why, in words (``weak``: cut short, the class is too weakly trained)."""
    if k == 0:
        return "no ranked list (its length is 0)"
    bound = (f", about {expected:.0f} expected missing among its unknown train cells (PU estimate)"
             if math.isfinite(expected) else "")
    return f"its top {counted(k, 'unknown train cell')}{bound}{WEAK_LIST_WORDS if weak else ''}, NOT calibrated"


WEAK_LIST_WORDS = (f" (at most {WEAK_CLASS_TOP_K}: with fewer than {FEW_TRAIN_POSITIVES} train positives the class "
                   f"is too weakly trained for a longer list to hold real missing labels)")


def unreached_note(val_note: str, *, unknown: int, threshold: float, k: int, weak: bool = False) -> str:
    """The words of a class that reached the target precision on validation but whose threshold no unknown
    train cell reaches: not "below target" -- the model finds nothing that confident -- so a ranked list
    (``weak``: cut short, the class is too weakly trained)."""
    cut = WEAK_LIST_WORDS if weak else ""
    listed = (f"its top {counted(k, 'unknown train cell')}{cut} as a ranked list, NOT calibrated" if k else
              "no ranked list")
    return (f"target reached on validation, but no unknown train cell (of {unknown}) scores at or above the "
            f"threshold {threshold:.3f}: {listed} ({val_note})")


def below_target_note(*, best_precision: float, detail: str, ranked: str) -> str:
    """The words of a class whose suggestions are a below-target ranked list (``best_precision`` may be NaN)."""
    best = "" if not math.isfinite(best_precision) else f", best precision on validation {best_precision:.2f}"
    return f"below target precision: ranked only{best} ({detail}): {ranked}"


def _hide_note(hide: ThresholdReport, k: int, positives: int, target: float, min_support: int, *,
               scores: np.ndarray, hidden: np.ndarray, candidate: np.ndarray, ratio: float, ranked: str) -> str:
    support = int(hide.support[k])
    what = f"hide-and-measure ({support} of {counted(positives, 'validation positive')} hidden)"
    if hide.source[k] == "pooled":
        total = int(hide.support.sum())
        hits = int(round(hide.pooled_recall * total))
        return (f"only {counted(support, 'validation positive')} could be hidden (fewer than {min_support}): pooled "
                f"threshold of all classes, {hits} of the {counted(total, 'hidden val positive')} (all classes) "
                f"score at or above it, estimated precision {hide.estimated_precision[k]:.2f}")
    if hide.source[k] == "class":
        hits = int(round(hide.estimated_recall[k] * support))
        return (f"{what}: {hits} of {counted(support, 'hidden val positive')} score at or above the threshold, "
                f"estimated precision {hide.estimated_precision[k]:.2f}")
    min_hits = min(MIN_HITS, max(min_support, 1))
    best_precision, best_recall = _best_point(scores[candidate[:, k], k], hidden[candidate[:, k], k], ratio,
                                            min_hits)
    hits = 0 if not math.isfinite(best_recall) else int(round(best_recall * support))
    best = f"{hits} of {counted(support, 'hidden val positive')} at or above its best threshold"
    if math.isfinite(best_precision) and best_precision >= target and hits < min_hits:
        best += f" (fewer than the {min_hits} a measured threshold needs)"
    if hide.source[k] == "fallback":
        best = f"best precision {_fmt(best_precision)}, {best}"
        return (f"threshold for precision {target} not reachable on validation ({what}; {best}): fallback threshold "
                f"{hide.thresholds[k]:.3f}, estimated precision {_fmt(hide.estimated_precision[k])}")
    return below_target_note(best_precision=best_precision, detail=f"{best}; threshold for "
                             f"precision {target} not reachable on validation; {what}", ranked=ranked)


def _pu_note(pu: PUReport, k: int, hidden: int, target: float, min_support: int, *, ranked: str) -> str:
    why = ("none of its validation positives could be hidden" if hidden == 0 else
           f"only {counted(hidden, 'validation positive')} could be hidden (fewer than {min_support}) and the pooled "
           f"threshold does not reach precision {target}")
    what = _pu_words(pu, k)
    if pu.estimated_precision[k] >= target:
        return (f"{why}: {what}; PU-estimated precision {pu.estimated_precision[k]:.2f} at recall "
                f"{pu.estimated_recall[k]:.2f} ({PU_CAVEAT})")
    best = f"best precision {pu.best_precision[k]:.2f} at recall {pu.best_recall[k]:.2f}"
    if math.isfinite(pu.thresholds[k]):
        return (f"threshold for precision {target} not reachable on validation ({what}; {best}): fallback "
                f"threshold {pu.thresholds[k]:.3f}, estimated precision {_fmt(pu.estimated_precision[k])}")
    return below_target_note(best_precision=float(pu.best_precision[k]),
                             detail=f"at recall {pu.best_recall[k]:.2f}; threshold for precision {target} not "
                             f"reachable on validation; {why}; {what}", ranked=ranked)


PU_CAVEAT = ("an estimate, not measured: it assumes labelled positives are a random sample of all and is often "
             "optimistic on a weak model, so these suggestions are never auto-accepted by default")


def _pu_words(pu: PUReport, k: int) -> str:
    return (f"PU estimate (Elkan & Noto) from {counted(int(pu.labelled[k]), 'labelled validation positive')}, "
            f"label frequency c = {pu.label_frequency[k]:.2f}, about {pu.expected_missing[k]:.0f} missed on val")


def _pu_implausible(pu: PUReport, k: int, *, unknown: np.ndarray, labelled: np.ndarray) -> str:
    """Why the class's PU threshold is not believable, in words ("" when it passes the guards).

    ``unknown``: the class's unknown val scores (the cells the estimate spreads its missed positives over);
    ``labelled``: its labelled val positives' scores.
    """
    if not math.isfinite(pu.thresholds[k]) or unknown.size == 0:
        return ""
    reasons = []
    flagged = int(np.count_nonzero(unknown >= pu.thresholds[k]))
    if flagged > PU_MAX_FLAGGED_SHARE * unknown.size:
        low = (f", below every labelled val positive's score (recall {pu.estimated_recall[k]:.2f})"
               if labelled.size and pu.thresholds[k] < labelled.min() else "")
        reasons.append(f"its threshold {pu.thresholds[k]:.3f}{low} flags {flagged} of the {unknown.size} unknown "
                       f"val cells")
    if pu.expected_missing[k] > PU_MAX_MISSING_SHARE * unknown.size:
        reasons.append(f"it puts {pu.expected_missing[k]:.0f} missed positives among {unknown.size} unknown val "
                       f"cells (c = {pu.label_frequency[k]:.2f} is more likely too low)")
    return "; ".join(reasons)


def _pu_refused_note(pu: PUReport, k: int, hidden: int, target: float, min_support: int, refused: str, *,
                     ranked: str) -> str:
    why = ("none of its validation positives could be hidden" if hidden == 0 else
           f"only {counted(hidden, 'validation positive')} could be hidden (fewer than {min_support})")
    return below_target_note(best_precision=math.nan, detail=(
        f"{why}; the {_pu_words(pu, k)} claims precision {_fmt(pu.estimated_precision[k])}, but the claim is "
        f"implausible: {refused}; precision unknown, more labelled val images would let hide-and-measure "
        f"measure it"), ranked=ranked)


def _uncalibrated_note(positives: int, hidden: int, min_support: int, top_k: int, *, pool_unreachable: bool,
                       weak: float | None, weakly_trained: bool = False) -> str:
    cut = WEAK_LIST_WORDS if weakly_trained else ""
    ranked = f"ranked list of top {top_k}{cut}, not calibrated" if top_k > 0 else "no ranked list (top-k is 0)"
    if positives == 0:
        return f"no validation positives: {ranked}"
    if weak is not None:
        return (f"the model scores its {counted(positives, 'labelled validation positive')} {weak:.2f} on average, "
                f"too low for "
                f"a PU estimate (it would mean {1 / max(weak, 1e-6) - 1:.0f} missed per labelled one; more likely "
                f"the class is not learned): {ranked}")
    if pool_unreachable:
        return (f"only {counted(hidden, 'validation positive')} could be hidden (fewer than {min_support}), no pooled "
                f"threshold reaches the target precision with {min(MIN_HITS, max(min_support, 1))} hidden val "
                f"positives at or above it, "
                f"and {counted(positives, 'labelled validation positive')} {'is' if positives == 1 else 'are'} too few "
                f"for a PU estimate (needs "
                f"{min_support}): {ranked}")
    return (f"only {counted(positives, 'labelled validation positive')}, none hidden (hide-and-measure and a PU "
            f"estimate need {min_support}): {ranked}")


def _best_point(scores: np.ndarray, targets: np.ndarray, ratio: float, min_hits: int = 1) -> tuple[float, float]:
    """(precision, recall) at the threshold with the highest precision (the lowest such one); NaN if no positive.

    ``ratio``: unseen positives per hidden one, as in ``thresholds_for_precision``.
    """
    if not targets.any():
        return math.nan, math.nan
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(targets[order])
    precision = corrected_precision(hits=hits, flagged=np.arange(1, hits.size + 1), ratio=ratio)
    # Only positions ending a run of tied scores are real thresholds.
    ends = np.append(np.flatnonzero(scores[order][1:] != scores[order][:-1]), hits.size - 1)
    # Prefer points with at least min_hits hidden positives above them (fewer say nothing about precision).
    supported = ends[hits[ends] >= max(min_hits, 1)]
    ends = supported if supported.size else ends
    best = ends[np.flatnonzero(precision[ends] == precision[ends].max())[-1]]
    return float(precision[best]), float(hits[best] / hits[-1])


def _fmt(value: float) -> str:
    return "unknown" if not math.isfinite(value) else f"{value:.2f}"
