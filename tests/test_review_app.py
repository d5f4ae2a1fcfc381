"""The Streamlit review app through streamlit.testing.v1.AppTest: choose a class, accept, undo, batch, export."""

from __future__ import annotations

import json

import duckdb
import streamlit as st
import pytest
from review_helpers import make_review_store

from labelfix.cli.review_commands import app_script

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

# The script `labelfix review` serves: the copy inside the package (labelfix/review/app/).
APP = str(app_script())


@pytest.fixture
def app(tmp_path, monkeypatch):
    db = make_review_store(tmp_path)
    monkeypatch.setenv("LABELFIX_DB", str(db))
    monkeypatch.setenv("LABELFIX_REVIEWER", "tester")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    # same process as the app: this connection shares the app's cached DuckDB instance
    connection = duckdb.connect(str(db))
    yield at, connection
    connection.close()
    # Drop the app's cached server connection so no DuckDB object outlives the test.
    st.cache_resource.clear()


def events(connection):
    return connection.execute("SELECT suggestion_id, reviewer, decision, undoes_event_id FROM review_events "
                              "ORDER BY event_id").fetchall()


def cell(connection, image_id, category_id):
    rows = connection.execute("SELECT state, origin FROM labels WHERE image_id = ? AND category_id = ?",
                              [image_id, category_id]).fetchall()
    return rows[0] if rows else None


def test_classes_tail_first_choose_class_accept_and_undo(app):
    at, connection = app
    classes = at.selectbox(key="class")
    assert classes.options[:3] == ["car · freq 1 · 3 to review", "dog · freq 3 · 3 to review",
                                   "cat · freq 6 · 2 to review"]
    assert at.text_input(key="reviewer").value == "tester"
    at.selectbox(key="class").select(2).run()  # dog
    assert not at.exception
    assert "**dog** · 0.88 · open" in [m.value for m in at.markdown][3]
    at.button(key="accept_focus").click().run()
    assert events(connection) == [(4, "tester", "accept", None)]
    assert cell(connection, 4, 2) == (1, "accepted")
    assert "accept recorded for suggestion 4" in [s.value for s in at.success]
    assert [m.value for m in at.metric][2] == "1"  # accepted counter
    at.button(key="undo_last").click().run()
    assert events(connection)[-1][2:] == ("undo", 1)
    assert cell(connection, 4, 2) is None
    # the undone item is shown large again, and can be rejected with its button
    at.button(key="reject_focus").click().run()
    assert events(connection)[-1][:3] == (4, "tester", "reject")
    assert cell(connection, 4, 2) == (-1, "manual")


def test_batch_accept_needs_confirmation(app):
    at, connection = app
    at.button(key="select_all").click().run()
    assert at.button(key="batch_accept").label == "Accept selected (3)"
    at.button(key="batch_accept").click().run()
    assert "Accept 3 selected suggestions as tester?" in [w.value for w in at.warning]
    assert events(connection) == []  # nothing before the confirmation
    at.button(key="batch_cancel").click().run()
    assert not at.warning
    at.button(key="batch_accept").click().run()
    at.button(key="batch_confirm").click().run()
    assert [(s, d) for s, _, d, _ in events(connection)] == [(1, "accept"), (2, "accept"), (3, "accept")]
    assert connection.execute("SELECT count(*) FROM labels WHERE category_id = 5 AND origin = 'accepted'"
                              ).fetchall() == [(3,)]
    # car is done: the app moves on to the next class with items to review
    assert at.selectbox(key="class").value == 2


def test_status_filter_and_export_preview(app, tmp_path):
    at, connection = app
    at.button(key="acc_2").click().run()
    at.selectbox(key="status").select("accepted").run()
    assert "**car** · 0.72 · accepted" in [m.value for m in at.markdown][3]
    at.button(key="export_preview").click().run()
    # a sub-folder name, inside the export folder fixed at server start (default: exports/ beside the store)
    at.text_input(key="export_name").input("out").run()
    frames = at.dataframe
    diff = frames[-1].value
    car = diff[diff["class"] == "car"].iloc[0]
    assert (car["source"], car["export"], car["added"]) == (1, 2, 1)
    assert not (tmp_path / "exports" / "out" / "labels.json").exists()  # the diff comes before writing
    at.button(key="export_write").click().run()
    document = json.loads((tmp_path / "exports" / "out" / "labels.json").read_text())
    assert {(a["image_id"], a["category_id"]): a["attributes"]["source"] for a in document["annotations"]}[
        (3, 5)] == "accepted"
