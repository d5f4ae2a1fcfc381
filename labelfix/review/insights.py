"""What a reviewer and a team lead learn from the decisions so far: precision, where to stop, who did what.

Read-only functions over an open store; :class:`~labelfix.review.queries.ReviewQueries` calls them each
through its own cursor.

The live precision estimate answers "is batch-accepting the rest of this class safe?" from the
reviewer's own decisions: of their last ``N`` accept/reject decisions on the class's missing-label
items, the share accepted, with a Wilson score interval (Wilson 1927; Brown, Cai & DasGupta 2001,
Statistical Science 16:101, recommend it over the normal interval for small ``N``), and the lowest score
down to which the interval's *lower bound* for their decided items still reaches the target. A stopping
score is suggested only then: three accepts out of four (interval 30%-95%) support no "precision stays
at least 90%" (issue 14, fresh report item 8); until then the app words it as an estimate, with its
interval and how many more decisions the bound needs.
"""

from __future__ import annotations

from labelfix.review.models import (
    PrecisionEstimate,
    ReviewerAgreement,
    ReviewerStats,
    ReviewEvent,
    wilson_interval,
    wilson_low_reaches,
)
from labelfix.store.database import Store

__all__ = ["agreement", "event_from_row", "precision_estimate", "recent_suggestions", "reviewer_stats"]


def event_from_row(row: tuple) -> ReviewEvent:
    """A :class:`ReviewEvent` from ``(event_id, suggestion_id, image_id, category_id, reviewer, decision, note,
    undoes_event_id, created_at[, undone])``."""
    return ReviewEvent(event_id=int(row[0]), suggestion_id=None if row[1] is None else int(row[1]),
                       image_id=int(row[2]), category_id=int(row[3]), reviewer=row[4], decision=row[5],
                       note=row[6], undoes_event_id=None if row[7] is None else int(row[7]),
                       created_at=row[8], undone=bool(row[9]) if len(row) > 9 else False)


def recent_suggestions(store: Store, *, reviewer: str, limit: int = 50, category_id: int | None = None) -> list[int]:
    """Ids of suggestions ``reviewer`` decided on (any decision, also undone), by their latest decision, newest first."""
    where, parameters = "", [reviewer]  # type: tuple[str, list[object]]
    if category_id is not None:
        where = "AND category_id = ?"
        parameters.append(int(category_id))
    return [int(s) for (s,) in store.fetchall(
        f"SELECT suggestion_id FROM review_events WHERE reviewer = ? AND decision <> 'undo' "
        f"AND suggestion_id IS NOT NULL {where} GROUP BY suggestion_id ORDER BY max(event_id) DESC LIMIT ?",
        [*parameters, int(limit)])]


def stop_score(scored: list[tuple[float, bool]], *, target: float, confidence: float = 0.95) -> float | None:
    """The lowest score ``s`` such that, over the decided items scoring ``>= s``, the Wilson lower bound of the
    share accepted reaches ``target``; ``None`` when no score does (too few decisions, or too many rejects).

    Parameters
    ----------
    scored
        ``(score, accepted)`` of decided items.
    target
        The precision the bound must reach.
    confidence
        Of the Wilson interval.

    Examples
    --------
    Four decisions at 75% never support 90%; 40 accepts from the top do (bound 40/(40+1.96**2) = 0.912),
    and the two rejects below them pull the bound under 90% again:

    >>> stop_score([(0.9, True), (0.8, True), (0.7, False), (0.6, True)], target=0.9) is None
    True
    >>> scored = [(1 - i / 100, True) for i in range(40)] + [(0.5, False), (0.4, False)]
    >>> stop_score(scored, target=0.9)
    0.61
    """
    best = None
    accepted = 0
    ordered = sorted(scored, key=lambda pair: -pair[0])
    for index, (score, ok) in enumerate(ordered, start=1):
        accepted += int(ok)
        # Only where the next item scores lower: items of equal score go together.
        if (index == len(ordered) or ordered[index][0] < score) \
                and wilson_interval(accepted, index, confidence=confidence)[0] >= target:
            best = score
    return best


def precision_estimate(store: Store, *, reviewer: str, category_id: int, run_id: int | None, last_n: int = 50,
                       target: float = 0.9, confidence: float = 0.95) -> PrecisionEstimate:
    """``reviewer``'s running precision on the missing-label items of one class, with a suggested stopping score.

    Parameters
    ----------
    store
        The store.
    reviewer, category_id
        Whose decisions, on which class.
    run_id
        Only suggestions of this run (``None``: all runs).
    last_n
        How many of the reviewer's newest accept/reject decisions (in force) the estimate uses.
    target
        The precision the stopping score must keep.
    confidence
        Of the Wilson interval.

    Returns
    -------
    PrecisionEstimate
        ``stop_score`` is computed over all of the reviewer's decisions in force on the class, so it does
        not move when the window slides.
    """
    where, parameters = "", [reviewer, int(category_id)]  # type: tuple[str, list[object]]
    if run_id is not None:
        where = "AND r.run_id = ?"
        parameters.append(int(run_id))
    rows = store.fetchall(
        f"SELECT r.event_id, r.decision IN ('accept', 'auto_accept'), s.score FROM review_state r "
        f"JOIN suggestions s ON s.suggestion_id = r.suggestion_id "
        f"WHERE r.reviewer = ? AND r.category_id = ? AND r.kind = 'missing' "
        f"AND r.decision IN ('accept', 'reject', 'auto_accept') {where} ORDER BY r.event_id DESC", parameters)
    window = rows[:max(int(last_n), 0)]
    n = len(window)
    accepted = sum(1 for _, ok, _ in window if ok)
    low, high = wilson_interval(accepted, n, confidence=confidence)
    return PrecisionEstimate(
        category_id=int(category_id), reviewer=reviewer, n=n, accepted=accepted,
        precision=accepted / n if n else None, low=low, high=high, confidence=confidence, target=target,
        stop_score=stop_score([(float(score), bool(ok)) for _, ok, score in rows], target=target,
                              confidence=confidence),
        lowest_score_seen=min((float(score) for _, _, score in rows), default=None),
        more_needed=wilson_low_reaches(accepted, n, target=target, confidence=confidence))


def reviewer_stats(store: Store, *, run_id: int | None = None) -> list[ReviewerStats]:
    """Per reviewer: decisions in force by status, their decisions that were undone, and the last decision time."""
    where, parameters = ("", []) if run_id is None else ("WHERE run_id = ?", [int(run_id)])
    rows = store.fetchall(
        f"SELECT reviewer, count(*) FILTER (WHERE decision IN ('accept', 'auto_accept')), "
        f"count(*) FILTER (WHERE decision = 'reject'), count(*) FILTER (WHERE decision IN ('skip', 'unsure')), "
        f"max(decided_at) FROM review_state {where} GROUP BY reviewer", parameters)
    undone = dict(store.fetchall(
        "SELECT t.reviewer, count(*) FROM review_events u JOIN review_events t ON t.event_id = u.undoes_event_id "
        "WHERE u.decision = 'undo' GROUP BY t.reviewer"))
    stats = {r[0]: ReviewerStats(r[0], int(r[1]), int(r[2]), int(r[3]), int(undone.get(r[0], 0)), r[4])
             for r in rows}
    for name, n in undone.items():
        stats.setdefault(name, ReviewerStats(name, 0, 0, 0, int(n), None))
    return sorted(stats.values(), key=lambda s: (-s.decided, s.reviewer))


def agreement(store: Store) -> list[ReviewerAgreement]:
    """Pairs of reviewers who both judged the same label cells (accept/reject), and how often they agreed.

    Each reviewer's judgement of a cell is their latest accept/reject on any suggestion of it that they did not
    undo themselves, read as "the class is present" or "absent" (accepting a spurious-label suggestion says
    absent). Decisions a lead reverted still count: they were the reviewer's judgement.
    """
    rows = store.fetchall("""
        WITH judged AS (
            SELECT e.reviewer, e.image_id, e.category_id,
                   arg_max(CASE WHEN (s.kind = 'spurious') = (e.decision IN ('accept', 'auto_accept')) THEN -1 ELSE 1 END,
                           e.event_id) AS present
            FROM review_events e JOIN suggestions s ON s.suggestion_id = e.suggestion_id
            WHERE e.decision IN ('accept', 'reject', 'auto_accept') AND NOT EXISTS (
                SELECT 1 FROM review_events u WHERE u.decision = 'undo' AND u.undoes_event_id = e.event_id
                AND u.reviewer = e.reviewer)
            GROUP BY ALL)
        SELECT a.reviewer, b.reviewer, count(*), count(*) FILTER (WHERE a.present = b.present)
        FROM judged a JOIN judged b ON a.image_id = b.image_id AND a.category_id = b.category_id
             AND a.reviewer < b.reviewer
        GROUP BY ALL ORDER BY ALL""")
    return [ReviewerAgreement(a, b, int(n), int(agree)) for a, b, n, agree in rows]
