"""Stream scores through per-class thresholds and write suggestions in bulk, at any number of images.

Memory stays bounded at 1M images x 100 classes because no stage holds the (N, C) matrix:

1. DuckDB computes the scores (:func:`labelfix.suggest.scoring.score_query`), joins them with the
   split and the label cells, and keeps only candidates: unknown cells at or above their class
   threshold (a small Arrow table joined in SQL) and original positives at or below the spurious
   cut-off. DuckDB streams (and if needed spills) this scan itself.
2. Python reads the candidates as Arrow record batches (``to_arrow_reader``) and keeps four
   narrow columns of the rows that passed, typically a few percent of the cells.
3. Ranks within (kind, class) are one ``lexsort`` over the kept rows; the suggestions are one Arrow
   table inserted with a single ``INSERT ... SELECT`` (reasons built in SQL), never row by row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from labelfix.suggest.scoring import DEFAULT_BATCH_ROWS
from labelfix.store.database import Store

MISSING, SPURIOUS = 1, 2
KIND_NAMES = {MISSING: "missing", SPURIOUS: "spurious"}

# Cells with a decision that is still in force (not undone); they are never suggested again.
DECIDED_CELLS_SQL = """
    SELECT DISTINCT e.image_id, e.category_id FROM review_events e
    WHERE e.decision IN ('accept', 'reject', 'auto_accept') AND NOT EXISTS (
        SELECT 1 FROM review_events u WHERE u.decision = 'undo' AND u.undoes_event_id = e.event_id)
"""


@dataclass
class Candidates:
    """Cells that passed the thresholds, one entry per cell (flat arrays of equal length)."""

    image_ids: np.ndarray     # int64
    category_ids: np.ndarray  # int64
    scores: np.ndarray        # float32
    kinds: np.ndarray         # int8: MISSING or SPURIOUS

    def __len__(self) -> int:
        return len(self.image_ids)


def stream_candidates(store: Store, *, score_sql: str, thresholds: dict[int, float], spurious_max_score: float | None,
                      split: str = "train", batch_rows: int = DEFAULT_BATCH_ROWS) -> Candidates:
    """Scan the scores of ``split`` in Arrow batches and keep the cells that pass their threshold.

    Parameters
    ----------
    store : Store
        The store (its ``images``, ``labels`` and ``review_events`` decide which cells qualify).
    score_sql : str
        A query yielding ``(image_id, category_id, score)``, e.g. from ``score_query``.
    thresholds : dict[int, float]
        Missing-label threshold per category id; a class absent or with a non-finite threshold gets
        no missing suggestions.
    spurious_max_score : float, optional
        Original positives scoring at or below this become spurious candidates; ``None``: none.
    split : str
        Split whose cells are suggested.
    batch_rows : int
        Rows per Arrow batch read from DuckDB (bounds Python-side memory).

    Returns
    -------
    Candidates

    Examples
    --------
    >>> found = stream_candidates(store, score_sql=score_query(run_ids=[3]), thresholds={1: 0.7},
    ...                           spurious_max_score=0.05)  # doctest: +SKIP
    """
    finite = {int(c): float(t) for c, t in thresholds.items() if math.isfinite(t)}
    threshold_table = pa.table({"category_id": pa.array(list(finite), pa.int64()),
                                "threshold": pa.array(list(finite.values()), pa.float32())})
    query = f"""
        WITH sc AS ({score_sql}), decided AS ({DECIDED_CELLS_SQL})
        SELECT sc.image_id, sc.category_id, sc.score,
               (CASE WHEN l.state IS NULL THEN {MISSING} ELSE {SPURIOUS} END)::TINYINT AS kind
        FROM sc
        JOIN images i ON i.image_id = sc.image_id AND i.split = ?
        LEFT JOIN labels l ON l.image_id = sc.image_id AND l.category_id = sc.category_id
        LEFT JOIN _labelfix_thresholds t ON t.category_id = sc.category_id
        WHERE ((l.state IS NULL AND sc.score >= t.threshold)
               OR (l.state = 1 AND l.origin = 'original' AND sc.score <= ?))
          AND NOT EXISTS (SELECT 1 FROM decided d WHERE d.image_id = sc.image_id AND d.category_id = sc.category_id)
    """
    parts: dict[str, list[np.ndarray]] = {"image_id": [], "category_id": [], "score": [], "kind": []}
    store.connection.register("_labelfix_thresholds", threshold_table)
    try:
        # The reader is drained completely before the connection runs anything else (DuckDB 2 rule).
        reader = store.connection.sql(query, params=[split, spurious_max_score]).to_arrow_reader(batch_rows)
        for batch in reader:
            for name in parts:
                parts[name].append(batch.column(name).to_numpy(zero_copy_only=False))
    finally:
        store.connection.unregister("_labelfix_thresholds")

    def joined(name: str, dtype: type) -> np.ndarray:
        return np.concatenate(parts[name]).astype(dtype, copy=False) if parts[name] else np.zeros(0, dtype)

    return Candidates(joined("image_id", np.int64), joined("category_id", np.int64), joined("score", np.float32),
                      joined("kind", np.int8))


def rank_within_class(candidates: Candidates, *, max_per_class: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rank each (kind, class) group: missing by score descending, spurious by score ascending.

    Ties are broken by image id so reruns give the same ranks.

    Returns
    -------
    order : np.ndarray
        Positions into ``candidates`` of the rows kept (all, or the first ``max_per_class`` of each group).
    ranks : np.ndarray
        1-based rank in the group of each kept row.

    Examples
    --------
    >>> found = Candidates(np.array([1, 2, 3]), np.array([7, 7, 7]), np.array([0.8, 0.9, 0.01], np.float32),
    ...                    np.array([MISSING, MISSING, SPURIOUS], np.int8))
    >>> order, ranks = rank_within_class(found)
    >>> order.tolist(), ranks.tolist()
    ([1, 0, 2], [1, 2, 1])
    """
    if not len(candidates):
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    # Lowest probability is the strongest evidence for a spurious label, so flip its sort key.
    key = np.where(candidates.kinds == MISSING, -candidates.scores, candidates.scores)
    order = np.lexsort((candidates.image_ids, key, candidates.category_ids, candidates.kinds))
    kinds, classes = candidates.kinds[order], candidates.category_ids[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (kinds[1:] != kinds[:-1]) | (classes[1:] != classes[:-1])
    group_start = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
    ranks = (np.arange(len(order)) - group_start + 1).astype(np.int32)
    if max_per_class is not None:
        keep = ranks <= max_per_class
        order, ranks = order[keep], ranks[keep]
    return order.astype(np.int64), ranks


def counts_per_class(candidates: Candidates, *, category_ids: np.ndarray, kind: int) -> np.ndarray:
    """(C,) number of candidates of ``kind`` per class, aligned with sorted ``category_ids``."""
    chosen = candidates.category_ids[candidates.kinds == kind]
    positions = np.searchsorted(category_ids, chosen)
    return np.bincount(positions, minlength=len(category_ids)).astype(np.int64)


def write_suggestions(store: Store, *, candidates: Candidates, order: np.ndarray, ranks: np.ndarray, run_id: int,
                      call_id: int, thresholds: dict[int, float], spurious_max_score: float | None,
                      reason_prefix: str, source_runs: Sequence[int], created_at: object) -> int:
    """Insert the ranked candidates as suggestions with one bulk ``INSERT ... SELECT``; return the count.

    The reason names the scoring run(s) and, from the ``corrections`` table, the method and first
    epoch that already treated the cell as positive (missing) or negative (spurious) during training.
    Call inside the caller's transaction.
    """
    if len(order) == 0:
        return 0
    category_ids = candidates.category_ids[order]
    kinds = candidates.kinds[order]
    known = np.array(sorted(thresholds), dtype=np.int64)
    values = np.array([thresholds[c] for c in known.tolist()], dtype=np.float32)
    positions = np.minimum(np.searchsorted(known, category_ids), max(len(known) - 1, 0))
    missing_threshold = values[positions] if len(known) else np.full(len(order), np.nan, np.float32)
    spurious_value = np.float32(np.nan if spurious_max_score is None else spurious_max_score)
    table = pa.table({
        "image_id": pa.array(candidates.image_ids[order]),
        "category_id": pa.array(category_ids),
        "kind": pa.array(np.where(kinds == MISSING, "missing", "spurious")),
        "score": pa.array(candidates.scores[order]),
        "rank_in_class": pa.array(ranks),
        "threshold": pa.array(np.where(kinds == MISSING, missing_threshold, spurious_value).astype(np.float32)),
    })
    runs = ", ".join(str(int(r)) for r in source_runs)
    store.connection.register("_labelfix_new", table)
    try:
        store.execute(f"""
            INSERT INTO suggestions (run_id, image_id, category_id, kind, score, rank_in_class, threshold, reason,
                                     call_id, created_at)
            WITH fixes AS (
                SELECT image_id, category_id, treated_as,
                       string_agg(method || ' (run ' || run_id || ') at epoch ' || first_epoch, ', '
                                  ORDER BY run_id) AS who
                FROM (SELECT c.run_id, c.image_id, c.category_id, c.treated_as, min(c.epoch) AS first_epoch, r.method
                      FROM corrections c JOIN runs r ON r.run_id = c.run_id
                      WHERE c.run_id IN ({runs}) GROUP BY ALL)
                GROUP BY ALL)
            SELECT ?, n.image_id, n.category_id, n.kind, n.score, n.rank_in_class, n.threshold,
                   CASE WHEN n.kind = 'missing'
                        THEN printf('%s: score %.3f >= class threshold %.3f', ?, n.score, n.threshold)
                             || coalesce('; corrected by ' || f.who, '')
                        ELSE printf('%s: annotated, but model probability %.3f <= %.3f', ?, n.score, n.threshold)
                             || coalesce('; treated as negative by ' || f.who, '') END,
                   ?, ?
            FROM _labelfix_new n
            LEFT JOIN fixes f ON f.image_id = n.image_id AND f.category_id = n.category_id
                 AND f.treated_as = (CASE WHEN n.kind = 'missing' THEN 1 ELSE -1 END)
        """, [run_id, reason_prefix, reason_prefix, call_id, created_at])
    finally:
        store.connection.unregister("_labelfix_new")
    return len(order)
