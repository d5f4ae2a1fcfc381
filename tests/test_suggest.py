"""Suggestions: per-class thresholds, replacement, spurious labels, reasons, auto-accept and revert, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# The tiny val split has many single-label images, so fewer positives can be hidden than asked.
pytestmark = pytest.mark.filterwarnings("ignore:asked to hide:UserWarning")

from labelfix.cli.main import main
from labelfix.suggest.scoring import combine_scores, read_split_scores
from labelfix.suggest.run import SuggestConfig, revert_auto, suggest
from labelfix.errors import LabelfixError
from labelfix.store import open_store
from labelfix.store.database import Store
from labelfix.store.labels import load_label_matrix, set_label
from labelfix.store.runs import create_run, finish_run, read_predictions, record_epoch, write_corrections, write_predictions

CLASSES = {1: "head", 2: "mid", 3: "tail"}
PREVALENCE = {1: 0.6, 2: 0.4, 3: 0.3}
TRAIN = np.arange(1, 41)
VAL = np.arange(101, 201)
LOW_SCORE_ORIGINAL = (1, 1)  # an annotated train positive the model disputes


def _scores(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Separable scores on different scales: the tail class scores low even for its positives."""
    scores = np.empty(truth.shape, np.float32)
    for column, (low_neg, high_neg, low_pos, high_pos) in enumerate(
            [(0.0, 0.5, 0.7, 1.0), (0.0, 0.4, 0.6, 0.95), (0.0, 0.15, 0.2, 0.35)]):
        n = truth.shape[0]
        scores[:, column] = np.where(truth[:, column], rng.uniform(low_pos, high_pos, n),
                                     rng.uniform(low_neg, high_neg, n))
    return scores


def build_store(path: Path, *, method: str = "splc", n_runs: int = 1) -> tuple[Store, list[int]]:
    """Train images with 40% of positives missing, a fully labelled val split, and synthetic predictions."""
    rng = np.random.default_rng(7)
    store = open_store(path)
    image_ids = np.concatenate([TRAIN, VAL])
    truth = np.stack([rng.random(len(image_ids)) < PREVALENCE[c] for c in CLASSES], axis=1)
    truth[:, 0] |= ~truth.any(axis=1)  # every image has a label
    observed = truth.copy()
    train_rows = np.arange(len(TRAIN))
    observed[train_rows] &= rng.random((len(TRAIN), 3)) > 0.4
    observed[train_rows, 0] |= ~observed[train_rows].any(axis=1)
    observed[0, 0] = True
    with store.transaction():
        store.execute("INSERT INTO sources (source_id, kind, path, sha256, images_root, header, ingested_at) "
                      "VALUES (1, 'coco', 'x.json', 'abc', NULL, NULL, now())")
        for cid, name in CLASSES.items():
            store.execute("INSERT INTO categories VALUES (?, ?, NULL, '{}')", [cid, name])
        for image_id in image_ids.tolist():
            split = "train" if image_id < 100 else "val"
            store.execute("INSERT INTO images (image_id, split, source_id, record) VALUES (?, ?, 1, '{}')",
                          [image_id, split])
        for row, column in zip(*np.nonzero(observed)):
            cell = [int(image_ids[row]), list(CLASSES)[column]]
            store.execute("INSERT INTO original_labels VALUES (?, ?, 1)", cell)
            store.execute("INSERT INTO labels (image_id, category_id, state, origin) VALUES (?, ?, 1, 'original')",
                          cell)
    run_ids = []
    for index in range(n_runs):
        probs = _scores(truth, rng)
        probs[0, 0] = 0.01  # LOW_SCORE_ORIGINAL
        run_id = create_run(store, method=method if index == 0 else "an", mode="head", config={})
        write_predictions(store, run_id=run_id, image_ids=image_ids, category_ids=np.array(list(CLASSES)),
                          probs=probs, folds=np.where(image_ids < 100, image_ids % 3, -1))
        for epoch in range(10):  # trained 10 epochs (0-9); the scores stored are the best epoch's, 6 (from 0)
            record_epoch(store, run_id=run_id, epoch=epoch, metrics={})
        finish_run(store, run_id=run_id, metrics={"best_epoch": 6})
        run_ids.append(run_id)
    return store, run_ids


def suggestions(store: Store, *, kind: str = "missing", current: bool = True) -> list[tuple]:
    where = "AND superseded_at IS NULL" if current else ""
    return store.fetchall(f"SELECT suggestion_id, image_id, category_id, score, rank_in_class, threshold, reason "
                          f"FROM suggestions WHERE kind = ? {where} ORDER BY category_id, rank_in_class", [kind])


@pytest.fixture
def store(tmp_path: Path):
    store, _ = build_store(tmp_path / "s.duckdb")
    yield store
    store.close()


def dense_expected(store: Store, thresholds: np.ndarray) -> set[tuple[int, int]]:
    """The small dense computation the streaming path must agree with."""
    predictions = read_predictions(store, run_id=1)
    labels = load_label_matrix(store)
    assert np.array_equal(predictions.image_ids, labels.image_ids)
    train = labels.splits == "train"
    flagged = (labels.states == 0) & train[:, None] & (predictions.probs >= thresholds[None, :])
    return {(int(labels.image_ids[r]), int(labels.category_ids[c])) for r, c in zip(*np.nonzero(flagged))}


def test_streaming_suggestions_match_dense_thresholding_and_rank_by_class(store: Store):
    report = suggest(store, config=SuggestConfig(min_support=2, batch_rows=7))
    rows = suggestions(store)
    assert {(r[1], r[2]) for r in rows} == dense_expected(store, report.thresholds.thresholds)
    assert rows and all(image_id < 100 for _, image_id, *_ in rows)  # train split only
    for category_id in CLASSES:
        ranked = [r for r in rows if r[2] == category_id]
        assert [r[4] for r in ranked] == list(range(1, len(ranked) + 1))
        assert all(a[3] >= b[3] for a, b in zip(ranked, ranked[1:]))
        assert all(r[3] >= r[5] - 1e-6 for r in ranked)  # at or above the class threshold
    assert report.n_missing == len(rows)
    assert report.to_dict()["classes"][0]["name"] == "head"


def test_tail_class_gets_its_own_lower_threshold_and_suggestions(store: Store):
    report = suggest(store, config=SuggestConfig(min_support=2))
    by_name = {c.name: c for c in report.classes}
    assert by_name["tail"].threshold_source == "class" and not by_name["tail"].pooled
    assert by_name["tail"].threshold < by_name["head"].threshold
    assert by_name["tail"].missing > 0
    # With a huge min_support every class is pooled: one threshold set by the head classes (or, where the pool
    # has fewer than 3 hidden positives above any threshold reaching the target, a ranked list).
    pooled = suggest(store, config=SuggestConfig(min_support=10_000))
    assert {c.threshold_source for c in pooled.classes} <= {"pooled", "unreachable", "uncalibrated"}
    assert len({c.threshold for c in pooled.classes if c.calibrated}) <= 1


def test_negatives_and_decided_cells_are_never_suggested_again(store: Store):
    # below_target_top_k=0: a class whose flagged cells were all decided would otherwise get a below-target
    # ranked list of its next cells (tested in test_suggest_regimes), which would change the count here.
    suggest(store, config=SuggestConfig(min_support=2, below_target_top_k=0))
    first = suggestions(store)
    negative, rejected, accepted = first[0], first[1], first[-1]
    with store.transaction():
        set_label(store, image_id=negative[1], category_id=negative[2], state=-1, origin="manual")
        # A reject event alone (cell left unknown) must also keep the cell out.
        store.execute("INSERT INTO review_events (suggestion_id, image_id, category_id, reviewer, decision) "
                      "VALUES (?, ?, ?, 'ana', 'reject')", [rejected[0], rejected[1], rejected[2]])
        store.execute("INSERT INTO review_events (suggestion_id, image_id, category_id, reviewer, decision) "
                      "VALUES (?, ?, ?, 'ana', 'accept')", [accepted[0], accepted[1], accepted[2]])
        set_label(store, image_id=accepted[1], category_id=accepted[2], state=1, origin="accepted")
    report = suggest(store, config=SuggestConfig(min_support=2, below_target_top_k=0))
    second = store.fetchall("SELECT image_id, category_id FROM suggestions WHERE call_id = ? AND kind = 'missing'",
                            [report.call_id])
    cells = {tuple(r) for r in second}
    for row in (negative, rejected, accepted):
        assert (row[1], row[2]) not in cells
    assert len(cells) == len(first) - 3


def test_rerun_replaces_open_suggestions_but_keeps_decided_ones(store: Store):
    first_report = suggest(store, config=SuggestConfig(min_support=2))
    first = suggestions(store)
    decided, skipped = first[0], first[1]
    with store.transaction():
        store.execute("INSERT INTO review_events (suggestion_id, image_id, category_id, reviewer, decision) "
                      "VALUES (?, ?, ?, 'ana', 'reject')", list(decided[:3]))
        store.execute("INSERT INTO review_events (suggestion_id, image_id, category_id, reviewer, decision) "
                      "VALUES (?, ?, ?, 'ana', 'skip')", list(skipped[:3]))
    report = suggest(store, config=SuggestConfig(min_support=2))
    assert report.n_replaced == first_report.n_missing + first_report.n_spurious - 1
    ids = {r[0]: r for r in store.fetchall("SELECT suggestion_id, call_id, superseded_at FROM suggestions")}
    assert ids[decided[0]][2] is None and ids[decided[0]][1] == first_report.call_id  # decided: kept as is
    assert ids[skipped[0]][2] is not None  # skipped: kept for its history, superseded
    untouched = [r[0] for r in first[2:]]
    assert not any(s in ids for s in untouched)  # untouched open suggestions: replaced
    current = store.fetchall("SELECT call_id, count(*) FROM suggestions WHERE superseded_at IS NULL GROUP BY ALL "
                             "ORDER BY ALL")
    assert current == [(first_report.call_id, 1), (report.call_id, report.n_missing + report.n_spurious)]


def test_a_new_runs_suggestions_say_what_happens_to_an_older_runs_open_ones(tmp_path: Path, capsys):
    """Fresh report 3, finding 11: "0 earlier open suggestions replaced" while run 1's 110 stayed open (and
    out of the queue, which shows the newest run's)."""
    store, run_ids = build_store(tmp_path / "two.duckdb", n_runs=2)
    with store:
        first = suggest(store, config=SuggestConfig(run_ids=[run_ids[0]], min_support=2))
        assert not any("other runs" in n for n in first.notes)
        second = suggest(store, config=SuggestConfig(run_ids=[run_ids[1]], min_support=2))
        open_first = first.n_missing + first.n_spurious
        assert second.n_replaced == 0
        assert (f"earlier open suggestions of other runs are left as they are (run 1 has {open_first}): the review "
                f"queue shows the newest run's, these (run 2); the older ones stay in the store, undecided, and are not "
                f"shown") in second.notes
        again = suggest(store, config=SuggestConfig(run_ids=[run_ids[0]], min_support=2))  # the older run again
        assert again.n_replaced == open_first
        assert any("the review queue shows the newest run's (run 2), not these" in n for n in again.notes)
        again.print()
    assert f"{open_first} earlier open suggestions of run 1 replaced" in " ".join(capsys.readouterr().out.split())


def test_spurious_suggestions_for_disputed_original_labels(store: Store):
    suggest(store, config=SuggestConfig(min_support=2))
    rows = suggestions(store, kind="spurious")
    assert [(r[1], r[2]) for r in rows] == [LOW_SCORE_ORIGINAL]
    assert rows[0][3] == pytest.approx(0.01) and rows[0][4] == 1 and "annotated" in rows[0][6]
    store.execute("DELETE FROM suggestions")
    report = suggest(store, config=SuggestConfig(min_support=2, spurious=False))
    assert report.n_spurious == 0 and not suggestions(store, kind="spurious")


def test_reason_names_method_epoch_and_corrections(store: Store):
    predictions = read_predictions(store, run_id=1)
    labels = load_label_matrix(store)
    train_unknown = np.nonzero((labels.states == 0) & (labels.splits == "train")[:, None])
    best = np.argmax(predictions.probs[train_unknown])
    cell = (int(labels.image_ids[train_unknown[0][best]]), int(labels.category_ids[train_unknown[1][best]]))
    write_corrections(store, run_id=1, image_ids=np.array([cell[0], cell[0]]), category_ids=np.array([cell[1]] * 2),
                      epochs=np.array([5, 3]), treated_as=np.array([1, 1]))
    suggest(store, config=SuggestConfig(min_support=2))
    reasons = {(r[1], r[2]): r[6] for r in suggestions(store)}
    # the epoch whose scores were stored, counted from 1 like `labelfix train` / `runs` (not the last one trained)
    assert reasons[cell].startswith("splc run 1, epoch 7: ")
    assert reasons[cell].endswith("corrected by splc (run 1) at epoch 4")  # first treated at epoch 3 from 0
    assert sum("corrected" in r for r in reasons.values()) == 1


def test_auto_accept_sets_origin_auto_records_events_and_reverts(store: Store):
    before = store.fetchall("SELECT * FROM labels ORDER BY ALL")
    report = suggest(store, config=SuggestConfig(min_support=2, auto_accept_above=0.6))
    auto = store.fetchall("SELECT image_id, category_id FROM labels WHERE origin = 'auto' AND state = 1 ORDER BY ALL")
    expected = store.fetchall("SELECT image_id, category_id FROM suggestions WHERE kind = 'missing' AND score > 0.6 "
                              "ORDER BY ALL")
    assert auto == expected and report.n_auto_accepted == len(auto) > 0
    events = store.fetchall("SELECT reviewer, decision, count(*) FROM review_events GROUP BY ALL")
    assert events == [("auto", "auto_accept", len(auto))]
    assert revert_auto(store) == len(auto)
    assert store.fetchall("SELECT * FROM labels ORDER BY ALL") == before
    undo = store.fetchall("SELECT count(*) FROM review_events u JOIN review_events e ON u.undoes_event_id = e.event_id "
                          "WHERE u.decision = 'undo' AND e.decision = 'auto_accept'")
    assert undo == [(len(auto),)]
    assert revert_auto(store) == 0  # nothing left in force


def test_unknown_run_is_a_clear_error(store: Store):
    with pytest.raises(LabelfixError, match="run 99 does not exist"):
        suggest(store, config=SuggestConfig(run_ids=[99]))


def test_combined_scores_in_sql_match_numpy(tmp_path: Path):
    store, run_ids = build_store(tmp_path / "two.duckdb", n_runs=2)
    with store:
        dense = [read_predictions(store, run_id=r) for r in run_ids]
        val_rows = np.isin(dense[0].image_ids, VAL)
        for combine in ("mean", "max", "rank_mean"):
            from_sql = read_split_scores(store, run_ids=run_ids, combine=combine, split="val", batch_rows=50)
            # Ranks are taken over every split of a run, as percent_rank does in SQL.
            expected = combine_scores(scores=[d.probs for d in dense], combine=combine)[val_rows]
            np.testing.assert_allclose(from_sql.scores, expected, atol=1e-6)
        report = suggest(store, config=SuggestConfig(run_ids=run_ids, min_support=2))
        assert report.run_id not in run_ids  # filed under an ensemble run row
        assert store.scalar("SELECT status FROM runs WHERE run_id = ?", [report.run_id]) == "ensemble"
        reason = store.scalar("SELECT reason FROM suggestions LIMIT 1")
        assert reason.startswith("mean of splc run 1, epoch 7 + an run 2, epoch 7")
        again = suggest(store, config=SuggestConfig(run_ids=run_ids, min_support=2))
        assert again.run_id == report.run_id


def test_cli_suggest_prints_summary_and_reports_unknown_run(tmp_path: Path, capsys):
    db = tmp_path / "cli.duckdb"
    build_store(db)[0].close()
    assert main(["suggest", "--db", str(db), "--max-per-class", "2"]) == 0
    out = capsys.readouterr().out
    assert "all classes" in out and "tail" in out and "suggestions written" in out
    assert main(["suggest", "--db", str(db), "--run", "99"]) == 2
    assert "run 99 does not exist" in capsys.readouterr().err
    assert main(["revert-auto", "--db", str(db)]) == 0
    with open_store(db) as store:
        per_class = store.fetchall("SELECT category_id, kind, max(rank_in_class) FROM suggestions "
                                   "WHERE superseded_at IS NULL GROUP BY ALL")
        assert per_class and all(n <= 2 for *_, n in per_class)


def test_a_new_call_warns_when_it_replaces_a_queue_reviewers_work_on(tmp_path: Path, capsys):
    """A first call and a call on an untouched queue say nothing; a call while ana holds items, bo skipped
    one and decisions exist says who held what, what happened to the open items and that decisions stay."""
    import datetime as dt
    import json

    from labelfix.review.service import ReviewService

    db = tmp_path / "queue.duckdb"
    store, _ = build_store(db)
    assert suggest(store, config=SuggestConfig(min_support=2)).queue_warning is None
    assert suggest(store, config=SuggestConfig(min_support=2)).queue_warning is None  # nobody touched it
    service = ReviewService(store)
    held = service.next_items(reviewer="ana", n=3)
    service.decide(suggestion_id=held[0].suggestion_id, decision="accept", reviewer="ana")
    other = service.next_items(reviewer="bo", n=1)[0]
    service.decide(suggestion_id=other.suggestion_id, decision="skip", reviewer="bo")
    store.close()
    assert main(["suggest", "--db", str(db), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    warning = report["queue_warning"]
    assert "warning: the review queue of run" in " ".join(captured.err.split())
    assert "ana was holding 2 items" in warning and "1 decision already made is kept" in warning
    assert "1 skipped/unsure ones are kept in the history as superseded" in warning
    with open_store(db) as store:
        assert store.scalar("SELECT count(*) FROM leases WHERE expires_at > ?",
                            [dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)]) == 0
        assert store.scalar("SELECT count(*) FROM review_events WHERE decision = 'accept'") == 1


def test_a_reverted_auto_accept_is_not_auto_accepted_again(store: Store, capsys):
    """Fresh-user report, item 15: revert-auto then suggest --auto-accept-above auto-accepted the same cells again."""
    first = suggest(store, config=SuggestConfig(min_support=2, auto_accept_above=0.6))
    reverted = store.fetchall("SELECT image_id, category_id FROM labels WHERE origin = 'auto' ORDER BY ALL")
    assert first.n_auto_accepted == len(reverted) > 0 and first.n_auto_held_back == 0
    assert revert_auto(store) == len(reverted)
    again = suggest(store, config=SuggestConfig(min_support=2, auto_accept_above=0.6))
    assert again.n_auto_accepted == 0 and again.n_auto_held_back == len(reverted)
    assert again.auto_accept_note is not None and "for a reviewer: `labelfix revert-auto` undid" in again.auto_accept_note
    assert store.scalar("SELECT count(*) FROM labels WHERE origin = 'auto'") == 0
    # They are open suggestions again, for a person to decide.
    open_cells = {(i, c) for _, i, c, *_ in suggestions(store)}
    assert set(reverted) <= open_cells
    again.print()
    out = capsys.readouterr().out
    assert f"{len(reverted)} suggestions above the auto-accept score were not auto-accepted" in out
    assert again.to_dict()["n_auto_held_back"] == len(reverted)
    # A lower cut-off auto-accepts only cells never reverted.
    third = suggest(store, config=SuggestConfig(min_support=2, auto_accept_above=0.0))
    accepted = set(store.fetchall("SELECT image_id, category_id FROM labels WHERE origin = 'auto'"))
    assert accepted and not accepted & set(reverted) and third.n_auto_accepted == len(accepted)


def test_revert_auto_of_an_unknown_run_names_the_runs(tmp_path: Path, capsys):
    db = tmp_path / "cli.duckdb"
    build_store(db)[0].close()
    assert main(["suggest", "--db", str(db), "--auto-accept-above", "0.6"]) == 0
    capsys.readouterr()
    assert main(["revert-auto", "--run", "999", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "run 999 does not exist (runs in the store: 1; with auto-accepts in force: 1)" in err
    assert "fix:" in err and "Traceback" not in err
    with open_store(db) as store:  # nothing was reverted
        assert store.scalar("SELECT count(*) FROM review_events WHERE decision = 'undo'") == 0
    assert main(["revert-auto", "--run", "1", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "does not auto-accept these cells again" in out
