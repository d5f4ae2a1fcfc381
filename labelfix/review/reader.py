"""How the review reaches its store, the per-process caches that keep the queue fast, and the queue query.

Every call of the review service takes its own cursor (over an open :class:`~labelfix.store.database.Store`)
or its own short visit to the file (over a :class:`~labelfix.store.access.SharedStoreFile`), so any number
of threads may share one service: two overlapping Streamlit reruns never read each other's results
(issue 14: ``connection is busy``, ``not enough values to unpack``).

On a store with 10M suggestions the costly parts of a page were recounting class positives (a join of all
labels with all images), re-deriving every suggestion's decision from the whole event log and sorting all
suggestions for the "all classes" page. Now: class positives and per-class suggestion totals are cached per
process and store file, checked against a cheap fingerprint on every call (counts and maximum ids; the
review's own writes adjust the positives in place); decisions in force come from the small ``review_state``
table; a queue page is read class by class with a rank bound (``labelfix suggest`` numbers each class's
suggestions 1..n, so the first ``n`` pending ones rank at most ``n`` + decided + leased).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelfix.review.models import KINDS, PENDING, STATUS_CASE_SQL, STATUSES, QueueItem, ReviewError
from labelfix.states import POSITIVE
from labelfix.store.access import SharedStoreFile
from labelfix.store.database import Store
from labelfix.store.suggestions import CALIBRATED_SQL, ESTIMATED_SQL

__all__ = ["PathCaches", "StoreAccess", "caches_for", "select_items"]

DECIDED = ("accept", "reject", "auto_accept")
SKIPPED = ("skip", "unsure")


class StoreAccess:
    """A cursor (or a short visit to the file) per call, and a write lock per store file and process."""

    def __init__(self, source: Store | SharedStoreFile) -> None:
        self.source = source
        self.path = Path(source.path)
        self.caches = caches_for(self.path)

    @contextlib.contextmanager
    def read(self) -> Iterator[Store]:
        """A store to read from for one call."""
        source = self.source
        if isinstance(source, SharedStoreFile):
            with source.connect() as store:
                yield store
            return
        if source._depth:  # the caller is inside a transaction on this store: read its uncommitted state
            yield source
            return
        cursor = source.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[Store]:
        """One transaction, serialised with every other writer of this file in the process."""
        with self.caches.write_lock, self.read() as store, store.transaction():
            yield store

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keep the file open for a group of calls (a no-op over an open store)."""
        if isinstance(self.source, SharedStoreFile):
            with self.source.hold():
                yield
        else:
            yield


@dataclass
class PathCaches:
    """What one process remembers about one store file between calls (shared by all its services)."""

    write_lock: threading.RLock = field(default_factory=threading.RLock)
    lock: threading.Lock = field(default_factory=threading.Lock)
    frequencies: tuple[tuple, dict[int, int]] | None = None
    suggestions: tuple[tuple, dict[str, Any]] | None = None
    names: tuple[int, dict[int, str]] | None = None
    tokens: OrderedDict[tuple[str, str], Any] = field(default_factory=OrderedDict)

    # -- fingerprints: what changed since a fact was cached ---------------------------------------------------
    @staticmethod
    def fingerprints(store: Store) -> tuple:
        """One cheap query (counts and maximum ids): labels part ``[:4]``, suggestions part ``[4:]``."""
        return tuple(store.fetchone(
            "SELECT (SELECT count(*) FROM labels), (SELECT coalesce(max(event_id), 0) FROM review_events), "
            "(SELECT count(*) FROM images), (SELECT count(*) FROM categories), (SELECT count(*) FROM suggestions), "
            "(SELECT coalesce(max(suggestion_id), 0) FROM suggestions), "
            "(SELECT coalesce(max(call_id), 0) FROM suggest_calls)") or ())

    @classmethod
    def labels_fingerprint(cls, store: Store) -> tuple:
        return cls.fingerprints(store)[:4]

    # -- class positives and names ---------------------------------------------------------------------------
    def class_frequencies(self, store: Store, *, fingerprints: tuple | None = None) -> dict[int, int]:
        """Current positives per class on the train split (all splits if there is no train split)."""
        fingerprint = (fingerprints or self.fingerprints(store))[:4]
        with self.lock:
            if self.frequencies is not None and self.frequencies[0] == fingerprint:
                return dict(self.frequencies[1])
        has_train = bool(store.scalar("SELECT EXISTS (SELECT 1 FROM images WHERE split = 'train')"))
        split = "AND image_id IN (SELECT image_id FROM images WHERE split = 'train')" if has_train else ""
        counts = {int(c): 0 for (c,) in store.fetchall("SELECT category_id FROM categories")}
        for category_id, n in store.fetchall(
                f"SELECT category_id, count(*) FROM labels WHERE state = {POSITIVE} {split} GROUP BY category_id"):
            counts[int(category_id)] = int(n)
        with self.lock:
            self.frequencies = (fingerprint, counts)
        return dict(counts)

    def category_names(self, store: Store, *, fingerprints: tuple | None = None) -> dict[int, str]:
        """Class names by id (read again when the number of classes changes)."""
        count = (fingerprints or self.fingerprints(store))[3]
        with self.lock:
            if self.names is not None and self.names[0] == count:
                return self.names[1]
        names = {int(c): str(n) for c, n in store.fetchall("SELECT category_id, name FROM categories")}
        with self.lock:
            self.names = (count, names)
        return names

    def adjust_frequencies(self, *, before: tuple, after: tuple, deltas: dict[int, int] | None) -> None:
        """After a committed review write: shift the cached positives by ``deltas`` (``None``: forget them)."""
        with self.lock:
            if self.frequencies is None or self.frequencies[0] != before or deltas is None:
                self.frequencies = None
                return
            counts = dict(self.frequencies[1])
            for category_id, delta in deltas.items():
                counts[category_id] = counts.get(category_id, 0) + delta
            self.frequencies = (after, counts)

    # -- suggestions: runs and per-class totals ------------------------------------------------------------------
    def suggestion_facts(self, store: Store, *, fingerprints: tuple | None = None) -> dict[str, Any]:
        """``runs`` (newest first) and ``totals[run][(category_id, kind)]`` of current suggestions."""
        fingerprint = (fingerprints or self.fingerprints(store))[4:]
        with self.lock:
            if self.suggestions is not None and self.suggestions[0] == fingerprint:
                return self.suggestions[1]
        totals: dict[int, dict[tuple[int, str], int]] = {}
        uncalibrated: dict[int, set[int]] = {}
        estimated: dict[int, set[int]] = {}
        for run_id, category_id, kind, n, n_ranked, n_estimated in store.fetchall(
                f"SELECT run_id, category_id, kind, count(*), count(*) FILTER (WHERE {UNCALIBRATED_SQL}), "
                f"count(*) FILTER (WHERE {ESTIMATED_SQL}) FROM suggestions s WHERE superseded_at IS NULL GROUP BY ALL"):
            totals.setdefault(int(run_id), {})[(int(category_id), str(kind))] = int(n)
            if n_ranked:
                uncalibrated.setdefault(int(run_id), set()).add(int(category_id))
            elif n_estimated:
                estimated.setdefault(int(run_id), set()).add(int(category_id))
        facts = {"runs": sorted(totals, reverse=True), "totals": totals, "uncalibrated": uncalibrated,
                 "estimated": estimated}
        with self.lock:
            self.suggestions = (fingerprint, facts)
        return facts

    def forget(self) -> None:
        """Drop every cached fact (after writes that bypassed the review service, e.g. raw SQL in a test)."""
        with self.lock:
            self.frequencies = None
            self.suggestions = None
            self.names = None


_CACHES: dict[str, PathCaches] = {}
_CACHES_GUARD = threading.Lock()


def caches_for(path: Path) -> PathCaches:
    """The caches (and write lock) of one store file in this process."""
    key = str(Path(path).resolve())
    with _CACHES_GUARD:
        return _CACHES.setdefault(key, PathCaches())


# -- the queue query --------------------------------------------------------------------------------------------
_ITEM_COLUMNS = """s.suggestion_id, s.run_id, s.image_id, s.category_id, s.kind, s.score, s.rank_in_class, s.reason,
    {status} AS status, {decided_by}, ls.reviewer, ls.expires_at, """ + f"{CALIBRATED_SQL}, {ESTIMATED_SQL}"


# An uncalibrated ranked list's item (``labelfix suggest`` files it with no threshold): its precision is
# unknown, so it comes after every calibrated item, whatever its class's frequency.
UNCALIBRATED_SQL = "(s.kind = 'missing' AND s.threshold IS NULL)"
# Queue order: measured items first (missing, then spurious), then PU-estimated missing items (not measured, often
# optimistic), then ranked lists with no threshold.
_TRUST_ORDER_SQL = f"({UNCALIBRATED_SQL} OR {ESTIMATED_SQL}), {UNCALIBRATED_SQL}"


def class_order(frequencies: dict[int, int], *, head_first: bool) -> list[int]:
    """Category ids in queue order: rare (tail) classes first, or frequent ones first; ties by id."""
    sign = -1 if head_first else 1
    return sorted(frequencies, key=lambda c: (sign * frequencies[c], c))


def _items(store: Store, rows: list[tuple], *, frequencies: dict[int, int], now: dt.datetime,
           names: dict[int, str] | None = None) -> list[QueueItem]:
    """QueueItems from rows of ``_ITEM_COLUMNS``, with class names and image files looked up for them only."""
    if not rows:
        return []
    if names is None:
        names = {int(c): str(n) for c, n in store.fetchall("SELECT category_id, name FROM categories")}
    image_ids = sorted({int(r[2]) for r in rows})
    if len(image_ids) <= 2000:
        files = {int(i): (f, root) for i, f, root in store.fetchall(
            f"SELECT image_id, file_name, images_root FROM images WHERE image_id IN "
            f"({', '.join('?' for _ in image_ids)})", image_ids)}
    else:
        files = {int(i): (f, root) for i, f, root in store.fetchall(
            "SELECT image_id, file_name, images_root FROM images "
            "WHERE image_id IN (SELECT unnest(?::BIGINT[]))", [image_ids])}
    items = []
    for row in rows:
        lease_reviewer, lease_expires = row[10], row[11]
        if lease_expires is not None and lease_expires <= now:
            lease_reviewer, lease_expires = None, None
        category_id = int(row[3])
        file_name, images_root = files.get(int(row[2]), (None, None))
        items.append(QueueItem(
            suggestion_id=int(row[0]), run_id=int(row[1]), image_id=int(row[2]), category_id=category_id,
            category_name=str(names.get(category_id, category_id)), kind=row[4], score=float(row[5]),
            rank_in_class=int(row[6]), reason=row[7], status=row[8], decided_by=row[9],
            class_frequency=int(frequencies.get(category_id, 0)), file_name=file_name, images_root=images_root,
            lease_reviewer=lease_reviewer, lease_expires_at=lease_expires, calibrated=bool(row[12]),
            estimated=bool(row[13])))
    return items


def select_items(store: Store, *, run_id: int | None, order: list[int], frequencies: dict[int, int],
                 now: dt.datetime, statuses: Sequence[str] | None = PENDING, category_id: int | None = None,
                 kinds: Sequence[str] | None = None, min_score: float | None = None, max_score: float | None = None,
                 limit: int | None = None, offset: int = 0, free_for: str | None = None,
                 suggestion_ids: Sequence[int] | None = None, image_id: int | None = None,
                 with_label: int | None = None, decided_by: str | None = None,
                 names: dict[int, str] | None = None) -> list[QueueItem]:
    """Suggestions with their status in queue order (see :meth:`ReviewQueries.items`), filtered.

    Queue order: open before skipped/unsure; missing-label before spurious-label; classes in ``order``; rank in
    class (most confident first). ``free_for``: leave out items leased live to anyone but this reviewer.
    """
    where: list[str] = ["TRUE"]
    parameters: list[Any] = []
    state_where: list[str] = ["TRUE"]
    state_parameters: list[Any] = []
    if suggestion_ids is not None:
        ids = [int(s) for s in suggestion_ids]
        if not ids:
            return []
        where.append(f"s.suggestion_id IN ({', '.join('?' for _ in ids)})")
        parameters.extend(ids)
        state_where.append(f"suggestion_id IN ({', '.join('?' for _ in ids)})")
        state_parameters.extend(ids)
    else:
        if run_id is None:
            return []
        where.extend(["s.run_id = ?", "s.superseded_at IS NULL"])
        parameters.append(int(run_id))
        state_where.append("run_id = ?")
        state_parameters.append(int(run_id))
    if category_id is not None:
        where.append("s.category_id = ?")
        parameters.append(int(category_id))
        state_where.append("category_id = ?")
        state_parameters.append(int(category_id))
    if image_id is not None:
        where.append("s.image_id = ?")
        parameters.append(int(image_id))
    if with_label is not None:
        where.append(f"s.image_id IN (SELECT image_id FROM labels WHERE category_id = ? AND state = {POSITIVE})")
        parameters.append(int(with_label))
    if decided_by is not None:
        where.append("cur.reviewer = ?")
        parameters.append(decided_by)
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
        where.append(f"({STATUS_CASE_SQL}) IN ({', '.join('?' for _ in statuses)})")
        parameters.extend(statuses)
    if free_for is not None:
        where.append("(ls.suggestion_id IS NULL OR ls.expires_at <= ? OR ls.reviewer = ?)")
        parameters.extend([now, free_for])
    sql = f"""
        SELECT {_ITEM_COLUMNS.format(status=STATUS_CASE_SQL, decided_by="cur.reviewer")}
        FROM suggestions s
        LEFT JOIN (SELECT suggestion_id, decision, reviewer FROM review_state WHERE {' AND '.join(state_where)}) cur
               ON cur.suggestion_id = s.suggestion_id
        LEFT JOIN leases ls ON ls.suggestion_id = s.suggestion_id
        WHERE {' AND '.join(where)}
        ORDER BY (cur.decision IN ('skip', 'unsure')) NULLS FIRST, {_TRUST_ORDER_SQL}, s.kind = 'spurious',
                 coalesce(list_position(?::BIGINT[], s.category_id), 1000000000), s.category_id,
                 s.rank_in_class, s.suggestion_id"""
    all_parameters = [*state_parameters, *parameters, [int(c) for c in order]]
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        all_parameters.extend([int(limit), int(offset)])
    elif offset:
        sql += " OFFSET ?"
        all_parameters.append(int(offset))
    return _items(store, store.fetchall(sql, all_parameters), frequencies=frequencies, now=now, names=names)


def state_counts(store: Store, *, run_id: int, category_id: int | None = None) -> dict[tuple[int, str, str], int]:
    """Decisions in force of one run (one class): ``{(category_id, kind, decision): n}`` (from ``review_state``)."""
    where, parameters = ("", [run_id]) if category_id is None else ("AND category_id = ?", [run_id, category_id])
    return {(int(c), str(k), str(d)): int(n) for c, k, d, n in store.fetchall(
        f"SELECT category_id, kind, decision, count(*) FROM review_state WHERE run_id = ? {where} GROUP BY ALL",
        parameters)}


def queue_page(store: Store, *, run_id: int, order: list[int], frequencies: dict[int, int], now: dt.datetime,
               totals: dict[tuple[int, str], int], n: int, statuses: Sequence[str], kinds: Sequence[str] | None,
               free_for: str | None, min_score: float | None = None, max_score: float | None = None,
               names: dict[int, str] | None = None, uncalibrated: set[int] | frozenset[int] = frozenset(),
               estimated: set[int] | frozenset[int] = frozenset()) -> list[QueueItem]:
    """The first ``n`` pending items in queue order, read class by class (same order as :func:`select_items`:
    the missing items of the ``estimated`` classes, PU thresholds, then those of the ``uncalibrated`` classes,
    ranked lists with no threshold, come last).

    Open items of each (kind, class) are read with a rank bound when no score filter is set: a class's
    suggestions rank 1..m, so its first ``k`` open items rank at most ``k`` + its decided/skipped items +
    all leased items. A bounded read that comes back short is repeated without the bound.
    """
    if n <= 0:
        return []
    decided = state_counts(store, run_id=run_id, category_id=order[0] if len(order) == 1 else None)
    n_leases = int(store.scalar("SELECT count(*) FROM leases"))
    kind_list = [k for k in KINDS if not kinds or k in kinds]
    rows: list[tuple] = []
    lease_filter, lease_parameters = "", []
    if free_for is not None:
        lease_filter = "AND (ls.suggestion_id IS NULL OR ls.expires_at <= ? OR ls.reviewer = ?)"
        lease_parameters = [now, free_for]
    score_filter, score_parameters = "", []
    if min_score is not None:
        score_filter += " AND s.score >= ?"
        score_parameters.append(float(min_score))
    if max_score is not None:
        score_filter += " AND s.score <= ?"
        score_parameters.append(float(max_score))
    later = set(uncalibrated) | set(estimated)
    passes = [(kind, [c for c in order if not (kind == "missing" and c in later)]) for kind in kind_list]
    if "missing" in kind_list:
        passes.append(("missing", [c for c in order if c in estimated and c not in uncalibrated]))
        passes.append(("missing", [c for c in order if c in uncalibrated]))
    if "open" in statuses:
        for kind, classes in passes:
            for category_id in classes:
                total = totals.get((category_id, kind), 0)
                in_state = sum(v for (c, k, _), v in decided.items() if c == category_id and k == kind)
                if total - in_state <= 0:
                    continue
                need = n - len(rows)
                sql = f"""
                    SELECT {_ITEM_COLUMNS.format(status="'open'", decided_by="NULL")}
                    FROM suggestions s
                    LEFT JOIN leases ls ON ls.suggestion_id = s.suggestion_id
                    WHERE s.run_id = ? AND s.superseded_at IS NULL AND s.category_id = ? AND s.kind = ?
                      {{bound}} {score_filter} {lease_filter}
                      AND s.suggestion_id NOT IN (SELECT suggestion_id FROM review_state
                                                  WHERE run_id = ? AND category_id = ? AND kind = ?)
                    ORDER BY s.rank_in_class, s.suggestion_id LIMIT ?"""
                base = [run_id, category_id, kind]
                tail = [*score_parameters, *lease_parameters, run_id, category_id, kind, need]
                found: list[tuple] = []
                if not score_parameters:
                    found = store.fetchall(sql.format(bound="AND s.rank_in_class <= ?"),
                                           [*base, need + in_state + n_leases, *tail])
                if len(found) < need:
                    found = store.fetchall(sql.format(bound=""), [*base, *tail])
                rows.extend(found)
                if len(rows) >= n:
                    return _items(store, rows[:n], frequencies=frequencies, now=now, names=names)
    if "skipped" in statuses:
        need = n - len(rows)
        kinds_sql = ", ".join(f"'{k}'" for k in kind_list)
        rows.extend(store.fetchall(f"""
            SELECT {_ITEM_COLUMNS.format(status="'skipped'", decided_by="cur.reviewer")}
            FROM review_state cur
            JOIN suggestions s ON s.suggestion_id = cur.suggestion_id
            LEFT JOIN leases ls ON ls.suggestion_id = s.suggestion_id
            WHERE cur.run_id = ? AND cur.decision IN ('skip', 'unsure') AND cur.kind IN ({kinds_sql})
              AND list_contains(?::BIGINT[], cur.category_id) {score_filter} {lease_filter}
            ORDER BY {_TRUST_ORDER_SQL}, s.kind = 'spurious', list_position(?::BIGINT[], s.category_id), s.rank_in_class,
                     s.suggestion_id
            LIMIT ?""", [run_id, [int(c) for c in order], *score_parameters, *lease_parameters,
                         [int(c) for c in order], need]))
    return _items(store, rows[:n], frequencies=frequencies, now=now, names=names)
