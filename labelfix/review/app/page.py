"""The page of items a reviewer works through, and the class counts, kept in the session between key presses.

A page is leased in one call (``next_items``) and then worked through: each decision changes the item's
status in the page (its tile shows what was done, and "previous" can go back to it) and moves the large
view to the next undecided item; the page is fetched again only when none is left or the filters
change, and its leases (30 s) are renewed (``heartbeat``) while the reviewer works: on the page's runs and on
mouse or key activity in the page (:func:`renew`); when the tab is closed they are released within seconds
(:mod:`.presence`); after an idle spell longer than a lease the items are free for others again, and the page
is fetched anew. The class counts follow the
reviewer's own decisions at once and are read again from the store every few seconds (other reviewers'
work). So a key press costs no queue query, and the page does not reshuffle under the reviewer's eyes.
"""

from __future__ import annotations

import dataclasses
import time

import streamlit as st

from labelfix.review.app.backend import Filters, page_items
from labelfix.review.app.state import show_leased
from labelfix.review.models import PENDING, ClassProgress, Progress, QueueItem, status_of
from labelfix.review.service import ReviewService

_KEY = "_page"
_PROGRESS = "_progress"
PROGRESS_SECONDS = 10.0  # how old the class counts may get before they are read again (others' decisions)


def todo(cache: dict | None = None) -> list[QueueItem]:
    """The page's items still to decide, in page order (not acted on in this page, still pending)."""
    cache = cache if cache is not None else st.session_state.get(_KEY)
    if not cache:
        return []
    return [i for i in cache["items"] if i.status in PENDING and i.suggestion_id not in cache["acted"]]


def current(service: ReviewService, *, reviewer: str, filters: Filters) -> dict:
    """The page: ``items``, their images' ``boxes``, ``held`` (items per class other reviewers hold) and
    ``acted`` (suggestion ids decided or skipped on this page); from the session, or fetched (and leased)
    again when needed."""
    cache = st.session_state.get(_KEY)
    # the service's clock (the one its leases run on; tests inject one)
    age = (service.clock() - cache["at"]).total_seconds() if cache else 0.0
    if cache is None or cache["filters"] != filters or cache["reviewer"] != reviewer \
            or (filters.leasing and (not todo(cache) or age > service.lease_seconds)):
        # a new page; also after an idle spell longer than a lease (others may have taken its items)
        items = page_items(service, reviewer=reviewer, filters=filters)
        cache = {"filters": filters, "reviewer": reviewer, "at": service.clock(), "items": items, "acted": set(),
                 "boxes": service.image_boxes(image_ids=[i.image_id for i in items]),
                 "held": service.held_by_others(reviewer=reviewer, run_id=filters.run_id)}
        st.session_state[_KEY] = cache
        if filters.leasing:
            show_leased(service, reviewer=reviewer, suggestion_ids=[i.suggestion_id for i in items])
    elif filters.leasing and age > service.lease_seconds / 3:
        renew(service, cache=cache)
    return cache


def renew(service: ReviewService, *, cache: dict | None = None) -> int:
    """The reviewer is at work (a run of the page, or mouse and key activity in it): renew the leases of the
    page's items still to decide, so an active reviewer's items are never taken from under them while an idle
    one's lapse after ``lease_seconds``. Returns how many were renewed."""
    cache = cache if cache is not None else st.session_state.get(_KEY)
    if not cache or not cache["filters"].leasing:
        return 0
    renewed = service.heartbeat(reviewer=cache["reviewer"], suggestion_ids=[i.suggestion_id for i in todo(cache)])
    cache["held"] = service.held_by_others(reviewer=cache["reviewer"], run_id=cache["filters"].run_id)  # may change
    cache["at"] = service.clock()
    return renewed


def refresh() -> None:
    """Fetch the page and the counts again on the next run (after a batch, an undo, a change elsewhere)."""
    st.session_state.pop(_KEY, None)
    st.session_state.pop(_PROGRESS, None)


def forget_counts() -> None:
    """Read the class counts again on the next run."""
    st.session_state.pop(_PROGRESS, None)


def progress(service: ReviewService, *, filters: Filters) -> Progress:
    """Counts per class and overall: the reviewer's own decisions at once, others' within a few seconds."""
    cached = st.session_state.get(_PROGRESS)
    key = (filters.run_id, filters.head_first)
    if cached is None or cached["key"] != key or time.monotonic() - cached["at"] > PROGRESS_SECONDS:
        cached = {"key": key, "at": time.monotonic(),
                  "value": service.progress(run_id=filters.run_id, head_first=filters.head_first)}
        st.session_state[_PROGRESS] = cached
    return cached["value"]


def _moved(row: ClassProgress, before: str, after: str, kind: str) -> ClassProgress:
    counts = {name: getattr(row, name) for name in ("open", "skipped", "accepted", "rejected")}
    if counts.get(before, 0) <= 0 or after not in counts:
        return row
    counts[before] -= 1
    counts[after] += 1
    if before in PENDING and after not in PENDING:
        field = "spurious_pending" if kind == "spurious" else "missing_pending"
        counts[field] = max(0, getattr(row, field) - 1)
    return dataclasses.replace(row, **counts)


def _count(item: QueueItem, after: str) -> None:
    cached = st.session_state.get(_PROGRESS)
    if not cached or item.status == after:
        return
    value: Progress = cached["value"]
    cached["value"] = Progress(
        overall=_moved(value.overall, item.status, after, item.kind),
        by_class=[_moved(row, item.status, after, item.kind) if row.category_id == item.category_id else row
                  for row in value.by_class])


def sync(item: QueueItem) -> None:
    """Take the store's copy of one item into the page (another tab of the same reviewer, or another reviewer,
    may have decided or undone it): the page never answers from an old copy (issue 14, fresh report item 1)."""
    cache = st.session_state.get(_KEY)
    if not cache:
        return
    old = next((i for i in cache["items"] if i.suggestion_id == item.suggestion_id), None)
    if old is None or (old.status, old.decided_by) == (item.status, item.decided_by):
        return
    cache["items"] = [item if i.suggestion_id == item.suggestion_id else i for i in cache["items"]]
    if item.status == "open":
        cache["acted"].discard(item.suggestion_id)  # open again: to decide on this page
    forget_counts()


def mark_decided(suggestion_id: int, *, decision: str | None, reviewer: str | None) -> None:
    """Show a decision (``None``: an undo) in the page without asking the store."""
    cache = st.session_state.get(_KEY)
    if not cache:
        return
    for item in cache["items"]:
        if item.suggestion_id == suggestion_id and decision is not None:
            _count(item, status_of(decision))
    cache["items"] = [dataclasses.replace(i, status=status_of(decision), decided_by=reviewer)
                      if i.suggestion_id == suggestion_id else i for i in cache["items"]]
    if decision is None:
        cache["acted"].discard(suggestion_id)
    else:
        cache["acted"].add(suggestion_id)
