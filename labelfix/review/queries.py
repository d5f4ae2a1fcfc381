"""The read-only side of the review: the queue, single items, progress, history and label views.

:class:`ReviewQueries` never writes to the store; :class:`~labelfix.review.service.ReviewService` adds
leases, decisions and undo on top of it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from labelfix.errors import LabelfixError
from labelfix.review.models import (
    EFFECTIVE_EVENTS_SQL,
    STATUS_CASE_SQL,
    PENDING,
    STATUSES,
    ClassDiff,
    ClassProgress,
    ImageBox,
    ImageLabel,
    Progress,
    QueueItem,
    ReviewError,
    ReviewEvent,
    utc_now,
)
from labelfix.states import NEGATIVE, POSITIVE
from labelfix.store.database import Store


class ReviewQueries:
    """Read-only review queries over one store (one cursor; make one per thread or session).

    Parameters
    ----------
    store
        The store, or a ``store.cursor()`` for a thread or a Streamlit session.
    clock
        Returns the current time as naive UTC; leases that expired by then are reported as free.

    Examples
    --------
    >>> queries = ReviewQueries(store)  # a store with 8 open suggestions
    >>> queries.progress().overall.pending
    8
    """

    def __init__(self, store: Store, *, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.store = store
        self.clock = clock or utc_now
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
        where: list[str] = ["TRUE"]
        parameters: list[Any] = []
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
            where.append(f"({STATUS_CASE_SQL}) IN ({', '.join('?' for _ in statuses)})")
            parameters.extend(statuses)
        if free_for is not None:
            where.append("(ls.suggestion_id IS NULL OR ls.expires_at <= ? OR ls.reviewer = ?)")
            parameters.extend([self.clock(), free_for])
        has_train = self.store.scalar("SELECT count(*) FROM images WHERE split = 'train'")
        split_filter = "AND i.split = 'train'" if has_train else ""
        direction = "DESC" if head_first else "ASC"
        sql = f"""
            WITH eff AS ({EFFECTIVE_EVENTS_SQL}),
            cur AS (SELECT suggestion_id, arg_max(decision, event_id) AS decision,
                           arg_max(reviewer, event_id) AS decided_by
                    FROM eff WHERE suggestion_id IS NOT NULL GROUP BY suggestion_id),
            freq AS (SELECT c.category_id, c.name, count(i.image_id) AS frequency FROM categories c
                     LEFT JOIN labels l ON l.category_id = c.category_id AND l.state = {POSITIVE}
                     LEFT JOIN images i ON i.image_id = l.image_id {split_filter}
                     GROUP BY c.category_id, c.name)
            SELECT s.suggestion_id, s.run_id, s.image_id, s.category_id, f.name, s.kind, s.score,
                   s.rank_in_class, s.reason, {STATUS_CASE_SQL} AS status, cur.decided_by, f.frequency,
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
                WITH eff AS ({EFFECTIVE_EVENTS_SQL}),
                cur AS (SELECT suggestion_id, arg_max(decision, event_id) AS decision FROM eff
                        WHERE suggestion_id IS NOT NULL GROUP BY suggestion_id)
                SELECT s.category_id, {STATUS_CASE_SQL} AS status, count(*) FROM suggestions s
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
        where: list[str] = ["TRUE"]
        parameters: list[Any] = []
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
                x, y, w, h = (float(v) for v in bbox)
                result[int(image_id)].append(ImageBox(int(category_id), name, (x, y, w, h)))
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
