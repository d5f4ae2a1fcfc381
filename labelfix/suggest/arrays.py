"""Missing labels from arrays alone: the thresholds of ``labelfix suggest`` without a store.

:func:`calibrate_validation` is the one place that turns validation label states and scores into
per-class thresholds, choosing each class's method as :mod:`labelfix.suggest.calibration` does
(hide-and-measure, the PU estimate, or an uncalibrated ranked list; no suggestions for a class with no
train positives); :func:`labelfix.suggest.run.suggest` calls it on the store's val split and
:func:`find_missing_labels` on the arrays a caller passes. So both choose the same thresholds from
the same numbers (the module notes of :mod:`labelfix.suggest.run` explain the estimate).
:func:`validation_thresholds` is hide-and-measure alone.

This module needs numpy only (no DuckDB, pandas or pyarrow), in the spirit of cleanlab's
``find_label_issues(labels, pred_probs)``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from labelfix.internal.words import counted
from labelfix.states import NEGATIVE, POSITIVE, UNKNOWN
from labelfix.suggest.calibration import ClassCalibration, calibrate_classes, unreached_note
from labelfix.suggest.missing_rate import AUTO, MissingRate, resolve_missing_rate
from labelfix.suggest.thresholds import (
    ThresholdReport,
    simulate_validation_hiding,
    thresholds_for_precision,
    unseen_positive_ratio_for,
)

# The rows find_missing_labels returns: row index, column index, score, and whether a threshold was calibrated
# (False: a row of an uncalibrated class's ranked list, precision unknown).
MISSING_LABEL_DTYPE = np.dtype([("image", np.int64), ("class", np.int64), ("score", np.float64),
                                ("calibrated", np.bool_)])


def validation_thresholds(
    *,
    states: np.ndarray,
    scores: np.ndarray,
    target_precision: float = 0.9,
    hide_fraction: float = 0.4,
    expected_missing_rate: MissingRate = 0.0,
    min_support: int = 5,
    fallback: float | None = None,
    seed: int = 0,
) -> ThresholdReport:
    """Per-class thresholds from validation cells, with a known share of their positives hidden.

    ``hide_fraction`` of the positives are hidden (:func:`~labelfix.suggest.thresholds.simulate_validation_hiding`,
    ``seed``); per class, the lowest score threshold whose precision among the unknown-plus-hidden
    cells reaches ``target_precision`` is chosen (:func:`~labelfix.suggest.thresholds.thresholds_for_precision`).
    NaN scores (images that could not be scored) are left out of the estimate.

    Parameters
    ----------
    states : np.ndarray
        int [M, C] label states of the validation images (1 positive, 0 unknown, -1 negative).
    scores : np.ndarray
        float [M, C] model scores of the same cells, from a model that did not train on them.
    target_precision, hide_fraction, expected_missing_rate, min_support, fallback, seed
        As :class:`~labelfix.suggest.run.SuggestConfig`'s ``target_precision``, ``val_hide_fraction``,
        ``expected_missing_rate``, ``min_support``, ``threshold_fallback`` and ``seed``.

    Returns
    -------
    ThresholdReport
        ``thresholds`` [C] and the estimated precision and recall per class.

    Raises
    ------
    ValueError
        If ``states`` holds no positive label (there is nothing to hide), or on bad shapes or settings.

    Examples
    --------
    Two of the six positives are hidden, both of class 0; class 1 has none, so it takes the pooled threshold:

    >>> states = np.array([[1, 1], [1, 1], [1, 0], [1, 0]])
    >>> scores = np.array([[0.9, 0.8], [0.8, 0.7], [0.7, 0.1], [0.6, 0.2]])
    >>> report = validation_thresholds(states=states, scores=scores, min_support=1, seed=0)
    >>> report.thresholds.tolist(), report.support.tolist(), report.source.tolist()
    ([0.8, 0.8], [2, 0], ['class', 'pooled'])
    """
    states, scores = np.asarray(states), np.asarray(scores)
    if states.shape != scores.shape or states.ndim != 2:
        raise ValueError(f"states and scores must be (M, C) arrays of one shape, got {states.shape} and {scores.shape}")
    observed = states == POSITIVE
    if not observed.any():
        raise ValueError("the validation label states hold no positive label; thresholds are estimated by hiding "
                         "known positives")
    _, hidden = simulate_validation_hiding(observed=observed, fraction=hide_fraction, seed=seed)
    scored = ~np.isnan(scores)
    hidden &= scored
    candidate = ((states == UNKNOWN) | hidden) & scored
    rate, _ = resolve_missing_rate(expected_missing_rate, scores=scores, observed=observed & scored, hidden=hidden,
                                   candidate=candidate)
    ratio = unseen_positive_ratio_for(observed_before_hiding=observed, hidden=hidden, expected_missing_rate=rate)
    return thresholds_for_precision(scores=np.nan_to_num(scores, nan=0.0), hidden=hidden, candidate=candidate,
                                    target_precision=target_precision, min_support=min_support, fallback=fallback,
                                    unseen_positive_ratio=ratio)


def calibrate_validation(
    *,
    states: np.ndarray,
    scores: np.ndarray,
    target_precision: float = 0.9,
    hide_fraction: float = 0.4,
    expected_missing_rate: MissingRate = 0.0,
    min_support: int = 5,
    fallback: float | None = None,
    seed: int = 0,
    top_k: int = 20,
    train_positives: np.ndarray | None = None,
    below_target_top_k: int = 10,
    searched_positives: np.ndarray | None = None,
    found_positives: np.ndarray | None = None,
) -> tuple[ClassCalibration, list[str]]:
    """Each class's calibration method and threshold from validation cells, as ``labelfix suggest`` chooses them.

    Hiding keeps one label per image, so the share hidden is lowered to what can be hidden (none for
    single-positive or one-class data, where the PU estimate takes over); NaN scores are left out.

    Parameters
    ----------
    states, scores : np.ndarray
        int [M, C] validation label states and float [M, C] scores (NaN: not scored).
    target_precision, hide_fraction, expected_missing_rate, min_support, fallback, seed
        As :func:`validation_thresholds`.
    top_k : int
        Ranked-list length of a class no estimate calibrates.
    train_positives : np.ndarray, optional
        int [C] positives per class among the cells being searched; a class with 0 gets nothing.
    below_target_top_k, searched_positives, found_positives
        As :func:`~labelfix.suggest.calibration.calibrate_classes`: the cap on a below-target class's ranked
        list, and the labelled positives among the searched cells that bound it by the expected missing count.

    Returns
    -------
    tuple[ClassCalibration, list[str]]
        The per-class choice (:func:`~labelfix.suggest.calibration.calibrate_classes`) and the notes that
        concern every class (e.g. fewer positives could be hidden than asked), in words.

    Examples
    --------
    One class, one positive per image: keeping one label per image would hide nothing, so the single positive
    of 40 % of the images is hidden; the 2 unknown cells scoring like them may be missed positives, so the
    measured precision (0.67) is a lower bound, below the target: a ranked list, not calibrated.

    >>> states = np.array([[1]] * 10 + [[0]] * 6)
    >>> scores = np.array([[0.9]] * 10 + [[0.9]] * 2 + [[0.1]] * 4)
    >>> calibration, notes = calibrate_validation(states=states, scores=scores, min_support=2)
    >>> calibration.method.tolist(), calibration.below_target.tolist(), notes[0][:60]
    (['hide-and-measure'], [True], 'each of the 10 labelled val images has a single positive, so')
    """
    states = np.asarray(states)
    scores = np.asarray(scores, dtype=np.float64)
    scored = ~np.isnan(scores)
    observed = (states == POSITIVE) & scored
    notes = []
    n_positive = int(observed.sum())
    n_images = int(observed.any(axis=1).sum())
    # Hiding keeps one label per image: ask only for what can be hidden, and say so instead of a warning.
    hideable = n_positive - n_images
    wanted = int(math.floor(hide_fraction * n_positive + 0.5))
    fraction, keep_one = hide_fraction, True
    if n_positive == 0:
        notes.append("the val split has no scored positive labels, so no class can be calibrated: every class "
                     "gets an uncalibrated ranked list (ingest labelled images with --split val to calibrate)")
    elif hideable == 0:
        # Single-positive or one-class val: hide the one positive of some images instead (module notes).
        keep_one = False
        # n_positive == n_images here, so simulate_validation_hiding hides exactly `wanted` images' one positive.
        notes.append(f"each of the {counted(n_images, 'labelled val image')} has a single positive, so hiding "
                     f"keeps no image's label: the single positive of {wanted} of the {counted(n_images, 'val image')} "
                     f"({wanted / n_images:.0%}) was hidden instead; their other, missed positives count as false "
                     "positives, so the precision measured "
                     "is conservative (a lower bound; --expected-missing-rate corrects it); classes with too few "
                     "hidden use the PU estimate (Elkan & Noto) where it is plausible")
    elif wanted > hideable:
        fraction = hideable / n_positive
        notes.append(f"asked to hide {hide_fraction:.0%} of the {n_positive} val positives ({wanted}) but only "
                     f"{hideable} can be hidden while keeping one per image; hid {hideable}")
    _, hidden = simulate_validation_hiding(observed=observed, fraction=fraction, seed=seed,
                                           keep_one_per_image=keep_one)
    candidate = ((states == UNKNOWN) | hidden) & scored
    rate, rate_note = resolve_missing_rate(expected_missing_rate, scores=scores, observed=observed, hidden=hidden,
                                           candidate=candidate)
    if rate_note:
        notes.append(rate_note)
    ratio = unseen_positive_ratio_for(observed_before_hiding=observed, hidden=hidden, expected_missing_rate=rate)
    frequency = 1.0 - rate if rate > 0 else None
    calibration = calibrate_classes(
        scores=np.nan_to_num(scores, nan=0.0), observed=observed, hidden=hidden, candidate=candidate,
        target_precision=target_precision, min_support=min_support, fallback=fallback,
        unseen_positive_ratio=ratio, label_frequency=frequency, top_k=top_k, train_positives=train_positives,
        below_target_top_k=below_target_top_k, searched_positives=searched_positives, found_positives=found_positives)
    calibration = dataclasses.replace(calibration, missing_rate=rate,
                                      missing_rate_estimated=expected_missing_rate == AUTO and rate > 0)
    return calibration, notes


def find_missing_labels(
    label_states: np.ndarray,
    pred_probs: np.ndarray,
    *,
    val_label_states: np.ndarray | None = None,
    val_pred_probs: np.ndarray | None = None,
    target_precision: float = 0.9,
    max_per_class: int | None = None,
    val_hide_fraction: float = 0.4,
    expected_missing_rate: MissingRate = 0.0,
    min_support: int = 5,
    threshold_fallback: float | None = None,
    uncalibrated_top_k: int = 20,
    seed: int = 0,
    below_target_top_k: int = 10,
    return_notes: bool = False,
) -> np.ndarray | tuple[np.ndarray, dict[str, list]]:
    """Find the unknown cells that are likely missing positive labels, ranked by score.

    The array-level counterpart of ``labelfix suggest`` (missing suggestions only), needing no
    store: per class, the lowest score threshold whose precision reaches ``target_precision`` is
    estimated by hiding ``val_hide_fraction`` of the known positives of a calibration set and
    seeing where they rank among its unknown cells (:func:`validation_thresholds`, the function
    ``labelfix suggest`` uses). Unknown cells of ``label_states`` scoring at or above their class
    threshold are returned.

    The calibration set is ``val_label_states`` / ``val_pred_probs`` when given (images the model
    did not train on, like the store's val split). Without them, ``label_states`` / ``pred_probs``
    calibrate themselves; that is only honest when ``pred_probs`` are out-of-sample (each image
    scored by a model that did not train on its labels, e.g. cross-validated, as cleanlab asks of
    its ``pred_probs``). In-sample scores rank a model's own training positives too high, which
    makes the thresholds too low.

    The precision is an estimate, and by default a conservative one: the calibration set's genuinely missing
    labels count as false positives. ``expected_missing_rate`` corrects for them, with a rate you know or
    ``"auto"``, one estimated from the unknown cells scoring like the hidden positives
    (:func:`~labelfix.suggest.missing_rate.estimate_missing_rate`; opt-in, as it can overstate precision). Each class is
    calibrated as ``labelfix suggest`` does it (:func:`calibrate_validation`): where no positive can be
    hidden (one label per image, a one-class dataset), the positive-unlabelled estimate of Elkan & Noto
    sets the threshold; where no estimate is possible, a ranked list of ``uncalibrated_top_k`` cells; where
    the estimate says nothing reaches the target precision (no threshold on the calibration set, or no
    unknown cell of ``label_states`` at the threshold), a ranked list of at most ``below_target_top_k``
    cells and the class's expected missing count. Ranked-list rows are ``calibrated`` False.

    Parameters
    ----------
    label_states : np.ndarray
        int [N, C]: 1 positive (annotated), 0 unknown (not annotated; may be a missing label),
        -1 verified negative (:mod:`labelfix.states`). Only 0 cells are ever returned.
    pred_probs : np.ndarray
        float [N, C] in [0, 1]: the model's probability that class c is present in image n
        (independent sigmoid outputs, not a softmax: rows need not sum to 1).
    val_label_states, val_pred_probs : np.ndarray, optional
        int [M, C] and float [M, C]: the calibration set; pass both or neither. It needs positive labels.
    target_precision : float
        Precision each class threshold should reach, in (0, 1]; default 0.9.
    max_per_class : int, optional
        Keep at most this many rows per class (the highest scores).
    val_hide_fraction : float
        Share of the calibration positives hidden, in (0, 1); set it near the miss rate you expect.
    expected_missing_rate : float or "auto"
        Share of true calibration positives you expect annotators missed, in [0, 1); 0 (default) counts every
        unknown calibration cell as negative (a lower bound); ``"auto"`` estimates it (0 where it cannot, with a
        note). The estimate can be far too high on a weak model: see :mod:`~labelfix.suggest.missing_rate`.
    min_support : int
        Hidden labels a class needs for its own threshold; rarer classes use the pooled threshold.
    threshold_fallback : float, optional
        Threshold for classes whose target precision is unreachable; ``None``: no rows for them.
    uncalibrated_top_k : int
        Rows for a class no estimate can calibrate (no calibration positives, or too few to hide and too
        few for the PU estimate): its best-scoring unknown cells, ``calibrated`` False (``0``: none).
    seed : int
        Seed of the hiding.
    below_target_top_k : int
        Cap on the rows of a class below the target precision (no threshold reaches it on the calibration
        set, or no unknown cell reaches its threshold): its best-scoring unknown cells, at most its
        expected missing count (PU estimate), ``calibrated`` False (``0``: none).
    return_notes : bool
        Also return why each class got its rows (or none), as ``labelfix suggest`` words it.

    Returns
    -------
    np.ndarray
        Structured array of dtype :data:`MISSING_LABEL_DTYPE`, one row per likely missing label:
        ``image`` (int64 row index into ``label_states``), ``class`` (int64 column index),
        ``score`` (float64, ``pred_probs[image, class]``) and ``calibrated`` (bool; False for the rows of
        a ranked list: an uncalibrated class's, or a below-target one's). Calibrated rows first, each part sorted by score, highest
        first (ties: lower image, then lower class). Empty when nothing reaches a threshold.
    notes : dict[str, list]
        Only with ``return_notes``: ``"classes"`` [C] str, each class's reason in words; ``"method"`` [C]
        and ``"source"`` [C] str (:class:`~labelfix.suggest.calibration.ClassCalibration`); ``"calibrated"``
        [C] bool, as on the rows; ``"general"``, the notes that concern every class.
        A class with no positive in ``label_states`` was not learned by a model trained on them: no rows,
        as in ``labelfix suggest``.

    Raises
    ------
    ValueError
        If an array is not 2-D, the shapes disagree, ``label_states`` holds a code other than
        1 / 0 / -1, ``pred_probs`` holds NaN, infinity or a value outside [0, 1], only one of the
        two validation arrays is given, the calibration set has no positive label, or a setting is
        out of range.

    See Also
    --------
    validation_thresholds : the per-class thresholds and their estimated precision and recall.

    Examples
    --------
    500 images whose annotator missed 30 % of the labels, a val set labelled with care, noisy scores:

    >>> import numpy as np
    >>> import labelfix
    >>> rng = np.random.default_rng(0)
    >>> def annotate(n, kept):  # true labels, the states an annotator gave, model scores
    ...     truth = rng.random((n, 4)) < 0.4
    ...     states = (truth & (rng.random(truth.shape) < kept)).astype(np.int8)  # 1 positive, 0 unknown
    ...     return truth, states, 0.4 * truth + 0.6 * rng.random(truth.shape)
    >>> truth, label_states, pred_probs = annotate(500, kept=0.7)
    >>> _, val_states, val_probs = annotate(200, kept=1.0)
    >>> rows = labelfix.find_missing_labels(label_states, pred_probs, val_label_states=val_states,
    ...                                     val_pred_probs=val_probs, target_precision=0.9)
    >>> rows.dtype.names
    ('image', 'class', 'score', 'calibrated')
    >>> [(image, klass, round(score, 3)) for image, klass, score, _ in rows[:2].tolist()]
    [(77, 1, 0.999), (392, 1, 0.997)]
    >>> len(rows), round(float(truth[rows["image"], rows["class"]].mean()), 2)  # found, share truly missing
    (184, 0.94)
    """
    states = _checked_states(label_states, name="label_states")
    probs = _checked_probs(pred_probs, name="pred_probs", shape=states.shape)
    if (val_label_states is None) != (val_pred_probs is None):
        raise ValueError("pass both val_label_states and val_pred_probs, or neither")
    if val_label_states is not None:
        val_states = _checked_states(val_label_states, name="val_label_states")
        if val_states.shape[1] != states.shape[1]:
            raise ValueError(f"val_label_states has {val_states.shape[1]} classes (columns), label_states "
                             f"{states.shape[1]}; both must have the same classes in the same order")
        val_probs = _checked_probs(val_pred_probs, name="val_pred_probs", shape=val_states.shape)
    else:
        val_states, val_probs = states, probs
    _check_settings(target_precision=target_precision, max_per_class=max_per_class,
                    val_hide_fraction=val_hide_fraction, expected_missing_rate=expected_missing_rate,
                    min_support=min_support, threshold_fallback=threshold_fallback, seed=seed,
                    uncalibrated_top_k=uncalibrated_top_k, below_target_top_k=below_target_top_k)
    if not (val_states == POSITIVE).any():
        which = "val_label_states" if val_label_states is not None else "label_states (no val arrays given)"
        raise ValueError(f"{which} holds no positive label (1); thresholds are estimated by hiding known "
                         "positives, so the calibration set needs some")
    # As labelfix suggest: a class with no positive in label_states gets no rows (a model trained on them has
    # nothing to learn it from; its scores rank nothing).
    calibration, general = calibrate_validation(
        states=val_states, scores=val_probs, target_precision=target_precision, hide_fraction=val_hide_fraction,
        expected_missing_rate=expected_missing_rate, min_support=min_support, fallback=threshold_fallback, seed=seed,
        top_k=uncalibrated_top_k, below_target_top_k=below_target_top_k,
        train_positives=(states == POSITIVE).sum(axis=0))
    unknown = states == UNKNOWN
    passing = unknown & (probs >= calibration.thresholds)
    # A calibrated threshold no unknown cell reaches: the class's below-target list takes over.
    unreached = (~calibration.ranked & np.isfinite(calibration.thresholds) & ~passing.any(axis=0)
                 & (calibration.below_target_k > 0))
    ranked = calibration.ranked | unreached
    lengths = np.where(unreached, calibration.below_target_k, calibration.list_lengths)
    if max_per_class is not None:
        lengths = np.minimum(lengths, max_per_class)
    # A ranked list: every unknown cell is a candidate, the rank cut keeps its length.
    image, klass = np.nonzero(passing | (unknown & ranked))
    score = probs[image, klass]
    # Rank within each class as ``labelfix suggest`` does (score down, lower image first), keep the best.
    order = np.lexsort((image, -score, klass))
    image, klass, score = image[order], klass[order], score[order]
    if len(klass):
        starts = np.r_[0, np.flatnonzero(np.diff(klass)) + 1]
        rank = np.arange(len(klass)) - np.repeat(starts, np.diff(np.r_[starts, len(klass)]))
        limit = np.where(ranked, lengths, max_per_class if max_per_class is not None else len(klass))[klass]
        keep = rank < limit
        image, klass, score = image[keep], klass[keep], score[keep]
    calibrated = ~ranked[klass]
    # As in the review queue: a ranked list (precision unknown or below target) never outranks a calibrated row.
    order = np.lexsort((klass, image, -score, ~calibrated))
    rows = np.empty(len(order), dtype=MISSING_LABEL_DTYPE)
    rows["image"], rows["class"], rows["score"] = image[order], klass[order], score[order]
    rows["calibrated"] = calibrated[order]
    if not return_notes:
        return rows
    words = list(calibration.notes)
    for k in np.flatnonzero(unreached).tolist():
        words[k] = unreached_note(words[k], unknown=int(unknown[:, k].sum()), threshold=float(
            calibration.thresholds[k]), k=int(lengths[k]), weak=bool(calibration.weakly_trained[k]))
    return rows, {"classes": words, "method": calibration.method.tolist(), "source": calibration.source.tolist(),
                  "calibrated": (~ranked).tolist(), "general": general}


def _checked_states(values: object, *, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [images, classes], got {array.ndim} dimension(s) "
                         f"(shape {array.shape})")
    if array.dtype == bool:
        raise ValueError(f"{name} is boolean; pass {name}.astype(np.int8) (True -> 1 positive, False -> 0 unknown)")
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold the integer codes 1, 0, -1, got dtype {array.dtype}")
    bad = ~np.isin(array, (POSITIVE, UNKNOWN, NEGATIVE))
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name}[{row}, {column}] is {array[row, column].item()!r}; label states are 1 (positive), "
                         f"0 (unknown) or -1 (verified negative) ({int(bad.sum())} cell(s) hold other values)")
    return array.astype(np.int8)


def _checked_probs(values: object, *, name: str, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype == bool or array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold probabilities (floats in [0, 1]), got dtype {array.dtype}")
    if array.shape != shape:
        states_name = "val_label_states" if name.startswith("val_") else "label_states"
        raise ValueError(f"{name} has shape {array.shape}, {states_name} {shape}; they must match "
                         "(one row per image, one column per class)")
    array = array.astype(np.float64)
    for problem, bad in (("not finite", ~np.isfinite(array)),
                         ("outside [0, 1]", np.isfinite(array) & ((array < 0.0) | (array > 1.0)))):
        if bad.any():
            row, column = (int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{name}[{row}, {column}] is {array[row, column].item()!r}, {problem} ({int(bad.sum())} "
                             "cell(s)); pass sigmoid probabilities in [0, 1] (e.g. scipy.special.expit of logits)")
    return array


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and bool(np.isfinite(value))


def _is_count(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_settings(*, target_precision: float, max_per_class: int | None, val_hide_fraction: float,
                    expected_missing_rate: MissingRate, min_support: int, threshold_fallback: float | None = None,
                    seed: int = 0, uncalibrated_top_k: int = 20, below_target_top_k: int = 10) -> None:
    # Type checks first, so a string or NaN setting is one clear ValueError rather than a TypeError deep inside.
    checks = (
        (_is_number(target_precision) and 0.0 < target_precision <= 1.0,
         f"target_precision must be in (0, 1], got {target_precision}"),
        (max_per_class is None or (_is_count(max_per_class) and max_per_class >= 1),
         f"max_per_class must be >= 1 or None, got {max_per_class} (an integer)"),
        (_is_number(val_hide_fraction) and 0.0 < val_hide_fraction < 1.0,
         f"val_hide_fraction must be in (0, 1), got {val_hide_fraction}"),
        (expected_missing_rate == AUTO or (_is_number(expected_missing_rate)
                                           and 0.0 <= float(expected_missing_rate) < 1.0),
         f"expected_missing_rate must be 'auto' or in [0, 1), got {expected_missing_rate!r}"),
        (_is_count(min_support) and min_support >= 1, f"min_support must be >= 1, got {min_support}"),
        (threshold_fallback is None or (_is_number(threshold_fallback) and 0.0 <= threshold_fallback <= 1.0),
         f"threshold_fallback must be a probability in [0, 1] or None, got {threshold_fallback!r}"),
        (_is_count(seed) and seed >= 0, f"seed must be an integer >= 0, got {seed!r}"),
        (_is_count(uncalibrated_top_k) and uncalibrated_top_k >= 0,
         f"uncalibrated_top_k must be an integer >= 0, got {uncalibrated_top_k!r}"),
        (_is_count(below_target_top_k) and below_target_top_k >= 0,
         f"below_target_top_k must be an integer >= 0, got {below_target_top_k!r}"),
    )
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


__all__ = ["MISSING_LABEL_DTYPE", "find_missing_labels", "validation_thresholds"]
