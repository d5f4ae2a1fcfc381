"""Simulated review rounds: the reviewer's decisions reach the store and the next round; rejected cells
are never suggested again; the recovery curve and the reviews-to-recover counts."""

from __future__ import annotations

import numpy as np
import pytest

from labelfix.bench.harness import BenchSettings, load_features_bench_data, prepare_seed
from labelfix.bench.review_rounds import (RoundsOutcome, random_order_curve, round_budget, simulate_review_rounds,
                                          top_unreviewed)
from tests.test_bench import write_synthetic_features


def test_top_unreviewed_ranks_only_open_cells_best_first():
    scores = np.array([[0.9, 0.2, 0.7], [0.95, 0.3, 0.1]])
    open_cells = np.array([[True, True, True], [False, True, True]])
    rows, columns = top_unreviewed(scores=scores, open_cells=open_cells, count=3)
    assert list(zip(rows.tolist(), columns.tolist())) == [(0, 0), (0, 2), (1, 1)]  # 0.95 is not open


def test_reviews_to_recover_reads_the_item_curve():
    outcome = RoundsOutcome(method="x", seed=0, num_hidden=4, recovered_curve=[1, 1, 2, 3, 3, 4])
    assert outcome.reviews_to_recover(0.5) == 3   # 2 of 4 after the 3rd review
    assert outcome.reviews_to_recover(0.8) == 6   # ceil(3.2) = 4 after the 6th
    assert RoundsOutcome(method="x", seed=0, num_hidden=4, recovered_curve=[0, 1]).reviews_to_recover(0.8) is None
    assert round_budget(budget=0.05, num_unknown=1000) == 50


@pytest.fixture(scope="module")
def seed_context(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rounds")
    data = load_features_bench_data(write_synthetic_features(folder / "features.parquet", n=200))
    ctx = prepare_seed(data, BenchSettings(methods=["an"], seeds=[0], hide_rate=0.4), seed=0, work_dir=folder)
    yield ctx
    ctx.close()


def test_rounds_feed_decisions_back_and_never_resuggest(seed_context):
    ctx = seed_context
    settings = BenchSettings(methods=["an"], seeds=[0], epochs=3)
    outcome = simulate_review_rounds(ctx, "an", settings, rounds=2, budget=20)
    store = ctx.store
    assert [r["round"] for r in outcome.rounds] == [0, 1, 2]
    # every reviewed cell was decided once, by the simulated reviewer, as the hidden truth says
    decisions = store.fetchall("SELECT s.image_id, s.category_id, e.decision FROM review_events e "
                               "JOIN suggestions s USING (suggestion_id) WHERE e.reviewer = 'simulated'")
    assert len(decisions) == 40 and len({(i, c) for i, c, _ in decisions}) == 40
    row_of = {int(image_id): row for row, image_id in enumerate(ctx.data.image_ids)}
    for image_id, category_id, decision in decisions:
        assert (decision == "accept") == bool(ctx.hidden[row_of[image_id], category_id - 1])
    # the store's labels now hold the decisions: accepted -> positive, rejected -> verified negative
    states = dict(((i, c), s) for i, c, s in store.fetchall("SELECT image_id, category_id, state FROM labels"))
    for image_id, category_id, decision in decisions:
        assert states[(image_id, category_id)] == (1 if decision == "accept" else -1)
    accepted = sum(r.get("accepted", 0) for r in outcome.rounds)
    assert outcome.recovered_curve[-1] == accepted and len(outcome.recovered_curve) == 40
    assert outcome.rounds[1]["reviewed_before"] == 20 and outcome.rounds[2]["reviewed_before"] == 40
    # a rejected cell is never filed again in a later round (nor any reviewed cell)
    filed = store.fetchall("SELECT image_id, category_id, count(*) FROM suggestions GROUP BY ALL HAVING count(*) > 1")
    assert filed == []


def test_random_order_reference_spends_the_same_budget(seed_context):
    reference = random_order_curve(seed_context, rounds=2, budget=20)
    assert len(reference.recovered_curve) == 40 and reference.rounds[-1]["reviewed_after"] == 40


def test_cli_review_rounds_writes_table_and_plot(tmp_path):
    import json

    from labelfix.cli.main import main

    features = write_synthetic_features(tmp_path / "features.parquet", n=160)
    out = tmp_path / "out"
    code = main(["bench", "--features", str(features), "--methods", "an", "--seeds", "0", "--epochs", "3",
                 "--review-rounds", "2", "--review-budget", "0.05", "--out", str(out), "--quiet"])
    assert code == 0
    payload = json.loads((out / "review_rounds.json").read_text())
    assert [s["method"] for s in payload["summary"]] == ["an", "random"]
    an = payload["summary"][0]
    assert len(an["recovered_share"]) == 2 and an["recovered_share"][1] >= an["recovered_share"][0]
    assert len(an["test_map"]) == 3
    assert "reviews to 50%" in (out / "review_rounds.md").read_text()
    assert (out / "review_rounds.png").stat().st_size > 0


def test_simulated_suggestions_leave_the_id_sequence_usable(seed_context):
    # After the rounds filed suggestions, a default-id insert (what `labelfix suggest` does) must not collide.
    store = seed_context.store
    store.execute("INSERT INTO suggestions (run_id, image_id, category_id, kind, score, rank_in_class) "
                  "VALUES (1, 1, 1, 'missing', 0.5, 1)")
    assert store.scalar("SELECT count(DISTINCT suggestion_id) = count(*) FROM suggestions")
