"""The write machinery under :class:`~labelfix.review.service.ReviewService`: one serialised transaction per
call, the checks before a decision, and the statements that record decisions and undos.

Each write runs under the store file's write lock (one per process, :mod:`labelfix.review.reader`) in one
transaction, on its own cursor. The label cells a transaction changes are tracked (:class:`_Changes`) so the
cached class positives follow after the commit without a recount. ``review_events``, ``review_state`` and
``leases`` are written through their owner, :mod:`labelfix.store.reviews`; ``labels`` through
:mod:`labelfix.store.labels`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa

from labelfix.review.models import (
    DECISIONS,
    BatchResult,
    QueueItem,
    ReviewConflict,
    ReviewError,
    ReviewEvent,
    label_effect,
    status_of,
)
from labelfix.review.queries import ReviewQueries
from labelfix.states import POSITIVE, UNKNOWN
from labelfix.store.access import SharedStoreFile
from labelfix.store.database import Store
from labelfix.store.labels import original_state, set_label, set_labels
from labelfix.store.reviewers import known_reviewer_name
from labelfix.store.suggestions import CALIBRATED_SQL, ESTIMATED_SQL
from labelfix.store.reviews import (
    decision_in_force,
    drop_lease,
    drop_leases,
    event_with_undone,
    latest_own_decision,
    record_decisions,
    record_event,
)

__all__ = ["DEFAULT_LEASE_SECONDS", "ReviewWriter"]

# A lease is a short hold: the app renews it while the reviewer works (next_items, heartbeat on each run and on
# mouse or key activity in the page); an idle reviewer's items are free again after this long (issue 14: "released
# after short idle"), and a closed tab's within seconds (labelfix.review.app.presence).
DEFAULT_LEASE_SECONDS = 30.0


@dataclasses.dataclass
class _Changes:
    """What one write transaction did to label cells, so the cached class positives follow without a recount."""

    cells: list[tuple[int, int, int, int]] = dataclasses.field(default_factory=list)  # image, class, before, after
    events: list[int] = dataclasses.field(default_factory=list)
    recount: bool = False  # too many cells (a batch): recount the positives instead

    def fingerprint_after(self, before: tuple) -> tuple:
        """The labels fingerprint (:meth:`PathCaches.fingerprints` ``[:4]``) after these changes."""
        rows = sum(int(new != UNKNOWN) - int(old != UNKNOWN) for _, _, old, new in self.cells)
        return (before[0] + rows, max([before[1], *self.events]), *before[2:])



class ReviewWriter(ReviewQueries):
    """Reads (:class:`~labelfix.review.queries.ReviewQueries`) plus the write machinery; see ``ReviewService``."""

    def __init__(self, store: Store | SharedStoreFile, *, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.lease_seconds = float(lease_seconds)
        super().__init__(store, clock=clock)

    @contextlib.contextmanager
    def _writing(self, *, labels: bool = True) -> Iterator[tuple[Store, _Changes]]:
        """One serialised transaction; label cells changed in it adjust the cached class positives after commit.

        ``labels=False``: the transaction writes no label cell and no event (leases only).
        """
        caches = self._access.caches
        with caches.write_lock:
            changes = _Changes()
            with self._access.read() as store, store.transaction():
                if not labels:
                    yield store, changes
                    return
                before = caches.labels_fingerprint(store)
                yield store, changes
                recount = changes.recount or len(changes.cells) > 64
                deltas = None if recount else self._frequency_deltas(store, changes)
            caches.adjust_frequencies(before=before, after=changes.fingerprint_after(before), deltas=deltas)

    @staticmethod
    def _frequency_deltas(store: Store, changes: _Changes) -> dict[int, int]:
        deltas: dict[int, int] = {}
        if not changes.cells:
            return deltas
        has_train = bool(store.scalar("SELECT EXISTS (SELECT 1 FROM images WHERE split = 'train')"))
        for image_id, category_id, old, new in changes.cells:
            delta = int(new == POSITIVE) - int(old == POSITIVE)
            if delta and (not has_train or store.scalar("SELECT split FROM images WHERE image_id = ?",
                                                        [image_id]) == "train"):
                deltas[category_id] = deltas.get(category_id, 0) + delta
        return deltas

    @staticmethod
    def _set_cell(store: Store, changes: _Changes, *, image_id: int, category_id: int, state: int,
                  origin: str) -> None:
        old = store.scalar("SELECT state FROM labels WHERE image_id = ? AND category_id = ?", [image_id, category_id])
        set_label(store, image_id=image_id, category_id=category_id, state=state, origin=origin)
        changes.cells.append((image_id, category_id, int(old or UNKNOWN), int(state)))

    @staticmethod
    def _check_reviewer(reviewer: str) -> str:
        if not isinstance(reviewer, str) or not reviewer.strip():
            raise ReviewError("a reviewer name is required", fix="give the reviewer's name")
        return reviewer.strip()

    def known_reviewer(self, *, name: str) -> str:
        """The name as first written of the reviewer ``name`` is: ``ana`` and ``Ana`` are one reviewer (an
        account's name, else the name on their earliest decision or a lease); a new name as typed.

        Where a name is entered (the review app's name form) it goes through here, so one person's
        decisions and leases carry one name whatever the case typed.
        """
        name = self._check_reviewer(name)
        with self._access.read() as store:
            return known_reviewer_name(store, name=name) or name

    @staticmethod
    def _check_decision(decision: str) -> None:
        if decision not in DECISIONS:
            raise ReviewError(f"unknown decision {decision!r}", fix=f"use one of {', '.join(DECISIONS)}")

    @staticmethod
    def _current(store: Store, suggestion_id: int) -> dict[str, Any]:
        """The suggestion (kind, cell, score, ...), its decision in force (and by whom), lease and image file."""
        row = store.fetchone(
            "SELECT s.kind, s.image_id, s.category_id, r.decision, r.reviewer, ls.reviewer, ls.expires_at, s.run_id, "
            "s.score, s.rank_in_class, s.reason, c.name, im.file_name, im.images_root, "
            f"{CALIBRATED_SQL}, {ESTIMATED_SQL} "
            "FROM suggestions s LEFT JOIN review_state r ON r.suggestion_id = s.suggestion_id "
            "LEFT JOIN leases ls ON ls.suggestion_id = s.suggestion_id "
            "LEFT JOIN categories c ON c.category_id = s.category_id "
            "LEFT JOIN images im ON im.image_id = s.image_id WHERE s.suggestion_id = ?", [int(suggestion_id)])
        if row is None:
            raise ReviewError(f"no suggestion {suggestion_id}", fix="pick a suggestion from the review queue")
        keys = ("kind", "image_id", "category_id", "decision", "decided_by", "lease_reviewer", "lease_expires",
                "run_id", "score", "rank_in_class", "reason", "category_name", "file_name", "images_root", "calibrated",
                "estimated")
        current = dict(zip(keys, row))
        current["suggestion_id"] = int(suggestion_id)
        current["status"] = status_of(current["decision"])
        return current

    def _item(self, current: dict[str, Any]) -> QueueItem:
        """The :class:`QueueItem` of a :meth:`_current` row (its class frequency from the cache, if known)."""
        cached = self._access.caches.frequencies
        category_id = int(current["category_id"])
        holder, expires = current["lease_reviewer"], current["lease_expires"]
        if expires is not None and expires <= self.clock():
            holder, expires = None, None
        return QueueItem(
            suggestion_id=int(current["suggestion_id"]), run_id=int(current["run_id"]),
            image_id=int(current["image_id"]), category_id=category_id,
            category_name=str(current["category_name"] or category_id), kind=current["kind"],
            score=float(current["score"]), rank_in_class=int(current["rank_in_class"]), reason=current["reason"],
            status=current["status"], decided_by=current["decided_by"],
            class_frequency=int(cached[1].get(category_id, 0)) if cached else 0, file_name=current["file_name"],
            images_root=current["images_root"], lease_reviewer=holder, lease_expires_at=expires,
            calibrated=bool(current["calibrated"]), estimated=bool(current["estimated"]))

    def _conflict(self, current: dict[str, Any], *, suggestion_id: int, reviewer: str,
                  override_lease: bool) -> str | None:
        """Why ``reviewer`` may not decide this suggestion now (``None``: they may)."""
        if current["status"] in ("accepted", "rejected"):
            return f"already {current['status']} by {current['decided_by']}"
        holder, expires = current["lease_reviewer"], current["lease_expires"]
        if not override_lease and holder is not None and holder != reviewer and expires is not None \
                and expires > self.clock():
            return f"held by {holder} until {expires:%H:%M:%S} UTC"
        return None

    def _decide_locked(self, store: Store, changes: _Changes, *, suggestion_id: int, reviewer: str, decision: str,
                       note: str | None, override_lease: bool, current: dict[str, Any] | None = None) -> ReviewEvent:
        current = current if current is not None else self._current(store, suggestion_id)
        why = self._conflict(current, suggestion_id=suggestion_id, reviewer=reviewer, override_lease=override_lease)
        if why is not None:
            raise ReviewConflict(f"suggestion {suggestion_id} is {why}",
                                 fix="undo that decision first to change it" if why.startswith("already")
                                 else "take items from next_items, or wait for the lease to expire")
        image_id, category_id = int(current["image_id"]), int(current["category_id"])
        effect = label_effect(current["kind"], decision)
        now = self.clock()
        event_id = record_event(store, suggestion_id=int(suggestion_id), image_id=image_id, category_id=category_id,
                                reviewer=reviewer, decision=decision, note=note, created_at=now)
        changes.events.append(int(event_id))
        if effect is not None:
            self._set_cell(store, changes, image_id=image_id, category_id=category_id, state=effect[0],
                           origin=effect[1])
        drop_lease(store, suggestion_id=int(suggestion_id))
        return ReviewEvent(int(event_id), int(suggestion_id), image_id, category_id, reviewer, decision, note, None,
                           now)

    def _decide_set(self, store: Store, changes: _Changes, *, suggestion_ids: Sequence[int], reviewer: str,
                    decision: str, note: str | None, override_lease: bool) -> BatchResult:
        ids = list(dict.fromkeys(int(s) for s in suggestion_ids))
        result = BatchResult()
        if not ids:
            return result
        marks = "SELECT unnest(?::BIGINT[])" if len(ids) > 1000 else ", ".join("?" for _ in ids)
        rows = store.fetchall(
            f"SELECT s.suggestion_id, s.kind, s.image_id, s.category_id, r.decision, r.reviewer, ls.reviewer, "
            f"ls.expires_at FROM suggestions s LEFT JOIN review_state r ON r.suggestion_id = s.suggestion_id "
            f"LEFT JOIN leases ls ON ls.suggestion_id = s.suggestion_id WHERE s.suggestion_id IN ({marks})",
            [ids] if len(ids) > 1000 else ids)
        keys = ("kind", "image_id", "category_id", "decision", "decided_by", "lease_reviewer", "lease_expires")
        found = {int(r[0]): {**dict(zip(keys, r[1:])), "status": status_of(r[4])} for r in rows}
        chosen = []
        for position, suggestion_id in enumerate(ids):
            current = found.get(suggestion_id)
            why = "no such suggestion" if current is None else self._conflict(
                current, suggestion_id=suggestion_id, reviewer=reviewer, override_lease=override_lease)
            if why is not None:
                result.conflicts[suggestion_id] = f"suggestion {suggestion_id} is {why}" if current else why
                continue
            assert current is not None
            chosen.append((position, suggestion_id, int(current["image_id"]), int(current["category_id"]),
                           current["kind"]))
        if not chosen:
            return result
        now = self.clock()
        table = pa.table({"position": pa.array([c[0] for c in chosen], pa.int64()),
                          "suggestion_id": pa.array([c[1] for c in chosen], pa.int64()),
                          "image_id": pa.array([c[2] for c in chosen], pa.int64()),
                          "category_id": pa.array([c[3] for c in chosen], pa.int64())})
        event_ids = record_decisions(store, suggestions=table, reviewer=reviewer, decision=decision, note=note,
                                     created_at=now)
        # Each cell once (the last in the batch wins), grouped by the effect its kind gives the decision.
        last: dict[tuple[int, int], tuple[int, str] | None] = {}
        for _, _, image_id, category_id, kind in chosen:
            last.pop((image_id, category_id), None)
            last[(image_id, category_id)] = label_effect(kind, decision)
        groups: dict[tuple[int, str], list[tuple[int, int]]] = {}
        for cell, effect in last.items():
            if effect is not None:
                groups.setdefault(effect, []).append(cell)
        for (state, origin), cells in groups.items():
            set_labels(store, cells=pa.table({"image_id": pa.array([c[0] for c in cells], pa.int64()),
                                              "category_id": pa.array([c[1] for c in cells], pa.int64())}),
                       state=state, origin=origin, updated_at=now)
        if groups:
            changes.recount = True  # a batch: recount the class positives instead of adjusting them
        changes.events.extend(event_ids.values())
        drop_leases(store, suggestions_sql="SELECT unnest(?::BIGINT[])", parameters=[[c[1] for c in chosen]])
        result.events.extend(ReviewEvent(event_ids[c[1]], c[1], c[2], c[3], reviewer, decision, note, None, now)
                             for c in chosen)
        return result

    def _undo_locked(self, store: Store, changes: _Changes, *, reviewer: str, event_id: int | None,
                     suggestion_id: int | None, note: str | None, any_reviewer: bool) -> ReviewEvent | None:
        if event_id is None:
            if suggestion_id is not None:
                found = decision_in_force(store, suggestion_id=int(suggestion_id))
                if found is None:
                    raise ReviewError(f"suggestion {suggestion_id} has no decision to undo")
                event_id = found[0]
            else:
                event_id = latest_own_decision(store, reviewer=reviewer)
                if event_id is None:
                    return None
        row = event_with_undone(store, event_id=int(event_id))
        if row is None:
            raise ReviewError(f"no review event {event_id}")
        _, target_suggestion, image_id, category_id, decision, undone, owner = row
        if decision == "undo":
            raise ReviewError(f"event {event_id} is an undo; decide again instead of undoing an undo")
        if undone:
            raise ReviewConflict(f"event {event_id} is already undone")
        if owner != reviewer and not any_reviewer:
            raise ReviewConflict(f"that decision is {owner}'s; you can undo only your own decisions",
                                 fix=f"ask a lead to revert {owner}'s decision")
        now = self.clock()
        new_id = record_event(store, suggestion_id=target_suggestion, image_id=image_id, category_id=category_id,
                              reviewer=reviewer, decision="undo", note=note, created_at=now,
                              undoes_event_id=int(event_id))
        changes.events.append(int(new_id))
        self._restore_cell(store, changes, image_id=int(image_id), category_id=int(category_id))
        return ReviewEvent(int(new_id), None if target_suggestion is None else int(target_suggestion),
                           int(image_id), int(category_id), reviewer, "undo", note, int(event_id), now)

    def _restore_cell(self, store: Store, changes: _Changes, *, image_id: int, category_id: int) -> None:
        """Set a cell from its latest still-effective decision with a label effect, else its original state."""
        # An undo carries the cell of the event it cancels: only this cell's events are read.
        rows = store.fetchall(
            "WITH ev AS (SELECT * FROM review_events WHERE image_id = ? AND category_id = ?) "
            "SELECT e.decision, coalesce(s.kind, 'missing') FROM ev e "
            "LEFT JOIN suggestions s ON s.suggestion_id = e.suggestion_id WHERE e.decision <> 'undo' "
            "AND NOT EXISTS (SELECT 1 FROM ev u WHERE u.decision = 'undo' AND u.undoes_event_id = e.event_id) "
            "ORDER BY e.event_id DESC", [image_id, category_id])
        for decision, kind in rows:
            effect = label_effect(kind, decision)
            if effect is not None:
                self._set_cell(store, changes, image_id=image_id, category_id=category_id, state=effect[0],
                               origin=effect[1])
                return
        state = original_state(store, image_id=image_id, category_id=category_id)
        self._set_cell(store, changes, image_id=image_id, category_id=category_id, state=state,
                       origin="original" if state != UNKNOWN else "manual")
