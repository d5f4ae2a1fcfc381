"""Plain data of the review: queue items, events, progress, label views, decision effects and errors.

No store access here, so the app's rendering code and tests can use these types without a service.
The SQL fragments that derive a suggestion's current decision live here too: both the query side
(:mod:`labelfix.review.queries`) and the write side (:mod:`labelfix.review.service`) build on them.
``EFFECTIVE_EVENTS_SQL`` (the events no undo cancelled) belongs to the ``review_events`` table's owner,
:mod:`labelfix.store.reviews`, and is re-exported here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from labelfix.errors import LabelfixError
from labelfix.states import NEGATIVE, POSITIVE
from labelfix.store.reviews import EFFECTIVE_EVENTS_SQL

__all__ = [
    "DECISIONS", "EFFECTIVE_EVENTS_SQL", "PENDING", "STATUSES", "STATUS_CASE_SQL", "BatchResult", "ClassDiff",
    "ClassProgress", "Decision", "ImageBox", "ImageLabel", "Progress", "QueueItem", "ReviewConflict", "ReviewError",
    "ReviewEvent", "Status", "label_effect", "status_of", "utc_now",
]

Decision = Literal["accept", "reject", "skip", "unsure", "auto_accept"]
Status = Literal["open", "skipped", "accepted", "rejected"]

DECISIONS: tuple[str, ...] = ("accept", "reject", "skip", "unsure", "auto_accept")
STATUSES: tuple[str, ...] = ("open", "skipped", "accepted", "rejected")
PENDING: tuple[str, ...] = ("open", "skipped")


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


def status_of(decision: str | None) -> str:
    """A suggestion's queue status from its latest effective decision (``None``: never decided)."""
    if decision is None:
        return "open"
    if decision in ("skip", "unsure"):
        return "skipped"
    if decision in ("accept", "auto_accept"):
        return "accepted"
    return "rejected"


# status_of in SQL, over the latest effective event aliased ``cur``; keep the two in step.
STATUS_CASE_SQL = """
    CASE WHEN cur.decision IS NULL THEN 'open'
         WHEN cur.decision IN ('skip', 'unsure') THEN 'skipped'
         WHEN cur.decision IN ('accept', 'auto_accept') THEN 'accepted'
         ELSE 'rejected' END
"""
