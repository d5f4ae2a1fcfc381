"""Per-class thresholds, pooled fallback, missing-count estimates and validation hiding."""

import json
import math
import warnings

import numpy as np
import pytest

from labelfix.suggest.thresholds import (
    estimate_missing_counts,
    simulate_validation_hiding,
    thresholds_for_precision,
)


def brute_force_threshold(scores, hidden, target):
    """Lowest distinct score whose flagged set has precision >= target (independent check)."""
    best = math.inf
    for threshold in np.unique(scores):
        if hidden[scores >= threshold].mean() >= target:
            best = min(best, float(threshold))
    return best


def two_class_case():
    # Class 0 ranks hidden x5, other, hidden, other x3: precision stays 1 down to rank 5.
    # Class 1 has only two hidden labels (below min_support=5), so it must use the pooled threshold.
    scores = np.array(
        [[1.0, 0.95], [0.9, 0.85], [0.8, 0.75], [0.7, 0.65], [0.6, 0.55],
         [0.5, 0.45], [0.4, 0.35], [0.3, 0.25], [0.2, 0.15], [0.1, 0.05]]
    )
    hidden = np.zeros((10, 2), bool)
    hidden[[0, 1, 2, 3, 4, 6], 0] = True
    hidden[[0, 5], 1] = True
    return scores, hidden, np.ones((10, 2), bool)


def test_class_threshold_is_the_lowest_reaching_the_target():
    scores, hidden, candidate = two_class_case()
    report = thresholds_for_precision(scores=scores, hidden=hidden, candidate=candidate)
    assert report.thresholds[0] == 0.6 and report.source[0] == "class" and not report.pooled[0]
    assert report.estimated_precision[0] == 1.0
    assert report.estimated_recall[0] == pytest.approx(5 / 6)
    # At precision 0.8, rank 7 (6 of 7 hidden) qualifies and recovers every hidden label.
    relaxed = thresholds_for_precision(
        scores=scores, hidden=hidden, candidate=candidate, target_precision=0.8
    )
    assert relaxed.thresholds[0] == 0.4 and relaxed.estimated_recall[0] == 1.0
    np.testing.assert_array_equal(report.support, [6, 2])


def test_tail_class_uses_the_pooled_threshold():
    scores, hidden, candidate = two_class_case()
    # min_support=3: the pooled threshold has 3 hidden positives above it (the default 5 would refuse it).
    report = thresholds_for_precision(scores=scores, hidden=hidden, candidate=candidate, min_support=3)
    # Pooled ranking: 1.0 h, 0.95 h, 0.9 h, 0.85, ... precision 1 for the top three only.
    assert report.pooled_threshold == 0.9
    assert report.pooled[1] and report.source[1] == "pooled"
    assert report.thresholds[1] == 0.9
    assert report.estimated_precision[1] == 1.0
    assert report.estimated_recall[1] == pytest.approx(3 / 8)
    assert report.pooled_threshold == brute_force_threshold(scores, hidden, 0.9)
    # With min_support=1, class 1 gets its own: only its top cell reaches 0.9.
    own = thresholds_for_precision(scores=scores, hidden=hidden, candidate=candidate, min_support=1)
    assert own.thresholds[1] == 0.95 and own.source[1] == "class"


def test_thresholds_match_brute_force_on_random_data():
    rng = np.random.default_rng(3)
    hidden = rng.random((150, 4)) < 0.15
    scores = np.round(rng.random((150, 4)) + 0.6 * hidden, 2).astype(np.float32)
    candidate = hidden | (rng.random((150, 4)) < 0.7)
    report = thresholds_for_precision(
        scores=scores, hidden=hidden, candidate=candidate, target_precision=0.7, min_support=1
    )
    for c in range(4):
        keep = candidate[:, c]
        expected = brute_force_threshold(scores[keep, c], hidden[keep, c], 0.7)
        assert report.thresholds[c] == pytest.approx(expected)


def test_unreachable_target_flags_nothing_unless_a_fallback_is_given():
    scores = np.array([[0.9], [0.8], [0.7], [0.6], [0.5], [0.4], [0.3]])
    hidden = np.array([[0], [1], [1], [1], [1], [1], [0]], dtype=bool)  # a negative on top
    candidate = np.ones_like(hidden)
    report = thresholds_for_precision(scores=scores, hidden=hidden, candidate=candidate)
    assert report.thresholds[0] == math.inf and report.source[0] == "unreachable"
    assert report.estimated_recall[0] == 0.0
    assert not report.flag(scores=scores, candidate=candidate).any()
    assert json.dumps(report.to_dict(), allow_nan=False)

    with_fallback = thresholds_for_precision(
        scores=scores, hidden=hidden, candidate=candidate, fallback=0.55
    )
    assert with_fallback.thresholds[0] == 0.55 and with_fallback.source[0] == "fallback"
    assert with_fallback.estimated_precision[0] == pytest.approx(3 / 4)
    assert with_fallback.estimated_recall[0] == pytest.approx(3 / 5)


def test_hidden_outside_candidates_is_an_error():
    scores, hidden, candidate = two_class_case()
    candidate[0, 0] = False
    with pytest.raises(ValueError, match="subset"):
        thresholds_for_precision(scores=scores, hidden=hidden, candidate=candidate)


def test_a_threshold_needs_min_hits_hidden_positives_above_it():
    """1 of 16 hidden positives above a threshold is "precision 1.00" from one cell: not a measurement (3 needed,
    and the 3rd hidden positive comes at precision 0.6)."""
    scores = np.linspace(1.0, 0.0, 40)[:, None]
    hidden = np.zeros((40, 1), bool)
    hidden[[0, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 33], 0] = True  # 1 on top, then 1 in 2
    candidate = np.ones_like(hidden)
    report = thresholds_for_precision(scores=scores, hidden=hidden, candidate=candidate, min_support=5)
    assert report.thresholds[0] == math.inf and report.source[0] == "unreachable"
    assert math.isinf(report.pooled_threshold)
    one_hit = thresholds_for_precision(scores=scores, hidden=hidden, candidate=candidate, min_support=1)
    assert one_hit.thresholds[0] == 1.0 and one_hit.estimated_recall[0] == 1 / 16


def test_estimate_missing_counts():
    scores, hidden, candidate = two_class_case()
    report = thresholds_for_precision(scores=scores, hidden=hidden, candidate=candidate, min_support=3)
    train_scores = np.array([[0.99, 0.99], [0.7, 0.95], [0.61, 0.1], [0.1, 0.1]], dtype=np.float32)
    train_candidate = np.ones((4, 2), bool)
    train_candidate[0, 0] = False  # an observed positive is not counted however high it scores
    estimate = estimate_missing_counts(scores=train_scores, candidate=train_candidate, report=report)
    np.testing.assert_array_equal(estimate.flagged, [2, 2])
    np.testing.assert_allclose(estimate.expected_among_flagged, [2.0, 2.0])
    # Class 0 finds 5/6 of its missing labels at its threshold, class 1 the pooled 3/8.
    np.testing.assert_allclose(estimate.expected_total, [2.4, 16 / 3])


def test_hiding_keeps_one_positive_per_image_and_hides_the_requested_fraction():
    rng = np.random.default_rng(0)
    observed = rng.random((400, 12)) < 0.3
    observed[:50] = False
    observed[:50, 0] = True  # images with a single positive: it can never be hidden
    after, hidden = simulate_validation_hiding(observed=observed, fraction=0.25, seed=1)
    assert hidden.sum() == int(np.floor(0.25 * observed.sum() + 0.5))
    assert not (hidden & ~observed).any()
    np.testing.assert_array_equal(after, observed & ~hidden)
    had_positive = observed.any(axis=1)
    assert (after.sum(axis=1)[had_positive] >= 1).all()
    assert not hidden[:50].any()
    again_after, again_hidden = simulate_validation_hiding(observed=observed, fraction=0.25, seed=1)
    np.testing.assert_array_equal(again_hidden, hidden)
    other = simulate_validation_hiding(observed=observed, fraction=0.25, seed=2)[1]
    assert (other != hidden).any()


def test_hiding_more_than_possible_warns_and_hides_what_it_can():
    observed = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1]], dtype=bool)
    with pytest.warns(UserWarning, match="keeping one per image"):
        after, hidden = simulate_validation_hiding(observed=observed, fraction=1.0, seed=0)
    assert hidden.sum() == 2 and (after.sum(axis=1) == 1).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, none_hidden = simulate_validation_hiding(observed=observed, fraction=0.0, seed=0)
    assert not none_hidden.any()
    with pytest.raises(ValueError):
        simulate_validation_hiding(observed=observed, fraction=1.5, seed=0)


def test_unseen_positive_correction_raises_precision_estimate():
    from labelfix.suggest.thresholds import thresholds_for_precision, unseen_positive_ratio_for

    # 6 candidates ranked; hidden at ranks 1, 3. Two of the "negatives" (ranks 2, 4) are genuinely missing.
    scores = np.array([[0.9], [0.8], [0.7], [0.6], [0.5], [0.4]])
    hidden = np.array([[1], [0], [1], [0], [0], [0]], dtype=bool)
    plain = thresholds_for_precision(scores=scores, hidden=hidden, candidate=np.ones_like(hidden),
                                     target_precision=0.9, min_support=1)
    assert plain.thresholds.tolist() == [0.9]  # 2/3 at 0.7 falls short of 0.9
    # m/h = 1: above 0.7 the corrected positives are 2 * 2 = 4 > 3 flagged -> precision 1.0
    corrected = thresholds_for_precision(scores=scores, hidden=hidden, candidate=np.ones_like(hidden),
                                         target_precision=0.9, min_support=1, unseen_positive_ratio=1.0)
    assert corrected.thresholds.tolist() == [0.6]  # at 0.6: min(2*2, 4)/4 = 1.0
    assert corrected.estimated_recall.tolist() == [1.0]
    ratio = unseen_positive_ratio_for(observed_before_hiding=np.ones((4, 1), bool),
                                      hidden=np.array([[1], [1], [0], [0]], bool), expected_missing_rate=0.5)
    assert ratio.tolist() == [2.0]  # 4 observed -> 4 missing at 50%, per 2 hidden
