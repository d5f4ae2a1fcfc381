"""An empty FiftyOne dataset name is refused with one message before FiftyOne is touched."""

from __future__ import annotations

import pytest

from labelfix.review.fiftyone_sync import push
from labelfix.review.models import ReviewError
from labelfix.store import open_store


@pytest.mark.parametrize("name", ["", "   "])
def test_push_refuses_an_empty_dataset_name(tmp_path, name):
    with open_store(tmp_path / "s.duckdb") as store:
        with pytest.raises(ReviewError, match="must not be empty") as raised:
            push(store, dataset_name=name)
    assert "--name" in (raised.value.fix or "")
