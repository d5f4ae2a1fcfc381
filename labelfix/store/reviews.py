"""The ``review_events`` and ``leases`` tables: the append-only review log and who holds which suggestion.

Owner of both tables: every statement that writes them is here. The review service
(:mod:`labelfix.review.service`) records decisions and leases through these functions, and
:mod:`labelfix.suggest.run` records auto-accepts and their reverts through them too, which is why the
owner sits in the store and not in ``review/`` (``suggest/`` is below ``review/``).

An event is *in force* when no ``undo`` event points at it; an undo is itself an event, so nothing is
ever deleted from ``review_events``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pyarrow as pa

from labelfix.store.database import Store

# Review events that still count: every event except undos and the events an undo cancelled.
EFFECTIVE_EVENTS_SQL = """
    SELECT e.* FROM review_events e
    WHERE e.decision <> 'undo' AND NOT EXISTS (
        SELECT 1 FROM review_events u WHERE u.decision = 'undo' AND u.undoes_event_id = e.event_id)
"""

# Decisions (accept, reject, auto-accept) still in force: their cells are never suggested again.
_IN_FORCE_DECISIONS_WHERE = """e.decision IN ('accept', 'reject', 'auto_accept') AND NOT EXISTS (
        SELECT 1 FROM review_events u WHERE u.decision = 'undo' AND u.undoes_event_id = e.event_id)"""

# Cells with a decision that is still in force (not undone).
DECIDED_CELLS_SQL = f"""
    SELECT DISTINCT e.image_id, e.category_id FROM review_events e
    WHERE {_IN_FORCE_DECISIONS_WHERE}
"""

# Suggestions with a decision in force, and suggestions with any review event at all.
DECIDED_SUGGESTIONS_SQL = (f"SELECT e.suggestion_id FROM review_events e WHERE e.suggestion_id IS NOT NULL "
                           f"AND {_IN_FORCE_DECISIONS_WHERE}")
TOUCHED_SUGGESTIONS_SQL = "SELECT suggestion_id FROM review_events WHERE suggestion_id IS NOT NULL"


# -- review events --------------------------------------------------------------------------------------------
def record_event(store: Store, *, suggestion_id: int | None, image_id: int, category_id: int, reviewer: str,
                 decision: str, note: str | None, created_at: dt.datetime,
                 undoes_event_id: int | None = None) -> int:
    """Append one event (a decision, or an ``undo`` pointing at ``undoes_event_id``); return its id."""
    if undoes_event_id is None:
        return int(store.scalar(
            "INSERT INTO review_events (suggestion_id, image_id, category_id, reviewer, decision, note, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING event_id",
            [suggestion_id, image_id, category_id, reviewer, decision, note, created_at]))
    return int(store.scalar(
        "INSERT INTO review_events (suggestion_id, image_id, category_id, reviewer, decision, note, "
        "undoes_event_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING event_id",
        [suggestion_id, image_id, category_id, reviewer, decision, note, undoes_event_id, created_at]))


def record_auto_accepts(store: Store, *, suggestions: pa.Table, above: float, created_at: dt.datetime) -> None:
    """One ``auto_accept`` event (reviewer ``auto``) per row of ``suggestions``, in suggestion id order.

    Parameters
    ----------
    suggestions : pa.Table
        Columns ``suggestion_id``, ``image_id``, ``category_id``, ``score``.
    above : float
        The auto-accept cut-off, quoted in each event's note.
    """
    store.insert_arrow(
        "INSERT INTO review_events (suggestion_id, image_id, category_id, reviewer, decision, note, created_at) "
        "SELECT suggestion_id, image_id, category_id, 'auto', 'auto_accept', printf('score %.3f > %.3f', score, ?), ? "
        "FROM _labelfix_auto ORDER BY suggestion_id", [above, created_at], _labelfix_auto=suggestions)


def auto_accepts_in_force(store: Store, *, run_id: int | None = None) -> pa.Table:
    """``auto_accept`` events not undone (of suggestions filed under ``run_id``, or all), by event id.

    Returns
    -------
    pa.Table
        Columns ``event_id``, ``suggestion_id``, ``image_id``, ``category_id``.
    """
    where, parameters = ("", []) if run_id is None else ("AND s.run_id = ?", [int(run_id)])
    return store.arrow(f"""
        SELECT e.event_id, e.suggestion_id, e.image_id, e.category_id FROM review_events e
        LEFT JOIN suggestions s ON s.suggestion_id = e.suggestion_id
        WHERE e.decision = 'auto_accept' {where} AND NOT EXISTS (
            SELECT 1 FROM review_events u WHERE u.decision = 'undo' AND u.undoes_event_id = e.event_id)
        ORDER BY e.event_id""", parameters)


def record_undos(store: Store, *, events: pa.Table, reviewer: str, note: str | None,
                 created_at: dt.datetime) -> None:
    """One ``undo`` event per row of ``events`` (columns as :func:`auto_accepts_in_force`), in event id order."""
    store.insert_arrow(
        "INSERT INTO review_events (suggestion_id, image_id, category_id, reviewer, decision, note, "
        "undoes_event_id, created_at) SELECT suggestion_id, image_id, category_id, ?, 'undo', ?, event_id, ? "
        "FROM _labelfix_undone ORDER BY event_id", [reviewer, note, created_at], _labelfix_undone=events)


def latest_effective_event(store: Store, *, suggestion_id: int | None = None,
                           reviewer: str | None = None) -> int | None:
    """The newest event in force on ``suggestion_id`` (else by ``reviewer``); ``None`` when there is none."""
    column, value = ("suggestion_id", int(suggestion_id)) if suggestion_id is not None else ("reviewer", reviewer)
    found = store.scalar(f"SELECT max(event_id) FROM ({EFFECTIVE_EVENTS_SQL}) WHERE {column} = ?", [value])
    return None if found is None else int(found)


def event_with_undone(store: Store, *, event_id: int) -> tuple | None:
    """(event_id, suggestion_id, image_id, category_id, decision, undone) of one event, or ``None``."""
    return store.fetchone(
        "SELECT event_id, suggestion_id, image_id, category_id, decision, "
        "EXISTS (SELECT 1 FROM review_events u WHERE u.decision = 'undo' AND u.undoes_event_id = e.event_id) "
        "FROM review_events e WHERE event_id = ?", [int(event_id)])


def decisions_by(store: Store, *, reviewer: str) -> set[tuple[int, str]]:
    """(suggestion_id, decision) of every event ``reviewer`` recorded on a suggestion (undone or not)."""
    return {(int(s), d) for s, d in store.fetchall(
        "SELECT suggestion_id, decision FROM review_events WHERE reviewer = ? AND suggestion_id IS NOT NULL",
        [reviewer])}


# -- leases ---------------------------------------------------------------------------------------------------
def drop_expired_leases(store: Store, *, now: dt.datetime) -> None:
    store.execute("DELETE FROM leases WHERE expires_at <= ?", [now])


def lease(store: Store, *, suggestion_ids: Sequence[int], reviewer: str, expires_at: dt.datetime,
          release_others: bool) -> None:
    """Lease ``suggestion_ids`` to ``reviewer`` until ``expires_at`` (renewing their own leases).

    With ``release_others`` the reviewer's leases on other suggestions are given back first.
    """
    ids = [int(s) for s in suggestion_ids]
    if release_others:
        if ids:
            store.execute(f"DELETE FROM leases WHERE reviewer = ? AND suggestion_id NOT IN "
                          f"({', '.join('?' for _ in ids)})", [reviewer, *ids])
        else:
            store.execute("DELETE FROM leases WHERE reviewer = ?", [reviewer])
    for suggestion_id in ids:
        store.execute(
            "INSERT INTO leases (suggestion_id, reviewer, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (suggestion_id) DO UPDATE SET reviewer = excluded.reviewer, "
            "expires_at = excluded.expires_at", [suggestion_id, reviewer, expires_at])


def release_leases(store: Store, *, reviewer: str, suggestion_ids: Sequence[int] | None = None) -> int:
    """Give back ``reviewer``'s leases (all, or those on ``suggestion_ids``); return how many were held."""
    if suggestion_ids is None:
        n = store.scalar("SELECT count(*) FROM leases WHERE reviewer = ?", [reviewer])
        store.execute("DELETE FROM leases WHERE reviewer = ?", [reviewer])
        return int(n or 0)
    ids = [int(s) for s in suggestion_ids]
    if not ids:
        return 0
    marks = ", ".join("?" for _ in ids)
    n = store.scalar(f"SELECT count(*) FROM leases WHERE reviewer = ? AND suggestion_id IN ({marks})",
                     [reviewer, *ids])
    store.execute(f"DELETE FROM leases WHERE reviewer = ? AND suggestion_id IN ({marks})", [reviewer, *ids])
    return int(n or 0)


def drop_lease(store: Store, *, suggestion_id: int) -> None:
    """Remove the lease (of anyone) on one suggestion, e.g. once it is decided."""
    store.execute("DELETE FROM leases WHERE suggestion_id = ?", [int(suggestion_id)])


def drop_leases(store: Store, *, suggestions_sql: str, parameters: Sequence[object] = ()) -> None:
    """Remove the leases (of anyone) on the suggestions a ``SELECT suggestion_id ...`` query yields."""
    store.execute(f"DELETE FROM leases WHERE suggestion_id IN ({suggestions_sql})", list(parameters))
