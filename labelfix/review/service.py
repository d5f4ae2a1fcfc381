"""The review service: the queue of open suggestions, decisions, undo, leases, history and progress.

UI-agnostic: the Streamlit app, the FiftyOne pull and the CLI all go through :class:`ReviewService`.
Review events are append-only; the current decision of a suggestion is derived from them (the latest
decision event that no ``undo`` event points at). Every decision changes its label cell and records
its event in one transaction. The ``review_events`` and ``leases`` tables are written through their
owner, :mod:`labelfix.store.reviews`.

The data classes live in :mod:`labelfix.review.models` and the read-only queries in
:mod:`labelfix.review.queries`; they are re-exported here so ``from labelfix.review.service import ...``
keeps working.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from labelfix.review.models import (
    EFFECTIVE_EVENTS_SQL,
    DECISIONS,
    PENDING,
    STATUSES,
    BatchResult,
    ClassDiff,
    ClassProgress,
    Decision,
    ImageBox,
    ImageLabel,
    Progress,
    QueueItem,
    ReviewConflict,
    ReviewError,
    ReviewEvent,
    Status,
    status_of,
    label_effect,
    utc_now,
)
from labelfix.review.queries import ReviewQueries
from labelfix.states import UNKNOWN
from labelfix.store.database import Store
from labelfix.store.labels import original_state, set_label
from labelfix.store.reviews import (
    drop_expired_leases,
    drop_lease,
    event_with_undone,
    latest_effective_event,
    lease,
    record_event,
    release_leases,
)

__all__ = [
    "DECISIONS", "DEFAULT_LEASE_SECONDS", "PENDING", "STATUSES", "BatchResult", "ClassDiff", "ClassProgress",
    "Decision", "ImageBox", "ImageLabel", "Progress", "QueueItem", "ReviewConflict", "ReviewError", "ReviewEvent",
    "ReviewQueries", "ReviewService", "Status", "label_effect", "utc_now",
]

DEFAULT_LEASE_SECONDS = 600.0

# One write lock per store file and process: Streamlit sessions and test threads each have their own
# cursor, and their write transactions are serialised here instead of failing on DuckDB conflicts.
_WRITE_LOCKS: dict[str, threading.RLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(path: Path) -> threading.RLock:
    key = str(Path(path).resolve())
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, threading.RLock())


class ReviewService(ReviewQueries):
    """Review operations over one store (one cursor; make one service per thread or session).

    Parameters
    ----------
    store
        The store, or a ``store.cursor()`` for a thread or a Streamlit session.
    lease_seconds
        How long :meth:`next_items` reserves items for a reviewer (default 10 minutes).
    clock
        Returns the current time as naive UTC; tests pass a fake clock to expire leases.

    Examples
    --------
    >>> service = ReviewService(store)  # a store with 8 open suggestions
    >>> items = service.next_items(reviewer="ana", n=10)
    >>> len(items)
    8
    >>> event = service.decide(suggestion_id=items[0].suggestion_id, reviewer="ana", decision="accept")
    >>> event.decision, service.progress().overall.pending
    ('accept', 7)
    """

    def __init__(self, store: Store, *, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.lease_seconds = float(lease_seconds)
        self._lock = _write_lock(store.path)
        super().__init__(store, clock=clock)

    # -- leases ---------------------------------------------------------------------------------
    def next_items(self, *, reviewer: str, n: int = 1, category_id: int | None = None,
                   run_id: int | None = None, head_first: bool = False, min_score: float | None = None,
                   max_score: float | None = None, kinds: Sequence[str] | None = None,
                   statuses: Sequence[str] = PENDING, keep_other_leases: bool = False) -> list[QueueItem]:
        """Lease the next ``n`` pending items to ``reviewer`` and return them in queue order.

        Items leased to another reviewer are never returned while that lease is live; expired leases are free
        again. Items already leased to ``reviewer`` are returned again (the lease is renewed).

        Parameters
        ----------
        reviewer
            Who reviews; recorded on the lease.
        n
            How many items (a page of the grid, or 1).
        category_id, run_id, head_first, min_score, max_score, kinds
            As in :meth:`items`.
        statuses
            ``open``, ``skipped`` or both (the default): which pending items to take.
        keep_other_leases
            Keep this reviewer's leases on items not returned now. By default they are released, so a
            reviewer holds only what they are looking at.
        """
        reviewer = self._check_reviewer(reviewer)
        if not set(statuses) <= set(PENDING):
            raise ReviewError(f"next_items leases pending items only, not {sorted(set(statuses) - set(PENDING))}",
                              fix="use items() to list decided suggestions")
        with self._lock, self.store.transaction():
            now = self.clock()
            drop_expired_leases(self.store, now=now)
            chosen = self._select(category_id=category_id, run_id=run_id, statuses=list(statuses), min_score=min_score,
                                  max_score=max_score, head_first=head_first, limit=max(int(n), 0), offset=0,
                                  kinds=kinds, free_for=reviewer)
            expires = now + dt.timedelta(seconds=self.lease_seconds)
            lease(self.store, suggestion_ids=[item.suggestion_id for item in chosen], reviewer=reviewer,
                  expires_at=expires, release_others=not keep_other_leases)
        return [dataclasses.replace(item, lease_reviewer=reviewer, lease_expires_at=expires) for item in chosen]

    def release(self, *, reviewer: str, suggestion_ids: Sequence[int] | None = None) -> int:
        """Give back ``reviewer``'s leases (all of them, or those on ``suggestion_ids``); return how many."""
        with self._lock, self.store.transaction():
            return release_leases(self.store, reviewer=reviewer, suggestion_ids=suggestion_ids)

    # -- decisions ------------------------------------------------------------------------------
    @staticmethod
    def _check_reviewer(reviewer: str) -> str:
        if not isinstance(reviewer, str) or not reviewer.strip():
            raise ReviewError("a reviewer name is required", fix="give the reviewer's name")
        return reviewer.strip()

    def _current(self, suggestion_id: int) -> tuple[str, str, int, int, str | None, str | None, str | None,
                                                   dt.datetime | None]:
        """(kind, status, image_id, category_id, decided_by, lease reviewer, decision, lease expiry)."""
        row = self.store.fetchone(f"""
            WITH eff AS ({EFFECTIVE_EVENTS_SQL} AND e.suggestion_id = ?)
            SELECT s.kind, s.image_id, s.category_id,
                   (SELECT arg_max(decision, event_id) FROM eff),
                   (SELECT arg_max(reviewer, event_id) FROM eff),
                   ls.reviewer, ls.expires_at
            FROM suggestions s LEFT JOIN leases ls ON ls.suggestion_id = s.suggestion_id
            WHERE s.suggestion_id = ?""", [int(suggestion_id), int(suggestion_id)])
        if row is None:
            raise ReviewError(f"no suggestion {suggestion_id}", fix="pick a suggestion from the review queue")
        kind, image_id, category_id, decision, decided_by, lease_reviewer, lease_expires = row
        return (kind, status_of(decision), int(image_id), int(category_id), decided_by, lease_reviewer, decision,
                lease_expires)

    def _decide_locked(self, *, suggestion_id: int, reviewer: str, decision: str, note: str | None,
                       override_lease: bool) -> ReviewEvent:
        kind, status, image_id, category_id, decided_by, lease_reviewer, _, lease_expires = \
            self._current(suggestion_id)
        if status in ("accepted", "rejected"):
            raise ReviewConflict(f"suggestion {suggestion_id} is already {status} by {decided_by}",
                                 fix="undo that decision first to change it")
        if (not override_lease and lease_reviewer is not None and lease_reviewer != reviewer
                and lease_expires is not None and lease_expires > self.clock()):
            raise ReviewConflict(f"suggestion {suggestion_id} is leased to {lease_reviewer} until {lease_expires}",
                                 fix="take items from next_items, or wait for the lease to expire")
        effect = label_effect(kind, decision)
        now = self.clock()
        event_id = record_event(self.store, suggestion_id=int(suggestion_id), image_id=image_id,
                                category_id=category_id, reviewer=reviewer, decision=decision, note=note,
                                created_at=now)
        if effect is not None:
            set_label(self.store, image_id=image_id, category_id=category_id, state=effect[0], origin=effect[1])
        drop_lease(self.store, suggestion_id=int(suggestion_id))
        return ReviewEvent(int(event_id), int(suggestion_id), image_id, category_id, reviewer, decision, note, None,
                           now)

    def decide(self, *, suggestion_id: int, reviewer: str, decision: Decision, note: str | None = None,
               override_lease: bool = False) -> ReviewEvent:
        """Record one decision, change the label cell, and release the lease, in one transaction.

        Parameters
        ----------
        suggestion_id
            The suggestion decided on.
        reviewer
            Who decided (recorded on the event).
        decision
            ``accept`` (missing: the cell becomes positive, origin ``accepted``; spurious: the cell becomes a
            verified negative), ``reject`` (missing: verified negative; spurious: no change), ``skip`` or
            ``unsure`` (no label change; the item stays pending and goes to the back of the queue), or
            ``auto_accept`` (positive with origin ``auto``).
        note
            Free text kept on the event.
        override_lease
            Decide even if another reviewer holds a live lease (used by imports such as the FiftyOne pull).

        Returns
        -------
        ReviewEvent

        Raises
        ------
        ReviewConflict
            If the suggestion is already accepted or rejected, or leased to another reviewer.
        """
        reviewer = self._check_reviewer(reviewer)
        if decision not in DECISIONS:
            raise ReviewError(f"unknown decision {decision!r}", fix=f"use one of {', '.join(DECISIONS)}")
        with self._lock, self.store.transaction():
            return self._decide_locked(suggestion_id=suggestion_id, reviewer=reviewer, decision=decision, note=note,
                                       override_lease=override_lease)

    def decide_many(self, *, suggestion_ids: Sequence[int], reviewer: str, decision: Decision,
                    note: str | None = None, override_lease: bool = False) -> BatchResult:
        """Decide several suggestions in one transaction; conflicting ones are left alone and reported.

        Returns
        -------
        BatchResult
            The recorded events and, per skipped suggestion id, why it was skipped.
        """
        reviewer = self._check_reviewer(reviewer)
        if decision not in DECISIONS:
            raise ReviewError(f"unknown decision {decision!r}", fix=f"use one of {', '.join(DECISIONS)}")
        result = BatchResult()
        with self._lock, self.store.transaction():
            for suggestion_id in dict.fromkeys(int(s) for s in suggestion_ids):
                try:
                    result.events.append(self._decide_locked(
                        suggestion_id=suggestion_id, reviewer=reviewer, decision=decision, note=note,
                        override_lease=override_lease))
                except ReviewError as error:
                    result.conflicts[suggestion_id] = error.problem
        return result

    def undo(self, *, reviewer: str, event_id: int | None = None, suggestion_id: int | None = None,
             note: str | None = None) -> ReviewEvent | None:
        """Reverse a decision with a compensating ``undo`` event; the label cell returns to its previous state.

        The previous state is derived: the latest decision on the same cell that is still effective, else the
        source's original state. Nothing is deleted.

        Parameters
        ----------
        reviewer
            Who undoes (recorded on the undo event).
        event_id
            The decision to undo. Without it: the effective decision on ``suggestion_id`` if given, else
            ``reviewer``'s latest decision that is still effective.
        suggestion_id
            Undo the current decision on this suggestion.

        Returns
        -------
        ReviewEvent or None
            The undo event, or ``None`` when ``reviewer`` has nothing left to undo.
        """
        reviewer = self._check_reviewer(reviewer)
        with self._lock, self.store.transaction():
            if event_id is None:
                if suggestion_id is not None:
                    event_id = latest_effective_event(self.store, suggestion_id=int(suggestion_id))
                    if event_id is None:
                        raise ReviewError(f"suggestion {suggestion_id} has no decision to undo")
                else:
                    event_id = latest_effective_event(self.store, reviewer=reviewer)
                    if event_id is None:
                        return None
            row = event_with_undone(self.store, event_id=int(event_id))
            if row is None:
                raise ReviewError(f"no review event {event_id}")
            _, target_suggestion, image_id, category_id, decision, undone = row
            if decision == "undo":
                raise ReviewError(f"event {event_id} is an undo; decide again instead of undoing an undo")
            if undone:
                raise ReviewConflict(f"event {event_id} is already undone")
            now = self.clock()
            new_id = record_event(self.store, suggestion_id=target_suggestion, image_id=image_id,
                                  category_id=category_id, reviewer=reviewer, decision="undo", note=note,
                                  created_at=now, undoes_event_id=int(event_id))
            self._restore_cell(image_id=int(image_id), category_id=int(category_id))
        return ReviewEvent(int(new_id), None if target_suggestion is None else int(target_suggestion), int(image_id),
                           int(category_id), reviewer, "undo", note, int(event_id), now)

    def _restore_cell(self, *, image_id: int, category_id: int) -> None:
        """Set a cell from its latest still-effective decision with a label effect, else its original state."""
        rows = self.store.fetchall(
            f"SELECT e.decision, coalesce(s.kind, 'missing') FROM ({EFFECTIVE_EVENTS_SQL}) e "
            f"LEFT JOIN suggestions s ON s.suggestion_id = e.suggestion_id "
            f"WHERE e.image_id = ? AND e.category_id = ? ORDER BY e.event_id DESC", [image_id, category_id])
        for decision, kind in rows:
            effect = label_effect(kind, decision)
            if effect is not None:
                set_label(self.store, image_id=image_id, category_id=category_id, state=effect[0], origin=effect[1])
                return
        state = original_state(self.store, image_id=image_id, category_id=category_id)
        set_label(self.store, image_id=image_id, category_id=category_id, state=state,
                  origin="original" if state != UNKNOWN else "manual")
