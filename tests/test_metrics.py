"""Ranking metrics: hand-computed cases, ties, edge cases, and a scikit-learn cross-check."""

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from labelfix.evaluate.metrics import (
    average_precision,
    mean_average_precision,
    missing_label_metrics,
    precision_at_k,
    precision_recall_curve,
    recall_at_precision,
    shot_split_map,
)

SCORES = np.array([0.9, 0.8, 0.7, 0.6])
TARGETS = np.array([1, 0, 1, 0])


def test_average_precision_hand_computed():
    # Positives at ranks 1 and 3: precision there is 1/1 and 2/3.
    assert average_precision(scores=SCORES, targets=TARGETS) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(scores=SCORES, targets=np.array([1, 1, 0, 0])) == 1.0
    assert average_precision(scores=SCORES, targets=np.array([0, 0, 1, 1])) == pytest.approx(
        (1 / 3 + 2 / 4) / 2
    )


def test_average_precision_ties_form_one_threshold_whatever_the_input_order():
    # The 0.9 tie holds one positive and one negative: one threshold at precision 1/2, recall 1/2.
    expected = 0.5 * 0.5 + 0.5 * (2 / 3)
    for scores, targets in [([0.9, 0.9, 0.5], [0, 1, 1]), ([0.9, 0.9, 0.5], [1, 0, 1])]:
        assert average_precision(scores=np.array(scores), targets=np.array(targets)) == pytest.approx(
            expected
        )


def test_average_precision_is_nan_without_positives_and_accepts_2d_float32():
    assert math.isnan(average_precision(scores=SCORES, targets=np.zeros(4, bool)))
    assert math.isnan(average_precision(scores=np.zeros(0), targets=np.zeros(0, bool)))
    flat = average_precision(scores=SCORES, targets=TARGETS)
    square = average_precision(scores=SCORES.astype(np.float32).reshape(2, 2), targets=TARGETS.reshape(2, 2))
    assert square == pytest.approx(flat)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="NaN"):
        average_precision(scores=np.array([0.1, np.nan]), targets=np.array([1, 0]))
    with pytest.raises(ValueError, match="items"):
        average_precision(scores=SCORES, targets=TARGETS[:3])
    with pytest.raises(ValueError):
        precision_at_k(scores=SCORES, targets=TARGETS, k=0)


@pytest.mark.parametrize("seed", range(5))
def test_average_precision_and_curve_match_sklearn_on_random_data_with_ties(seed):
    rng = np.random.default_rng(seed)
    targets = rng.random(300) < 0.2
    # Rounding to one decimal makes many ties, the case where implementations differ.
    scores = np.round(rng.random(300) + 0.5 * targets, 1).astype(np.float32)
    assert average_precision(scores=scores, targets=targets) == pytest.approx(
        skm.average_precision_score(targets, scores), abs=1e-12
    )
    ours = precision_recall_curve(scores=scores, targets=targets)
    theirs = skm.precision_recall_curve(targets, scores)
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine, reference)


def test_precision_at_k_hand_computed_and_ties_split_evenly():
    assert precision_at_k(scores=SCORES, targets=TARGETS, k=1) == 1.0
    assert precision_at_k(scores=SCORES, targets=TARGETS, k=2) == 0.5
    assert precision_at_k(scores=SCORES, targets=TARGETS, k=3) == pytest.approx(2 / 3)
    assert precision_at_k(scores=SCORES, targets=TARGETS, k=10) == 0.5  # clipped to 4 items
    # Top-2 takes the 0.9 positive and one of three tied cells holding one positive: (1 + 1/3) / 2.
    tied = np.array([0.9, 0.5, 0.5, 0.5])
    assert precision_at_k(scores=tied, targets=np.array([1, 1, 0, 0]), k=2) == pytest.approx(2 / 3)
    assert precision_at_k(scores=tied, targets=np.array([1, 0, 0, 1]), k=2) == pytest.approx(2 / 3)
    assert precision_at_k(scores=SCORES, targets=np.zeros(4, bool), k=2) == 0.0


def test_recall_at_precision():
    assert recall_at_precision(scores=SCORES, targets=TARGETS, precision=0.9) == 0.5
    assert recall_at_precision(scores=SCORES, targets=TARGETS, precision=0.6) == 1.0
    # A negative on top: precision never reaches 0.9, so nothing is recalled.
    assert recall_at_precision(scores=SCORES, targets=np.array([0, 1, 1, 1])) == 0.0
    assert math.isnan(recall_at_precision(scores=SCORES, targets=np.zeros(4, bool)))
    # The bound is inclusive: 9 positives then 3 negatives, precision exactly 0.9 at rank 10.
    scores = np.arange(13, 0, -1, dtype=np.float64)
    targets = np.array([1] * 9 + [0, 0, 0, 1])
    assert recall_at_precision(scores=scores, targets=targets, precision=0.9) == pytest.approx(0.9)
    assert recall_at_precision(scores=scores, targets=targets, precision=0.91) == pytest.approx(0.9)


def test_mean_average_precision_excludes_classes_without_positives_and_honours_mask():
    probs = np.array([[0.9, 0.2, 0.1], [0.8, 0.9, 0.3], [0.7, 0.1, 0.2], [0.6, 0.3, 0.4]])
    truth = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=bool)
    result = mean_average_precision(probs=probs, truth=truth)
    np.testing.assert_allclose(result.per_class_ap[:2], [(1 + 2 / 3) / 2, 1.0])
    assert math.isnan(result.per_class_ap[2]) and result.num_evaluated_classes == 2
    assert result.mean_ap == pytest.approx(((1 + 2 / 3) / 2 + 1.0) / 2)
    # Masking out the negative that outranks class 0's second positive makes that class perfect.
    mask = np.ones_like(truth)
    mask[1, 0] = False
    masked = mean_average_precision(probs=probs, truth=truth, mask=mask)
    assert masked.per_class_ap[0] == 1.0 and masked.mean_ap == 1.0
    assert json.dumps(masked.to_dict(), allow_nan=False)


def test_mean_average_precision_matches_sklearn_macro_average():
    rng = np.random.default_rng(7)
    truth = rng.random((200, 6)) < 0.3
    probs = (rng.random((200, 6)) + truth * 0.4).astype(np.float32)
    result = mean_average_precision(probs=probs, truth=truth)
    assert result.mean_ap == pytest.approx(skm.average_precision_score(truth, probs, average="macro"))


def test_shot_split_uses_comic_boundaries():
    per_class_ap = np.array([0.9, 0.8, 0.6, 0.4, 0.2, np.nan])
    train_counts = np.array([500, 101, 100, 20, 19, 3])
    split = shot_split_map(per_class_ap=per_class_ap, train_counts=train_counts)
    assert split["many"] == pytest.approx(0.85)  # > 100
    assert split["medium"] == pytest.approx(0.5)  # 20..100 inclusive
    assert split["few"] == pytest.approx(0.2)  # < 20, the NaN class left out
    empty = shot_split_map(per_class_ap=np.array([0.5]), train_counts=np.array([200]))
    assert math.isnan(empty["medium"]) and math.isnan(empty["few"])


def test_missing_label_metrics_ranks_only_candidate_cells():
    scores = np.array([[0.9, 0.1], [0.8, 0.7], [0.3, 0.6], [0.99, 0.95]], dtype=np.float32)
    hidden = np.array([[1, 0], [0, 1], [0, 0], [0, 0]], dtype=bool)
    candidate = np.ones((4, 2), bool)
    candidate[3] = False  # an observed positive: high score but no candidate, so it must not count
    report = missing_label_metrics(scores=scores, hidden=hidden, candidate=candidate)
    # Candidate ranking: 0.9 hidden, 0.8 no, 0.7 hidden, 0.6, 0.3, 0.1.
    assert report.average_precision == pytest.approx((1 + 2 / 3) / 2)
    assert report.num_hidden == 2 and report.num_candidates == 6
    assert report.precision_at[0.5] == 1.0  # k = 1
    assert report.precision_at[0.1] == 1.0  # k rounds to 0, raised to 1
    assert report.recall_at_target_precision == 0.5
    np.testing.assert_allclose(report.per_class_average_precision, [1.0, 1.0])
    np.testing.assert_array_equal(report.per_class_num_hidden, [1, 1])

    as_dict = report.to_dict()
    assert set(as_dict["precision_at"]) == {"0.1", "0.25", "0.5"}
    assert json.loads(json.dumps(as_dict, allow_nan=False))["average_precision"] == pytest.approx(5 / 6)


def test_missing_label_metrics_per_class_nan_and_hidden_must_be_candidates():
    scores = np.array([[0.9, 0.2], [0.4, 0.3], [0.5, 0.1]])
    hidden = np.array([[0, 0], [1, 0], [0, 0]], dtype=bool)
    report = missing_label_metrics(scores=scores, hidden=hidden, candidate=np.ones((3, 2), bool))
    assert report.per_class_average_precision[0] == pytest.approx(1 / 3)
    assert math.isnan(report.per_class_average_precision[1])
    assert math.isnan(report.per_class_precision_at[0.25][1])
    assert math.isnan(report.per_class_recall_at_target_precision[1])
    assert report.to_dict()["per_class"]["average_precision"][1] is None
    assert report.macro_average_precision == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="subset"):
        missing_label_metrics(scores=scores, hidden=hidden, candidate=~hidden)


def test_missing_label_precision_at_k_rounds_half_up():
    # Five hidden labels at ranks 1, 2, 4, 6, 8 of ten candidates in one class.
    scores = np.linspace(1.0, 0.1, 10).reshape(-1, 1)
    hidden = np.zeros((10, 1), bool)
    hidden[[0, 1, 3, 5, 7], 0] = True
    report = missing_label_metrics(
        scores=scores, hidden=hidden, candidate=np.ones_like(hidden), fractions=(0.1, 0.5, 1.0)
    )
    assert report.precision_at[0.1] == 1.0  # 0.5 rounds up to k = 1
    assert report.precision_at[0.5] == pytest.approx(2 / 3)  # 2.5 rounds up to k = 3
    assert report.precision_at[1.0] == pytest.approx(3 / 5)
    np.testing.assert_allclose(report.per_class_precision_at[0.5], [2 / 3])
