"""The browser benchmark's demo store (labelfix.bench.speed.review_browser) at a tiny size: both kinds, ranked."""

from __future__ import annotations

import duckdb

from labelfix.bench.speed.review_browser import _summary, build_review_store


def test_the_benchmark_store_has_missing_and_spurious_suggestions_ranked_most_likely_first(tmp_path):
    db = build_review_store(tmp_path, n_images=24)
    connection = duckdb.connect(str(db), read_only=True)
    try:
        kinds = dict(connection.execute("SELECT kind, count(*) FROM suggestions GROUP BY kind").fetchall())
        first = connection.execute(
            "SELECT kind, arg_min(score, rank_in_class) = CASE WHEN kind = 'missing' THEN max(score) ELSE min(score) "
            "END FROM suggestions GROUP BY kind, category_id HAVING count(*) > 1").fetchall()
    finally:
        connection.close()
    assert kinds["missing"] > 0 and kinds["spurious"] > 0
    assert first and all(ok for _, ok in first)  # rank 1: the highest missing score, the lowest spurious score


def test_summary_reports_the_95th_percentile():
    summary = _summary([0.1] * 19 + [1.0])
    assert (summary["n"], summary["p50"], summary["p95"], summary["max"]) == (20, 0.1, 0.1, 1.0)
