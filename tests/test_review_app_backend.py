"""The app's page of items (labelfix/review/app/backend.py): what the sidebar's filters select, in which order."""

from __future__ import annotations

import pytest
from review_helpers import make_review_store

from labelfix.review.app.backend import Filters, page_items
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
    return ReviewService.open(db)


def test_missing_label_items_lead_the_page_and_spurious_ones_follow(service):
    kinds = [i.kind for i in page_items(service, reviewer="ana", filters=Filters(page_size=12))]
    assert kinds == ["missing"] * 8 + ["spurious"]
    assert page_items(service, reviewer="bo", filters=Filters(kinds=("spurious",))) == []  # ana holds it
    service.release(reviewer="ana")
    assert [i.kind for i in page_items(service, reviewer="bo", filters=Filters(kinds=("spurious",)))] == ["spurious"]


def test_filters_by_image_current_label_and_reviewer(service):
    assert {i.image_id for i in page_items(service, reviewer="ana", filters=Filters(image_id=4))} == {4}
    # images that currently carry 'cat' (category 1): images 1-6
    with_cat = page_items(service, reviewer="ana", filters=Filters(with_label=1))
    assert with_cat and all(i.image_id <= 6 for i in with_cat)
    service.release(reviewer="ana")
    (first,) = page_items(service, reviewer="ana", filters=Filters(page_size=1))
    service.decide(suggestion_id=first.suggestion_id, reviewer="ana", decision="accept")
    decided = page_items(service, reviewer="ana", filters=Filters(statuses=("accepted",), decided_by="ana"))
    assert [i.suggestion_id for i in decided] == [first.suggestion_id]
    assert page_items(service, reviewer="ana", filters=Filters(statuses=("accepted",), decided_by="bo")) == []
