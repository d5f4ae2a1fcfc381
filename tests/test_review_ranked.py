"""Uncalibrated ranked lists in the review app (issue 14, fresh report item 9): the default queue does not
open on them while calibrated items wait, and their items say "ranked only, low score", not "the model sees it"."""

from __future__ import annotations

import duckdb
import pytest
import streamlit as st
from review_helpers import make_review_store, open_review_app

pytest.importorskip("streamlit")


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = make_review_store(tmp_path)
    # car, the rarest class, could not be calibrated: `labelfix suggest` files a ranked list with no threshold
    connection = duckdb.connect(str(path))
    connection.execute("UPDATE suggestions SET threshold = NULL, score = score / 100 WHERE category_id = 5")
    connection.close()
    monkeypatch.setenv("LABELFIX_DB", str(path))
    yield path
    st.cache_resource.clear()


def test_the_queue_opens_on_calibrated_items_and_ranked_ones_say_so(db):
    at = open_review_app("ana")
    markdown = [m.value for m in at.markdown]
    assert "## :green[+ add 'dog'?]" in markdown  # dog (calibrated) leads, though car is rarer
    assert not any("ranked only" in m for m in markdown)
    assert any(m.startswith("missing label: the model sees it") for m in markdown)
    classes = at.selectbox(key="class")
    assert classes.options[0] == "car · 1 labelled · ranked only"
    classes.select(5).run()
    markdown = [m.value for m in at.markdown]
    assert "## :green[+ add 'car'?] :gray-badge[ranked only, low score]" in markdown
    assert not any("the model sees it" in m for m in markdown)
    assert any(m.startswith("ranked only: among this class's highest-scoring unlabelled images") for m in markdown)
    assert any(m.endswith("· 0.0091 · ranked") for m in markdown)  # its tile


def test_items_above_a_pu_estimated_threshold_say_estimated_not_measured(tmp_path, monkeypatch):
    """Fresh report 3, item 1: a class calibrated only by a PU estimate is not shown with the calibrated look."""
    path = make_review_store(tmp_path)
    connection = duckdb.connect(str(path))  # car's threshold is a PU estimate: `labelfix suggest` says so in the reason
    connection.execute("UPDATE suggestions SET reason = 'ESTIMATED (PU, not measured): ' || coalesce(reason, '') "
                       "WHERE category_id = 5 AND kind = 'missing'")
    connection.close()
    monkeypatch.setenv("LABELFIX_DB", str(path))
    try:
        at = open_review_app("ana")
        at.selectbox(key="class").select(5).run()
        assert not at.exception, at.exception
        markdown = [m.value for m in at.markdown]
        assert "## :green[+ add 'car'?] :orange-badge[estimated, not measured]" in markdown
        assert any(m.startswith("missing label, estimated, not measured: the class's threshold rests on an "
                                "estimate (a PU estimate") for m in markdown)
        assert not any("the model sees it" in m for m in markdown)
        assert any("· estimated" in m for m in markdown)  # its tile
    finally:
        st.cache_resource.clear()
