"""One reviewer name in two tabs, undo that names what it undoes, and short idle leases (issue 14, fresh report
items 1, 15 and the "released after short idle" of item 3), through streamlit.testing.v1.AppTest.

Two AppTest runs in one process are two browser sessions of one server: they share the service and the
presence registry, as two tabs do. The real keys in two real tabs: tests/test_review_tabs_browser.py.
"""

from __future__ import annotations


import duckdb
import pytest
import streamlit as st
from review_helpers import FakeClock, make_review_store, open_review_app

from labelfix.review.service import ReviewService

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402


def tab(reviewer: str) -> AppTest:
    return open_review_app(reviewer, timeout=180)  # a loaded machine: the first run imports the app


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = make_review_store(tmp_path)
    monkeypatch.setenv("LABELFIX_DB", str(path))
    monkeypatch.delenv("LABELFIX_REVIEWER", raising=False)
    connection = duckdb.connect(str(path))  # same process as the app: shares its cached DuckDB instance
    yield connection
    connection.close()
    st.cache_resource.clear()  # the next test gets its own service and presence registry


def events(connection) -> list[tuple]:
    return connection.execute("SELECT suggestion_id, reviewer, decision, undoes_event_id FROM review_events "
                              "ORDER BY event_id").fetchall()


def flash(at: AppTest) -> str:
    found = [e.value for e in [*at.success, *at.info, *at.warning] if e.value]
    return " | ".join(found)


def shown(at: AppTest) -> int:
    """The suggestion shown large (its decision buttons, or its undo button)."""
    keys = [b.key for b in at.button if b.key.startswith(("focus_", "undo_")) and b.key != "undo_last"]
    return int(keys[0].rsplit("_", 1)[1])


def press(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def test_a_second_tab_under_the_same_name_is_told_and_its_undo_never_misleads_the_first(db):
    # the fresh user's s4.py: tab 1 adds, tab 2 undoes it, tab 1 goes back to it and says "not there"
    one = tab("lee")
    assert "open in" not in flash(one)
    first = shown(one)
    press(one, f"focus_accept_{first}")
    assert "'car' added to image 2 · U undoes it" in flash(one)
    two = tab("lee")
    assert "The name lee is open in 1 other tab: decisions there count as yours" in flash(two)
    press(two, "undo_last")  # tab 2 decided nothing itself: U undoes lee's latest decision, and says which
    assert "undid your decision: 'car' on image 2 is undecided again (your latest decision" in flash(two)
    one.session_state["focus"] = first  # K in tab 1: back to the item it decided
    one.run()
    assert "The name lee is open in 1 other tab" in flash(one)  # both tabs are told
    # tab 1 shows it as the store has it (open again), not as its page remembered it (accepted)
    assert one.button(key=f"focus_reject_{first}").label == "Not there · X"
    press(one, f"focus_reject_{first}")
    assert "'car' not added to image 2 (marked absent)" in flash(one)
    assert [e[1:3] for e in events(db)] == [("lee", "accept"), ("lee", "undo"), ("lee", "reject")]


def test_u_undoes_exactly_the_decision_the_flash_named_or_says_it_was_undone_elsewhere(db):
    # the fresh user's s3.py: tab 1 decides two items, tab 2 undoes the newer; tab 1's U must not undo the older
    one = tab("kim")
    a = shown(one)
    press(one, f"focus_reject_{a}")
    b = shown(one)
    press(one, f"focus_accept_{b}")
    assert "'car' added to image 3 · U undoes it" in flash(one)
    two = tab("kim")
    press(two, "undo_last")
    assert events(db)[-1][1:3] == ("kim", "undo")
    press(one, "undo_last")
    assert "nothing undone: your decision ('car' added to image 3) was already undone elsewhere" in flash(one)
    assert len(events(db)) == 3  # the reject on the first item stands
    press(one, "undo_last")  # the next U: the decision before it, in this tab
    assert "undid your decision: 'car' on image 2 is undecided again" in flash(one)
    assert [(e[0], e[2]) for e in events(db)] == [(a, "reject"), (b, "accept"), (b, "undo"), (a, "undo")]


def test_u_after_a_skip_says_it_undid_the_skip(db):
    one = tab("ana")
    first = shown(one)
    press(one, f"focus_skip_{first}")
    assert "'car' on image 2 skipped (back of the queue) · U undoes it" in flash(one)
    press(one, "undo_last")
    assert "undid your skip: 'car' on image 2 is back in its place in the queue" in flash(one)
    assert [e[2] for e in events(db)] == ["skip", "undo"]  # a skip is an event of the store, and so is its undo


def test_an_idle_reviewers_items_go_back_after_30_s_an_active_ones_never(db, monkeypatch):
    clock = FakeClock()
    opened = ReviewService.open.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(ReviewService, "open",
                        classmethod(lambda cls, path, **options: opened(cls, path, clock=clock, **options)))
    car = {1, 2, 3}  # the tail class: ana's first page leases all three
    ana = tab("ana")
    assert shown(ana) in car
    bob = tab("bob")
    assert shown(bob) not in car  # held by ana
    for _ in range(4):  # ana works (any run of her page renews her leases), 25 s apart: 100 s in all
        clock.advance(25)
        ana.run()
    clock.advance(25)  # 25 s after her last action: still hers
    assert shown(tab("cy")) not in car
    clock.advance(6)  # ana idle for 31 s: the lease (30 s) has lapsed, the next reviewer to look gets them
    assert shown(tab("dee")) in car


def test_after_a_rename_u_never_reaches_for_the_old_names_decisions(db):
    one = tab("lee")
    press(one, f"focus_accept_{shown(one)}")
    one.query_params["reviewer"] = "ana"  # the same tab, under another name
    one.run()
    press(one, "undo_last")
    assert "nothing of yours to undo" in flash(one)
    assert [e[1:3] for e in events(db)] == [("lee", "accept")]
