"""A tiny synthetic store for the trainer tests: noisy one-hot embeddings, some positives hidden."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from labelfix.ingest import ingest_features
from labelfix.store import Store, open_store

CLASS_NAMES = ("cat", "dog", "car", "tree")


@dataclass
class SyntheticStore:
    store: Store
    truth: np.ndarray          # bool [N, C], rows sorted by image id (as load_label_matrix)
    observed: np.ndarray       # bool [N, C]
    image_ids: np.ndarray


def make_learn_store(tmp_path: Path, *, n_train: int = 60, n_val: int = 20, n_test: int = 20,
                     hidden_fraction: float = 0.3, noise: float = 0.6, extra_dims: int = 4,
                     seed: int = 0) -> SyntheticStore:
    """Ingest a features table: embedding = one-hot truth + Gaussian noise (+ noise-only dims)."""
    rng = np.random.default_rng(seed)
    n = n_train + n_val + n_test
    n_classes = len(CLASS_NAMES)
    truth = rng.random((n, n_classes)) < 0.35
    truth[np.arange(n), rng.integers(0, n_classes, n)] = True   # every image has a positive
    observed = truth & (rng.random(truth.shape) >= hidden_fraction)
    # keep at least one observed positive per image so no image is all unknown
    for row in np.flatnonzero(~observed.any(axis=1)):
        observed[row, np.flatnonzero(truth[row])[0]] = True
    embeddings = np.concatenate([truth.astype(np.float32), np.zeros((n, extra_dims), np.float32)], axis=1)
    embeddings += noise * rng.standard_normal(embeddings.shape).astype(np.float32)
    splits = np.array(["train"] * n_train + ["val"] * n_val + ["test"] * n_test)
    image_ids = np.arange(1, n + 1, dtype=np.int64)
    table = pa.table({
        "image_id": pa.array(image_ids),
        "labels": pa.array([[CLASS_NAMES[c] for c in np.flatnonzero(row)] for row in observed],
                           type=pa.list_(pa.string())),
        "embedding": pa.array([row.tolist() for row in embeddings], type=pa.list_(pa.float32())),
        "split": pa.array(splits.tolist()),
    })
    path = tmp_path / "features.parquet"
    pq.write_table(table, path)
    store = open_store(tmp_path / "store.duckdb")
    # Categories in a fixed order so category ids follow CLASS_NAMES.
    ingest_features(store, table=path, add_classes=True)
    names = [row[0] for row in store.fetchall("SELECT name FROM categories ORDER BY category_id")]
    order = [CLASS_NAMES.index(name) for name in names]
    return SyntheticStore(store=store, truth=truth[:, order], observed=observed[:, order], image_ids=image_ids)
