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
    "DECISIONS", "EFFECTIVE_EVENTS_SQL", "KINDS", "PENDING", "STATUSES", "STATUS_CASE_SQL", "BatchResult", "ClassDiff",
    "ClassProgress", "Decision", "DecisionResult", "ImageBox", "ImageLabel", "PrecisionEstimate", "Progress",
    "QueueItem", "ReviewConflict", "ReviewError", "ReviewEvent", "ReviewerAgreement", "ReviewerStats", "Status",
    "label_effect", "outcome_text", "question_text", "status_of", "utc_now", "wilson_interval", "wilson_low_reaches",
]

Decision = Literal["accept", "reject", "skip", "unsure", "auto_accept"]
Status = Literal["open", "skipped", "accepted", "rejected"]

DECISIONS: tuple[str, ...] = ("accept", "reject", "skip", "unsure", "auto_accept")
STATUSES: tuple[str, ...] = ("open", "skipped", "accepted", "rejected")
PENDING: tuple[str, ...] = ("open", "skipped")
# Missing-label suggestions come first in the queue: the mission is missing labels, and a "remove this
# label?" item must never be the first thing a reviewer sees (issue 14).
KINDS: tuple[str, ...] = ("missing", "spurious")


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
    # False for an item of an uncalibrated ranked list (filed with no threshold): its score is a rank, not a
    # precision, and the app must not word it as a confident suggestion (fresh report item 9)
    calibrated: bool = True
    # True for a missing suggestion whose class threshold is a PU estimate (then ``calibrated`` is False): its
    # precision is estimated from assumptions, not measured, so the app says "estimated, not measured"
    estimated: bool = False

    @property
    def action(self) -> str:
        """What accepting does to the image's labels: ``add`` (missing label) or ``remove`` (spurious label)."""
        return "remove" if self.kind == "spurious" else "add"

    @property
    def question(self) -> str:
        """The question this item asks, worded as its effect: ``add 'seven'?`` or ``remove 'eight'?``."""
        return question_text(kind=self.kind, category_name=self.category_name)

    def outcome(self, decision: str) -> str:
        """What ``decision`` did to this item's image, e.g. ``'seven' added to image 12``."""
        return outcome_text(kind=self.kind, decision=decision, category_name=self.category_name,
                            image_id=self.image_id)


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
    missing_pending: int = 0      # pending items of each kind (the queue shows missing ones first)
    spurious_pending: int = 0
    held_by_others: int = 0       # pending items leased live to reviewers other than the one asking
    ranked_only: bool = False     # its missing-label items are an uncalibrated ranked list (precision unknown)

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
class DecisionResult:
    """What one key press did: the event (``None`` when nothing was recorded) and the words for the reviewer.

    ``applied`` is ``False`` for a repeated press (same token), a press on an item whose status changed since
    the page showed it, an item decided or held by someone else; ``message`` then says which. ``item`` is the
    suggestion as it is now.
    """

    applied: bool
    event: ReviewEvent | None
    item: QueueItem | None  # None only when the suggestion no longer exists (a new `labelfix suggest` call)
    message: str


@dataclass(frozen=True)
class PrecisionEstimate:
    """A reviewer's running precision on one class's missing-label suggestions, and where to stop.

    ``n`` decisions (accept/reject, in force, newest ``last_n``), ``accepted`` of them accepted;
    ``low``/``high``: Wilson score interval at ``confidence``; ``stop_score``: the lowest score such that the
    Wilson *lower bound* of the precision of this reviewer's decided items scoring at least that much reaches
    ``target`` (``None`` until the data supports it: a handful of decisions never does, issue 14 fresh
    report item 8); ``more_needed``: how many more decisions, every one accepted, the window needs before
    its lower bound can reach ``target`` (0 when it does; ``None`` when it never can, e.g. ``target`` 1).
    """

    category_id: int
    reviewer: str
    n: int
    accepted: int
    precision: float | None
    low: float
    high: float
    confidence: float
    target: float
    stop_score: float | None
    lowest_score_seen: float | None
    more_needed: int | None = None

    @property
    def supported(self) -> bool:
        """Whether the interval's lower bound reaches the target (the estimate may be stated as a claim)."""
        return self.n > 0 and self.low >= self.target


@dataclass(frozen=True)
class ReviewerStats:
    """One reviewer's decisions in force (and how many of theirs were undone), for the team lead."""

    reviewer: str
    accepted: int
    rejected: int
    skipped: int
    undone: int
    last_at: dt.datetime | None

    @property
    def decided(self) -> int:
        return self.accepted + self.rejected


@dataclass(frozen=True)
class ReviewerAgreement:
    """Two reviewers who both decided (accept or reject) the same label cells, and how often they agreed."""

    reviewer_a: str
    reviewer_b: str
    n_common: int
    n_agree: int

    @property
    def rate(self) -> float | None:
        return self.n_agree / self.n_common if self.n_common else None


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


def question_text(*, kind: str, category_name: str) -> str:
    """The question a suggestion asks, worded as what accepting it does.

    Examples
    --------
    >>> question_text(kind="missing", category_name="seven")
    "add 'seven'?"
    >>> question_text(kind="spurious", category_name="eight")
    "remove 'eight'?"
    """
    return f"{'remove' if kind == 'spurious' else 'add'} '{category_name}'?"


def outcome_text(*, kind: str, decision: str, category_name: str, image_id: int) -> str:
    """What a decision did to the image's labels, in words a reviewer reads after the key press.

    Examples
    --------
    >>> outcome_text(kind="missing", decision="accept", category_name="seven", image_id=12)
    "'seven' added to image 12"
    >>> outcome_text(kind="spurious", decision="accept", category_name="eight", image_id=12)
    "'eight' removed from image 12"
    >>> outcome_text(kind="spurious", decision="reject", category_name="eight", image_id=12)
    "'eight' kept on image 12"
    >>> outcome_text(kind="missing", decision="undo", category_name="seven", image_id=12)
    "'seven' on image 12 is undecided again"
    """
    name, image = f"'{category_name}'", f"image {image_id}"
    if decision in ("skip", "unsure"):
        return f"{name} on {image} {'skipped' if decision == 'skip' else 'marked unsure'} (back of the queue)"
    if decision == "undo":
        return f"{name} on {image} is undecided again"
    if kind == "spurious":
        return f"{name} removed from {image}" if decision in ("accept", "auto_accept") else f"{name} kept on {image}"
    if decision in ("accept", "auto_accept"):
        return f"{name} added to {image}"
    return f"{name} not added to {image} (marked absent)"


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (Wilson 1927, JASA 22:209); ``(0, 1)`` for ``n == 0``.

    Examples
    --------
    >>> [round(v, 3) for v in wilson_interval(9, 10)]
    [0.596, 0.982]
    """
    if n <= 0:
        return 0.0, 1.0
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5)
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_low_reaches(accepted: int, n: int, *, target: float, confidence: float = 0.95,
                       limit: int = 100_000) -> int | None:
    """How many more decisions, all accepted, before the Wilson lower bound of ``accepted / n`` reaches ``target``.

    ``0`` when it already does; ``None`` when it never can within ``limit`` more (``target`` 1 or above).
    With no rejects the lower bound is ``n / (n + z**2)``, so at 95% and a 90% target 35 decisions are needed.

    Examples
    --------
    >>> wilson_low_reaches(0, 0, target=0.9), wilson_low_reaches(35, 35, target=0.9)
    (35, 0)
    >>> wilson_low_reaches(3, 4, target=1.0) is None
    True
    """
    if wilson_interval(accepted, n, confidence=confidence)[0] >= target:
        return 0
    if target >= 1.0:
        return None
    low, high = 0, 1
    while wilson_interval(accepted + high, n + high, confidence=confidence)[0] < target:  # grows with k
        low, high = high, high * 2
        if high > limit:
            return None
    while high - low > 1:  # the lower bound rises with every accept: bisect for the first k that reaches
        middle = (low + high) // 2
        if wilson_interval(accepted + middle, n + middle, confidence=confidence)[0] >= target:
            high = middle
        else:
            low = middle
    return high


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
