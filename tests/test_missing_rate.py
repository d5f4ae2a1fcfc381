"""The estimate of val's own missed positives (labelfix.suggest.missing_rate) and the "auto" setting."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from labelfix.suggest.arrays import calibrate_validation
from labelfix.suggest.missing_rate import estimate_missing_rate, resolve_missing_rate
from labelfix.suggest.run import SuggestConfig


def _one_class(hidden_scores, missed_scores, labelled_scores, negative_scores):
    """Column arrays of one class: hidden positives, missed (unknown) positives, kept labels, negatives."""
    scores = np.concatenate([hidden_scores, missed_scores, labelled_scores, negative_scores]).reshape(-1, 1)
    n_h, n_m, n_l = len(hidden_scores), len(missed_scores), len(labelled_scores)
    hidden = np.zeros_like(scores, dtype=bool)
    hidden[:n_h] = True
    observed = hidden.copy()
    observed[n_h + n_m:n_h + n_m + n_l] = True
    candidate = ~observed | hidden
    return scores, observed, hidden, candidate


def test_the_ratio_at_the_cleanest_top_quantile_is_missed_per_hidden():
    # 8 hidden at 0.92..0.85; 4 missed positives among them (0.5 per hidden); 20 negatives at 0.86, just below
    # the lowest threshold (the top 75 % of the hidden ones), so every quantile measures 0.5.
    hidden = [0.92, 0.91, 0.90, 0.89, 0.88, 0.87, 0.86, 0.85]
    missed = [0.915, 0.895, 0.875, 0.855]
    scores, observed, hidden_mask, candidate = _one_class(hidden, missed, [0.9] * 12, [0.86] * 20)
    estimate = estimate_missing_rate(scores=scores, observed=observed, hidden=hidden_mask, candidate=candidate,
                                     min_hits=1)
    # Top 25 % of hidden = 2 cells (threshold 0.91): unknown at or above it = 1 missed (0.915): ratio 0.5.
    # Top 50 % (0.89): missed 0.915, 0.895 -> 2 / 4 = 0.5. Top 75 % (6 hidden, 0.87): 3 missed + 0 negatives
    # (negatives score 0.86 < 0.87) -> 0.5 too; the first of equal ratios is kept: the top quarter.
    assert estimate.missed_per_hidden == pytest.approx(0.5)
    assert estimate.quantile == 0.25 and estimate.hits == 2
    # 0.5 x 8 hidden = 4 missed of 20 labelled + 4: 1/6.
    assert estimate.rate == pytest.approx(4 / 24)
    assert "17%" in estimate.reason


def test_negatives_among_the_top_raise_the_ratio_and_the_smallest_wins():
    hidden = [0.9, 0.8, 0.7, 0.6]
    scores, observed, hidden_mask, candidate = _one_class(hidden, [0.85, 0.65], [0.7] * 6, [0.75, 0.55, 0.1])
    estimate = estimate_missing_rate(scores=scores, observed=observed, hidden=hidden_mask, candidate=candidate,
                                     min_hits=1, min_class_hidden=1)
    # q 0.25: t = 0.9, nothing unknown above: ratio 0 / 1 = 0 -- the minimum (an under-estimate from one hit).
    # With min_hits 2 the top quarter does not count: q 0.5 (t 0.8): 0.85 -> 1 / 2; q 0.75 (t 0.7): 0.85, 0.75
    # -> 2 / 3. The smallest is 0.5.
    assert estimate.missed_per_hidden == 0.0
    estimate = estimate_missing_rate(scores=scores, observed=observed, hidden=hidden_mask, candidate=candidate,
                                     min_hits=2, min_class_hidden=1)
    assert estimate.missed_per_hidden == pytest.approx(0.5) and estimate.quantile == 0.5


def test_classes_with_few_hidden_positives_are_left_out():
    # Class 0: 5 hidden, no missed, clean. Class 1: one hidden positive scoring low, under 50 negatives.
    good = _one_class([0.9, 0.85, 0.8, 0.75, 0.7], [], [0.8] * 5, [0.1] * 50)
    weak = _one_class([0.2], [], [0.5] * 9, [0.3] * 50)
    scores = np.zeros((60, 2))
    masks = [np.zeros((60, 2), bool) for _ in range(3)]
    for k, arrays in enumerate((good, weak)):
        scores[:, k] = arrays[0][:, 0]
        for mask, column in zip(masks, arrays[1:]):
            mask[:, k] = column[:, 0]
    observed, hidden, candidate = masks
    estimate = estimate_missing_rate(scores=scores, observed=observed, hidden=hidden, candidate=candidate,
                                     min_hits=1)
    assert estimate.missed_per_hidden == 0.0 and estimate.rate == 0.0
    with_weak = estimate_missing_rate(scores=scores, observed=observed, hidden=hidden, candidate=candidate,
                                      min_hits=1, min_class_hidden=1)
    assert with_weak.missed_per_hidden > 1.0  # the weak class's 50 negatives outscore its one hidden positive


def test_scar_simulation_recovers_the_rate():
    rng = np.random.default_rng(0)
    n, classes, rate = 4000, 3, 0.3
    truth = rng.random((n, classes)) < 0.2
    scores = np.where(truth, rng.beta(5, 2, truth.shape), rng.beta(1, 6, truth.shape))
    observed = truth & (rng.random(truth.shape) >= rate)
    hidden = observed & (rng.random(truth.shape) < 0.4)
    estimate = estimate_missing_rate(scores=scores, observed=observed, hidden=hidden, candidate=~observed | hidden)
    true_rate = 1 - observed.sum() / truth.sum()
    # Few negatives score like the top half of the positives, so the bound is close; the smaller of two noisy
    # ratios errs a little low (here 0.27 against 0.29).
    assert true_rate == pytest.approx(0.3, abs=0.02)
    assert estimate.rate == pytest.approx(true_rate, abs=0.04)


def test_too_few_hidden_is_not_estimable_and_auto_falls_back_to_zero_in_words():
    scores, observed, hidden, candidate = _one_class([0.9] * 3, [], [0.8] * 3, [0.1] * 5)
    estimate = estimate_missing_rate(scores=scores, observed=observed, hidden=hidden, candidate=candidate)
    assert not estimate.estimable and math.isnan(estimate.missed_per_hidden)
    assert "3 hidden val positive(s)" in estimate.reason
    rate, words = resolve_missing_rate("auto", scores=scores, observed=observed, hidden=hidden, candidate=candidate)
    assert rate == 0.0 and "lower bound" in words
    rate, words = resolve_missing_rate(0.25, scores=scores, observed=observed, hidden=hidden, candidate=candidate)
    assert rate == 0.25 and "the miss rate given, 25%" in words
    assert resolve_missing_rate(0.0, scores=scores, observed=observed, hidden=hidden, candidate=candidate) == (
        0.0, None)


def test_nan_scores_are_left_out():
    scores, observed, hidden, candidate = _one_class([0.9, 0.8, 0.7, 0.6, 0.5], [0.85], [0.7] * 5, [0.1] * 5)
    scores[5] = np.nan  # the missed positive was not scored
    estimate = estimate_missing_rate(scores=scores, observed=observed, hidden=hidden, candidate=candidate,
                                     min_hits=1)
    assert estimate.missed_per_hidden == 0.0


def test_shape_mismatch_is_one_value_error():
    with pytest.raises(ValueError, match="one shape"):
        estimate_missing_rate(scores=np.zeros((3, 2)), observed=np.zeros((3, 1), bool),
                              hidden=np.zeros((3, 2), bool), candidate=np.zeros((3, 2), bool))


def test_calibrate_validation_says_the_estimated_rate_and_uses_it():
    rng = np.random.default_rng(1)
    truth = rng.random((600, 2)) < 0.3
    truth[:, 0] |= truth[:, 1]  # two labels per image often, so hiding keeps one per image and still hides
    scores = np.where(truth, rng.beta(6, 2, truth.shape), rng.beta(1, 5, truth.shape))
    states = np.where(truth & (rng.random(truth.shape) >= 0.35), 1, 0)
    auto, notes = calibrate_validation(states=states, scores=scores, expected_missing_rate="auto")
    zero, zero_notes = calibrate_validation(states=states, scores=scores)  # the default: no correction
    assert auto.missing_rate_estimated and auto.missing_rate > 0 and not auto.measured.any()
    assert not zero.missing_rate_estimated and zero.missing_rate == 0.0
    rate_note = [note for note in notes if "look missed by the annotators" in note]
    assert len(rate_note) == 1 and not any("look missed" in note for note in zero_notes)
    # Correcting for val's own missed positives raises the measured precision, so thresholds can only fall.
    assert np.all(auto.thresholds <= zero.thresholds)
    assert np.any(auto.thresholds < zero.thresholds)


@pytest.mark.parametrize(("given", "expected"), [("auto", "auto"), (" AUTO ", "auto"), (0.3, 0.3), ("0.3", 0.3),
                                                 (0, 0.0)])
def test_suggest_config_takes_a_rate_or_auto(given, expected):
    assert SuggestConfig().expected_missing_rate == 0.0  # opt-in: the estimate can overstate precision
    assert SuggestConfig(expected_missing_rate=given).expected_missing_rate == expected


@pytest.mark.parametrize("given", ["abc", 1.0, -0.1, "nan", float("inf"), True, None])
def test_suggest_config_refuses_anything_else_in_one_message(given):
    with pytest.raises(ValidationError, match=r"must be 'auto' or a number in \[0, 1\)"):
        SuggestConfig(expected_missing_rate=given)
