"""The review service calls of the app that issue 14's back end extends, in one place.

The back end (``labelfix/review/service.py``, branch h14svc) adds a key-press entry point (``submit``),
queue filters (image, current label, decided by), ``held_by_others``, ``recent_items``,
``precision_estimate``, ``accept_above`` and ``reviewer_stats``. Until those land, each function here
falls back on the service API that exists (same results on small stores, slower on large ones); the
app calls only these functions, so switching over is a change to this file alone.
"""

from __future__ import annotations

import inspect
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from labelfix.review.models import PENDING, QueueItem, ReviewConflict, ReviewEvent
from labelfix.review.service import ReviewService


def _has(service: ReviewService, method: str, parameter: str | None = None) -> bool:
    function = getattr(service, method, None)
    if function is None:
        return False
    return parameter is None or parameter in inspect.signature(function).parameters


# -- decisions --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Submitted:
    """What one decision request did: ``applied`` (recorded) and the service's reason when it was not."""

    applied: bool
    reason: str = ""


def submit(service: ReviewService, *, item: QueueItem, reviewer: str, decision: str, token: str) -> Submitted:
    """Decide ``item`` once per key press: a stale or repeated request records nothing and raises nothing.

    ``token`` is unique per key press; ``item.status`` is the status the page showed.
    """
    if _has(service, "submit"):
        result = service.submit(suggestion_id=item.suggestion_id, reviewer=reviewer, decision=decision,  # type: ignore[attr-defined]
                                expected_status=item.status, token=token)
        return Submitted(bool(result.applied), "" if result.applied else str(result.message))
    try:
        service.decide(suggestion_id=item.suggestion_id, reviewer=reviewer, decision=decision)  # type: ignore[arg-type]
    except ReviewConflict as conflict:
        return Submitted(False, conflict.problem)
    return Submitted(True)


def undo_own(service: ReviewService, *, reviewer: str, suggestion_id: int | None = None) -> ReviewEvent | None:
    """Undo ``reviewer``'s own last decision (or their decision on ``suggestion_id``); never someone else's."""
    if suggestion_id is not None and not _has(service, "undo", "any_reviewer"):
        # the old service undoes whoever decided: check the decision is this reviewer's first
        item = service.item(suggestion_id=suggestion_id)
        if item.decided_by is not None and item.decided_by != reviewer:
            raise ReviewConflict(f"suggestion {suggestion_id} was decided by {item.decided_by}, not by you",
                                 fix="ask them (or a lead) to undo it")
    return service.undo(reviewer=reviewer, suggestion_id=suggestion_id)


def accept_above(service: ReviewService, *, reviewer: str, category_id: int, min_score: float,
                 run_id: int | None) -> tuple[int, int]:
    """Accept every pending missing-label item of the class scoring >= ``min_score``; (recorded, left alone)."""
    if _has(service, "accept_above"):
        result = service.accept_above(reviewer=reviewer, category_id=category_id,  # type: ignore[attr-defined]
                                      min_score=min_score, run_id=run_id)
    else:
        ids = [i.suggestion_id for i in service.items(category_id=category_id, run_id=run_id, statuses=PENDING,
                                                      min_score=min_score, kinds=("missing",))]
        result = service.decide_many(suggestion_ids=ids, reviewer=reviewer, decision="accept")
    return len(result.events), len(result.conflicts)


# -- the queue --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Filters:
    """What the sidebar chose: which suggestions the page shows, in which order, how many."""

    run_id: int | None = None
    category_id: int | None = None
    head_first: bool = False
    min_score: float = 0.0
    max_score: float = 1.0
    statuses: tuple[str, ...] | None = PENDING
    kinds: tuple[str, ...] | None = None
    image_id: int | None = None
    with_label: int | None = None
    decided_by: str | None = None
    page_size: int = 12
    page: int = 1

    @property
    def leasing(self) -> bool:
        """Pending items are leased to the reviewer (two reviewers never get the same one)."""
        return self.statuses is not None and set(self.statuses) <= set(PENDING)


def _python_filter(items: list[QueueItem], filters: Filters, service: ReviewService) -> list[QueueItem]:
    if filters.image_id is not None:
        items = [i for i in items if i.image_id == filters.image_id]
    if filters.decided_by:
        items = [i for i in items if i.decided_by == filters.decided_by]
    if filters.with_label is not None and items:
        labels = service.image_labels(image_ids=[i.image_id for i in items])
        items = [i for i in items if any(label.category_id == filters.with_label and label.state > 0
                                         for label in labels[i.image_id])]
    return items


def page_items(service: ReviewService, *, reviewer: str, filters: Filters) -> list[QueueItem]:
    """The items of the page: pending ones leased to ``reviewer`` (missing-label items first), else a listing."""
    common: dict[str, Any] = dict(category_id=filters.category_id, run_id=filters.run_id,
                                  head_first=filters.head_first, min_score=filters.min_score,
                                  max_score=filters.max_score, kinds=filters.kinds)
    extra: dict[str, Any] = {k: v for k, v in (("image_id", filters.image_id), ("with_label", filters.with_label))
                             if v is not None}
    new_service = _has(service, "next_items", "with_label")
    if filters.leasing:
        n, statuses = filters.page_size, filters.statuses or PENDING
        if extra and not new_service:
            # no such filters in the old service: list, filter, then lease what is shown
            found = _python_filter(service.items(statuses=statuses, **common), filters, service)[:n]
            ids = {i.suggestion_id for i in found}
            return [i for i in service.next_items(reviewer=reviewer, n=len(found), statuses=statuses, **common)
                    if i.suggestion_id in ids]
        if filters.kinds is not None or new_service:
            # the new service orders missing-label items before spurious ones itself
            return service.next_items(reviewer=reviewer, n=n, statuses=statuses, **common, **extra)
        # old service: missing-label items first, then spurious ones (which never lead the queue)
        common.pop("kinds")
        first = service.next_items(reviewer=reviewer, n=n, statuses=statuses, kinds=("missing",), **common)
        if len(first) < n:
            first += service.next_items(reviewer=reviewer, n=n - len(first), statuses=statuses, kinds=("spurious",),
                                        keep_other_leases=True, **common)
        return first
    offset = (filters.page - 1) * filters.page_size
    if filters.decided_by:
        extra["decided_by"] = filters.decided_by
    if new_service:
        return service.items(statuses=filters.statuses, limit=filters.page_size, offset=offset, **common, **extra)
    if extra:
        found = _python_filter(service.items(statuses=filters.statuses, **common), filters, service)
        return found[offset:offset + filters.page_size]
    return service.items(statuses=filters.statuses, limit=filters.page_size, offset=offset, **common)


def held_by_others(service: ReviewService, *, reviewer: str, run_id: int | None) -> dict[int, int]:
    """Pending items per class that other reviewers hold right now (live leases)."""
    if _has(service, "held_by_others"):
        return dict(service.held_by_others(reviewer=reviewer, run_id=run_id))  # type: ignore[attr-defined]
    counts: Counter[int] = Counter()
    for item in service.items(run_id=run_id, statuses=PENDING):
        if item.lease_reviewer is not None and item.lease_reviewer != reviewer:
            counts[item.category_id] += 1
    return dict(counts)


def recent_items(service: ReviewService, *, reviewer: str, limit: int = 20) -> list[QueueItem]:
    """Suggestions ``reviewer`` decided (skips too), newest first: where "previous" goes."""
    if _has(service, "recent_items"):
        return list(service.recent_items(reviewer=reviewer, limit=limit))  # type: ignore[attr-defined]
    seen: list[int] = []
    for event in service.history(reviewer=reviewer, newest_first=True, limit=limit * 3):
        if event.decision != "undo" and not event.undone and event.suggestion_id is not None \
                and event.suggestion_id not in seen:
            seen.append(event.suggestion_id)
    items = []
    for suggestion_id in seen[:limit]:
        items.append(service.item(suggestion_id=suggestion_id))
    return items


# -- estimates and team counts ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Precision:
    """This reviewer's accept rate on the class's missing-label items, with a Wilson interval."""

    n: int
    accepted: int
    low: float
    high: float
    stop_score: float | None
    target: float

    @property
    def precision(self) -> float:
        return self.accepted / self.n if self.n else float("nan")


def wilson(accepted: int, n: int, *, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (Wilson 1927).

    Examples
    --------
    >>> tuple(round(v, 3) for v in wilson(9, 10))
    (0.596, 0.982)
    >>> wilson(0, 0)
    (0.0, 1.0)
    """
    if n == 0:
        return 0.0, 1.0
    p = accepted / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def stop_score(decisions: Sequence[tuple[float, bool]], *, target: float) -> float | None:
    """The lowest score down to which the decided items' precision stays >= ``target`` (``None``: never).

    ``decisions`` are (score, accepted) pairs; going from the highest score down, the running share of
    accepted items is checked at every score.

    Examples
    --------
    >>> stop_score([(0.9, True), (0.8, True), (0.7, False), (0.6, True), (0.5, False), (0.4, False)], target=0.75)
    0.6
    """
    best = None
    accepted = 0
    for n, (score, ok) in enumerate(sorted(decisions, key=lambda d: -d[0]), start=1):
        accepted += bool(ok)
        if accepted / n >= target:
            best = score
    return best


def precision_estimate(service: ReviewService, *, reviewer: str, category_id: int, run_id: int | None,
                       last_n: int = 50, target: float = 0.9) -> Precision:
    """How often ``reviewer`` accepted this class's missing-label items lately, and a suggested stopping score."""
    if _has(service, "precision_estimate"):
        estimate = service.precision_estimate(reviewer=reviewer, category_id=category_id,  # type: ignore[attr-defined]
                                              run_id=run_id, last_n=last_n, target=target)
        return Precision(int(estimate.n), int(estimate.accepted), float(estimate.low), float(estimate.high),
                         estimate.stop_score, float(estimate.target))
    decided = {i.suggestion_id: i for i in service.items(category_id=category_id, run_id=run_id,
                                                           statuses=("accepted", "rejected"), kinds=("missing",))
               if i.decided_by == reviewer}
    order = [e.suggestion_id for e in service.history(reviewer=reviewer, newest_first=True)
             if e.suggestion_id in decided and not e.undone and e.decision in ("accept", "reject")]
    recent = [decided[s] for s in dict.fromkeys(order)][:last_n]
    accepted = sum(i.status == "accepted" for i in recent)
    low, high = wilson(accepted, len(recent))
    stop = stop_score([(i.score, i.status == "accepted") for i in decided.values()], target=target)
    return Precision(len(recent), accepted, low, high, stop, target)


@dataclass(frozen=True)
class ReviewerCounts:
    """One reviewer's decisions in force, skips and undos, and when they last decided."""

    reviewer: str
    accepted: int
    rejected: int
    skipped: int
    undone: int
    last_at: Any


def reviewer_counts(service: ReviewService, *, run_id: int | None = None) -> list[ReviewerCounts]:
    """Per-reviewer counts for the lead, most active first."""
    if _has(service, "reviewer_stats"):
        return [ReviewerCounts(s.reviewer, s.accepted, s.rejected, s.skipped, s.undone, s.last_at)
                for s in service.reviewer_stats(run_id=run_id)]  # type: ignore[attr-defined]
    counts: dict[str, Counter[str]] = {}
    last: dict[str, Any] = {}
    for event in service.history():
        tally = counts.setdefault(event.reviewer, Counter())
        if event.decision == "undo":
            continue
        if event.undone:
            tally["undone"] += 1
        elif event.decision in ("accept", "auto_accept"):
            tally["accepted"] += 1
        elif event.decision == "reject":
            tally["rejected"] += 1
        else:
            tally["skipped"] += 1
        last[event.reviewer] = event.created_at
    rows = [ReviewerCounts(name, c["accepted"], c["rejected"], c["skipped"], c["undone"], last.get(name))
            for name, c in counts.items()]
    return sorted(rows, key=lambda r: -(r.accepted + r.rejected + r.skipped))
