"""The ``review_events``, ``review_state`` and ``leases`` tables: the review log, its current state, and holds.

Owner of the three tables: every statement that writes them is here. ``review_state`` (migration 0006)
is the decision in force on each suggestion, derived from ``review_events``; every function here that
appends events brings it up to date in the same statement sequence (call them inside a transaction). The review service
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


# -- review state ---------------------------------------------------------------------------------------------
_STATE_COLUMNS = "suggestion_id, run_id, kind, image_id, category_id, decision, reviewer, event_id, decided_at"
_STATE_UPSERT = """ON CONFLICT (suggestion_id) DO UPDATE SET run_id = excluded.run_id, kind = excluded.kind,
    image_id = excluded.image_id, category_id = excluded.category_id, decision = excluded.decision,
    reviewer = excluded.reviewer, event_id = excluded.event_id, decided_at = excluded.decided_at"""


def _state_rows(ids_sql: str) -> str:
    """Rows of ``review_state`` for the suggestions a ``SELECT suggestion_id ...`` query yields (its parameters
    are needed twice): their latest event in force, for current (not superseded) suggestions only.

    An undo carries the suggestion id of the event it cancels, so only those suggestions' events are read;
    the whole log's anti-join took 100 ms at 200k events, and a join with all suggestions 40 ms.
    """
    return f"""
        WITH ev AS (SELECT * FROM review_events WHERE suggestion_id IN ({ids_sql})),
        sg AS (SELECT suggestion_id, run_id, kind FROM suggestions
               WHERE suggestion_id IN ({ids_sql}) AND superseded_at IS NULL)
        SELECT e.suggestion_id, any_value(sg.run_id), any_value(sg.kind), arg_max(e.image_id, e.event_id),
               arg_max(e.category_id, e.event_id), arg_max(e.decision, e.event_id),
               arg_max(e.reviewer, e.event_id), max(e.event_id), arg_max(e.created_at, e.event_id)
        FROM ev e JOIN sg ON sg.suggestion_id = e.suggestion_id
        WHERE e.decision <> 'undo'
          AND NOT EXISTS (SELECT 1 FROM ev u WHERE u.decision = 'undo' AND u.undoes_event_id = e.event_id)
        GROUP BY e.suggestion_id"""


def _refresh_state(store: Store, *, ids_sql: str, parameters: Sequence[object] = ()) -> None:
    """Recompute ``review_state`` for the suggestions a ``SELECT suggestion_id ...`` query yields."""
    params = list(parameters)
    store.execute(f"INSERT INTO review_state ({_STATE_COLUMNS}) {_state_rows(ids_sql)} {_STATE_UPSERT}", params * 2)
    # Suggestions whose every event is undone (or an undo), and superseded ones, have no state.
    store.execute(f"""
        DELETE FROM review_state WHERE suggestion_id IN ({ids_sql})
          AND suggestion_id NOT IN (SELECT suggestion_id FROM ({_state_rows(ids_sql)}))""", params * 3)


def _refresh_one(store: Store, *, suggestion_id: int) -> None:
    """:func:`_refresh_state` for one suggestion (an undo key press): one read, then one small write."""
    row = store.fetchone(_state_rows("SELECT ?::BIGINT"), [suggestion_id, suggestion_id])
    if row is None:
        store.execute("DELETE FROM review_state WHERE suggestion_id = ?", [suggestion_id])
    else:
        store.execute(f"INSERT INTO review_state ({_STATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                      f"{_STATE_UPSERT}", list(row))


def forget_state(store: Store, *, suggestions_sql: str, parameters: Sequence[object] = ()) -> None:
    """Drop the state of suggestions that leave the queue (superseded by a new ``labelfix suggest`` call)."""
    store.execute(f"DELETE FROM review_state WHERE suggestion_id IN ({suggestions_sql})", list(parameters))


def rebuild_state(store: Store) -> int:
    """Derive ``review_state`` from the whole log again (a repair; the writers here keep it in step); return rows."""
    store.execute("DELETE FROM review_state")
    _refresh_state(store, ids_sql="SELECT suggestion_id FROM review_events WHERE suggestion_id IS NOT NULL")
    return int(store.scalar("SELECT count(*) FROM review_state"))


def _state_after_new_events(store: Store, *, after_event_id: int) -> None:
    """Bring ``review_state`` up to date for the suggestions touched by events newer than ``after_event_id``."""
    _refresh_state(store, ids_sql="SELECT suggestion_id FROM review_events WHERE event_id > ? "
                                  "AND suggestion_id IS NOT NULL", parameters=[after_event_id])


def _max_event_id(store: Store) -> int:
    return int(store.scalar("SELECT coalesce(max(event_id), 0) FROM review_events"))


# -- review events --------------------------------------------------------------------------------------------
def record_event(store: Store, *, suggestion_id: int | None, image_id: int, category_id: int, reviewer: str,
                 decision: str, note: str | None, created_at: dt.datetime,
                 undoes_event_id: int | None = None) -> int:
    """Append one event (a decision, or an ``undo`` pointing at ``undoes_event_id``); return its id.

    ``review_state`` follows: a decision becomes its suggestion's state; an undo restores the suggestion's
    previous decision in force (or none).
    """
    if undoes_event_id is None:
        event_id = int(store.scalar(
            "INSERT INTO review_events (suggestion_id, image_id, category_id, reviewer, decision, note, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING event_id",
            [suggestion_id, image_id, category_id, reviewer, decision, note, created_at]))
        if suggestion_id is not None and decision != "undo":
            store.execute(
                f"INSERT INTO review_state ({_STATE_COLUMNS}) SELECT suggestion_id, run_id, kind, ?, ?, ?, ?, ?, ? "
                f"FROM suggestions WHERE suggestion_id = ? AND superseded_at IS NULL {_STATE_UPSERT}",
                [image_id, category_id, decision, reviewer, event_id, created_at, suggestion_id])
        return event_id
    event_id = int(store.scalar(
        "INSERT INTO review_events (suggestion_id, image_id, category_id, reviewer, decision, note, "
        "undoes_event_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING event_id",
        [suggestion_id, image_id, category_id, reviewer, decision, note, undoes_event_id, created_at]))
    if suggestion_id is not None:
        _refresh_one(store, suggestion_id=int(suggestion_id))
    return event_id


def record_auto_accepts(store: Store, *, suggestions: pa.Table, above: float, created_at: dt.datetime) -> None:
    """One ``auto_accept`` event (reviewer ``auto``) per row of ``suggestions``, in suggestion id order.

    Parameters
    ----------
    suggestions : pa.Table
        Columns ``suggestion_id``, ``image_id``, ``category_id``, ``score``.
    above : float
        The auto-accept cut-off, quoted in each event's note.
    """
    before = _max_event_id(store)
    store.insert_arrow(
        "INSERT INTO review_events (suggestion_id, image_id, category_id, reviewer, decision, note, created_at) "
        "SELECT suggestion_id, image_id, category_id, 'auto', 'auto_accept', printf('score %.3f > %.3f', score, ?), ? "
        "FROM _labelfix_auto ORDER BY suggestion_id", [above, created_at], _labelfix_auto=suggestions)
    _state_after_new_events(store, after_event_id=before)


def record_decisions(store: Store, *, suggestions: pa.Table, reviewer: str, decision: str, note: str | None,
                     created_at: dt.datetime) -> dict[int, int]:
    """One ``decision`` event by ``reviewer`` per row of ``suggestions``, in one statement.

    Returns the new event id of each suggestion id (the suggestion ids must be distinct).

    Parameters
    ----------
    suggestions : pa.Table
        Columns ``position`` (event order), ``suggestion_id``, ``image_id``, ``category_id``.
    """
    before = _max_event_id(store)
    store.insert_arrow(
        "INSERT INTO review_events (suggestion_id, image_id, category_id, reviewer, decision, note, created_at) "
        "SELECT suggestion_id, image_id, category_id, ?, ?, ?, ? FROM _labelfix_decided ORDER BY position",
        [reviewer, decision, note, created_at], _labelfix_decided=suggestions)
    _state_after_new_events(store, after_event_id=before)
    return {int(s): int(e) for s, e in store.fetchall(
        "SELECT suggestion_id, event_id FROM review_events WHERE event_id > ?", [before])}


def auto_accepts_in_force(store: Store, *, run_id: int | None = None) -> pa.Table:
    """``auto_accept`` events not undone (of suggestions filed under ``run_id``, or all), by event id.

    Returns
    -------
    pa.Table
        Columns ``event_id``, ``suggestion_id``, ``image_id``, ``category_id``, ``run_id`` (the run the
        suggestion was filed under).
    """
    where, parameters = ("", []) if run_id is None else ("AND s.run_id = ?", [int(run_id)])
    return store.arrow(f"""
        SELECT e.event_id, e.suggestion_id, e.image_id, e.category_id, s.run_id FROM review_events e
        LEFT JOIN suggestions s ON s.suggestion_id = e.suggestion_id
        WHERE e.decision = 'auto_accept' {where} AND NOT EXISTS (
            SELECT 1 FROM review_events u WHERE u.decision = 'undo' AND u.undoes_event_id = e.event_id)
        ORDER BY e.event_id""", parameters)


def reverted_auto_cells(store: Store) -> pa.Table:
    """Cells whose auto-accept was undone (``labelfix revert-auto``): never auto-accepted again.

    Returns
    -------
    pa.Table
        Columns ``image_id``, ``category_id``, one row per cell.
    """
    return store.arrow("""
        SELECT DISTINCT e.image_id, e.category_id FROM review_events e
        WHERE e.decision = 'auto_accept' AND EXISTS (
            SELECT 1 FROM review_events u WHERE u.decision = 'undo' AND u.undoes_event_id = e.event_id)""")


def record_undos(store: Store, *, events: pa.Table, reviewer: str, note: str | None,
                 created_at: dt.datetime) -> None:
    """One ``undo`` event per row of ``events`` (columns as :func:`auto_accepts_in_force`), in event id order."""
    before = _max_event_id(store)
    store.insert_arrow(
        "INSERT INTO review_events (suggestion_id, image_id, category_id, reviewer, decision, note, "
        "undoes_event_id, created_at) SELECT suggestion_id, image_id, category_id, ?, 'undo', ?, event_id, ? "
        "FROM _labelfix_undone ORDER BY event_id", [reviewer, note, created_at], _labelfix_undone=events)
    _state_after_new_events(store, after_event_id=before)


def latest_effective_event(store: Store, *, suggestion_id: int | None = None,
                           reviewer: str | None = None) -> int | None:
    """The newest event in force on ``suggestion_id`` (else by ``reviewer``); ``None`` when there is none."""
    column, value = ("suggestion_id", int(suggestion_id)) if suggestion_id is not None else ("reviewer", reviewer)
    found = store.scalar(f"SELECT max(event_id) FROM ({EFFECTIVE_EVENTS_SQL}) WHERE {column} = ?", [value])
    return None if found is None else int(found)


def latest_own_decision(store: Store, *, reviewer: str) -> int | None:
    """The newest event of ``reviewer`` that is the decision in force on its suggestion; ``None`` if none."""
    found = store.scalar("SELECT max(event_id) FROM review_state WHERE reviewer = ?", [reviewer])
    return None if found is None else int(found)


def event_with_undone(store: Store, *, event_id: int) -> tuple | None:
    """(event_id, suggestion_id, image_id, category_id, decision, undone, reviewer) of one event, or ``None``."""
    return store.fetchone(
        "SELECT event_id, suggestion_id, image_id, category_id, decision, "
        "EXISTS (SELECT 1 FROM review_events u WHERE u.decision = 'undo' AND u.undoes_event_id = e.event_id), "
        "reviewer FROM review_events e WHERE event_id = ?", [int(event_id)])


def decision_in_force(store: Store, *, suggestion_id: int) -> tuple[int, str] | None:
    """(event_id, reviewer) of the decision in force on a suggestion, or ``None``."""
    row = store.fetchone("SELECT event_id, reviewer FROM review_state WHERE suggestion_id = ?", [int(suggestion_id)])
    return None if row is None else (int(row[0]), str(row[1]))


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
    """Lease ``suggestion_ids`` to ``reviewer`` until ``expires_at`` (renewing their own leases), in one statement.

    With ``release_others`` the reviewer's leases on other suggestions are given back first.
    """
    ids = [int(s) for s in suggestion_ids]
    if release_others:
        store.execute("DELETE FROM leases WHERE reviewer = ? AND NOT list_contains(?::BIGINT[], suggestion_id)",
                      [reviewer, ids])
    if ids:
        store.execute(
            "INSERT INTO leases (suggestion_id, reviewer, expires_at) SELECT DISTINCT unnest(?::BIGINT[]), ?, ? "
            "ON CONFLICT (suggestion_id) DO UPDATE SET reviewer = excluded.reviewer, "
            "expires_at = excluded.expires_at", [ids, reviewer, expires_at])


def renew_leases(store: Store, *, reviewer: str, expires_at: dt.datetime, now: dt.datetime,
                 suggestion_ids: Sequence[int] | None = None) -> int:
    """Extend ``reviewer``'s live leases (all, or those on ``suggestion_ids``) to ``expires_at``; return how many."""
    where, parameters = "reviewer = ? AND expires_at > ?", [reviewer, now]
    if suggestion_ids is not None:
        where += " AND list_contains(?::BIGINT[], suggestion_id)"
        parameters.append([int(s) for s in suggestion_ids])
    n = int(store.scalar(f"SELECT count(*) FROM leases WHERE {where}", parameters))
    if n:
        store.execute(f"UPDATE leases SET expires_at = ? WHERE {where}", [expires_at, *parameters])
    return n


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
