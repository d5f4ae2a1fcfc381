"""Missing-label scores: how likely an unknown (image, class) cell is a positive nobody labelled.

The score of a cell is the model's predicted probability for one run, or a combination of several
runs' probabilities (an ensemble of methods, or the two networks of CLS stored as two runs):

* ``mean``: the average probability, a plain ensemble;
* ``max``: the highest probability, favours recall (any model that is sure flags the cell);
* ``rank_mean``: the average per-class percentile rank (DuckDB ``percent_rank`` over all cells of
  the class in that run), for runs whose probabilities are on different scales (e.g. ASL vs AN).

Cross-fitting needs nothing extra here: a run whose train rows were scored out-of-fold (column
``fold >= 0`` in ``predictions``) stores those out-of-fold probabilities, so reading ``prob`` already
gives each train cell a score from a model that never saw that cell's label as a training target.
In-sample scores (``fold = -1``) are pushed towards the labels the model was trained on (e.g. AN
trains unknown cells as negatives), so they rank missing labels lower; thresholds estimated on
validation are then conservative for train.

Scores are computed in SQL so that millions of images stream through DuckDB without a dense
matrix in memory; :func:`read_split_scores` densifies one split (e.g. validation). Scores stay float64
from ``predictions.prob`` (DOUBLE) to the ranking: float32 ties every probability above ~1 - 6e-8 at 1.0,
which a confident method (GR in adapt mode) reaches for hundreds of cells, and a tie is one threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from labelfix.errors import StoreError
from labelfix.store.database import Store

Combine = Literal["mean", "max", "rank_mean"]
COMBINE_METHODS: tuple[str, ...] = ("mean", "max", "rank_mean")
DEFAULT_BATCH_ROWS = 1_000_000


def check_runs(store: Store, *, run_ids: Sequence[int]) -> list[int]:
    """Check that every run exists and has predictions; return the ids as ints (order kept, deduplicated).

    Raises
    ------
    StoreError
        Naming the first unknown run, or the first run without predictions.
    """
    ids = list(dict.fromkeys(int(r) for r in run_ids))
    if not ids:
        raise StoreError("no run to score", file=store.path, fix="pass --run RUN_ID, or train a model first")
    known = {int(r) for (r,) in store.fetchall("SELECT run_id FROM runs")}
    for run_id in ids:
        if run_id not in known:
            available = ", ".join(str(r) for r in sorted(known)) or "none"
            raise StoreError(f"run {run_id} does not exist (runs in the store: {available})", file=store.path,
                             fix="pass one of the listed ids with --run, or omit --run for the latest finished run")
        # LIMIT 1 keeps this check O(1) on a 100M-row predictions table.
        if store.scalar("SELECT count(*) FROM (SELECT 1 FROM predictions WHERE run_id = ? LIMIT 1)", [run_id]) == 0:
            raise StoreError(f"run {run_id} has no predictions", file=store.path,
                             fix="pick a finished training run, or train one with `labelfix train`")
    return ids


def score_query(*, run_ids: Sequence[int], combine: Combine = "mean", predictions_parquet: str | Path | None = None
                ) -> str:
    """SQL yielding ``(image_id, category_id, score)``, one row per cell scored by every run.

    Parameters
    ----------
    run_ids : Sequence[int]
        Runs whose probabilities are combined; one run gives its probability unchanged.
    combine : {"mean", "max", "rank_mean"}
        How several runs' probabilities become one score (see the module notes).
    predictions_parquet : str or Path, optional
        Read predictions from this Parquet file (columns of the ``predictions`` table) instead of the store.

    Returns
    -------
    str
        A SELECT statement without parameters (run ids are inlined as integers).

    Examples
    --------
    >>> print(score_query(run_ids=[3]))
    SELECT image_id, category_id, prob AS score FROM predictions WHERE run_id = 3
    """
    ids = [int(r) for r in run_ids]
    if not ids:
        raise ValueError("run_ids must name at least one run")
    if combine not in COMBINE_METHODS:
        raise ValueError(f"combine must be one of {', '.join(COMBINE_METHODS)}, got {combine!r}")
    source = "predictions"
    if predictions_parquet is not None:
        source = "read_parquet('" + str(predictions_parquet).replace("'", "''") + "')"
    if len(ids) == 1:
        return f"SELECT image_id, category_id, prob AS score FROM {source} WHERE run_id = {ids[0]}"
    in_list = ", ".join(map(str, ids))
    # HAVING: a cell some run did not score has no comparable combined score, so it is left out.
    if combine == "rank_mean":
        return (f"SELECT image_id, category_id, avg(r)::DOUBLE AS score FROM ("
                f"SELECT image_id, category_id, percent_rank() OVER (PARTITION BY run_id, category_id ORDER BY prob) "
                f"AS r FROM {source} WHERE run_id IN ({in_list})) GROUP BY image_id, category_id "
                f"HAVING count(*) = {len(ids)}")
    aggregate = "avg" if combine == "mean" else "max"
    return (f"SELECT image_id, category_id, {aggregate}(prob)::DOUBLE AS score FROM {source} "
            f"WHERE run_id IN ({in_list}) GROUP BY image_id, category_id HAVING count(*) = {len(ids)}")


def combine_scores(*, scores: Sequence[np.ndarray], combine: Combine = "mean") -> np.ndarray:
    """Combine aligned dense [N, C] probability matrices the way :func:`score_query` does in SQL.

    ``rank_mean`` uses the percent rank per column, ``(number of strictly smaller values) / (N - 1)``,
    i.e. ties share their lowest rank, as DuckDB's ``percent_rank``.

    Examples
    --------
    >>> a = np.array([[0.1], [0.9], [0.5]])
    >>> b = np.array([[0.3], [0.2], [0.1]])
    >>> combine_scores(scores=[a, b], combine="max").ravel().tolist()
    [0.3, 0.9, 0.5]
    >>> combine_scores(scores=[a, b], combine="rank_mean").ravel().tolist()
    [0.5, 0.75, 0.25]
    """
    if not scores:
        raise ValueError("scores must hold at least one matrix")
    if combine not in COMBINE_METHODS:
        raise ValueError(f"combine must be one of {', '.join(COMBINE_METHODS)}, got {combine!r}")
    arrays = [np.asarray(s, dtype=np.float64) for s in scores]
    if any(a.shape != arrays[0].shape or a.ndim != 2 for a in arrays):
        raise ValueError("every score matrix must be (N, C) of one shape")
    if len(arrays) == 1:
        return arrays[0]
    if combine == "mean":
        return np.mean(arrays, axis=0)
    if combine == "max":
        return np.asarray(np.max(arrays, axis=0))
    total = np.zeros(arrays[0].shape, np.float64)
    n_rows = arrays[0].shape[0]
    for array in arrays:
        for column in range(array.shape[1]):
            ordered = np.sort(array[:, column])
            smaller = np.searchsorted(ordered, array[:, column], side="left")
            total[:, column] += smaller / max(n_rows - 1, 1)
    return total / len(arrays)


@dataclass
class SplitScores:
    """Dense scores of one split: rows follow ``image_ids`` (sorted), columns ``category_ids`` (sorted)."""

    image_ids: np.ndarray     # int64 [N]
    category_ids: np.ndarray  # int64 [C]
    scores: np.ndarray        # float64 [N, C]; NaN where no score exists


def read_split_scores(store: Store, *, run_ids: Sequence[int], combine: Combine = "mean", split: str = "val",
                      batch_rows: int = DEFAULT_BATCH_ROWS, predictions_parquet: str | Path | None = None
                      ) -> SplitScores:
    """Densify the scores of one split as float64, streaming the long rows in Arrow batches.

    Memory is the dense matrix of that split (val: small) plus one batch, never the full long table.

    Examples
    --------
    >>> val = read_split_scores(store, run_ids=[3], split="val")  # doctest: +SKIP
    >>> val.scores.shape  # doctest: +SKIP
    (500, 10)
    """
    image_ids = store.execute("SELECT image_id FROM images WHERE split = ? ORDER BY image_id",
                              [split]).fetchnumpy()["image_id"].astype(np.int64)
    category_ids = store.execute("SELECT category_id FROM categories ORDER BY category_id"
                                 ).fetchnumpy()["category_id"].astype(np.int64)
    scores = np.full((len(image_ids), len(category_ids)), np.nan, np.float64)
    scores_sql = score_query(run_ids=run_ids, combine=combine, predictions_parquet=predictions_parquet)
    query = (f"SELECT s.image_id, s.category_id, s.score FROM ({scores_sql}) s "
             f"JOIN images i ON i.image_id = s.image_id WHERE i.split = ?")
    reader = store.connection.sql(query, params=[split]).to_arrow_reader(batch_rows)
    for batch in reader:
        rows = np.searchsorted(image_ids, batch.column(0).to_numpy())
        columns = np.searchsorted(category_ids, batch.column(1).to_numpy())
        scores[rows, columns] = batch.column(2).to_numpy(zero_copy_only=False)
    return SplitScores(image_ids, category_ids, scores)
