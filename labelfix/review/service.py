"""The review service: the queue of open suggestions, decisions, undo, leases, history and progress.

UI-agnostic: the Streamlit app, the FiftyOne pull and the CLI all go through :class:`ReviewService`.
Review events are append-only; the current decision of a suggestion is derived from them (the latest
decision event that no ``undo`` event points at). Every decision changes its label cell and records
its event in one transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from labelfix.errors import LabelfixError
from labelfix.states import NEGATIVE, POSITIVE, UNKNOWN
from labelfix.store.database import Store
from labelfix.store.labels import original_state, set_label

Decision = Literal["accept", "reject", "skip", "unsure", "auto_accept"]
Status = Literal["open", "skipped", "accepted", "rejected"]

DECISIONS: tuple[str, ...] = ("accept", "reject", "skip", "unsure", "auto_accept")
STATUSES: tuple[str, ...] = ("open", "skipped", "accepted", "rejected")
PENDING: tuple[str, ...] = ("open", "skipped")
DEFAULT_LEASE_SECONDS = 600.0

# One write lock per store file and process: Streamlit sessions and test threads each have their own
# cursor, and their write transactions are serialised here instead of failing on DuckDB conflicts.
_WRITE_LOCKS: dict[str, threading.RLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(path: Path) -> threading.RLock:
    key = str(Path(path).resolve())
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, threading.RLock())


def utc_now() -> dt.datetime:
    """The current time as naive UTC, the form lease expiries and event times are stored in."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class ReviewError(LabelfixError):
    """A review request that cannot be carried out (unknown suggestion, nothing to undo, bad decision)."""


class ReviewConflict(ReviewError):
    """The suggestion is leased to another reviewer, or already accepted/rejected."""


@dataclass(frozen=True)
class QueueItem:
    """One suggestion with its derived review status."""

    suggestion_id: int
    run_id: int
    image_id: int
    category_id: int
    category_name: str
    kind: str
    score: float
    rank_in_class: int
    reason: str | None
    status: str
    decided_by: str | None
    class_frequency: int
    file_name: str | None
    images_root: str | None
    lease_reviewer: str | None = None
    lease_expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class ReviewEvent:
    """One row of ``review_events``; ``undone`` says whether a later ``undo`` event points at it."""

    event_id: int
    suggestion_id: int | None
    image_id: int
    category_id: int
    reviewer: str
    decision: str
    note: str | None
    undoes_event_id: int | None
    created_at: dt.datetime
    undone: bool = False


@dataclass(frozen=True)
class ClassProgress:
    """Review counts of one class (or of all classes, with ``category_id`` ``None``)."""

    category_id: int | None
    name: str
    frequency: int
    total: int
    open: int
    skipped: int
    accepted: int
    rejected: int

    @property
    def pending(self) -> int:
        """Suggestions still waiting for an accept or reject (open plus skipped/unsure)."""
        return self.open + self.skipped

    @property
    def decided(self) -> int:
        return self.accepted + self.rejected

    @property
    def fraction_done(self) -> float:
        return self.decided / self.total if self.total else 1.0


@dataclass(frozen=True)
class Progress:
    """Progress per class (tail first) and overall."""

    overall: ClassProgress
    by_class: list[ClassProgress]


@dataclass(frozen=True)
class BatchResult:
    """What a batch decision recorded and which suggestions it left alone (with the reason)."""

    events: list[ReviewEvent] = field(default_factory=list)
    conflicts: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageLabel:
    """A stored label cell of an image."""

    category_id: int
    name: str
    state: int
    origin: str


@dataclass(frozen=True)
class ImageBox:
    """A source annotation with a bounding box ``[x, y, width, height]`` in pixels."""

    category_id: int
    name: str
    bbox: tuple[float, float, float, float]


@dataclass(frozen=True)
class ClassDiff:
    """Per-class difference between the source's labels and the labels an export would write."""

    category_id: int
    name: str
    original_positive: int
    exported_positive: int
    added: int
    removed: int
    verified_negative: int


def label_effect(kind: str, decision: str) -> tuple[int, str] | None:
    """The (state, origin) a decision gives its cell, or ``None`` when it leaves the cell alone.

    Parameters
    ----------
    kind
        ``missing`` (the class is probably present but not labelled) or ``spurious`` (the label is probably
        wrong).
    decision
        One of :data:`DECISIONS`.

    Examples
    --------
    >>> label_effect("missing", "accept")
    (1, 'accepted')
    >>> label_effect("missing", "reject")
    (-1, 'manual')
    >>> label_effect("spurious", "accept")
    (-1, 'manual')
    >>> label_effect("missing", "skip") is None
    True
    """
    if decision in ("skip", "unsure"):
        return None
    if kind == "spurious":
        # accept = "yes, the annotation is wrong"; reject = "the annotation is right": nothing changes.
        return (NEGATIVE, "manual") if decision in ("accept", "auto_accept") else None
    if decision == "accept":
        return POSITIVE, "accepted"
    if decision == "auto_accept":
        return POSITIVE, "auto"
    if decision == "reject":
        return NEGATIVE, "manual"
    raise ReviewError(f"unknown decision {decision!r}", fix=f"use one of {', '.join(DECISIONS)}")


def _status_of(decision: str | None) -> str:
    if decision is None:
        return "open"
    if decision in ("skip", "unsure"):
        return "skipped"
    if decision in ("accept", "auto_accept"):
        return "accepted"
    return "rejected"


_EFFECTIVE_SQL = """
    SELECT e.* FROM review_events e
    WHERE e.decision <> 'undo' AND NOT EXISTS (
        SELECT 1 FROM review_events u WHERE u.decision = 'undo' AND u.undoes_event_id = e.event_id)
"""

_STATUS_SQL = """
    CASE WHEN cur.decision IS NULL THEN 'open'
         WHEN cur.decision IN ('skip', 'unsure') THEN 'skipped'
         WHEN cur.decision IN ('accept', 'auto_accept') THEN 'accepted'
         ELSE 'rejected' END
"""


class ReviewService:
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
    >>> service = ReviewService(store)  # doctest: +SKIP
    >>> items = service.next_items(reviewer="ana", n=10)  # doctest: +SKIP
    >>> service.decide(suggestion_id=items[0].suggestion_id, reviewer="ana", decision="accept")  # doctest: +SKIP
    """

    def __init__(self, store: Store, *, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.store = store
        self.lease_seconds = float(lease_seconds)
        self.clock = clock or utc_now
        self._lock = _write_lock(store.path)
        # `labelfix suggest` marks replaced suggestions (migration 0003); the queue shows only current ones.
        has_column = store.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = 'suggestions' "
                                  "AND column_name = 'superseded_at'")
        self._current_sql = "s.superseded_at IS NULL" if has_column else "TRUE"

    # -- reading --------------------------------------------------------------------------------
    def runs(self) -> list[int]:
        """Run ids that produced suggestions, newest first."""
        return [int(r) for (r,) in self.store.fetchall(
            f"SELECT DISTINCT run_id FROM suggestions s WHERE {self._current_sql} ORDER BY run_id DESC")]

    def _resolve_run(self, run_id: int | None) -> int | None:
        if run_id is not None:
            return int(run_id)
        latest = self.store.scalar(f"SELECT max(run_id) FROM suggestions s WHERE {self._current_sql}")
        return None if latest is None else int(latest)

    def class_frequencies(self) -> dict[int, int]:
        """Current positive count per class on the train split (all splits if there is no train split)."""
        has_train = self.store.scalar("SELECT count(*) FROM images WHERE split = 'train'")
        split_filter = "AND i.split = 'train'" if has_train else ""
        rows = self.store.fetchall(
            f"SELECT c.category_id, count(i.image_id) FROM categories c "
            f"LEFT JOIN labels l ON l.category_id = c.category_id AND l.state = {POSITIVE} "
            f"LEFT JOIN images i ON i.image_id = l.image_id {split_filter} GROUP BY c.category_id")
        return {int(cid): int(n) for cid, n in rows}

    def items(self, *, category_id: int | None = None, run_id: int | None = None,
              statuses: Sequence[str] | None = PENDING, min_score: float | None = None,
              max_score: float | None = None, head_first: bool = False, limit: int | None = None,
              offset: int = 0, kinds: Sequence[str] | None = None) -> list[QueueItem]:
        """Suggestions with their derived status, in queue order (no leasing).

        Queue order: pending items before skipped/unsure ones, then by class frequency (tail classes first,
        or head first), then by score (highest first).

        Parameters
        ----------
        category_id
            Only this class.
        run_id
            The suggestion run; ``None`` means the latest run that produced suggestions.
        statuses
            Keep these statuses (``open``, ``skipped``, ``accepted``, ``rejected``); ``None`` keeps all.
        min_score, max_score
            Score range, inclusive.
        head_first
            Frequent classes first instead of rare ones.
        limit, offset
            Paging.
        kinds
            Keep only these suggestion kinds (``missing``, ``spurious``).

        Returns
        -------
        list[QueueItem]
        """
        return self._select(category_id=category_id, run_id=run_id, statuses=statuses, min_score=min_score,
                            max_score=max_score, head_first=head_first, limit=limit, offset=offset, kinds=kinds)

    def _select(self, *, category_id: int | None, run_id: int | None, statuses: Sequence[str] | None,
                min_score: float | None, max_score: float | None, head_first: bool, limit: int | None,
                offset: int, kinds: Sequence[str] | None = None, free_for: str | None = None,
                suggestion_ids: Sequence[int] | None = None) -> list[QueueItem]:
        where, parameters = ["TRUE"], []
        if suggestion_ids is not None:
            if not suggestion_ids:
                return []
            where.append(f"s.suggestion_id IN ({', '.join('?' for _ in suggestion_ids)})")
            parameters.extend(int(s) for s in suggestion_ids)
        else:
            resolved_run = self._resolve_run(run_id)
            if resolved_run is None:
                return []
            where.extend(["s.run_id = ?", self._current_sql])
            parameters.append(resolved_run)
        if category_id is not None:
            where.append("s.category_id = ?")
            parameters.append(int(category_id))
        if min_score is not None:
            where.append("s.score >= ?")
            parameters.append(float(min_score))
        if max_score is not None:
            where.append("s.score <= ?")
            parameters.append(float(max_score))
        if kinds:
            where.append(f"s.kind IN ({', '.join('?' for _ in kinds)})")
            parameters.extend(kinds)
        if statuses is not None:
            unknown = set(statuses) - set(STATUSES)
            if unknown:
                raise ReviewError(f"unknown status {sorted(unknown)}", fix=f"use {', '.join(STATUSES)}")
            if not statuses:
                return []
            where.append(f"({_STATUS_SQL}) IN ({', '.join('?' for _ in statuses)})")
            parameters.extend(statuses)
        if free_for is not None:
            where.append("(ls.suggestion_id IS NULL OR ls.expires_at <= ? OR ls.reviewer = ?)")
            parameters.extend([self.clock(), free_for])
        has_train = self.store.scalar("SELECT count(*) FROM images WHERE split = 'train'")
        split_filter = "AND i.split = 'train'" if has_train else ""
        direction = "DESC" if head_first else "ASC"
        sql = f"""
            WITH eff AS ({_EFFECTIVE_SQL}),
            cur AS (SELECT suggestion_id, arg_max(decision, event_id) AS decision,
                           arg_max(reviewer, event_id) AS decided_by
                    FROM eff WHERE suggestion_id IS NOT NULL GROUP BY suggestion_id),
            freq AS (SELECT c.category_id, c.name, count(i.image_id) AS frequency FROM categories c
                     LEFT JOIN labels l ON l.category_id = c.category_id AND l.state = {POSITIVE}
                     LEFT JOIN images i ON i.image_id = l.image_id {split_filter}
                     GROUP BY c.category_id, c.name)
            SELECT s.suggestion_id, s.run_id, s.image_id, s.category_id, f.name, s.kind, s.score,
                   s.rank_in_class, s.reason, {_STATUS_SQL} AS status, cur.decided_by, f.frequency,
                   im.file_name, im.images_root, ls.reviewer, ls.expires_at
            FROM suggestions s
            JOIN freq f ON f.category_id = s.category_id
            LEFT JOIN images im ON im.image_id = s.image_id
            LEFT JOIN cur ON cur.suggestion_id = s.suggestion_id
            LEFT JOIN leases ls ON ls.suggestion_id = s.suggestion_id
            WHERE {' AND '.join(where)}
            ORDER BY (cur.decision IN ('skip', 'unsure')) NULLS FIRST, f.frequency {direction}, s.category_id,
                     s.score DESC, s.suggestion_id
        """
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            parameters.extend([int(limit), int(offset)])
        now = self.clock()
        items = []
        for row in self.store.fetchall(sql, parameters):
            lease_reviewer, lease_expires = row[14], row[15]
            if lease_expires is not None and lease_expires <= now:
                lease_reviewer, lease_expires = None, None
            items.append(QueueItem(
                suggestion_id=int(row[0]), run_id=int(row[1]), image_id=int(row[2]), category_id=int(row[3]),
                category_name=row[4], kind=row[5], score=float(row[6]), rank_in_class=int(row[7]), reason=row[8],
                status=row[9], decided_by=row[10], class_frequency=int(row[11]), file_name=row[12],
                images_root=row[13], lease_reviewer=lease_reviewer, lease_expires_at=lease_expires))
        return items

    def item(self, *, suggestion_id: int) -> QueueItem:
        """One suggestion with its status (any run)."""
        found = self._select(category_id=None, run_id=None, statuses=None, min_score=None, max_score=None,
                             head_first=False, limit=None, offset=0, suggestion_ids=[suggestion_id])
        if not found:
            raise ReviewError(f"no suggestion {suggestion_id}", fix="list suggestions with the review queue")
        return found[0]

    def progress(self, *, run_id: int | None = None, head_first: bool = False) -> Progress:
        """Open / skipped / accepted / rejected counts per class (tail first by default) and overall.

        Every class is listed, also those without suggestions.
        """
        resolved = self._resolve_run(run_id)
        frequencies = self.class_frequencies()
        names = dict(self.store.fetchall("SELECT category_id, name FROM categories"))
        counts: dict[int, dict[str, int]] = {int(c): dict.fromkeys(STATUSES, 0) for c in names}
        if resolved is not None:
            rows = self.store.fetchall(f"""
                WITH eff AS ({_EFFECTIVE_SQL}),
                cur AS (SELECT suggestion_id, arg_max(decision, event_id) AS decision FROM eff
                        WHERE suggestion_id IS NOT NULL GROUP BY suggestion_id)
                SELECT s.category_id, {_STATUS_SQL} AS status, count(*) FROM suggestions s
                LEFT JOIN cur ON cur.suggestion_id = s.suggestion_id
                WHERE s.run_id = ? AND {self._current_sql} GROUP BY ALL""", [resolved])
            for category_id, status, n in rows:
                counts.setdefault(int(category_id), dict.fromkeys(STATUSES, 0))[status] = int(n)
        by_class = []
        for category_id, c in counts.items():
            by_class.append(ClassProgress(
                category_id=category_id, name=str(names.get(category_id, category_id)),
                frequency=frequencies.get(category_id, 0), total=sum(c.values()), open=c["open"],
                skipped=c["skipped"], accepted=c["accepted"], rejected=c["rejected"]))
        sign = -1 if head_first else 1
        by_class.sort(key=lambda p: (sign * p.frequency, p.category_id))
        overall = ClassProgress(
            category_id=None, name="all classes", frequency=sum(p.frequency for p in by_class),
            total=sum(p.total for p in by_class), open=sum(p.open for p in by_class),
            skipped=sum(p.skipped for p in by_class), accepted=sum(p.accepted for p in by_class),
            rejected=sum(p.rejected for p in by_class))
        return Progress(overall=overall, by_class=by_class)

    def history(self, *, suggestion_id: int | None = None, reviewer: str | None = None,
                limit: int | None = None, newest_first: bool = False) -> list[ReviewEvent]:
        """Review events of one suggestion and/or one reviewer (all events when both are ``None``).

        Undo events are included; ``ReviewEvent.undone`` marks decisions an undo reversed.
        """
        where, parameters = ["TRUE"], []
        if suggestion_id is not None:
            where.append("e.suggestion_id = ?")
            parameters.append(int(suggestion_id))
        if reviewer is not None:
            where.append("e.reviewer = ?")
            parameters.append(reviewer)
        sql = (f"SELECT e.event_id, e.suggestion_id, e.image_id, e.category_id, e.reviewer, e.decision, e.note, "
               f"e.undoes_event_id, e.created_at, EXISTS (SELECT 1 FROM review_events u WHERE u.decision = 'undo' "
               f"AND u.undoes_event_id = e.event_id) FROM review_events e WHERE {' AND '.join(where)} "
               f"ORDER BY e.event_id {'DESC' if newest_first else 'ASC'}")
        if limit is not None:
            sql += " LIMIT ?"
            parameters.append(int(limit))
        return [self._event(row) for row in self.store.fetchall(sql, parameters)]

    @staticmethod
    def _event(row: tuple) -> ReviewEvent:
        return ReviewEvent(event_id=int(row[0]), suggestion_id=None if row[1] is None else int(row[1]),
                           image_id=int(row[2]), category_id=int(row[3]), reviewer=row[4], decision=row[5],
                           note=row[6], undoes_event_id=None if row[7] is None else int(row[7]),
                           created_at=row[8], undone=bool(row[9]) if len(row) > 9 else False)

    def image_labels(self, *, image_ids: Iterable[int]) -> dict[int, list[ImageLabel]]:
        """The stored label cells (positive and verified negative) of some images."""
        ids = sorted({int(i) for i in image_ids})
        result: dict[int, list[ImageLabel]] = {i: [] for i in ids}
        if not ids:
            return result
        rows = self.store.fetchall(
            f"SELECT l.image_id, l.category_id, c.name, l.state, l.origin FROM labels l "
            f"JOIN categories c USING (category_id) WHERE l.image_id IN ({', '.join('?' for _ in ids)}) "
            f"ORDER BY l.image_id, l.state DESC, c.name", ids)
        for image_id, category_id, name, state, origin in rows:
            result[int(image_id)].append(ImageLabel(int(category_id), name, int(state), origin))
        return result

    def image_boxes(self, *, image_ids: Iterable[int]) -> dict[int, list[ImageBox]]:
        """Source annotations that carry a bbox, per image (empty lists for datasets without boxes)."""
        ids = sorted({int(i) for i in image_ids})
        result: dict[int, list[ImageBox]] = {i: [] for i in ids}
        if not ids:
            return result
        rows = self.store.fetchall(
            f"SELECT a.image_id, a.category_id, c.name, json_extract(a.record, '$.bbox')::VARCHAR FROM annotations a "
            f"JOIN categories c USING (category_id) WHERE a.image_id IN ({', '.join('?' for _ in ids)}) "
            f"ORDER BY a.image_id, a.annotation_id", ids)
        import json

        for image_id, category_id, name, bbox_text in rows:
            try:
                bbox = json.loads(bbox_text) if bbox_text else None
            except ValueError:
                bbox = None
            if isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox):
                result[int(image_id)].append(ImageBox(int(category_id), name, tuple(float(v) for v in bbox)))
        return result

    def image_path(self, *, image_id: int) -> Path | None:
        """The image file inside its images root, or ``None`` when the store has no file for it."""
        from labelfix.io.images import safe_image_path

        row = self.store.fetchone("SELECT images_root, file_name FROM images WHERE image_id = ?", [int(image_id)])
        if row is None or not row[0] or not row[1]:
            return None
        try:
            path = safe_image_path(root=row[0], file_name=row[1])
        except LabelfixError:
            return None
        return path if path.is_file() else None

    def label_diff(self) -> list[ClassDiff]:
        """Per class: positives in the source vs. positives an export writes now, and what changed."""
        rows = self.store.fetchall(f"""
            SELECT c.category_id, c.name,
                   (SELECT count(*) FROM original_labels o WHERE o.category_id = c.category_id),
                   (SELECT count(*) FROM labels l WHERE l.category_id = c.category_id AND l.state = {POSITIVE}),
                   (SELECT count(*) FROM labels l WHERE l.category_id = c.category_id AND l.state = {POSITIVE}
                      AND NOT EXISTS (SELECT 1 FROM original_labels o WHERE o.image_id = l.image_id
                                      AND o.category_id = l.category_id)),
                   (SELECT count(*) FROM original_labels o WHERE o.category_id = c.category_id
                      AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.image_id = o.image_id
                                      AND l.category_id = o.category_id AND l.state = {POSITIVE})),
                   (SELECT count(*) FROM labels l WHERE l.category_id = c.category_id AND l.state = {NEGATIVE})
            FROM categories c ORDER BY c.category_id""")
        return [ClassDiff(int(r[0]), r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6])) for r in rows]

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
            self.store.execute("DELETE FROM leases WHERE expires_at <= ?", [now])
            chosen = self._select(category_id=category_id, run_id=run_id, statuses=list(statuses), min_score=min_score,
                                  max_score=max_score, head_first=head_first, limit=max(int(n), 0), offset=0,
                                  kinds=kinds, free_for=reviewer)
            expires = now + dt.timedelta(seconds=self.lease_seconds)
            ids = [item.suggestion_id for item in chosen]
            if not keep_other_leases:
                if ids:
                    self.store.execute(
                        f"DELETE FROM leases WHERE reviewer = ? AND suggestion_id NOT IN "
                        f"({', '.join('?' for _ in ids)})", [reviewer, *ids])
                else:
                    self.store.execute("DELETE FROM leases WHERE reviewer = ?", [reviewer])
            for suggestion_id in ids:
                self.store.execute(
                    "INSERT INTO leases (suggestion_id, reviewer, expires_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (suggestion_id) DO UPDATE SET reviewer = excluded.reviewer, "
                    "expires_at = excluded.expires_at", [suggestion_id, reviewer, expires])
        return [dataclasses.replace(item, lease_reviewer=reviewer, lease_expires_at=expires) for item in chosen]

    def release(self, *, reviewer: str, suggestion_ids: Sequence[int] | None = None) -> int:
        """Give back ``reviewer``'s leases (all of them, or those on ``suggestion_ids``); return how many."""
        with self._lock, self.store.transaction():
            if suggestion_ids is None:
                n = self.store.scalar("SELECT count(*) FROM leases WHERE reviewer = ?", [reviewer])
                self.store.execute("DELETE FROM leases WHERE reviewer = ?", [reviewer])
            else:
                ids = [int(s) for s in suggestion_ids]
                if not ids:
                    return 0
                marks = ", ".join("?" for _ in ids)
                n = self.store.scalar(f"SELECT count(*) FROM leases WHERE reviewer = ? AND suggestion_id IN ({marks})",
                                      [reviewer, *ids])
                self.store.execute(f"DELETE FROM leases WHERE reviewer = ? AND suggestion_id IN ({marks})",
                                   [reviewer, *ids])
        return int(n or 0)

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
            WITH eff AS ({_EFFECTIVE_SQL} AND e.suggestion_id = ?)
            SELECT s.kind, s.image_id, s.category_id,
                   (SELECT arg_max(decision, event_id) FROM eff),
                   (SELECT arg_max(reviewer, event_id) FROM eff),
                   ls.reviewer, ls.expires_at
            FROM suggestions s LEFT JOIN leases ls ON ls.suggestion_id = s.suggestion_id
            WHERE s.suggestion_id = ?""", [int(suggestion_id), int(suggestion_id)])
        if row is None:
            raise ReviewError(f"no suggestion {suggestion_id}", fix="pick a suggestion from the review queue")
        kind, image_id, category_id, decision, decided_by, lease_reviewer, lease_expires = row
        return (kind, _status_of(decision), int(image_id), int(category_id), decided_by, lease_reviewer, decision,
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
        event_id = self.store.scalar(
            "INSERT INTO review_events (suggestion_id, image_id, category_id, reviewer, decision, note, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING event_id",
            [int(suggestion_id), image_id, category_id, reviewer, decision, note, now])
        if effect is not None:
            set_label(self.store, image_id=image_id, category_id=category_id, state=effect[0], origin=effect[1])
        self.store.execute("DELETE FROM leases WHERE suggestion_id = ?", [int(suggestion_id)])
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
                    event_id = self.store.scalar(
                        f"SELECT max(event_id) FROM ({_EFFECTIVE_SQL}) WHERE suggestion_id = ?", [int(suggestion_id)])
                    if event_id is None:
                        raise ReviewError(f"suggestion {suggestion_id} has no decision to undo")
                else:
                    event_id = self.store.scalar(
                        f"SELECT max(event_id) FROM ({_EFFECTIVE_SQL}) WHERE reviewer = ?", [reviewer])
                    if event_id is None:
                        return None
            row = self.store.fetchone(
                "SELECT event_id, suggestion_id, image_id, category_id, decision, "
                "EXISTS (SELECT 1 FROM review_events u WHERE u.decision = 'undo' AND u.undoes_event_id = e.event_id) "
                "FROM review_events e WHERE event_id = ?", [int(event_id)])
            if row is None:
                raise ReviewError(f"no review event {event_id}")
            _, target_suggestion, image_id, category_id, decision, undone = row
            if decision == "undo":
                raise ReviewError(f"event {event_id} is an undo; decide again instead of undoing an undo")
            if undone:
                raise ReviewConflict(f"event {event_id} is already undone")
            now = self.clock()
            new_id = self.store.scalar(
                "INSERT INTO review_events (suggestion_id, image_id, category_id, reviewer, decision, note, "
                "undoes_event_id, created_at) VALUES (?, ?, ?, ?, 'undo', ?, ?, ?) RETURNING event_id",
                [target_suggestion, image_id, category_id, reviewer, note, int(event_id), now])
            self._restore_cell(image_id=int(image_id), category_id=int(category_id))
        return ReviewEvent(int(new_id), None if target_suggestion is None else int(target_suggestion), int(image_id),
                           int(category_id), reviewer, "undo", note, int(event_id), now)

    def _restore_cell(self, *, image_id: int, category_id: int) -> None:
        """Set a cell from its latest still-effective decision with a label effect, else its original state."""
        rows = self.store.fetchall(
            f"SELECT e.decision, coalesce(s.kind, 'missing') FROM ({_EFFECTIVE_SQL}) e "
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
