"""Roles over the review service: annotators undo only their own decisions; leads see the team and revert.

These functions take the acting :class:`~labelfix.review.auth.Reviewer` and check their role before
calling the service, so the Streamlit app (or any other UI) cannot do more than the role allows by
calling the wrong button's callback. Reverting uses the service's undo: every revert is an ``undo``
event by the lead pointing at the reverted decision, and the label cell returns to its previous state.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from labelfix.review.auth import Reviewer
from labelfix.review.models import ReviewConflict, ReviewError, ReviewEvent
from labelfix.review.queries import ReviewQueries
from labelfix.review.service import ReviewService
from labelfix.store.database import Store

__all__ = ["PermissionRefused", "RevertResult", "ReviewerStats", "require_lead", "revert_reviewer",
           "reviewer_stats", "store_of", "undo_as"]


@contextlib.contextmanager
def store_of(service: ReviewQueries) -> Iterator[Store]:
    """The service's store for one short visit (accounts, exports, team statistics).

    A service that holds no connection between calls offers ``service.connection()`` (issue 14); one made
    over an open store is read through that store.
    """
    connection = getattr(service, "connection", None)
    if connection is not None:
        with connection() as store:
            yield store
    else:
        yield service.store


class PermissionRefused(ReviewError):
    """The reviewer's role does not allow the request."""


def require_lead(reviewer: Reviewer, action: str) -> None:
    """Raise :class:`PermissionRefused` unless ``reviewer`` is a lead.

    Examples
    --------
    >>> require_lead(Reviewer("lee", "lead"), "export")
    >>> require_lead(Reviewer("ana", "annotator"), "export")
    Traceback (most recent call last):
    ...
    labelfix.review.lead.PermissionRefused: export is for leads: ana is an annotator
      fix: ask a lead
    """
    if not reviewer.is_lead:
        raise PermissionRefused(f"{action} is for leads: {reviewer.name} is an {reviewer.role}", fix="ask a lead")


def _undo_event(service: ReviewService, *, reviewer: Reviewer, event_id: int, note: str | None) -> ReviewEvent | None:
    """Undo one event as ``reviewer`` once the role check passed.

    A service whose undo refuses other reviewers' decisions unless told ``any_reviewer=True`` (issue 14)
    is told so: the role check is this module's.
    """
    undo: Callable[..., ReviewEvent | None] = service.undo
    if "any_reviewer" in inspect.signature(undo).parameters:
        return undo(reviewer=reviewer.name, event_id=event_id, note=note, any_reviewer=reviewer.is_lead)
    return undo(reviewer=reviewer.name, event_id=event_id, note=note)


def _decision_in_force(service: ReviewQueries, suggestion_id: int) -> ReviewEvent | None:
    """The decision on a suggestion that no undo cancelled (the newest one if several), or ``None``."""
    for event in service.history(suggestion_id=int(suggestion_id), newest_first=True):
        if event.decision != "undo" and not event.undone:
            return event
    return None


def undo_as(service: ReviewService, *, reviewer: Reviewer, suggestion_id: int | None = None,
            note: str | None = None) -> ReviewEvent | None:
    """Undo a decision as ``reviewer``: an annotator only their own, a lead anyone's.

    Parameters
    ----------
    service
        The review service of the session.
    reviewer
        Who undoes (recorded on the undo event).
    suggestion_id
        Undo the decision in force on this suggestion; without it, ``reviewer``'s own latest decision.

    Returns
    -------
    ReviewEvent or None
        The undo event; ``None`` when ``reviewer`` has nothing of their own left to undo.

    Raises
    ------
    PermissionRefused
        An annotator asked to undo another reviewer's decision.
    """
    if suggestion_id is None:
        return service.undo(reviewer=reviewer.name, note=note)
    event = _decision_in_force(service, suggestion_id)
    if event is None:
        raise ReviewError(f"suggestion {suggestion_id} has no decision to undo")
    if event.reviewer != reviewer.name and not reviewer.is_lead:
        raise PermissionRefused(f"suggestion {suggestion_id} was decided by {event.reviewer}: annotators undo "
                                f"only their own decisions", fix="ask a lead to revert it")
    # Undo this very event: if it changed meanwhile (undone, decided again), the service refuses instead of
    # undoing whatever is in force now.
    return _undo_event(service, reviewer=reviewer, event_id=event.event_id, note=note)


@dataclass
class RevertResult:
    """Undo events a revert recorded, and the decisions it left alone (event id: why)."""

    events: list[ReviewEvent] = field(default_factory=list)
    conflicts: dict[int, str] = field(default_factory=dict)


def revert_reviewer(service: ReviewService, *, lead: Reviewer, reviewer: str,
                    suggestion_ids: list[int] | None = None) -> RevertResult:
    """Undo every decision of ``reviewer`` still in force (or those on ``suggestion_ids``), newest first.

    Each undo is recorded by the lead with the note ``revert <reviewer>``; decisions changed meanwhile are
    left alone and reported.

    Raises
    ------
    PermissionRefused
        ``lead`` is not a lead.
    """
    require_lead(lead, "reverting a reviewer's decisions")
    wanted = None if suggestion_ids is None else {int(s) for s in suggestion_ids}
    in_force = [event for event in service.history(reviewer=reviewer, newest_first=True)
                if event.decision != "undo" and not event.undone and event.suggestion_id is not None
                and (wanted is None or event.suggestion_id in wanted)]
    result = RevertResult()
    for event in in_force:
        try:
            undo = _undo_event(service, reviewer=lead, event_id=event.event_id, note=f"revert {reviewer}")
        except ReviewConflict as error:
            result.conflicts[event.event_id] = error.problem
            continue
        if undo is not None:  # always, for a given event id
            result.events.append(undo)
    return result


@dataclass(frozen=True)
class ReviewerStats:
    """One reviewer's decisions: in force by kind, undone, and agreement with others on shared suggestions.

    ``agreement`` is the share of ``shared`` suggestions (ones another reviewer also accepted or rejected)
    where this reviewer's last accept/reject equals the other's; ``None`` when nothing is shared.
    """

    reviewer: str
    accepted: int
    rejected: int
    skipped: int
    undone: int
    shared: int
    agreement: float | None
    last_at: Any


def reviewer_stats(service: ReviewQueries) -> list[ReviewerStats]:
    """Per-reviewer counts and pairwise agreement, from the review events (a read-only query).

    Examples
    --------
    >>> reviewer_stats(ReviewQueries(store))  # a store nobody reviewed yet
    []
    """
    with store_of(service) as store:
        rows = _stats_rows(store)
    return [ReviewerStats(r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]),
                          None if r[6] is None else float(r[6]), r[7]) for r in rows]


def _stats_rows(store: Store) -> list[tuple]:
    return store.fetchall("""
        WITH d AS (
            SELECT e.event_id, e.suggestion_id, e.reviewer, e.decision, e.created_at,
                   EXISTS (SELECT 1 FROM review_events u WHERE u.decision = 'undo'
                           AND u.undoes_event_id = e.event_id) AS undone
            FROM review_events e WHERE e.decision <> 'undo' AND e.suggestion_id IS NOT NULL),
        last AS (SELECT suggestion_id, reviewer, arg_max(decision, event_id) AS decision FROM d
                 WHERE decision IN ('accept', 'reject') GROUP BY suggestion_id, reviewer),
        pairs AS (SELECT a.reviewer, count(DISTINCT a.suggestion_id) AS shared,
                         avg(CASE WHEN a.decision = b.decision THEN 1.0 ELSE 0.0 END) AS agreement
                  FROM last a JOIN last b ON a.suggestion_id = b.suggestion_id AND a.reviewer <> b.reviewer
                  GROUP BY a.reviewer)
        SELECT d.reviewer,
               count(*) FILTER (WHERE NOT undone AND decision IN ('accept', 'auto_accept')),
               count(*) FILTER (WHERE NOT undone AND decision = 'reject'),
               count(*) FILTER (WHERE NOT undone AND decision IN ('skip', 'unsure')),
               count(*) FILTER (WHERE undone),
               coalesce(any_value(p.shared), 0), any_value(p.agreement), max(d.created_at)
        FROM d LEFT JOIN pairs p ON p.reviewer = d.reviewer
        GROUP BY d.reviewer ORDER BY d.reviewer""")
