"""The read-only side of the review: the queue, single items, progress, history and label views.

:class:`ReviewQueries` never writes to the store; :class:`~labelfix.review.service.ReviewService` adds
leases, decisions and undo on top of it. Every method is safe to call from many threads at once (each call
reads through its own cursor, :class:`~labelfix.review.reader.StoreAccess`); the team lead's and the
annotator's statistics are in :mod:`labelfix.review.insights`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from labelfix.errors import LabelfixError
from labelfix.review import insights
from labelfix.review.models import (
    KINDS,
    PENDING,
    ClassDiff,
    ClassProgress,
    ImageBox,
    ImageLabel,
    PrecisionEstimate,
    Progress,
    QueueItem,
    ReviewError,
    ReviewerAgreement,
    ReviewerStats,
    ReviewEvent,
    utc_now,
)
from labelfix.review.reader import StoreAccess, class_order, queue_page, select_items, state_counts
from labelfix.states import NEGATIVE, POSITIVE
from labelfix.store.access import SharedStoreFile
from labelfix.store.database import Store


class ReviewQueries:
    """Read-only review queries over one store; safe to share between threads.

    Parameters
    ----------
    store
        An open store (each call reads through its own cursor of it), or a
        :class:`~labelfix.store.access.SharedStoreFile` (each call opens the file briefly).
    clock
        Returns the current time as naive UTC; leases that expired by then are reported as free.

    Examples
    --------
    >>> queries = ReviewQueries(store)  # a store with 8 open suggestions
    >>> queries.progress().overall.pending
    8
    """

    def __init__(self, store: Store | SharedStoreFile, *, clock: Callable[[], dt.datetime] | None = None) -> None:
        self._access = StoreAccess(store)
        self.clock = clock or utc_now

    # -- access ---------------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        """The store file."""
        return self._access.path

    @property
    def store(self) -> Store:
        """The open store this service was made with (not available for a service made by ``open``)."""
        source = self._access.source
        if not isinstance(source, Store):
            raise ReviewError("this review service holds no open store between calls",
                              fix="use `with service.connection() as store:` for a short visit")
        return source

    @contextlib.contextmanager
    def connection(self) -> Iterator[Store]:
        """A store for one short visit (e.g. an export from the app); do not keep it."""
        with self._access.read() as store:
            yield store

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Keep the store file open for a group of calls (one page); calls also work without it."""
        with self._access.hold():
            yield

    def refresh(self) -> None:
        """Forget cached counts (only needed after raw SQL writes that bypass labelfix)."""
        self._access.caches.forget()

    # -- reading --------------------------------------------------------------------------------
    def runs(self) -> list[int]:
        """Run ids that produced suggestions, newest first."""
        with self._access.read() as store:
            return list(self._access.caches.suggestion_facts(store)["runs"])

    def _resolve_run(self, store: Store, run_id: int | None, *, fingerprints: tuple | None = None) -> int | None:
        if run_id is not None:
            return int(run_id)
        runs = self._access.caches.suggestion_facts(store, fingerprints=fingerprints)["runs"]
        return int(runs[0]) if runs else None

    def class_frequencies(self) -> dict[int, int]:
        """Current positive count per class on the train split (all splits if there is no train split)."""
        with self._access.read() as store:
            return self._access.caches.class_frequencies(store)

    def items(self, *, category_id: int | None = None, run_id: int | None = None,
              statuses: Sequence[str] | None = PENDING, min_score: float | None = None,
              max_score: float | None = None, head_first: bool = False, limit: int | None = None,
              offset: int = 0, kinds: Sequence[str] | None = None, image_id: int | None = None,
              with_label: int | None = None, decided_by: str | None = None) -> list[QueueItem]:
        """Suggestions with their derived status, in queue order (no leasing).

        Queue order: pending items before skipped/unsure ones; calibrated items before the items of an
        uncalibrated ranked list (precision unknown); missing-label items before spurious-label
        ones (a "remove this label?" item never leads while "add" items remain); then class frequency (tail
        classes first, or head first); then rank in the class (most confident first: highest score for
        missing labels, lowest for spurious ones).

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
        image_id
            Only suggestions on this image.
        with_label
            Only images that currently carry this class as a positive label.
        decided_by
            Only suggestions whose decision in force is by this reviewer.

        Returns
        -------
        list[QueueItem]
        """
        with self._access.read() as store:
            return self._select(store, category_id=category_id, run_id=run_id, statuses=statuses,
                                min_score=min_score, max_score=max_score, head_first=head_first, limit=limit,
                                offset=offset, kinds=kinds, image_id=image_id, with_label=with_label,
                                decided_by=decided_by)

    def _select(self, store: Store, *, category_id: int | None, run_id: int | None,
                statuses: Sequence[str] | None, min_score: float | None, max_score: float | None,
                head_first: bool, limit: int | None, offset: int, kinds: Sequence[str] | None = None,
                free_for: str | None = None, image_id: int | None = None, with_label: int | None = None,
                decided_by: str | None = None) -> list[QueueItem]:
        caches = self._access.caches
        fingerprints = caches.fingerprints(store)
        resolved = self._resolve_run(store, run_id, fingerprints=fingerprints)
        if resolved is None:
            return []
        frequencies = caches.class_frequencies(store, fingerprints=fingerprints)
        names = caches.category_names(store, fingerprints=fingerprints)
        order = class_order(frequencies, head_first=head_first)
        now = self.clock()
        if kinds and set(kinds) - set(KINDS):
            raise ReviewError(f"unknown kind {sorted(set(kinds) - set(KINDS))}", fix=f"use {', '.join(KINDS)}")
        fast = (statuses is not None and set(statuses) <= set(PENDING) and limit is not None and not offset
                and image_id is None and with_label is None and decided_by is None)
        if fast:
            facts = caches.suggestion_facts(store, fingerprints=fingerprints)
            totals = facts["totals"].get(resolved, {})
            classes = [int(category_id)] if category_id is not None else order
            return queue_page(store, run_id=resolved, order=classes, frequencies=frequencies, now=now,
                              totals=totals, n=int(limit or 0), statuses=list(statuses or ()), kinds=kinds,
                              free_for=free_for, min_score=min_score, max_score=max_score, names=names,
                              uncalibrated=facts["uncalibrated"].get(resolved, set()),
                              estimated=facts["estimated"].get(resolved, set()))
        return select_items(store, run_id=resolved, order=order, frequencies=frequencies, now=now,
                            statuses=statuses, category_id=category_id, kinds=kinds, min_score=min_score,
                            max_score=max_score, limit=limit, offset=offset, free_for=free_for,
                            image_id=image_id, with_label=with_label, decided_by=decided_by, names=names)

    def items_by_id(self, *, suggestion_ids: Sequence[int]) -> list[QueueItem]:
        """Suggestions of any run by id, in the order given (unknown ids are left out)."""
        ids = [int(s) for s in suggestion_ids]
        with self._access.read() as store:
            fingerprints = self._access.caches.fingerprints(store)
            found = select_items(store, run_id=None, order=[], statuses=None, suggestion_ids=ids,
                                 frequencies=self._access.caches.class_frequencies(store, fingerprints=fingerprints),
                                 now=self.clock(),
                                 names=self._access.caches.category_names(store, fingerprints=fingerprints))
        by_id = {item.suggestion_id: item for item in found}
        return [by_id[i] for i in ids if i in by_id]

    def item(self, *, suggestion_id: int) -> QueueItem:
        """One suggestion with its status (any run)."""
        found = self.items_by_id(suggestion_ids=[suggestion_id])
        if not found:
            raise ReviewError(f"no suggestion {suggestion_id}", fix="list suggestions with the review queue")
        return found[0]

    def progress(self, *, run_id: int | None = None, head_first: bool = False,
                 reviewer: str | None = None) -> Progress:
        """Open / skipped / accepted / rejected counts per class (tail first by default) and overall.

        Every class is listed, also those without suggestions. With ``reviewer``, each class also says how
        many of its pending items other reviewers hold (``held_by_others``).
        """
        with self._access.read() as store:
            caches = self._access.caches
            fingerprints = caches.fingerprints(store)
            resolved = self._resolve_run(store, run_id, fingerprints=fingerprints)
            frequencies = caches.class_frequencies(store, fingerprints=fingerprints)
            names = caches.category_names(store, fingerprints=fingerprints)
            facts = caches.suggestion_facts(store, fingerprints=fingerprints)
            totals = facts["totals"].get(resolved, {}) if resolved else {}
            ranked = facts["uncalibrated"].get(resolved, set()) if resolved else set()
            decided = state_counts(store, run_id=resolved) if resolved is not None else {}
            held = self._held_by_others(store, reviewer=reviewer, run_id=resolved) if reviewer and resolved else {}
        by_class = []
        for category_id in class_order({int(c): frequencies.get(int(c), 0) for c in names}, head_first=head_first):
            counts = {"accepted": 0, "rejected": 0, "skipped": 0}
            pending = {}
            for kind in KINDS:
                total = totals.get((category_id, kind), 0)
                done = 0
                for decision, status in (("accept", "accepted"), ("auto_accept", "accepted"),
                                         ("reject", "rejected"), ("skip", "skipped"), ("unsure", "skipped")):
                    n = decided.get((category_id, kind, decision), 0)
                    counts[status] += n
                    done += n if status != "skipped" else 0
                pending[kind] = total - done
            total = sum(totals.get((category_id, kind), 0) for kind in KINDS)
            by_class.append(ClassProgress(
                category_id=category_id, name=str(names.get(category_id, category_id)),
                frequency=frequencies.get(category_id, 0), total=total,
                open=total - counts["accepted"] - counts["rejected"] - counts["skipped"], skipped=counts["skipped"],
                accepted=counts["accepted"], rejected=counts["rejected"], missing_pending=pending["missing"],
                spurious_pending=pending["spurious"], held_by_others=held.get(category_id, 0),
                ranked_only=category_id in ranked))
        fields = ("frequency", "total", "open", "skipped", "accepted", "rejected", "missing_pending",
                  "spurious_pending", "held_by_others")
        overall = ClassProgress(category_id=None, name="all classes",
                                **{f: sum(getattr(p, f) for p in by_class) for f in fields})
        return Progress(overall=overall, by_class=by_class)

    def _held_by_others(self, store: Store, *, reviewer: str, run_id: int) -> dict[int, int]:
        ids = [int(s) for (s,) in store.fetchall(
            "SELECT suggestion_id FROM leases WHERE reviewer <> ? AND expires_at > ?", [reviewer, self.clock()])]
        if not ids:
            return {}
        return {int(c): int(n) for c, n in store.fetchall(
            f"SELECT category_id, count(*) FROM suggestions WHERE suggestion_id IN ({', '.join('?' for _ in ids)}) "
            f"AND run_id = ? AND superseded_at IS NULL GROUP BY category_id", [*ids, run_id])}

    def held_by_others(self, *, reviewer: str, run_id: int | None = None) -> dict[int, int]:
        """Per class: pending items of the run that other reviewers hold a live lease on (classes with none left out)."""
        with self._access.read() as store:
            resolved = self._resolve_run(store, run_id)
            return {} if resolved is None else self._held_by_others(store, reviewer=reviewer, run_id=resolved)

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
        with self._access.read() as store:
            return [insights.event_from_row(row) for row in store.fetchall(sql, parameters)]

    # -- annotator and lead statistics (labelfix.review.insights) ----------------------------------------------
    def recent_items(self, *, reviewer: str, limit: int = 50, category_id: int | None = None) -> list[QueueItem]:
        """Suggestions ``reviewer`` decided (any decision, undone ones too), newest first: "previous" in the app."""
        with self._access.read() as store:
            ids = insights.recent_suggestions(store, reviewer=reviewer, limit=limit, category_id=category_id)
        return self.items_by_id(suggestion_ids=ids)

    def precision_estimate(self, *, reviewer: str, category_id: int, run_id: int | None = None, last_n: int = 50,
                           target: float = 0.9, confidence: float = 0.95) -> PrecisionEstimate:
        """This reviewer's running precision on a class's missing-label items, and a stopping score.

        See :func:`labelfix.review.insights.precision_estimate`.
        """
        with self._access.read() as store:
            resolved = self._resolve_run(store, run_id)
            return insights.precision_estimate(store, reviewer=reviewer, category_id=int(category_id),
                                               run_id=resolved, last_n=last_n, target=target,
                                               confidence=confidence)

    def reviewer_stats(self, *, run_id: int | None = None) -> list[ReviewerStats]:
        """Per reviewer: decisions in force (accepted, rejected, skipped), decisions undone, last decision time."""
        with self._access.read() as store:
            return insights.reviewer_stats(store, run_id=run_id)

    def agreement(self) -> list[ReviewerAgreement]:
        """Pairs of reviewers who decided the same label cells, and how often they agreed."""
        with self._access.read() as store:
            return insights.agreement(store)

    # -- images ---------------------------------------------------------------------------------
    def image_labels(self, *, image_ids: Iterable[int]) -> dict[int, list[ImageLabel]]:
        """The stored label cells (positive and verified negative) of some images."""
        ids = sorted({int(i) for i in image_ids})
        result: dict[int, list[ImageLabel]] = {i: [] for i in ids}
        if not ids:
            return result
        with self._access.read() as store:
            names = dict(store.fetchall("SELECT category_id, name FROM categories"))
            rows = store.fetchall(
                f"SELECT image_id, category_id, state, origin FROM labels "
                f"WHERE image_id IN ({', '.join('?' for _ in ids)})", ids)
        for image_id, category_id, state, origin in sorted(
                rows, key=lambda r: (r[0], -r[2], str(names.get(r[1], r[1])))):
            result[int(image_id)].append(ImageLabel(int(category_id), str(names.get(category_id, category_id)),
                                                    int(state), origin))
        return result

    def image_boxes(self, *, image_ids: Iterable[int]) -> dict[int, list[ImageBox]]:
        """Source annotations that carry a bbox, per image (empty lists for datasets without boxes)."""
        ids = sorted({int(i) for i in image_ids})
        result: dict[int, list[ImageBox]] = {i: [] for i in ids}
        if not ids:
            return result
        with self._access.read() as store:
            names = dict(store.fetchall("SELECT category_id, name FROM categories"))
            rows = store.fetchall(
                f"SELECT image_id, category_id, json_extract(record, '$.bbox')::VARCHAR FROM annotations "
                f"WHERE image_id IN ({', '.join('?' for _ in ids)}) ORDER BY image_id, annotation_id", ids)
        for image_id, category_id, bbox_text in rows:
            try:
                bbox = json.loads(bbox_text) if bbox_text else None
            except ValueError:
                bbox = None
            if isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox):
                x, y, w, h = (float(v) for v in bbox)
                result[int(image_id)].append(ImageBox(int(category_id), str(names.get(category_id, category_id)),
                                                      (x, y, w, h)))
        return result

    def image_path(self, *, image_id: int) -> Path | None:
        """The image file inside its images root, or ``None`` when the store has no file for it."""
        from labelfix.io.images import safe_image_path

        with self._access.read() as store:
            row = store.fetchone("SELECT images_root, file_name FROM images WHERE image_id = ?", [int(image_id)])
        if row is None or not row[0] or not row[1]:
            return None
        try:
            path = safe_image_path(root=row[0], file_name=row[1])
        except LabelfixError:
            return None
        return path if path.is_file() else None

    def label_diff(self) -> list[ClassDiff]:
        """Per class: positives in the source vs. positives an export writes now, and what changed."""
        with self._access.read() as store:
            rows = store.fetchall(f"""
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
