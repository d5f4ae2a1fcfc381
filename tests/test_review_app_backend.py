"""The app's service calls (labelfix/review/app/backend.py): queue order, stale presses, undo, estimates, counts."""

from __future__ import annotations

import pytest
from review_helpers import make_review_store

from labelfix.review.app import backend
from labelfix.review.app.backend import Filters
from labelfix.review.models import ReviewConflict
from labelfix.review.service import ReviewService
from labelfix.store import open_store


@pytest.fixture
def service(tmp_path):
    db = make_review_store(tmp_path)
    with open_store(db) as store:
        run_id = store.scalar("SELECT max(run_id) FROM suggestions")
        # a spurious-label suggestion on the rarest class, in the same run
        store.execute("INSERT INTO suggestions (run_id, image_id, category_id, kind, score, rank_in_class, threshold, "
                      "reason) VALUES (?, 1, 5, 'spurious', 0.1, 1, 0.5, 'test')", [run_id])
        yield ReviewService(store)


def test_missing_label_items_lead_the_page_and_spurious_ones_follow(service):
    items = backend.page_items(service, reviewer="ana", filters=Filters(page_size=12))
    kinds = [i.kind for i in items]
    assert kinds[0] == "missing" and kinds[-1] == "spurious" and kinds.count("spurious") == 1
    only = backend.page_items(service, reviewer="bo", filters=Filters(kinds=("spurious",)))
    assert [i.kind for i in only] == []  # ana holds it
    service.release(reviewer="ana")
    assert [i.kind for i in backend.page_items(service, reviewer="bo", filters=Filters(kinds=("spurious",)))] == \
        ["spurious"]


def test_a_second_press_on_a_decided_item_records_nothing_and_raises_nothing(service):
    (item,) = backend.page_items(service, reviewer="ana", filters=Filters(page_size=1))
    first = backend.submit(service, item=item, reviewer="ana", decision="accept", token="t-1")
    again = backend.submit(service, item=item, reviewer="ana", decision="accept", token="t-2")
    assert first.applied and not again.applied
    assert [e.decision for e in service.history(suggestion_id=item.suggestion_id)] == ["accept"]


def test_undo_never_undoes_someone_elses_decision(service):
    (item,) = backend.page_items(service, reviewer="ana", filters=Filters(page_size=1))
    service.decide(suggestion_id=item.suggestion_id, reviewer="ana", decision="accept")
    with pytest.raises(ReviewConflict, match="decided by ana"):
        backend.undo_own(service, reviewer="bo", suggestion_id=item.suggestion_id)
    assert backend.undo_own(service, reviewer="bo") is None  # bo has nothing of his own to undo
    assert backend.undo_own(service, reviewer="ana").undoes_event_id is not None


def test_precision_estimate_and_accept_above(service):
    # dog (category 2): scores 0.88, 0.66, 0.61; ana adds the first two and says no to the third
    dog = service.items(category_id=2, kinds=("missing",))
    service.decide(suggestion_id=dog[0].suggestion_id, reviewer="ana", decision="accept")
    service.decide(suggestion_id=dog[1].suggestion_id, reviewer="ana", decision="accept")
    service.decide(suggestion_id=dog[2].suggestion_id, reviewer="ana", decision="reject")
    estimate = backend.precision_estimate(service, reviewer="ana", category_id=2, run_id=None, target=0.9)
    assert (estimate.n, estimate.accepted) == (3, 2)
    assert estimate.low < 2 / 3 < estimate.high
    assert estimate.stop_score == pytest.approx(0.66)
    assert backend.precision_estimate(service, reviewer="bo", category_id=2, run_id=None).n == 0
    recorded, left = backend.accept_above(service, reviewer="ana", category_id=5, min_score=0.7, run_id=None)
    assert (recorded, left) == (2, 0)  # car 0.91 and 0.72; 0.55 and the spurious one stay open


def test_reviewer_counts(service):
    items = service.items(category_id=5, kinds=("missing",))
    service.decide(suggestion_id=items[0].suggestion_id, reviewer="ana", decision="accept")
    service.decide(suggestion_id=items[1].suggestion_id, reviewer="ana", decision="skip")
    service.decide(suggestion_id=items[2].suggestion_id, reviewer="bo", decision="reject")
    service.undo(reviewer="bo")
    counts = {c.reviewer: c for c in backend.reviewer_counts(service)}
    assert (counts["ana"].accepted, counts["ana"].skipped) == (1, 1)
    assert (counts["bo"].rejected, counts["bo"].undone) == (0, 1)
