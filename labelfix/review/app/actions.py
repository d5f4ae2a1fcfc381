"""What the app does on a key, a button or a click: callbacks that run before the (fragment) rerun.

Every decision goes through :func:`decide`, with the item the page showed when the key or button was
pressed; a press on a page that has moved on (a double press, a held key, a stale button) records
nothing. Outcomes are said in words of the label ("added 'seven' to image 12").
"""

from __future__ import annotations

import uuid

import streamlit as st

from labelfix.errors import LabelfixError
from labelfix.review.app import backend, keys, page
from labelfix.review.app.identity import current_reviewer
from labelfix.review.app.state import flash, service
from labelfix.review.app.wording import outcome, undo_outcome, wording
from labelfix.review.models import PENDING, QueueItem

NEXT_KEYS = ("j", "arrowright")
PREVIOUS_KEYS = ("k", "arrowleft")


def _session_token() -> str:
    if "_session_token" not in st.session_state:
        st.session_state["_session_token"] = uuid.uuid4().hex[:12]
    return st.session_state["_session_token"]


def shown() -> QueueItem | None:
    """The item the last drawn page showed large."""
    return st.session_state.get("_shown")


def decide(item: QueueItem, decision: str, *, press: str) -> None:
    """Record ``decision`` on ``item`` (as shown) for the current reviewer; ``press`` identifies the key or click."""
    if item.status not in PENDING:
        flash("info", f"'{item.category_name}' on image {item.image_id} is already {item.status}: U undoes your "
                      f"last decision")
        return
    reviewer = current_reviewer().name
    try:
        done = backend.submit(service(), item=item, reviewer=reviewer, decision=decision,
                              token=f"{_session_token()}-{press}")
    except LabelfixError as error:
        flash("warning", error.problem)
        return
    if not done.applied:
        if press.startswith("key"):
            return  # a repeated or stale key press: nothing happened, and nothing to say
        flash("warning", f"nothing recorded: {done.reason}")
        return
    text = outcome(kind=item.kind, decision=decision, name=item.category_name, image_id=item.image_id)
    flash("success", f"{text} · U undoes")
    if decision in ("skip", "unsure"):
        st.session_state.setdefault("_skipped_now", set()).add(item.suggestion_id)
    page.mark_decided(item.suggestion_id, decision=decision, reviewer=reviewer)
    st.session_state.pop("focus", None)


def on_button(suggestion_id: int, decision: str) -> None:
    """A decision button of the large item (its key carries the suggestion id, so a stale click is void)."""
    item = shown()
    if item is None or item.suggestion_id != suggestion_id:
        return
    decide(item, decision, press=f"button-{suggestion_id}-{decision}")


def undo_last() -> None:
    """Undo this reviewer's own last decision and show that item again."""
    try:
        event = backend.undo_own(service(), reviewer=current_reviewer().name)
    except LabelfixError as error:
        flash("warning", error.problem)
        return
    _after_undo(event)


def undo_item(suggestion_id: int) -> None:
    """Undo this reviewer's decision on one suggestion."""
    try:
        event = backend.undo_own(service(), reviewer=current_reviewer().name, suggestion_id=suggestion_id)
    except LabelfixError as error:
        flash("warning", error.problem)
        return
    _after_undo(event)


def _after_undo(event) -> None:
    if event is None or event.suggestion_id is None:
        flash("info", "nothing of yours to undo")
        return
    item = service().item(suggestion_id=event.suggestion_id)
    undone = [e for e in service().history(suggestion_id=event.suggestion_id) if e.event_id == event.undoes_event_id]
    decision = undone[0].decision if undone else "accept"
    flash("success", undo_outcome(kind=item.kind, decision=decision, name=item.category_name, image_id=item.image_id))
    st.session_state.get("_skipped_now", set()).discard(item.suggestion_id)
    page.mark_decided(item.suggestion_id, decision=None, reviewer=None)
    st.session_state["focus"] = item.suggestion_id


def _move(step: int) -> None:
    page: list[int] = st.session_state.get("_page_ids", [])
    current = shown()
    if current is None:
        return
    here = current.suggestion_id
    if here in page:
        index = page.index(here) + step
        if 0 <= index < len(page):
            st.session_state["focus"] = page[index]
            return
        if step > 0:
            flash("info", "last item of this page: decide it to get the next ones")
            return
    recent = [i.suggestion_id for i in backend.recent_items(service(), reviewer=current_reviewer().name)]
    if here in page:  # going back from the first item of the page: your latest decision
        target = recent[0] if recent else None
    elif here in recent:
        index = recent.index(here) - step
        target = recent[index] if 0 <= index < len(recent) else (page[0] if page and index < 0 else None)
    else:
        target = page[0] if page else None
    if target is None:
        flash("info", "no earlier decisions of yours")
        return
    st.session_state["focus"] = target


def on_key() -> None:
    """A key from the page's listener: act on the item the page showed when it went down."""
    event = keys.event("key")
    item = shown()
    if event is None or item is None or event.get("item") != item.suggestion_id:
        return  # the page has moved on since (a double press on a stale page): ignore it
    key = str(event.get("key", ""))
    if key in NEXT_KEYS:
        _move(+1)
    elif key in PREVIOUS_KEYS:
        _move(-1)
    elif key == "u":
        undo_last()
    else:
        words = wording(item.kind, item.category_name)
        action = words.action_for_key(key)
        if action is None:
            keys_here = " · ".join(f"{a.key.upper()} {a.label.lower()}" for a in words.actions)
            flash("info", f"this item asks to {words.question} — keys: {keys_here}")
            return
        decide(item, action.decision, press=f"key-{event.get('seq')}")


def on_view() -> None:
    """A click on a grid thumbnail: show that item large."""
    event = keys.event("view")
    if event is not None and isinstance(event.get("item"), int):
        st.session_state["focus"] = int(event["item"])


def view(suggestion_id: int) -> None:
    st.session_state["focus"] = suggestion_id


def unskip() -> None:
    st.session_state.pop("_skipped_now", None)
    page.refresh()


def select_page(ids: list[int], value: bool) -> None:
    for suggestion_id in ids:
        st.session_state[f"sel_{suggestion_id}"] = value


def ask_batch(decision: str, ids: list[int]) -> None:
    if ids:
        st.session_state["_batch"] = (decision, ids)
    else:
        flash("info", "select items first")


def confirm_batch() -> None:
    decision, ids = st.session_state.pop("_batch", (None, []))
    if not decision:
        return
    try:
        result = service().decide_many(suggestion_ids=ids, reviewer=current_reviewer().name, decision=decision)
    except LabelfixError as error:
        flash("warning", error.problem)
        return
    page.refresh()
    text = f"{len(result.events)} recorded"
    if result.conflicts:
        text += f", {len(result.conflicts)} left alone ({'; '.join(sorted(set(result.conflicts.values())))})"
    flash("success" if not result.conflicts else "warning", text)
    select_page(ids, False)


def cancel_batch() -> None:
    st.session_state.pop("_batch", None)


def ask_accept_above(category_id: int, name: str, min_score: float, n: int) -> None:
    st.session_state["_accept_above"] = (category_id, name, float(min_score), int(n))


def confirm_accept_above() -> None:
    request = st.session_state.pop("_accept_above", None)
    if not request:
        return
    category_id, name, min_score, _ = request
    try:
        recorded, left = backend.accept_above(service(), reviewer=current_reviewer().name, category_id=category_id,
                                              min_score=min_score, run_id=st.session_state.get("_run_id"))
    except LabelfixError as error:
        flash("warning", error.problem)
        return
    page.refresh()
    text = f"added '{name}' to {recorded} images (every open suggestion scoring ≥ {min_score:.4f})"
    if left:
        text += f"; {left} left alone (held by others or decided meanwhile)"
    flash("success", text)
