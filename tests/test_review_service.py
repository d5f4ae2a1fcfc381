"""ReviewService: queue order, leases, decisions, undo, history, progress, concurrency, export."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest
from review_helpers import FakeClock, add_suggestions, make_review_store

from labelfix.export import export_coco
from labelfix.review.service import ReviewConflict, ReviewError, ReviewService, label_effect
from labelfix.states import NEGATIVE, POSITIVE
from labelfix.store import open_store
from labelfix.store.suggestions import replace_open, start_call




@pytest.fixture
def store(tmp_path: Path):
    db = make_review_store(tmp_path)
    with open_store(db) as opened:
        yield opened


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(store, clock) -> ReviewService:
    return ReviewService(store, clock=clock)


def cell(store, image_id: int, category_id: int):
    return store.fetchone("SELECT state, origin FROM labels WHERE image_id = ? AND category_id = ?",
                          [image_id, category_id])


def test_queue_orders_tail_classes_first_then_by_score(service):
    items = service.items()
    assert [i.category_name for i in items] == ["car"] * 3 + ["dog"] * 3 + ["cat"] * 2
    assert [i.score for i in items[:3]] == sorted([i.score for i in items[:3]], reverse=True)
    head = service.items(head_first=True)
    assert [i.category_name for i in head] == ["cat"] * 2 + ["dog"] * 3 + ["car"] * 3
    assert all(i.status == "open" for i in items)
    assert [p.name for p in service.progress().by_class] == ["bird", "car", "dog", "cat"]


def test_filters_class_score_status_and_run(service, store):
    assert {i.category_name for i in service.items(category_id=2)} == {"dog"}
    assert [round(i.score, 2) for i in service.items(min_score=0.6, max_score=0.9)] == [0.72, 0.88, 0.66, 0.61]
    first = service.items()[0]
    service.decide(suggestion_id=first.suggestion_id, reviewer="ana", decision="accept")
    assert [i.suggestion_id for i in service.items(statuses=["accepted"])] == [first.suggestion_id]
    assert first.suggestion_id not in [i.suggestion_id for i in service.items()]
    old_run = first.run_id
    new_run = add_suggestions(store, [(9, 7, 0.8)])
    assert service.runs() == [new_run, old_run]
    assert [i.category_name for i in service.items()] == ["bird"]  # default: the latest run
    assert len(service.items(run_id=old_run)) == 7
    # suggestions a later `labelfix suggest` call superseded leave the queue and the progress counts
    store.execute("UPDATE suggestions SET superseded_at = now() WHERE run_id = ?", [new_run])
    service.refresh()  # raw SQL bypasses labelfix's bookkeeping; a real `labelfix suggest` call is noticed:
    assert service.runs() == [old_run]
    assert len(service.items()) == 7
    assert service.progress().overall.total == 8
    newer = add_suggestions(store, [(9, 7, 0.8)])
    assert service.runs() == [newer, old_run]
    with store.transaction():
        start_call(store, run_id=newer, source_runs=[], config={}, created_at=dt.datetime(2026, 1, 2))
        replace_open(store, run_id=newer, now=dt.datetime(2026, 1, 2))
    assert service.runs() == [old_run]


def test_skip_and_unsure_stay_open_but_go_to_the_back(service):
    first, second = service.items()[:2]
    service.decide(suggestion_id=first.suggestion_id, reviewer="ana", decision="skip")
    service.decide(suggestion_id=second.suggestion_id, reviewer="ana", decision="unsure", note="blurry")
    items = service.items()
    assert len(items) == 8
    assert [i.suggestion_id for i in items[-2:]] == [first.suggestion_id, second.suggestion_id]
    assert items[-1].status == "skipped"
    # a skipped item can still be decided
    service.decide(suggestion_id=first.suggestion_id, reviewer="bob", decision="accept")
    assert service.item(suggestion_id=first.suggestion_id).status == "accepted"


def test_accept_makes_positive_accepted_and_reject_verified_negative(service, store):
    car = service.items(category_id=5)
    service.decide(suggestion_id=car[0].suggestion_id, reviewer="ana", decision="accept")
    service.decide(suggestion_id=car[1].suggestion_id, reviewer="ana", decision="reject")
    assert cell(store, car[0].image_id, 5) == (POSITIVE, "accepted")
    assert cell(store, car[1].image_id, 5) == (NEGATIVE, "manual")
    service.decide(suggestion_id=car[2].suggestion_id, reviewer="ana", decision="skip")
    assert cell(store, car[2].image_id, 5) is None
    with pytest.raises(ReviewConflict):
        service.decide(suggestion_id=car[0].suggestion_id, reviewer="bob", decision="reject")
    with pytest.raises(ReviewError):
        service.decide(suggestion_id=car[2].suggestion_id, reviewer="ana", decision="maybe")
    with pytest.raises(ReviewError):
        service.decide(suggestion_id=car[2].suggestion_id, reviewer=" ", decision="accept")
    with pytest.raises(ReviewError):
        service.decide(suggestion_id=999, reviewer="ana", decision="accept")


def test_spurious_accept_removes_the_label_and_undo_restores_the_original(service, store):
    run = add_suggestions(store, [(1, 1, 0.9)], kind="spurious")
    (item,) = service.items(run_id=run)
    assert cell(store, 1, 1) == (POSITIVE, "original")
    event = service.decide(suggestion_id=item.suggestion_id, reviewer="ana", decision="accept")
    assert cell(store, 1, 1) == (NEGATIVE, "manual")
    service.undo(reviewer="ana", event_id=event.event_id)
    assert cell(store, 1, 1) == (POSITIVE, "original")
    assert label_effect("spurious", "reject") is None


def test_undo_restores_previous_state_and_never_deletes(service, store):
    item = service.items()[0]
    service.decide(suggestion_id=item.suggestion_id, reviewer="ana", decision="skip")
    service.decide(suggestion_id=item.suggestion_id, reviewer="ana", decision="accept")
    assert cell(store, item.image_id, item.category_id) == (POSITIVE, "accepted")
    undo = service.undo(reviewer="ana")
    assert undo.decision == "undo" and undo.undoes_event_id is not None
    assert cell(store, item.image_id, item.category_id) is None  # back to unknown
    assert service.item(suggestion_id=item.suggestion_id).status == "skipped"  # the previous decision is back
    service.undo(reviewer="ana")
    assert service.item(suggestion_id=item.suggestion_id).status == "open"
    assert service.undo(reviewer="ana") is None  # nothing left
    assert store.scalar("SELECT count(*) FROM review_events") == 4
    # reject, undo via the suggestion, then accept again
    service.decide(suggestion_id=item.suggestion_id, reviewer="bob", decision="reject")
    assert cell(store, item.image_id, item.category_id) == (NEGATIVE, "manual")
    service.undo(reviewer="bob", suggestion_id=item.suggestion_id)
    assert cell(store, item.image_id, item.category_id) is None
    with pytest.raises(ReviewConflict):
        service.undo(reviewer="bob", event_id=5)  # already undone
    service.decide(suggestion_id=item.suggestion_id, reviewer="bob", decision="accept")
    assert cell(store, item.image_id, item.category_id) == (POSITIVE, "accepted")


def test_undo_falls_back_to_an_earlier_effective_decision_on_the_same_cell(service, store):
    item = service.items()[0]
    first = service.decide(suggestion_id=item.suggestion_id, reviewer="ana", decision="accept")
    run = add_suggestions(store, [(item.image_id, item.category_id, 0.99)], kind="spurious")
    (spurious,) = service.items(run_id=run)
    service.decide(suggestion_id=spurious.suggestion_id, reviewer="bob", decision="accept")
    assert cell(store, item.image_id, item.category_id) == (NEGATIVE, "manual")
    service.undo(reviewer="bob")
    assert cell(store, item.image_id, item.category_id) == (POSITIVE, "accepted")
    service.undo(reviewer="ana", event_id=first.event_id)
    assert cell(store, item.image_id, item.category_id) is None


def test_history_per_suggestion_and_reviewer(service):
    a, b = service.items()[:2]
    service.decide(suggestion_id=a.suggestion_id, reviewer="ana", decision="accept", note="clearly a car")
    service.decide(suggestion_id=b.suggestion_id, reviewer="bob", decision="reject")
    service.undo(reviewer="ana")
    events = service.history(suggestion_id=a.suggestion_id)
    assert [(e.decision, e.reviewer, e.undone) for e in events] == [("accept", "ana", True), ("undo", "ana", False)]
    assert events[0].note == "clearly a car"
    assert events[1].undoes_event_id == events[0].event_id
    assert [e.decision for e in service.history(reviewer="bob")] == ["reject"]
    assert [e.decision for e in service.history(newest_first=True, limit=2)] == ["undo", "reject"]


def test_progress_per_class_and_overall(service):
    car = service.items(category_id=5)
    service.decide(suggestion_id=car[0].suggestion_id, reviewer="ana", decision="accept")
    service.decide(suggestion_id=car[1].suggestion_id, reviewer="ana", decision="reject")
    service.decide(suggestion_id=car[2].suggestion_id, reviewer="ana", decision="skip")
    progress = service.progress()
    by_name = {p.name: p for p in progress.by_class}
    assert (by_name["car"].open, by_name["car"].skipped, by_name["car"].accepted, by_name["car"].rejected) == \
        (0, 1, 1, 1)
    assert by_name["car"].frequency == 2  # the accepted label counts
    assert by_name["bird"].total == 0
    overall = progress.overall
    assert (overall.total, overall.open, overall.skipped, overall.accepted, overall.rejected) == (8, 5, 1, 1, 1)
    assert overall.pending == 6 and overall.decided == 2


def test_leases_keep_reviewers_apart_and_expire(store, clock):
    ana = ReviewService(store, clock=clock, lease_seconds=60)
    bob = ReviewService(store, clock=clock, lease_seconds=60)
    ana_items = ana.next_items(reviewer="ana", n=3)
    bob_items = bob.next_items(reviewer="bob", n=3)
    assert not {i.suggestion_id for i in ana_items} & {i.suggestion_id for i in bob_items}
    assert [i.category_name for i in ana_items] == ["car"] * 3 and bob_items[0].category_name == "dog"
    # asking again renews and returns the same items
    assert [i.suggestion_id for i in ana.next_items(reviewer="ana", n=3)] == [i.suggestion_id for i in ana_items]
    # bob cannot decide ana's live lease
    with pytest.raises(ReviewConflict):
        bob.decide(suggestion_id=ana_items[0].suggestion_id, reviewer="bob", decision="accept")
    # deciding releases the lease
    ana.decide(suggestion_id=ana_items[0].suggestion_id, reviewer="ana", decision="accept")
    assert store.scalar("SELECT count(*) FROM leases WHERE suggestion_id = ?", [ana_items[0].suggestion_id]) == 0
    # after expiry, ana's remaining items are free again
    clock.advance(61)
    carol = ReviewService(store, clock=clock).next_items(reviewer="carol", n=2)
    assert [i.suggestion_id for i in carol] == [i.suggestion_id for i in ana_items[1:]]
    assert ana.release(reviewer="carol") == 2


def test_next_items_releases_the_reviewers_other_leases(service, store):
    service.next_items(reviewer="ana", n=2, category_id=5)
    service.next_items(reviewer="ana", n=2, category_id=2)
    assert {i.category_name for i in service.items(category_id=None) if i.lease_reviewer == "ana"} == {"dog"}
    service.next_items(reviewer="ana", n=1, category_id=5, keep_other_leases=True)
    assert store.scalar("SELECT count(*) FROM leases WHERE reviewer = 'ana'") == 3


def test_batch_decide_records_all_and_reports_conflicts(service, store):
    dog = [i.suggestion_id for i in service.items(category_id=2)]
    service.decide(suggestion_id=dog[0], reviewer="bob", decision="reject")
    result = service.decide_many(suggestion_ids=dog, reviewer="ana", decision="accept")
    assert [e.suggestion_id for e in result.events] == dog[1:]
    assert list(result.conflicts) == [dog[0]]
    assert store.scalar("SELECT count(*) FROM labels WHERE category_id = 2 AND origin = 'accepted'") == 2


def test_concurrent_reviewers_lose_and_duplicate_nothing(tmp_path):
    n_reviewers, per_reviewer = 4, 6
    cells = [(image_id, category_id, 0.5 + 0.01 * image_id)
             for image_id in range(1, 11) for category_id in (1, 2, 5, 7)]
    db = make_review_store(tmp_path, suggestions=cells)
    root = open_store(db)
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_reviewers)

    def work(name: str) -> None:
        try:
            service = ReviewService(root.cursor())
            barrier.wait()
            for index in range(per_reviewer):
                (item,) = service.next_items(reviewer=name, n=1)
                service.decide(suggestion_id=item.suggestion_id, reviewer=name,
                               decision="accept" if index % 2 else "reject")
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(f"r{i}",)) for i in range(n_reviewers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    rows = root.fetchall("SELECT suggestion_id, count(*) FROM review_events GROUP BY suggestion_id")
    assert len(rows) == n_reviewers * per_reviewer
    assert all(n == 1 for _, n in rows)
    assert root.scalar("SELECT count(DISTINCT reviewer) FROM review_events") == n_reviewers
    progress = ReviewService(root).progress().overall
    assert progress.accepted + progress.rejected == n_reviewers * per_reviewer
    assert root.scalar("SELECT count(*) FROM leases") == 0
    root.close()


def test_export_after_review_has_accepted_source_and_no_rejected(service, store, tmp_path):
    car = service.items(category_id=5)
    service.decide(suggestion_id=car[0].suggestion_id, reviewer="ana", decision="accept")
    service.decide(suggestion_id=car[1].suggestion_id, reviewer="ana", decision="reject")
    diff = {d.name: d for d in service.label_diff()}
    assert (diff["car"].original_positive, diff["car"].exported_positive, diff["car"].added,
            diff["car"].verified_negative) == (1, 2, 1, 1)
    export_coco(store, out_dir=tmp_path / "out")
    document = json.loads((tmp_path / "out" / "labels.json").read_text())
    cells = {(a["image_id"], a["category_id"]): a["attributes"]["source"] for a in document["annotations"]}
    assert cells[(car[0].image_id, 5)] == "accepted"
    assert (car[1].image_id, 5) not in cells
    assert (car[2].image_id, 5) not in cells
    assert sum(1 for source in cells.values() if source == "original") == 10


def test_sql_status_matches_python_status_for_every_decision() -> None:
    import duckdb

    from labelfix.review.models import DECISIONS, STATUS_CASE_SQL, status_of

    connection = duckdb.connect()
    for decision in (None, *DECISIONS):
        (sql_status,) = connection.execute(
            f"SELECT {STATUS_CASE_SQL} FROM (SELECT ?::VARCHAR AS decision) cur", [decision]).fetchall()[0]
        assert sql_status == status_of(decision), decision
    assert {status_of(d) for d in (None, *DECISIONS)} == {"open", "skipped", "accepted", "rejected"}


def test_pu_estimated_items_queue_after_measured_ones_and_before_ranked_lists(store, clock):
    """Fresh report 3, item 1: a class whose threshold is only a PU estimate (often optimistic) no longer leads the
    queue because it is rare; measured classes come first, ranked lists with no threshold last."""
    store.execute("UPDATE suggestions SET reason = 'ESTIMATED (PU, not measured): ' || coalesce(reason, '') "
                  "WHERE category_id = (SELECT category_id FROM categories WHERE name = 'car') AND kind = 'missing'")
    store.execute("UPDATE suggestions SET threshold = NULL "
                  "WHERE category_id = (SELECT category_id FROM categories WHERE name = 'dog') AND kind = 'missing'")
    service = ReviewService(store, clock=clock)
    expected = ["cat"] * 2 + ["car"] * 3 + ["dog"] * 3
    assert [i.category_name for i in service.items()] == expected
    assert [i.category_name for i in service.items(limit=8)] == expected
    assert [i.category_name for i in service.next_items(reviewer="ana", n=8)] == expected
