"""Pick and rank suggestion candidates inside DuckDB, at any number of images.

Memory stays bounded at 1M images x 100 classes because no stage holds the (N, C) matrix, and the
candidates never travel through Python:

1. DuckDB computes the scores (:func:`labelfix.suggest.scoring.score_query`), joins them with the
   split and the label cells, and keeps only candidates: unknown cells at or above their class
   threshold (a small Arrow table joined in SQL; an uncalibrated class has no threshold and keeps its
   ``k`` best) and original positives at or below the spurious cut-off. DuckDB streams (and if needed spills) this scan itself.
2. A window function ranks each (kind, class) group, ``row_number() OVER (PARTITION BY kind,
   category_id ...)``, and the ranked candidates land in a temporary table.
3. :func:`labelfix.store.suggestions.file_ranked` inserts the kept ranks as suggestions with one
   ``INSERT ... SELECT`` (reasons built in SQL), and :func:`candidate_counts` reads the per-class
   counts the report needs from the same table.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Collection, Iterator

import pyarrow as pa

from labelfix.store.database import Store
from labelfix.store.reviews import DECIDED_CELLS_SQL

MISSING, SPURIOUS = "missing", "spurious"
# The three kinds of ranked list (list_kind): nothing estimated the class; no threshold reaches the target on
# validation; the target is reached on validation but no unknown train cell scores at the threshold ("no hit").
UNCALIBRATED, BELOW_TARGET, UNREACHED = "uncalibrated", "below target", "no hit"
CANDIDATES_TABLE = "_labelfix_candidates"


@contextlib.contextmanager
def ranked_candidates(store: Store, *, score_sql: str, thresholds: dict[int, float],
                      spurious_max_score: float | None, split: str = "train",
                      uncalibrated_top_k: dict[int, int] | None = None,
                      below_target: Collection[int] = (), unreached: Collection[int] = ()) -> Iterator[str]:
    """Materialise the cells of ``split`` that pass their threshold, ranked, in a temporary table.

    Missing candidates rank by score descending, spurious ones by score ascending (the lowest
    probability is the strongest evidence against an annotation); ties go to the lower image id, so
    reruns give the same ranks. Scores and thresholds are compared as float64 (DOUBLE), as the
    predictions are stored: float32 would tie probabilities within ~6e-8 of 1.0.

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
    uncalibrated_top_k : dict[int, int], optional
        Classes without a calibrated threshold: their ``k`` best-scoring unknown cells become missing
        candidates whatever their score, with a NULL threshold (uncalibrated). Overrides ``thresholds``.
    below_target : Collection[int]
        Those of ``uncalibrated_top_k``'s classes whose list is there because no threshold reaches the
        target precision (calibrated, but below target) rather than because nothing could be estimated;
        their rows say so (``list_kind``).
    unreached : Collection[int]
        Those of ``uncalibrated_top_k``'s classes whose list is there because their threshold, which reaches the
        target on validation, is reached by no unknown cell of ``split`` (``list_kind`` ``no hit``).

    Yields
    ------
    str
        The temporary table's name; columns ``image_id``, ``category_id``, ``kind`` (``missing`` or
        ``spurious``), ``score`` (DOUBLE), ``threshold`` (DOUBLE; NULL for a ranked list's missing
        candidates), ``list_kind`` (``uncalibrated``, ``below target`` or ``no hit`` for a ranked list's missing
        candidates, else NULL), ``rank_in_class`` (1-based within (kind, class)). It is dropped when the
        block ends.

    Examples
    --------
    >>> with ranked_candidates(store, score_sql=score_query(run_ids=[3]), thresholds={1: 0.7},
    ...                        spurious_max_score=0.05) as table:  # doctest: +SKIP
    ...     counts = candidate_counts(store, table=table, max_per_class=None)
    """
    top_k = {int(c): int(k) for c, k in (uncalibrated_top_k or {}).items() if k > 0}
    finite = {int(c): float(t) for c, t in thresholds.items() if math.isfinite(t) and int(c) not in top_k}
    # One row per class with missing candidates: a threshold, or (uncalibrated) no threshold and a rank cap.
    kinds = {int(c): BELOW_TARGET for c in below_target} | {int(c): UNREACHED for c in unreached}
    threshold_table = pa.table({
        "category_id": pa.array(list(finite) + list(top_k), pa.int64()),
        "threshold": pa.array(list(finite.values()) + [None] * len(top_k), pa.float64()),
        "max_rank": pa.array([None] * len(finite) + list(top_k.values()), pa.int32()),
        "list_kind": pa.array([None] * len(finite) + [kinds.get(c, UNCALIBRATED) for c in top_k],
                              pa.string())})
    query = f"""
        CREATE OR REPLACE TEMP TABLE {CANDIDATES_TABLE} AS
        WITH sc AS ({score_sql}), decided AS ({DECIDED_CELLS_SQL}),
        candidates AS (
            SELECT sc.image_id, sc.category_id, sc.score,
                   CASE WHEN l.state IS NULL THEN '{MISSING}' ELSE '{SPURIOUS}' END AS kind,
                   CASE WHEN l.state IS NULL THEN t.threshold ELSE ?::DOUBLE END AS threshold,
                   CASE WHEN l.state IS NULL THEN t.max_rank END AS max_rank,
                   CASE WHEN l.state IS NULL THEN t.list_kind END AS list_kind
            FROM sc
            JOIN images i ON i.image_id = sc.image_id AND i.split = ?
            LEFT JOIN labels l ON l.image_id = sc.image_id AND l.category_id = sc.category_id
            LEFT JOIN _labelfix_thresholds t ON t.category_id = sc.category_id
            WHERE ((l.state IS NULL AND (sc.score >= t.threshold OR t.max_rank IS NOT NULL))
                   OR (l.state = 1 AND l.origin = 'original' AND sc.score <= ?))
              AND NOT EXISTS (SELECT 1 FROM decided d
                              WHERE d.image_id = sc.image_id AND d.category_id = sc.category_id))
        SELECT image_id, category_id, kind, score, threshold, list_kind,
               row_number() OVER (PARTITION BY kind, category_id
                                  ORDER BY CASE WHEN kind = '{MISSING}' THEN -score ELSE score END, image_id
                                  )::INTEGER AS rank_in_class
        FROM candidates
        QUALIFY max_rank IS NULL OR rank_in_class <= max_rank
    """
    store.connection.register("_labelfix_thresholds", threshold_table)
    try:
        store.execute(query, [spurious_max_score, split, spurious_max_score])
    finally:
        store.connection.unregister("_labelfix_thresholds")
    try:
        yield CANDIDATES_TABLE
    finally:
        store.execute(f"DROP TABLE IF EXISTS {CANDIDATES_TABLE}")


def candidate_counts(store: Store, *, table: str, max_per_class: int | None) -> dict[tuple[str, int], tuple[int, int]]:
    """Per (kind, category id): (candidates that passed the threshold, candidates kept by ``max_per_class``)."""
    kept = "count(*)" if max_per_class is None else f"count(*) FILTER (WHERE rank_in_class <= {int(max_per_class)})"
    return {(kind, int(category_id)): (int(passed), int(n_kept)) for kind, category_id, passed, n_kept in
            store.fetchall(f"SELECT kind, category_id, count(*), {kept} FROM {table} GROUP BY ALL")}
