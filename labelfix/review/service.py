"""The review service: the queue of open suggestions, decisions, undo, leases, history and progress.

UI-agnostic: the Streamlit app, the FiftyOne pull and the CLI all go through :class:`ReviewService`.
Review events are append-only; the current decision of a suggestion is derived from them (the latest
decision event that no ``undo`` event points at) and kept in ``review_state``. Every decision changes its
label cell and records its event in one transaction. The ``review_events``, ``review_state`` and
``leases`` tables are written through their owner, :mod:`labelfix.store.reviews`.

Threads: every method may be called from many threads at once; each call reads through its own cursor
and writes are serialised per store file (issue 14: two overlapping Streamlit reruns shared one cursor).
A key press goes through :meth:`ReviewService.submit`, which records each press at most once and never
raises for a repeated or stale press. :meth:`ReviewService.open` makes a service that holds no connection
between calls, so other ``labelfix`` commands can use the store while reviewers work.

The data classes live in :mod:`labelfix.review.models`, the read-only queries in
:mod:`labelfix.review.queries` and the write machinery in :mod:`labelfix.review.writer`; the names are
re-exported here so ``from labelfix.review.service import ...`` keeps working.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

from labelfix.review.models import (
    DECISIONS,
    PENDING,
    STATUSES,
    BatchResult,
    ClassDiff,
    ClassProgress,
    Decision,
    DecisionResult,
    ImageBox,
    ImageLabel,
    PrecisionEstimate,
    Progress,
    QueueItem,
    ReviewConflict,
    ReviewError,
    ReviewerAgreement,
    ReviewerStats,
    ReviewEvent,
    Status,
    label_effect,
    outcome_text,
    status_of,
    utc_now,
)
from labelfix.review.queries import ReviewQueries
from labelfix.review.writer import DEFAULT_LEASE_SECONDS, ReviewWriter
from labelfix.store.access import SharedStoreFile
from labelfix.store.database import StoreBusy
from labelfix.store.reviews import drop_expired_leases, lease, release_leases, renew_leases

__all__ = [
    "DECISIONS", "DEFAULT_LEASE_SECONDS", "PENDING", "STATUSES", "BatchResult", "ClassDiff", "ClassProgress",
    "Decision", "DecisionResult", "ImageBox", "ImageLabel", "PrecisionEstimate", "Progress", "QueueItem",
    "ReviewConflict", "ReviewError", "ReviewEvent", "ReviewQueries", "ReviewService", "ReviewerAgreement",
    "ReviewerStats", "Status", "StoreBusy", "label_effect", "outcome_text", "utc_now",
]

_TOKENS_KEPT = 10_000  # press tokens remembered per store file (the newest ones)




class ReviewService(ReviewWriter):
    """Review operations over one store; one service may serve every thread and session of a process.

    Parameters
    ----------
    store
        An open store (each call uses its own cursor of it), or a
        :class:`~labelfix.store.access.SharedStoreFile` (see :meth:`open`).
    lease_seconds
        How long :meth:`next_items` and :meth:`heartbeat` reserve items for a reviewer (default 30 s: renewed
        while the reviewer works, free soon after they stop).
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
    >>> service.submit(suggestion_id=items[0].suggestion_id, reviewer="ana", decision="accept").message
    'already accepted by ana'
    """

    @classmethod
    def open(cls, db: str | Path, *, lease_seconds: float = DEFAULT_LEASE_SECONDS,
             clock: Callable[[], dt.datetime] | None = None, lock_timeout: float = 30.0,
             linger_seconds: float = 2.0) -> "ReviewService":
        """A service that keeps no connection while idle (for a server: other commands can use the store).

        Each call works in a short transaction on the store file, opened on demand and closed
        ``linger_seconds`` after the last call, or at once when another process waits for the store (see
        :class:`~labelfix.store.access.SharedStoreFile`); while another process holds the file a call waits
        up to ``lock_timeout`` seconds, then raises :class:`~labelfix.store.database.StoreBusy`.
        """
        return cls(SharedStoreFile(db, lock_timeout=lock_timeout, linger_seconds=linger_seconds),
                   lease_seconds=lease_seconds, clock=clock)

    # -- leases ---------------------------------------------------------------------------------
    def next_items(self, *, reviewer: str, n: int = 1, category_id: int | None = None,
                   run_id: int | None = None, head_first: bool = False, min_score: float | None = None,
                   max_score: float | None = None, kinds: Sequence[str] | None = None,
                   statuses: Sequence[str] = PENDING, keep_other_leases: bool = False, image_id: int | None = None,
                   with_label: int | None = None) -> list[QueueItem]:
        """Lease the next ``n`` pending items to ``reviewer`` and return them in queue order.

        Items leased to another reviewer are never returned while that lease is live; expired leases are free
        again. Items already leased to ``reviewer`` are returned again (the lease is renewed).

        Parameters
        ----------
        reviewer
            Who reviews; recorded on the lease.
        n
            How many items (a page of the grid, or 1).
        category_id, run_id, head_first, min_score, max_score, kinds, image_id, with_label
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
        with self._writing(labels=False) as (store, _):
            now = self.clock()
            drop_expired_leases(store, now=now)
            chosen = self._select(store, category_id=category_id, run_id=run_id, statuses=list(statuses),
                                  min_score=min_score, max_score=max_score, head_first=head_first,
                                  limit=max(int(n), 0), offset=0, kinds=kinds, free_for=reviewer,
                                  image_id=image_id, with_label=with_label)
            expires = now + dt.timedelta(seconds=self.lease_seconds)
            lease(store, suggestion_ids=[item.suggestion_id for item in chosen], reviewer=reviewer,
                  expires_at=expires, release_others=not keep_other_leases)
        return [dataclasses.replace(item, lease_reviewer=reviewer, lease_expires_at=expires) for item in chosen]

    def heartbeat(self, *, reviewer: str, suggestion_ids: Sequence[int] | None = None) -> int:
        """Renew ``reviewer``'s live leases (all, or those on ``suggestion_ids``) for ``lease_seconds``; return how many."""
        reviewer = self._check_reviewer(reviewer)
        with self._writing(labels=False) as (store, _):
            now = self.clock()
            return renew_leases(store, reviewer=reviewer, now=now, suggestion_ids=suggestion_ids,
                                expires_at=now + dt.timedelta(seconds=self.lease_seconds))

    def release(self, *, reviewer: str, suggestion_ids: Sequence[int] | None = None) -> int:
        """Give back ``reviewer``'s leases (all of them, or those on ``suggestion_ids``); return how many.

        Call it when a reviewer renames themselves, signs out or leaves the page.
        """
        with self._writing(labels=False) as (store, _):
            return release_leases(store, reviewer=reviewer, suggestion_ids=suggestion_ids)

    # -- decisions ------------------------------------------------------------------------------

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
        self._check_decision(decision)
        with self._writing() as (store, changes):
            return self._decide_locked(store, changes, suggestion_id=suggestion_id, reviewer=reviewer,
                                       decision=decision, note=note, override_lease=override_lease)

    def submit(self, *, suggestion_id: int, reviewer: str, decision: Decision, expected_status: str | None = None,
               token: str | None = None, note: str | None = None) -> DecisionResult:
        """Record one key press: at most once, and never an error for a repeated or stale press.

        Parameters
        ----------
        suggestion_id, reviewer, decision, note
            As in :meth:`decide`.
        expected_status
            The status the page showed for the item (``open`` or ``skipped``); if it changed since (e.g. the
            first of two quick presses already decided it), nothing is recorded.
        token
            Unique per key press (e.g. the page's nonce): a second call with the same reviewer and token
            returns the first call's result and records nothing.

        Returns
        -------
        DecisionResult
            ``applied`` and the event, the item as it is now, and ``message``: the outcome in words
            ("'seven' added to image 12") or why nothing was recorded ("already accepted by ana").

        Raises
        ------
        ReviewError
            Only for an unknown decision or an empty reviewer name.
        StoreBusy
            Another process held the store for longer than the lock timeout.
        """
        reviewer = self._check_reviewer(reviewer)
        self._check_decision(decision)
        if expected_status is not None and expected_status not in STATUSES:
            raise ReviewError(f"unknown status {expected_status!r}", fix=f"use one of {', '.join(STATUSES)}")
        key = (reviewer, str(token)) if token is not None else None
        caches = self._access.caches
        with caches.write_lock:
            if key is not None and key in caches.tokens:
                return caches.tokens[key]
            event: ReviewEvent | None = None
            message = ""
            item: QueueItem | None = None
            with self._writing() as (store, changes):
                try:
                    current = self._current(store, suggestion_id)
                except ReviewError as error:
                    current, message = None, error.problem
                if current is not None:
                    if expected_status is not None and current["status"] != expected_status:
                        by = f" by {current['decided_by']}" if current["decided_by"] else ""
                        message = f"already {current['status']}{by}"
                    else:
                        message = self._conflict(current, suggestion_id=suggestion_id, reviewer=reviewer,
                                                 override_lease=False) or ""
                    if not message:
                        event = self._decide_locked(store, changes, suggestion_id=suggestion_id, reviewer=reviewer,
                                                    decision=decision, note=note, override_lease=False,
                                                    current=current)
                        current = {**current, "status": status_of(decision), "decided_by": reviewer,
                                   "lease_reviewer": None, "lease_expires": None}
                    item = self._item(current)
            if event is not None and item is not None:
                message = item.outcome(decision)
            result = DecisionResult(applied=event is not None, event=event, item=item, message=message)
            if key is not None:
                caches.tokens[key] = result
                while len(caches.tokens) > _TOKENS_KEPT:
                    caches.tokens.popitem(last=False)
        return result

    def decide_many(self, *, suggestion_ids: Sequence[int], reviewer: str, decision: Decision,
                    note: str | None = None, override_lease: bool = False) -> BatchResult:
        """Decide several suggestions in one transaction with a few set-based statements.

        Suggestions already accepted or rejected, held live by another reviewer (unless ``override_lease``)
        or unknown are left alone and reported in ``conflicts``. When two suggestions of one label cell are
        in the batch, the later one sets the cell, as two single decisions would.

        Returns
        -------
        BatchResult
            The recorded events, in the order of ``suggestion_ids``, and per left-alone suggestion id, why.
        """
        reviewer = self._check_reviewer(reviewer)
        self._check_decision(decision)
        with self._writing() as (store, changes):
            return self._decide_set(store, changes, suggestion_ids=suggestion_ids, reviewer=reviewer,
                                    decision=decision, note=note, override_lease=override_lease)

    def accept_above(self, *, reviewer: str, category_id: int, min_score: float, run_id: int | None = None,
                     note: str | None = None) -> BatchResult:
        """Accept every pending missing-label item of a class scoring at least ``min_score``, in one transaction.

        Items leased live to another reviewer are left alone (reported in ``conflicts``); spurious-label items
        are never batch-accepted (removing labels stays one decision at a time). Use
        :meth:`precision_estimate` to choose ``min_score``.

        Returns
        -------
        BatchResult
            One ``accept`` event per accepted item (in suggestion id order).
        """
        reviewer = self._check_reviewer(reviewer)
        with self._writing() as (store, changes):
            resolved = self._resolve_run(store, run_id)
            if resolved is None:
                return BatchResult()
            ids = [int(s) for (s,) in store.fetchall(
                "SELECT s.suggestion_id FROM suggestions s WHERE s.run_id = ? AND s.superseded_at IS NULL "
                "AND s.category_id = ? AND s.kind = 'missing' AND s.score >= ? AND s.suggestion_id NOT IN "
                "(SELECT suggestion_id FROM review_state WHERE category_id = ? AND decision NOT IN ('skip', 'unsure')) "
                "ORDER BY s.suggestion_id", [resolved, int(category_id), float(min_score), int(category_id)])]
            result = self._decide_set(store, changes, suggestion_ids=ids, reviewer=reviewer, decision="accept",
                                      note=note or f"accept all with score >= {float(min_score):.3f}",
                                      override_lease=False)
        # Say who holds what, in the app's words ("held by bob"), not as a full sentence per item.
        return BatchResult(events=result.events, conflicts={
            s: why.split(" is ", 1)[-1].split(" until ")[0] for s, why in result.conflicts.items()})

    # -- undo -----------------------------------------------------------------------------------
    def undo(self, *, reviewer: str, event_id: int | None = None, suggestion_id: int | None = None,
             note: str | None = None, token: str | None = None, any_reviewer: bool = False) -> ReviewEvent | None:
        """Reverse a decision with a compensating ``undo`` event; the label cell returns to its previous state.

        Only ``reviewer``'s own decisions are undone, unless ``any_reviewer`` (a lead reverting someone's
        decision; checking the role is the caller's job). The previous state is derived: the latest decision
        on the same cell that is still in force, else the source's original state. Nothing is deleted.

        Parameters
        ----------
        reviewer
            Who undoes (recorded on the undo event).
        event_id
            The decision to undo. Without it: the decision in force on ``suggestion_id`` if given, else
            ``reviewer``'s latest decision that is still in force.
        suggestion_id
            Undo the current decision on this suggestion.
        token
            Unique per key press: a second call with the same reviewer and token returns the first undo event
            and undoes nothing more.
        any_reviewer
            Allow undoing another reviewer's decision.

        Returns
        -------
        ReviewEvent or None
            The undo event, or ``None`` when ``reviewer`` has nothing left to undo.

        Raises
        ------
        ReviewConflict
            The decision is another reviewer's (without ``any_reviewer``), or already undone.
        """
        reviewer = self._check_reviewer(reviewer)
        key = (reviewer, "undo:" + str(token)) if token is not None else None
        caches = self._access.caches
        with caches.write_lock:
            if key is not None and key in caches.tokens:
                return caches.tokens[key]
            with self._writing() as (store, changes):
                undo_event = self._undo_locked(store, changes, reviewer=reviewer, event_id=event_id,
                                               suggestion_id=suggestion_id, note=note, any_reviewer=any_reviewer)
            if key is not None:
                caches.tokens[key] = undo_event
        return undo_event
