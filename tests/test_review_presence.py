"""Leases of a browser session that went away are released after a short grace time (issue 14, item 3)."""

from __future__ import annotations

from pathlib import Path

import pytest
from review_helpers import make_review_store

from labelfix.review.app.presence import Presence
from labelfix.review.service import ReviewService
from labelfix.store import open_store


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def service(tmp_path: Path):
    with open_store(make_review_store(tmp_path)) as store:
        yield ReviewService(store)


def _ids(items) -> list[int]:
    return [i.suggestion_id for i in items]


def test_a_closed_session_gives_back_its_items_after_the_grace_time_only(service):
    active = {"tab-ana": True, "tab-bob": True}
    clock = Clock()
    presence = Presence(is_active=lambda sid: active.get(sid, False), clock=clock, grace_seconds=2.0)
    ana = _ids(service.next_items(reviewer="ana", n=3))
    presence.hold(session_id="tab-ana", service=service, reviewer="ana", suggestion_ids=ana)
    assert not set(ana) & set(_ids(service.next_items(reviewer="bob", n=8)))  # held by ana

    active["tab-ana"] = False  # ana closes her tab
    assert presence.sweep() == 0  # a short drop reconnects within the grace time: nothing yet
    clock.now = 1.0
    assert presence.sweep() == 0
    clock.now = 2.5
    assert presence.sweep() == 3
    assert presence.sessions() == []
    assert set(ana) <= set(_ids(service.next_items(reviewer="bob", n=8)))  # bob gets them now


def test_a_reconnect_within_the_grace_time_keeps_the_items(service):
    active = {"tab": False}
    clock = Clock()
    presence = Presence(is_active=lambda sid: active[sid], clock=clock, grace_seconds=2.0)
    held = _ids(service.next_items(reviewer="ana", n=2))
    presence.hold(session_id="tab", service=service, reviewer="ana", suggestion_ids=held)
    presence.sweep()
    clock.now = 1.5
    active["tab"] = True  # back
    presence.sweep()
    active["tab"] = False
    clock.now = 3.0
    assert presence.sweep() == 0  # the grace time starts again at the new disconnect
    assert presence.sessions() == ["tab"]


def test_a_second_tab_of_the_same_reviewer_keeps_what_it_shows(service):
    active = {"first": True, "second": True}
    clock = Clock()
    presence = Presence(is_active=lambda sid: active[sid], clock=clock, grace_seconds=0.0)
    held = _ids(service.next_items(reviewer="ana", n=3))
    presence.hold(session_id="first", service=service, reviewer="ana", suggestion_ids=held)
    presence.hold(session_id="second", service=service, reviewer="ana", suggestion_ids=held[:1])
    active["first"] = False
    presence.sweep()
    assert presence.sweep() == 2  # the one the second tab shows stays leased to ana
    assert set(_ids(service.next_items(reviewer="bob", n=8))) & set(held) == set(held[1:])
