"""The accept-above estimator (issue 14, fresh report item 8): no stopping score and no "precision stays at
least 90%" until the Wilson interval's lower bound reaches the target. Values computed by hand from
Wilson's formula, with z = 1.959964 (95%) and z**2 = 3.841459."""

from __future__ import annotations

import math

import pytest

from labelfix.review.app.panel import estimate_text
from labelfix.review.insights import stop_score
from labelfix.review.models import PrecisionEstimate, wilson_interval, wilson_low_reaches

Z2 = 1.959964 ** 2


def test_wilson_interval_matches_the_formula_worked_by_hand():
    # 3 of 4 (the fresh user's A A X A): centre (0.75 + z²/8) / (1 + z²/4) = 0.62752,
    # half z / (1 + z²/4) * sqrt(0.75 * 0.25 / 4 + z² / 64) = 0.32688
    low, high = wilson_interval(3, 4)
    assert (low, high) == pytest.approx((0.30064, 0.95441), abs=1e-4)
    # 9 of 10: the doctest's 0.596-0.982
    assert wilson_interval(9, 10) == pytest.approx((0.59585, 0.98212), abs=1e-4)
    # no reject: the lower bound is n / (n + z²)
    for n in (1, 4, 34, 35, 100):
        assert wilson_interval(n, n)[0] == pytest.approx(n / (n + Z2), abs=1e-6)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_how_many_more_decisions_the_lower_bound_needs():
    # with no reject: n / (n + z²) >= 0.9  <=>  n >= 9 z² = 34.57, so 35 decisions
    assert 34 / (34 + Z2) < 0.9 <= 35 / (35 + Z2)
    assert wilson_low_reaches(0, 0, target=0.9) == 35
    assert wilson_low_reaches(10, 10, target=0.9) == 25
    assert wilson_low_reaches(35, 35, target=0.9) == 0
    # 3 of 4: 49 more accepts (52 of 53 reaches 0.9, 51 of 52 does not)
    assert wilson_low_reaches(3, 4, target=0.9) == 49
    assert wilson_interval(52, 53)[0] >= 0.9 > wilson_interval(51, 52)[0]
    assert wilson_low_reaches(3, 4, target=1.0) is None  # a reject: the bound never reaches 1


def test_a_stopping_score_only_where_the_lower_bound_reaches_the_target():
    # precision 75% from the top would have given a stopping score at 0.6 before; four decisions support none
    assert stop_score([(0.9, True), (0.8, True), (0.7, False), (0.6, True)], target=0.75) is None
    # 35 accepts from the top reach 0.9 (35 / 38.84 = 0.901); 34 do not
    assert stop_score([(1 - i / 100, True) for i in range(34)], target=0.9) is None
    assert stop_score([(1 - i / 100, True) for i in range(35)], target=0.9) == pytest.approx(0.66)
    # a reject under 40 accepts: 40 of 41 has lower bound 0.874 < 0.9, so the stop stays above the reject
    scored = [(1 - i / 100, True) for i in range(40)] + [(0.5, False)]
    assert wilson_interval(40, 41)[0] == pytest.approx(0.8740, abs=1e-4)
    assert stop_score(scored, target=0.9) == pytest.approx(0.61)
    # items of equal score go together: the reject at 0.61 joins the accept at 0.61
    assert stop_score([(1 - i / 100, True) for i in range(40)] + [(0.61, False)], target=0.9) == pytest.approx(0.62)


def _estimate(n, accepted, *, stop=None):
    low, high = wilson_interval(accepted, n)
    return PrecisionEstimate(category_id=1, reviewer="ana", n=n, accepted=accepted,
                             precision=accepted / n if n else None, low=low, high=high, confidence=0.95,
                             target=0.9, stop_score=stop, lowest_score_seen=None,
                             more_needed=wilson_low_reaches(accepted, n, target=0.9))


def test_the_words_claim_nothing_the_interval_does_not_support():
    text = estimate_text(_estimate(4, 3), "zero")
    assert text.startswith("Estimate from your last 4 decisions on 'zero' (3 added): precision about **75%**, "
                           "95% interval 30%–95%.")
    assert "≥" not in text and "stays" not in text
    assert "at least 49 more decisions" in text
    supported = estimate_text(_estimate(40, 40, stop=0.61), "zero")
    assert _estimate(40, 40).supported and not _estimate(4, 3).supported
    assert "Suggested stopping score: **0.6100**" in supported and "≥ 90% with 95% confidence" in supported
    assert "first" in estimate_text(_estimate(0, 0), "zero")
    assert math.isclose(_estimate(40, 40).low, 40 / (40 + Z2), rel_tol=1e-6)
