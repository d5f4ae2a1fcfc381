"""The review app in team mode through streamlit.testing (issue 15): nothing before sign-in, roles after it.

The real-browser test (tests/test_review_team_browser.py) covers the same against a server on a shared
address; this one is fast and checks every element the page builds.
"""

from __future__ import annotations

import duckdb
import pytest
import streamlit as st
from review_helpers import CLASSES, make_review_store

from labelfix.cli.review_commands import app_script
from labelfix.review.auth import add_reviewer
from labelfix.store import open_store

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(app_script())


@pytest.fixture
def team_app(tmp_path, monkeypatch):
    db = make_review_store(tmp_path)
    with open_store(db) as store:
        add_reviewer(store, name="ana", role="annotator", password="ana-password")
        add_reviewer(store, name="lee", role="lead", password="lee-password")
    monkeypatch.setenv("LABELFIX_DB", str(db))
    monkeypatch.setenv("LABELFIX_TEAM", "1")
    monkeypatch.setenv("LABELFIX_REVIEWER", "typed-name")  # must never be used in team mode
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    yield at, db
    st.cache_resource.clear()


def page_text(at) -> str:
    """Every value and label of every element the run produced (main area and sidebar)."""
    parts = []
    for root in (at.main, at.sidebar):
        stack = [root]
        while stack:
            node = stack.pop()
            for attribute in ("value", "label", "body", "options", "help", "placeholder"):
                value = getattr(node, attribute, None)
                if value is not None and not callable(value):
                    parts.append(str(value))
            children = getattr(node, "children", None)
            if isinstance(children, dict):
                stack.extend(children.values())
    return "\n".join(parts)


def sign_in(at, name, password):
    at.text_input(key="signin_name").input(name)
    at.text_input(key="signin_password").input(password)
    at.button[0].click().run()
    assert not at.exception
    return at


def events(db):
    connection = duckdb.connect(str(db))
    try:
        return connection.execute("SELECT suggestion_id, reviewer, decision FROM review_events ORDER BY event_id"
                                  ).fetchall()
    finally:
        connection.close()


def test_nothing_from_the_store_before_sign_in(team_app):
    at, db = team_app
    text = page_text(at)
    assert "Reviewer name" in text and "Password" in text
    for name in CLASSES.values():
        assert name not in text
    assert "to review" not in text and "freq" not in text and "img_" not in text
    assert not at.selectbox and not at.dataframe and not at.metric and not at.get("imgs")
    assert not at.sidebar.children  # an empty sidebar
    with pytest.raises(KeyError):
        at.text_input(key="reviewer")
    sign_in(at, "ana", "wrong-password")
    assert [e.value for e in at.error] == ["wrong name or password"]
    assert "car" not in page_text(at) and events(db) == []


def test_an_annotator_decides_under_the_signed_in_name_and_sees_no_lead_tools(team_app):
    at, db = team_app
    sign_in(at, "ana", "ana-password")
    text = page_text(at)
    assert "Signed in as **ana** · annotator" in text and "car" in text
    with pytest.raises(KeyError):
        at.text_input(key="reviewer")  # no typed name in team mode
    assert "Export corrected labels" not in text and "Team (lead)" not in text
    with pytest.raises(KeyError):
        at.button(key="export_write")
    at.button(key="focus_accept_1").click().run()
    assert events(db) == [(1, "ana", "accept")]
    at.button(key="sign_out").click().run()
    assert "Signed out." in page_text(at) and "car" not in page_text(at)


def test_a_lead_sees_the_team_and_exports_into_the_export_folder(team_app, tmp_path):
    at, db = team_app
    sign_in(at, "ana", "ana-password")
    at.button(key="focus_accept_1").click().run()
    at.button(key="sign_out").click().run()
    sign_in(at, "lee", "lee-password")
    text = page_text(at)
    assert "Signed in as **lee** · lead" in text and "Team (lead)" in text and "Export corrected labels" in text
    stats = next(frame.value for frame in at.dataframe if "reviewer" in frame.value.columns)
    assert stats.iloc[0]["reviewer"] == "ana" and stats.iloc[0]["✓"] == 1
    # only a sub-folder name can be typed: the export goes into this store's folder inside the export folder
    at.session_state["export_box"] = True  # open the export box (it computes only while open)
    at.run()
    at.text_input(key="export_name").input("../../x")
    at.button(key="export_write").click().run()
    assert any("is not a sub-folder name" in e.value for e in at.error)
    at.text_input(key="export_name").input("round-1")
    at.button(key="export_write").click().run()
    assert (tmp_path / "exports" / "review" / "round-1" / "labels.json").is_file()
    assert not (tmp_path.parent / "x").exists()
    # a team-mode browser never sees the server's absolute paths
    text = page_text(at)
    assert str(tmp_path) not in text and "review/round-1" in text
    # the lead reverts ana
    at.selectbox(key="lead_revert_who").select("ana").run()
    at.button(key="lead_revert").click().run()
    at.button(key="lead_revert_confirm").click().run()
    assert events(db)[-1] == (1, "lee", "undo")
    assert any("reverted 1 decisions of ana" in s.value for s in at.success)
