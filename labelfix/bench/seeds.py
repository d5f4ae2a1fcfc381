"""One hiding seed of a benchmark: hide known labels, write the observed ones into a fresh store.

Train and val positives are hidden separately with :func:`labelfix.evaluate.simulate.hide_positives`,
with the per-split seeds and rates ``labelfix demo-data`` uses, so bench seed *s* on the demo's full
labels reproduces the demo's observed labels of seed *s*. Test stays fully labelled.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from labelfix.bench.data import BenchData
from labelfix.bench.settings import BenchSettings
from labelfix.evaluate.simulate import hide_split_positives
from labelfix.internal.json_values import safe_ratio


@dataclass
class SeedContext:
    """One hiding seed: observed labels, hidden cells and the store the methods train in.

    ``observed`` and ``hidden`` are bool [N, C] aligned with ``data``; ``candidate`` marks the
    train split's unknown cells (the cells ranked for missing labels). ``store`` is open until
    :meth:`close`.
    """

    data: BenchData
    seed: int
    observed: np.ndarray
    hidden: np.ndarray
    store: Any
    store_path: Path
    features_table: Path

    @property
    def train_rows(self) -> np.ndarray:
        return self.data.rows("train")

    @property
    def candidate(self) -> np.ndarray:
        """bool [N, C]: unknown cells of the train split."""
        mask = np.zeros_like(self.observed)
        rows = self.train_rows
        mask[rows] = ~self.observed[rows]
        return mask

    def truth_states(self) -> np.ndarray:
        """int8 [N, C] of the true labels (+1 / 0), the oracle's training labels."""
        return self.data.truth.astype(np.int8)

    def describe(self) -> dict[str, Any]:
        return {"seed": self.seed,
                "hidden": {s: int(self.hidden[self.data.rows(s)].sum()) for s in ("train", "val")},
                "hidden_fraction": {s: safe_ratio(self.hidden[self.data.rows(s)].sum(),
                                                   self.data.truth[self.data.rows(s)].sum()) for s in ("train", "val")},
                "candidates": int(self.candidate.sum())}

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


def hide_labels(data: BenchData, *, seed: int, rate: float, single_positive: bool) -> np.ndarray:
    """Observed labels: train and val positives hidden separately as ``demo-data`` does; test kept."""
    observed = data.truth.copy()
    for split in ("train", "val"):
        rows = data.rows(split)
        truth = data.truth[rows]
        observed[rows] = hide_split_positives(
            truth, split=split, seed=seed, rate=rate, single_positive=single_positive,
            difficulty=None if data.difficulty is None else data.difficulty[rows])
    return observed


def write_features_table(data: BenchData, observed: np.ndarray, path: Path) -> Path:
    """A features table (``image_id``, ``labels``, ``embedding``, ``split``) of the observed labels."""
    names = np.array(data.class_names, dtype=object)
    dim = data.embeddings.shape[1]
    table = pa.table({
        "image_id": pa.array(data.image_ids, pa.int64()),
        "labels": pa.array([names[row].tolist() for row in observed], pa.list_(pa.string())),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(data.embeddings.reshape(-1), pa.float32()), dim),
        "split": pa.array(data.splits.tolist(), pa.string())})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def prepare_seed(data: BenchData, settings: BenchSettings, *, seed: int, work_dir: Path) -> SeedContext:
    """Hide labels for ``seed`` and ingest the observed features table into a fresh store."""
    from labelfix.ingest_contract import KnownVocabulary
    from labelfix.io.table import read_features_table
    from labelfix.store.catalog import ingest_batch
    from labelfix.store.database import open_store
    from labelfix.store.labels import load_label_matrix

    observed = hide_labels(data, seed=seed, rate=settings.hide_rate, single_positive=settings.single_positive)
    folder = Path(work_dir) / f"seed{seed}"
    if folder.exists():
        shutil.rmtree(folder)
    table = write_features_table(data, observed, folder / "observed_features.parquet")
    # Every class keeps its id (1..C in class order), even one that lost all its observed labels.
    known = KnownVocabulary(category_ids={name: i + 1 for i, name in enumerate(data.class_names)},
                            next_category_id=data.num_classes + 1)
    store_path = folder / "store.duckdb"
    store = open_store(store_path)
    try:
        ingest_batch(store, read_features_table(table, known=known))
        matrix = load_label_matrix(store)
        if not (np.array_equal(matrix.image_ids, data.image_ids)
                and np.array_equal(matrix.category_ids, np.arange(1, data.num_classes + 1))
                and np.array_equal(matrix.states == 1, observed)):
            raise RuntimeError("the benchmark store does not hold the observed labels it was given")
    except BaseException:
        store.close()
        raise
    return SeedContext(data=data, seed=seed, observed=observed, hidden=data.truth & ~observed, store=store,
                       store_path=store_path, features_table=table)


__all__ = ["SeedContext", "hide_labels", "prepare_seed", "write_features_table"]
