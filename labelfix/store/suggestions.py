"""The ``suggestions`` and ``suggest_calls`` tables: what ``labelfix suggest`` filed, and each call's record.

Owner of both tables: every statement that writes them is here, plus the reads other packages need.
The review queue's read model (joins with review events, leases and label frequencies) lives in
:mod:`labelfix.review.queries`; decisions on suggestions are review events
(:mod:`labelfix.store.reviews`).

A new call for a run replaces that run's undecided suggestions (:func:`replace_open`): untouched ones
are deleted; ones with review events but no decision in force (skipped, unsure, undone) get
``superseded_at`` and keep their history (migration ``0003_suggest``). Decided ones are never touched.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from labelfix.store.database import Store
from labelfix.store.reviews import DECIDED_SUGGESTIONS_SQL, TOUCHED_SUGGESTIONS_SQL, drop_leases, forget_state

# The reason prefix of a missing suggestion whose class threshold is a PU estimate (Elkan & Noto): its precision
# was estimated from assumptions, not measured on validation, and such estimates are often optimistic. The queue
# reads the prefix (:data:`ESTIMATED_SQL`), so those rows do not look calibrated. A hide-and-measure threshold
# corrected with an *estimated* miss rate (``suggest --expected-missing-rate auto``) rests on an estimate too.
ESTIMATED_MARK = "ESTIMATED ("  # what every estimate's prefix starts with, and what the queue matches
ESTIMATED_PREFIX = f"{ESTIMATED_MARK}PU, not measured)"
RATE_ESTIMATED_PREFIX = f"{ESTIMATED_MARK}miss rate estimated, not measured)"
ESTIMATED_SQL = (f"(s.kind = 'missing' AND s.threshold IS NOT NULL "
                 f"AND coalesce(starts_with(s.reason, '{ESTIMATED_MARK}'), false))")
# A row a reviewer can read as calibrated: a missing suggestion with a measured threshold, or a spurious one.
CALIBRATED_SQL = f"((s.threshold IS NOT NULL OR s.kind <> 'missing') AND NOT {ESTIMATED_SQL})"


# -- suggest calls --------------------------------------------------------------------------------------------
def start_call(store: Store, *, run_id: int, source_runs: list[int], config: dict[str, Any],
               created_at: dt.datetime) -> int:
    """Record a ``labelfix suggest`` call (its summary comes later, :func:`finish_call`); return its id."""
    return int(store.scalar("INSERT INTO suggest_calls (run_id, source_runs, config, created_at) "
                            "VALUES (?, ?, ?, ?) RETURNING call_id",
                            [run_id, json.dumps(source_runs), json.dumps(config), created_at]))


def finish_call(store: Store, *, call_id: int, summary: dict[str, Any]) -> None:
    """Store a call's summary (JSON; values JSON cannot hold are written as text)."""
    store.execute("UPDATE suggest_calls SET summary = ? WHERE call_id = ?",
                  [json.dumps(summary, default=str), call_id])


# -- writing suggestions --------------------------------------------------------------------------------------
def queue_activity(store: Store, *, run_id: int, now: dt.datetime) -> dict[str, Any]:
    """What reviewers are doing on ``run_id``'s current queue, read before :func:`replace_open` changes it.

    Returns ``holders`` ({reviewer: items leased live}), ``pending`` (open items: untouched or skipped /
    unsure), ``set_aside`` (skipped / unsure, whose history stays when superseded) and ``decided``
    (decisions in force, which a new call keeps).
    """
    current = "SELECT suggestion_id FROM suggestions WHERE run_id = ? AND superseded_at IS NULL"
    holders = {str(r): int(n) for r, n in store.fetchall(
        f"SELECT reviewer, count(*) FROM leases WHERE expires_at > ? AND suggestion_id IN ({current}) "
        f"GROUP BY reviewer ORDER BY reviewer", [now, run_id])}
    decided = int(store.scalar(f"SELECT count(*) FROM ({current}) WHERE suggestion_id IN "
                               f"({DECIDED_SUGGESTIONS_SQL})", [run_id]))
    touched = int(store.scalar(f"SELECT count(*) FROM ({current}) WHERE suggestion_id IN ({TOUCHED_SUGGESTIONS_SQL}) "
                               f"AND suggestion_id NOT IN ({DECIDED_SUGGESTIONS_SQL})", [run_id]))
    total = int(store.scalar(f"SELECT count(*) FROM ({current})", [run_id]))
    return {"holders": holders, "pending": total - decided, "set_aside": touched, "decided": decided}


def replace_open(store: Store, *, run_id: int, now: dt.datetime) -> int:
    """Delete untouched open suggestions of ``run_id``; mark undecided ones with history superseded.

    Returns the number of suggestions replaced (deleted plus superseded). Leases on deleted ones go too.
    """
    untouched = (f"SELECT suggestion_id FROM suggestions WHERE run_id = ? AND superseded_at IS NULL "
                 f"AND suggestion_id NOT IN ({TOUCHED_SUGGESTIONS_SQL})")
    n_deleted = int(store.scalar(f"SELECT count(*) FROM ({untouched})", [run_id]))
    drop_leases(store, suggestions_sql=untouched, parameters=[run_id])
    store.execute(f"DELETE FROM suggestions WHERE suggestion_id IN ({untouched})", [run_id])
    superseded = (f"run_id = ? AND superseded_at IS NULL AND suggestion_id IN ({TOUCHED_SUGGESTIONS_SQL}) "
                  f"AND suggestion_id NOT IN ({DECIDED_SUGGESTIONS_SQL})")
    n_superseded = int(store.scalar(f"SELECT count(*) FROM suggestions WHERE {superseded}", [run_id]))
    # Superseded suggestions leave the queue: their skip/unsure state and leases go (their events stay).
    forget_state(store, suggestions_sql=f"SELECT suggestion_id FROM suggestions WHERE {superseded}",
                 parameters=[run_id])
    drop_leases(store, suggestions_sql=f"SELECT suggestion_id FROM suggestions WHERE {superseded}",
                parameters=[run_id])
    store.execute(f"UPDATE suggestions SET superseded_at = ? WHERE {superseded}", [now, run_id])
    return n_deleted + n_superseded


def file_ranked(store: Store, *, candidates: str, max_rank: int | None, run_id: int, call_id: int,
                reason_prefix: str, source_runs: Sequence[int], created_at: object,
                estimated: Sequence[int] = (), estimated_rate: Sequence[int] = ()) -> int:
    """Insert ranked candidates as suggestions with one bulk ``INSERT ... SELECT``; return the count.

    Parameters
    ----------
    candidates : str
        A table or view with columns ``image_id``, ``category_id``, ``kind``, ``score``, ``threshold``
        ``list_kind`` and ``rank_in_class`` (see :func:`labelfix.suggest.streaming.ranked_candidates`). A
        missing candidate with a NULL threshold is a ranked list's (``calibrated = false``): its reason starts
        ``UNCALIBRATED (calibrated = false ...)``, or ``BELOW TARGET (calibrated = false ...)`` where the
        class's estimate says no threshold reaches the target precision, or ``NO HIT (calibrated = false ...)``
        where the class reaches the target on validation but no unknown train cell scores at its threshold
        (``list_kind``), and its
        ``threshold`` stays NULL, so the review app and queries can tell it apart.
    max_rank : int, optional
        Keep only ranks up to this within each (kind, class); ``None``: all.
    run_id, call_id
        The run the suggestions are filed under, and the suggest call.
    reason_prefix : str
        Names the scoring run(s) in each reason.
    source_runs : Sequence[int]
        Runs whose ``corrections`` the reason quotes: the method and first epoch that already treated
        the cell as positive (missing) or negative (spurious) during training.
    estimated : Sequence[int]
        Classes whose threshold is a PU estimate, not a measurement: their missing suggestions' reasons start
        with :data:`ESTIMATED_PREFIX`.
    estimated_rate : Sequence[int]
        Classes whose hide-and-measure threshold was corrected with an estimated miss rate: their missing
        suggestions' reasons start with :data:`RATE_ESTIMATED_PREFIX`.

    Suggestion ids follow (kind, class, rank), so a rerun on the same data numbers them the same way.
    Call inside the caller's transaction.
    """
    runs = ", ".join(str(int(r)) for r in source_runs)
    keep = "TRUE" if max_rank is None else f"n.rank_in_class <= {int(max_rank)}"
    pu_classes = ", ".join(str(int(c)) for c in estimated) or "NULL"
    rate_classes = ", ".join(str(int(c)) for c in estimated_rate) or "NULL"
    # DuckDB answers an INSERT with the number of rows it wrote.
    written = store.fetchone(f"""
        INSERT INTO suggestions (run_id, image_id, category_id, kind, score, rank_in_class, threshold, reason,
                                 call_id, created_at)
        WITH fixes AS (  -- corrections.epoch counts from 0; words count from 1, as `labelfix train` does
            SELECT image_id, category_id, treated_as,
                   string_agg(method || ' (run ' || run_id || ') at epoch ' || (first_epoch + 1), ', '
                              ORDER BY run_id) AS who
            FROM (SELECT c.run_id, c.image_id, c.category_id, c.treated_as, min(c.epoch) AS first_epoch, r.method
                  FROM corrections c JOIN runs r ON r.run_id = c.run_id
                  WHERE c.run_id IN ({runs}) GROUP BY ALL)
            GROUP BY ALL)
        SELECT ?, n.image_id, n.category_id, n.kind, n.score, n.rank_in_class, n.threshold,
               CASE WHEN n.kind = 'missing' AND n.threshold IS NULL AND n.list_kind = 'below target'
                    THEN printf('BELOW TARGET (calibrated = false, precision below the target): %s: score %.3f, '
                                || 'rank %d of the class''s ranked list (no threshold of this class reaches the '
                                || 'target precision)', ?, n.score, n.rank_in_class)
                         || coalesce('; corrected by ' || f.who, '')
                    WHEN n.kind = 'missing' AND n.threshold IS NULL AND n.list_kind = 'no hit'
                    THEN printf('NO HIT (calibrated = false, no train cell at the threshold): %s: score %.3f, rank %d '
                                || 'of the class''s ranked list (the class reaches the target precision on validation, '
                                || 'but no unknown train cell scores at its threshold)', ?, n.score, n.rank_in_class)
                         || coalesce('; corrected by ' || f.who, '')
                    WHEN n.kind = 'missing' AND n.threshold IS NULL
                    THEN printf('UNCALIBRATED (calibrated = false, precision unknown): %s: score %.3f, rank %d '
                                || 'of the class''s ranked list (no validation estimate for this class)',
                                ?, n.score, n.rank_in_class)
                         || coalesce('; corrected by ' || f.who, '')
                    WHEN n.kind = 'missing'
                    THEN (CASE WHEN n.category_id IN ({pu_classes}) THEN '{ESTIMATED_PREFIX}: '
                               WHEN n.category_id IN ({rate_classes}) THEN '{RATE_ESTIMATED_PREFIX}: ' ELSE '' END)
                         || printf('%s: score %.3f >= class threshold %.3f', ?, n.score, n.threshold)
                         || coalesce('; corrected by ' || f.who, '')
                    ELSE printf('%s: annotated, but model probability %.3f <= %.3f', ?, n.score, n.threshold)
                         || coalesce('; treated as negative by ' || f.who, '') END,
               ?, ?
        FROM {candidates} n
        LEFT JOIN fixes f ON f.image_id = n.image_id AND f.category_id = n.category_id
             AND f.treated_as = (CASE WHEN n.kind = 'missing' THEN 1 ELSE -1 END)
        WHERE {keep}
        ORDER BY n.kind, n.category_id, n.rank_in_class
    """, [run_id, *[reason_prefix] * 5, call_id, created_at])
    return int(written[0]) if written else 0


def add_suggestions(store: Store, *, run_id: int, cells: pa.Table, kind: str, reason: str) -> np.ndarray:
    """File suggestions for given cells (no call, no threshold) and return their ids, aligned with ``cells``.

    ``cells`` has columns ``image_id``, ``category_id``, ``score`` and ``rank_in_class``; ids come from
    the store's own sequence in rank order, as for ``labelfix suggest``. Used by the simulated review
    rounds of the benchmark.
    """
    with store.transaction():
        before = int(store.scalar("SELECT coalesce(max(suggestion_id), 0) FROM suggestions"))
        store.insert_arrow(
            "INSERT INTO suggestions (run_id, image_id, category_id, kind, score, rank_in_class, reason) "
            "SELECT ?, image_id, category_id, ?, score, rank_in_class, ? FROM _labelfix_cells ORDER BY rank_in_class",
            [run_id, kind, reason], _labelfix_cells=cells)
        filed = {(int(i), int(c)): int(s) for s, i, c in store.fetchall(
            "SELECT suggestion_id, image_id, category_id FROM suggestions WHERE run_id = ? AND suggestion_id > ?",
            [run_id, before])}
    image_ids, category_ids = cells.column("image_id").to_pylist(), cells.column("category_id").to_pylist()
    return np.array([filed[(int(i), int(c))] for i, c in zip(image_ids, category_ids)], dtype=np.int64)


def auto_accept_candidates(store: Store, *, call_id: int, above: float) -> pa.Table:
    """This call's missing suggestions scoring above ``above``, by suggestion id.

    Returns
    -------
    pa.Table
        Columns ``suggestion_id``, ``image_id``, ``category_id``, ``score``.
    """
    return store.arrow("SELECT suggestion_id, image_id, category_id, score FROM suggestions "
                         "WHERE call_id = ? AND kind = 'missing' AND score > ? ORDER BY suggestion_id",
                         [call_id, above])


# -- reading ------------------------------------------------------------------------------------------------
def count_suggestions(store: Store, *, call_id: int | None = None) -> int:
    """Number of suggestions in the store (of one call, or all, including decided and superseded ones)."""
    if call_id is None:
        return int(store.scalar("SELECT count(*) FROM suggestions"))
    return int(store.scalar("SELECT count(*) FROM suggestions WHERE call_id = ?", [call_id]))
