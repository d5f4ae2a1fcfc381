"""What the app does on a key, a button or a click: callbacks that run before the (fragment) rerun.

Every decision goes through :func:`decide` with the item the page showed when the key or button was
pressed, and the service's ``submit`` records it at most once: a press on a page that has moved on (a
double press, a held key, a stale button) records nothing and raises nothing. The outcome is said in
words of the label ("'seven' added to image 12").
"""

from __future__ import annotations

import time
import uuid

import streamlit as st

from labelfix.errors import LabelfixError
from labelfix.review.app import keys, page
from labelfix.review.app.identity import current_reviewer
from labelfix.review.app.state import flash, log_timing, service
from labelfix.review.app.wording import wording
from labelfix.review.models import PENDING, QueueItem, ReviewConflict

NEXT_KEYS = ("j", "arrowright")
PREVIOUS_KEYS = ("k", "arrowleft")


def _session_token() -> str:
    if "_session_token" not in st.session_state:
        st.session_state["_session_token"] = uuid.uuid4().hex[:12]
    return st.session_state["_session_token"]


def _redraw_page() -> None:
    """End the callback by redrawing the panel and the grid (a new page, or decisions the grid must show)."""
    st.rerun(["panel", "grid"])


def shown() -> QueueItem | None:
    """The item the last drawn page showed large."""
    return st.session_state.get("_shown")


def _fresh(item: QueueItem) -> QueueItem | None:
    """The item as the store has it now (``None``: a new ``labelfix suggest`` replaced it); the page follows."""
    try:
        fresh = service().item(suggestion_id=item.suggestion_id)
    except LabelfixError:
        return None
    page.sync(fresh)
    return fresh


def decide(item: QueueItem, decision: str, *, press: str) -> None:
    """Record ``decision`` on ``item`` (as shown) for the current reviewer; ``press`` names the key press or click.

    The page's copy of an item may be old: another tab of the same reviewer may have undone or decided it.
    So a press on an item the page shows as decided asks the store first and answers from it; if the item is
    open again there, the press decides it (issue 14, fresh report item 1).
    """
    reviewer = current_reviewer().name
    if item.status not in PENDING:
        fresh = _fresh(item)
        if fresh is None:
            flash("warning", f"suggestion {item.suggestion_id} is gone (a new suggest run replaced it)")
            page.refresh()
            _redraw_page()
        assert fresh is not None
        if fresh.status not in PENDING:
            who = "you" if fresh.decided_by == reviewer else (fresh.decided_by or "someone")
            flash("info", f"nothing recorded: '{fresh.category_name}' on image {fresh.image_id} is already "
                          f"{fresh.status} by {who}" + (" (Undo this decision reverses it)" if who == "you" else ""))
            _redraw_page()
        item = fresh  # open again (undone elsewhere): the key decides it
    try:
        result = service().submit(suggestion_id=item.suggestion_id, reviewer=reviewer, decision=decision,  # type: ignore[arg-type]
                                  expected_status=item.status, token=f"{_session_token()}-{press}")
    except LabelfixError as error:
        flash("warning", error.problem)
        return
    if not result.applied or result.event is None:
        # Double presses never get here (the page sends one key per drawn item, and a key for an item no
        # longer shown is dropped in on_key): this is news, e.g. someone else took the item meanwhile.
        flash("warning", f"nothing recorded: {result.message}")
        page.refresh()
        _redraw_page()
    assert result.event is not None
    remember(result.event.event_id, reviewer=reviewer, item=item, decision=decision, text=result.message)
    flash("success", f"{result.message} · U undoes it")
    if decision in ("skip", "unsure"):
        st.session_state.setdefault("_skipped_now", set()).add(item.suggestion_id)
    page.mark_decided(item.suggestion_id, decision=decision, reviewer=reviewer)
    st.session_state.pop("focus", None)
    if not page.todo():
        _redraw_page()  # the page is done: the next one comes, tiles and all


def on_button(suggestion_id: int, decision: str) -> None:
    """A decision button of the large item (its key carries the suggestion id, so a stale click is void)."""
    item = shown()
    if item is None or item.suggestion_id != suggestion_id:
        return
    decide(item, decision, press=f"button-{suggestion_id}-{decision}-{st.session_state.get('_nonce')}")


# -- undo: exactly the decision the flash named ------------------------------------------------------------------
_UNDO = "_undo_stack"
_UNDO_KEPT = 200


def _stack(reviewer: str) -> list[tuple[int, int, str, str]]:
    """This tab's decisions under ``reviewer`` still to undo, newest last: (event, suggestion, decision, words).
    Kept per name: after a rename, U never reaches for the old name's decisions."""
    return st.session_state.setdefault(_UNDO, {}).setdefault(reviewer, [])


def remember(event_id: int, *, reviewer: str, item: QueueItem, decision: str, text: str) -> None:
    """This tab recorded ``event_id``: U undoes it next."""
    stack = _stack(reviewer)
    stack.append((int(event_id), item.suggestion_id, decision, text))
    del stack[:-_UNDO_KEPT]


def forget_undo() -> None:
    """After a batch: U no longer goes back past it to an older single decision of this tab."""
    st.session_state.pop(_UNDO, None)


def _undone_words(decision: str, item: QueueItem) -> str:
    if decision in ("skip", "unsure"):
        return (f"undid your {'skip' if decision == 'skip' else 'unsure'}: '{item.category_name}' on image "
                f"{item.image_id} is back in its place in the queue")
    return f"undid your decision: {item.outcome('undo')}"


def undo_last(press: str | None = None) -> None:
    """Undo the decision the flash named: this tab's latest one still to undo (never someone else's).

    If another tab of the same reviewer undid it meanwhile, say so and undo nothing else. A tab with no
    decision of its own (a fresh page) undoes the reviewer's latest decision still in force, and says which.
    """
    reviewer = current_reviewer().name
    token = f"{_session_token()}-{press}" if press else None
    stack = _stack(reviewer)
    if not stack:
        _undo_latest(reviewer, token)
        return
    event_id, suggestion_id, decision, text = stack[-1]
    try:
        event = service().undo(reviewer=reviewer, event_id=event_id, token=token)
    except ReviewConflict:
        stack.pop()
        flash("info", f"nothing undone: your decision ({text}) was already undone elsewhere, e.g. in another "
                      f"tab under your name")
        _show_again(suggestion_id)
        return
    except LabelfixError as error:
        flash("warning", error.problem)
        return
    stack.pop()
    if event is None or event.suggestion_id is None:
        flash("info", "nothing of yours to undo")
        return
    item = _show_again(event.suggestion_id)
    if item is not None:
        flash("success", _undone_words(decision, item))


def _undo_latest(reviewer: str, token: str | None) -> None:
    try:
        event = service().undo(reviewer=reviewer, token=token)
    except LabelfixError as error:
        flash("warning", error.problem)
        return
    if event is None or event.suggestion_id is None:
        flash("info", "nothing of yours to undo")
        return
    undone = next((e for e in service().history(suggestion_id=event.suggestion_id)
                   if e.event_id == event.undoes_event_id), None)
    item = _show_again(event.suggestion_id)
    if item is not None:
        flash("success", _undone_words(undone.decision if undone else "accept", item)
              + " (your latest decision, from this page or another)")


def undo_item(suggestion_id: int) -> None:
    """Undo this reviewer's own decision on one suggestion (the "Undo this decision" button)."""
    reviewer = current_reviewer().name
    try:
        event = service().undo(reviewer=reviewer, suggestion_id=suggestion_id)
    except LabelfixError as error:
        flash("warning", error.problem)
        _show_again(suggestion_id)
        return
    if event is None or event.suggestion_id is None:
        flash("info", "nothing of yours to undo")
        return
    stack = _stack(reviewer)
    decision = next((d for e, _, d, _ in stack if e == event.undoes_event_id), "accept")
    stack[:] = [entry for entry in stack if entry[0] != event.undoes_event_id]
    item = _show_again(event.suggestion_id)
    if item is not None:
        flash("success", _undone_words(decision, item))


def _show_again(suggestion_id: int) -> QueueItem | None:
    """Show the item large again, as the store has it now, and let the page and the counts follow."""
    try:
        item = service().item(suggestion_id=suggestion_id)
    except LabelfixError:
        return None
    st.session_state.get("_skipped_now", set()).discard(item.suggestion_id)
    page.sync(item)
    page.forget_counts()
    st.session_state["focus"] = item.suggestion_id
    return item


def _move(step: int) -> None:
    page_ids: list[int] = st.session_state.get("_page_ids", [])
    current = shown()
    if current is None:
        return
    here = current.suggestion_id
    if here in page_ids:
        index = page_ids.index(here) + step
        if 0 <= index < len(page_ids):
            st.session_state["focus"] = page_ids[index]
            return
        if step > 0:
            flash("info", "last item of this page: decide it to get the next ones")
            return
    recent = [i.suggestion_id for i in service().recent_items(reviewer=current_reviewer().name, limit=50)
              if i.suggestion_id not in page_ids]
    if here in page_ids:  # back from the first item of the page: your latest decision before this page
        target = recent[0] if recent else None
    elif here in recent:
        index = recent.index(here) - step
        target = recent[index] if 0 <= index < len(recent) else (page_ids[0] if page_ids and index < 0 else None)
    else:
        target = page_ids[0] if page_ids else None
    if target is None:
        flash("info", "no earlier decisions of yours")
        return
    st.session_state["focus"] = target


def on_key() -> None:
    """A key from the page's listener: act on the item the page showed when it went down."""
    started = time.perf_counter()
    try:
        _on_key()
    finally:
        log_timing("key", started)


def _on_key() -> None:
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
        undo_last(press=f"key-{event.get('seq')}")
    else:
        words = wording(item.kind, item.category_name)
        action = words.action_for_key(key)
        if action is None:
            keys_here = " · ".join(f"{a.key.upper()} {a.label}" for a in words.actions)
            flash("info", f"this item asks to {words.question} Keys: {keys_here}")
            return
        decide(item, action.decision, press=f"key-{event.get('seq')}")


def on_alive() -> None:
    """Mouse or key activity after a quiet spell: the reviewer is at work, renew the page's leases."""
    try:
        page.renew(service())
    except LabelfixError as error:  # the store is busy: the next run or activity renews
        flash("warning", error.problem)


def on_view() -> None:
    """A click on a grid thumbnail: show that item large."""
    event = keys.event("view")
    if event is not None and isinstance(event.get("item"), int):
        st.session_state["focus"] = int(event["item"])


def unskip() -> None:
    st.session_state.pop("_skipped_now", None)
    page.refresh()
    _redraw_page()


def select_page(value: bool) -> None:
    """Tick (or clear) every tile of the page still to decide."""
    for item in page.todo():
        st.session_state[f"sel_{item.suggestion_id}"] = value


def ask_batch(decision: str, kind: str | None) -> None:
    """Ask to confirm ``decision`` on the selected tiles still to decide (of ``kind`` only, if given)."""
    chosen = [i for i in page.todo() if st.session_state.get(f"sel_{i.suggestion_id}")
              and (kind is None or (i.kind == "spurious") == (kind == "spurious"))]
    if not chosen:
        flash("info", "select items first")
        return
    verb = "say no to" if decision == "reject" else ("remove" if kind == "spurious" else "add")
    st.session_state["_batch"] = (decision, [i.suggestion_id for i in chosen], verb)


def confirm_batch() -> None:
    decision, ids, _ = st.session_state.pop("_batch", (None, [], ""))
    if not decision:
        return
    try:
        result = service().decide_many(suggestion_ids=ids, reviewer=current_reviewer().name, decision=decision)
    except LabelfixError as error:
        flash("warning", error.problem)
        return
    page.refresh()
    forget_undo()
    text = f"{len(result.events)} recorded"
    if result.conflicts:
        text += f", {len(result.conflicts)} left alone ({'; '.join(sorted(set(result.conflicts.values())))})"
    flash("success" if not result.conflicts else "warning", text)
    for suggestion_id in ids:
        st.session_state[f"sel_{suggestion_id}"] = False
    _redraw_page()


def cancel_batch() -> None:
    st.session_state.pop("_batch", None)


def ask_accept_above(category_id: int, name: str, min_score: float, n: int) -> None:
    st.session_state["_accept_above"] = (category_id, name, float(min_score), int(n))


def cancel_accept_above() -> None:
    st.session_state.pop("_accept_above", None)


def confirm_accept_above() -> None:
    request = st.session_state.pop("_accept_above", None)
    if not request:
        return
    category_id, name, min_score, _ = request
    try:
        result = service().accept_above(reviewer=current_reviewer().name, category_id=category_id,
                                        min_score=min_score, run_id=st.session_state.get("_run_id"))
    except LabelfixError as error:
        flash("warning", error.problem)
        return
    page.refresh()
    forget_undo()
    text = f"added '{name}' to {len(result.events)} images (every open suggestion scoring ≥ {min_score:.4f})"
    if result.conflicts:
        text += f"; {len(result.conflicts)} left alone (held by others or decided meanwhile)"
    flash("success", text)
    _redraw_page()
