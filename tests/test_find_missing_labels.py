"""labelfix.find_missing_labels: the array API, its known answers, its bad inputs, and agreement with suggest."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

import labelfix
from labelfix.suggest.arrays import MISSING_LABEL_DTYPE, find_missing_labels, validation_thresholds

# Small calibration sets have images with one positive, which cannot be hidden (one label per image is kept).
pytestmark = pytest.mark.filterwarnings("ignore:asked to hide:UserWarning")


def _calibration(n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Every val image positive in both classes; positives score 0.8, the rest 0.2 (separable)."""
    states = np.zeros((n, 3), np.int8)
    states[:, :2] = 1
    scores = np.where(states == 1, 0.8, 0.2)
    return states, scores


def test_known_answer_with_a_separable_calibration_set():
    val_states, val_probs = _calibration()
    label_states = np.array([[0, 0, 1],     # (0, 0) scores 0.85: missing; (0, 1) 0.5: below the threshold
                             [-1, 0, 0],    # a verified negative is never returned, whatever it scores
                             [1, 0, 0],     # a positive is never returned
                             [0, 1, 0]])    # (each class needs a positive here to count as learned)
    pred_probs = np.array([[0.85, 0.5, 0.99],
                           [0.99, 0.8, 0.81],
                           [0.99, 0.1, 0.79],
                           [0.1, 0.9, 0.1]])
    rows = find_missing_labels(label_states, pred_probs, val_label_states=val_states, val_pred_probs=val_probs,
                               min_support=1)
    assert rows.dtype == MISSING_LABEL_DTYPE
    # The hidden val positives all score 0.8, the val unknowns 0.2: thresholds 0.8 for classes 0 and 1. Class 2
    # has no val positive: no estimate, so (as in labelfix suggest) a ranked list of its unknown cells, after
    # every calibrated row and marked calibrated = False.
    assert rows.tolist() == [(0, 0, 0.85, True), (1, 1, 0.8, True), (1, 2, 0.81, False), (2, 2, 0.79, False),
                             (3, 2, 0.1, False)]
    report = validation_thresholds(states=val_states, scores=val_probs, min_support=1)
    assert report.thresholds.tolist() == [0.8, 0.8, 0.8]
    assert report.source.tolist() == ["class", "class", "pooled"]


def test_ties_rank_by_image_then_class_and_max_per_class_keeps_the_best():
    val_states, val_probs = _calibration()
    label_states = np.zeros((5, 3), np.int8)
    label_states[4] = 1  # every class has a train positive (a class with none gets no rows)
    pred_probs = np.array([[0.9, 0.9, 0.0],
                           [0.9, 0.95, 0.0],
                           [0.85, 0.9, 0.0],
                           [0.99, 0.0, 0.0],
                           [0.0, 0.0, 0.0]])
    kwargs = dict(val_label_states=val_states, val_pred_probs=val_probs, min_support=1)
    rows = find_missing_labels(label_states, pred_probs, **kwargs)
    calibrated = rows[rows["calibrated"]]
    assert [(r["image"], r["class"]) for r in calibrated] == [(3, 0), (1, 1), (0, 0), (0, 1), (1, 0), (2, 1), (2, 0)]
    # Class 2 has one train positive: too weakly trained, so its ranked list stops at WEAK_CLASS_TOP_K (3) cells.
    assert [(r["image"], r["class"]) for r in rows[~rows["calibrated"]]] == [(0, 2), (1, 2), (2, 2)]
    best = find_missing_labels(label_states, pred_probs, max_per_class=2, **kwargs)
    assert [(r["image"], r["class"]) for r in best] == [(3, 0), (1, 1), (0, 0), (0, 1), (0, 2), (1, 2)]


def test_without_val_arrays_the_arrays_calibrate_themselves():
    rng = np.random.default_rng(3)
    truth = rng.random((300, 4)) < 0.5
    states = (truth & (rng.random(truth.shape) < 0.9)).astype(np.int8)  # 10 % missed
    probs = 0.5 * truth + 0.5 * rng.random(truth.shape)
    # Its own missing labels count as false positives, so the estimate is below the truth: ask for 0.75.
    own = find_missing_labels(states, probs, target_precision=0.75)
    same = find_missing_labels(states, probs, val_label_states=states, val_pred_probs=probs, target_precision=0.75)
    assert own.tolist() == same.tolist() and len(own) > 0
    assert truth[own["image"], own["class"]].mean() >= 0.75  # the conservative estimate holds here
    assert (states[own["image"], own["class"]] == 0).all()


def test_unreachable_target_returns_a_below_target_ranked_list_unless_a_fallback_is_given():
    val_states = np.array([[1, 1], [1, 1], [1, 1], [1, 1], [0, 0], [0, 0]], np.int8)
    val_probs = np.full(val_states.shape, 0.5)  # every cell ties: precision never reaches 0.99
    label_states = np.array([[0, 0], [0, 0], [1, 1]], np.int8)
    pred_probs = np.array([[0.7, 0.2], [0.4, 0.6], [0.0, 0.0]])
    kwargs = dict(val_label_states=val_states, val_pred_probs=val_probs, min_support=1, target_precision=0.99)
    # Below target: each class's best unknown cell(s), marked calibrated False (never auto-accepted).
    ranked = find_missing_labels(label_states, pred_probs, **kwargs)
    assert ranked.dtype == MISSING_LABEL_DTYPE
    assert ranked.tolist() == [(0, 0, 0.7, False), (1, 1, 0.6, False)]  # bounded by the expected missing count
    assert len(find_missing_labels(label_states, pred_probs, below_target_top_k=0, **kwargs)) == 0
    fallback = find_missing_labels(label_states, pred_probs, threshold_fallback=0.6, **kwargs)
    assert fallback.tolist() == [(0, 0, 0.7, True), (1, 1, 0.6, True)]


def test_float_and_unsigned_inputs_are_accepted_as_codes_and_probabilities():
    val_states, val_probs = _calibration()
    rows = find_missing_labels(np.array([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0]]), np.array([[1, 0, 0], [0, 0, 0]], np.uint8),
                               val_label_states=val_states.tolist(), val_pred_probs=val_probs.tolist(), min_support=1)
    assert rows[rows["calibrated"]].tolist() == [(0, 0, 1.0, True)]


def test_defaults_are_those_of_labelfix_suggest():
    from labelfix.suggest.run import SuggestConfig

    fields = SuggestConfig.model_fields
    parameters = inspect.signature(find_missing_labels).parameters
    for name in ("target_precision", "max_per_class", "val_hide_fraction", "expected_missing_rate", "min_support",
                 "threshold_fallback", "uncalibrated_top_k", "seed"):
        assert parameters[name].default == fields[name].default, name
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY


# -- bad input: one ValueError naming the argument, the cell and the fix ------------------------------------

GOOD_STATES = np.array([[1, 0], [1, 1]], np.int8)
GOOD_PROBS = np.array([[0.9, 0.2], [0.8, 0.7]])


@pytest.mark.parametrize(("states", "probs", "kwargs", "message"), [
    (np.array([1, 0]), GOOD_PROBS, {}, r"label_states must be a 2-D array \[images, classes\], got 1 dimension"),
    (GOOD_STATES, GOOD_PROBS[:, :1], {}, r"pred_probs has shape \(2, 1\), label_states \(2, 2\); they must match"),
    (GOOD_STATES, GOOD_PROBS.T[None], {}, r"pred_probs has shape \(1, 2, 2\)"),
    (np.array([[1, 2], [0, 0]]), GOOD_PROBS, {}, r"label_states\[0, 1\] is 2; label states are 1 "
                                                 r"\(positive\), 0 \(unknown\) or -1 \(verified negative\)"),
    (np.array([[1, 0.5], [0, 0]]), GOOD_PROBS, {}, r"label_states\[0, 1\] is 0.5;"),
    (GOOD_STATES.astype(bool), GOOD_PROBS, {}, r"label_states is boolean; pass label_states.astype\(np.int8\)"),
    (np.array([["1", "0"], ["0", "0"]]), GOOD_PROBS, {}, r"label_states must hold the integer codes 1, 0, -1"),
    (GOOD_STATES, np.array([[0.9, 1.2], [0.1, 0.1]]), {}, r"pred_probs\[0, 1\] is 1.2, outside \[0, 1\]"),
    (GOOD_STATES, np.array([[0.9, 0.1], [-0.1, 0.1]]), {}, r"pred_probs\[1, 0\] is -0.1, outside \[0, 1\]"),
    (GOOD_STATES, np.array([[0.9, np.nan], [0.1, 0.1]]), {}, r"pred_probs\[0, 1\] is nan, not finite \(1 cell"),
    (GOOD_STATES, np.array([[np.inf, 0.1], [0.1, 0.1]]), {}, r"pred_probs\[0, 0\] is inf, not finite"),
    (GOOD_STATES, GOOD_PROBS > 0.5, {}, r"pred_probs must hold probabilities"),
    (GOOD_STATES, GOOD_PROBS, {"val_label_states": GOOD_STATES}, r"pass both val_label_states and val_pred_probs"),
    (GOOD_STATES, GOOD_PROBS, {"val_label_states": np.ones((2, 3), np.int8), "val_pred_probs": np.ones((2, 3))},
     r"val_label_states has 3 classes \(columns\), label_states 2"),
    (GOOD_STATES, GOOD_PROBS, {"val_label_states": GOOD_STATES, "val_pred_probs": np.ones((3, 2))},
     r"val_pred_probs has shape \(3, 2\), val_label_states \(2, 2\)"),
    (GOOD_STATES, GOOD_PROBS, {"val_label_states": np.zeros((2, 2), np.int8), "val_pred_probs": GOOD_PROBS},
     r"val_label_states holds no positive label \(1\)"),
    (np.zeros((2, 2), np.int8), GOOD_PROBS, {}, r"label_states \(no val arrays given\) holds no positive label"),
    (GOOD_STATES, GOOD_PROBS, {"target_precision": 0.0}, r"target_precision must be in \(0, 1\], got 0.0"),
    (GOOD_STATES, GOOD_PROBS, {"max_per_class": 0}, r"max_per_class must be >= 1 or None, got 0"),
    (GOOD_STATES, GOOD_PROBS, {"val_hide_fraction": 1.0}, r"val_hide_fraction must be in \(0, 1\), got 1.0"),
    (GOOD_STATES, GOOD_PROBS, {"expected_missing_rate": 1.0}, r"expected_missing_rate must be 'auto' or in \[0, 1\)"),
    (GOOD_STATES, GOOD_PROBS, {"min_support": 0}, r"min_support must be >= 1, got 0"),
])
def test_bad_input_raises_one_clear_value_error(states, probs, kwargs, message):
    with pytest.raises(ValueError, match=message):
        find_missing_labels(states, probs, **kwargs)


def test_arguments_after_the_arrays_are_keyword_only():
    with pytest.raises(TypeError):
        find_missing_labels(GOOD_STATES, GOOD_PROBS, None, None)  # type: ignore[misc]


# -- the same thresholds and cells as `labelfix suggest` ----------------------------------------------------

def test_agrees_with_suggest_on_a_store(tmp_path: Path):
    from test_suggest import build_store  # the store test_suggest.py checks suggest on

    from labelfix.store.labels import load_label_matrix
    from labelfix.store.runs import read_predictions

    store, (run_id,) = build_store(tmp_path / "s.duckdb")
    try:
        config = labelfix.SuggestConfig(min_support=2, max_per_class=4, spurious=False)
        report = labelfix.suggest_labels(store, config=config)
        filed = store.fetchall("SELECT image_id, category_id, score, rank_in_class FROM suggestions "
                               "WHERE call_id = ? AND kind = 'missing' ORDER BY category_id, rank_in_class",
                               [report.call_id])
        labels = load_label_matrix(store)
        predictions = read_predictions(store, run_id=run_id)
    finally:
        store.close()
    assert np.array_equal(labels.image_ids, predictions.image_ids)
    train, val = labels.rows("train"), labels.rows("val")
    rows = labelfix.find_missing_labels(labels.states[train], predictions.probs[train],
                                        val_label_states=labels.states[val], val_pred_probs=predictions.probs[val],
                                        min_support=2, max_per_class=4)
    thresholds = validation_thresholds(states=labels.states[val], scores=predictions.probs[val], min_support=2)
    assert thresholds.thresholds.tolist() == report.thresholds.thresholds.tolist()
    found = sorted((int(labels.image_ids[train][r["image"]]), int(labels.category_ids[r["class"]]), float(r["score"]))
                   for r in rows)
    assert rows["calibrated"].all()
    # Scores are float32 in the store and in read_predictions, so they compare exactly.
    assert filed and found == sorted((image_id, category_id, score) for image_id, category_id, score, _ in filed)


@pytest.mark.parametrize("setting", [
    {"threshold_fallback": 2.0}, {"threshold_fallback": float("nan")}, {"max_per_class": 1.5},
    {"seed": "a"}, {"target_precision": "0.9"}, {"min_support": 0}, {"max_per_class": True},
])
def test_every_bad_setting_is_one_value_error(setting) -> None:
    """Out-of-range, NaN or wrongly typed settings: a ValueError naming the setting, never a deep TypeError."""
    states = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=np.int8)
    probs = np.full(states.shape, 0.5)
    with pytest.raises(ValueError, match=next(iter(setting))):
        labelfix.find_missing_labels(states, probs, **setting)


# -- one class, single positive: the same per-class choice as labelfix suggest (issue 13) -------------------
# Elkan & Noto's setting by hand: the 6 labelled val positives of class 0 score 0.6, so c = 0.6 and about 4 of
# 10 positives are unlabelled; 2 unlabelled val images score 0.6 too, the rest 0.05. The PU threshold is 0.6.
VAL_SCORES_0 = [0.6] * 6 + [0.6] * 2 + [0.05] * 7


def test_one_class_input_is_measured_conservatively_or_calibrated_with_the_pu_estimate():
    """One label per image: by default the single positive of 40 % of the images is hidden (2 of 6); the 2
    unknown cells scoring like them count as false positives, so precision 0.5 is measured (a lower bound):
    a below-target list, not calibrated. With too few hidden (val_hide_fraction 0.1: 1), the PU threshold 0.6."""
    from labelfix.suggest.arrays import calibrate_validation

    val_states = np.array([[1]] * 6 + [[0]] * 9, np.int8)
    val_scores = np.array(VAL_SCORES_0)[:, None]
    states = np.array([[0], [0], [1], [0]], np.int8)
    scores = np.array([[0.95], [0.5], [0.9], [0.6]])
    kwargs = dict(val_label_states=val_states, val_pred_probs=val_scores, min_support=2)
    assert not find_missing_labels(states, scores, **kwargs)["calibrated"].any()
    rows = find_missing_labels(states, scores, val_hide_fraction=0.1, **kwargs)
    assert rows.tolist() == [(0, 0, 0.95, True), (3, 0, 0.6, True)]
    calibration, notes = calibrate_validation(states=val_states, scores=val_scores, min_support=2, hide_fraction=0.1)
    assert calibration.method.tolist() == ["pu"] and calibration.thresholds.tolist() == [0.6]
    assert "the single positive of 1 of the 6 val images (17%) was hidden" in notes[0]  # the real share, not 10 %
    assert not calibration.measured.any()
    # Calibrating on itself (no val arrays) works the same way.
    own = find_missing_labels(val_states, val_scores, min_support=2, val_hide_fraction=0.1)
    assert own.tolist() == [(6, 0, 0.6, True), (7, 0, 0.6, True)]


def test_a_known_answer_on_a_hand_made_single_positive_array():
    """At most one positive per image: class 0 as above (PU, 0.6); class 1 has one val positive, too few for
    any estimate: its ranked list (top 2 here), after the calibrated rows."""
    val_states = np.array([[1, 0]] * 6 + [[0, 0]] * 9 + [[0, 1]], np.int8)
    val_scores = np.stack([VAL_SCORES_0 + [0.1], [0.1] * 15 + [0.8]], axis=1)
    states = np.array([[0, 0], [0, 0], [1, 0], [0, 1]], np.int8)
    scores = np.array([[0.95, 0.3], [0.5, 0.7], [0.9, 0.2], [0.92, 0.9]])
    kwargs = dict(val_label_states=val_states, val_pred_probs=val_scores, min_support=2, val_hide_fraction=0.1)
    rows = find_missing_labels(states, scores, uncalibrated_top_k=2, **kwargs)
    assert rows.tolist() == [(0, 0, 0.95, True), (3, 0, 0.92, True), (1, 1, 0.7, False), (0, 1, 0.3, False)]
    assert find_missing_labels(states, scores, uncalibrated_top_k=0, **kwargs).tolist() == rows[:2].tolist()


def _two_class_val():
    """Every val image has both classes (hiding keeps one): positives score 0.95, unknown cells 0.1."""
    states = np.array([[1, 1]] * 6 + [[0, 0]] * 6, np.int8)
    return states, np.where(states == 1, 0.95, 0.1)


def test_a_threshold_no_unknown_cell_reaches_gives_a_below_target_list():
    """Class 0 is calibrated on val (threshold 0.95) but every unknown train cell scores below it."""
    val_states, val_probs = _two_class_val()
    label_states = np.array([[0, 1], [0, 1], [0, 1], [1, 1]], np.int8)
    pred_probs = np.array([[0.3, 0.9], [0.5, 0.9], [0.4, 0.9], [0.9, 0.9]])
    rows = find_missing_labels(label_states, pred_probs, val_label_states=val_states, val_pred_probs=val_probs,
                               min_support=1, below_target_top_k=2)
    assert rows.tolist() == [(1, 0, 0.5, False)]  # at most its expected missing count (about 0 here: 1 cell)


def test_tied_float32_scores_keep_their_float64_order():
    """Probabilities within float32's spacing of 1.0 tie as float32; the float64 order must survive."""
    probs = np.array([[1 - 1e-9, 0.0], [1 - 1e-12, 0.0], [1 - 1e-10, 0.0]])
    assert len(np.unique(probs[:, 0].astype(np.float32))) == 1
    val_states, val_probs = _two_class_val()
    probs = np.vstack([probs, [[0.0, 0.0]]])  # the last image holds class 0's train positive
    rows = find_missing_labels(np.array([[0, 1]] * 3 + [[1, 1]], np.int8), probs, val_label_states=val_states,
                               val_pred_probs=val_probs, min_support=1)
    assert rows["image"].tolist() == [1, 2, 0] and rows["calibrated"].all()


def test_a_class_without_train_positives_gets_no_rows_as_in_suggest():
    """FRESH_REPORT3 finding 9: the CLI gives such a class nothing; so does the array API, with or without val."""
    rng = np.random.default_rng(0)
    states = np.zeros((100, 2), int)
    states[:30, 0] = 1
    val_states = np.zeros((40, 2), int)
    val_states[:10, 0], val_states[10:20, 1] = 1, 1
    probs, val_probs = rng.random((100, 2)), rng.random((40, 2))
    rows, notes = find_missing_labels(states, probs, val_label_states=val_states, val_pred_probs=val_probs,
                                      return_notes=True)
    assert 1 not in rows["class"].tolist()
    assert notes["source"][1] == "no-train-positives" and notes["classes"][1].startswith("no train positives")
    assert 1 not in find_missing_labels(states, probs)["class"].tolist()


def test_notes_say_why_a_one_class_single_positive_list_is_not_calibrated():
    """One class, one label per image: the notes carry what the rows' calibrated=False cannot say."""
    states = np.array([[1]] * 20 + [[0]] * 20)
    probs = np.array([[0.9]] * 30 + [[0.1]] * 10)
    rows, notes = find_missing_labels(states, probs, val_label_states=states, val_pred_probs=probs,
                                      return_notes=True)
    assert len(rows) and not rows["calibrated"].any() and notes["calibrated"] == [False]
    assert notes["classes"][0].startswith("below target precision")
    assert notes["general"][0].startswith("each of the 20 labelled val images has a single positive")
