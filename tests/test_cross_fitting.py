"""Cross-fitting: every train image is scored exactly once, by a model that never saw its labels."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from labelfix.evaluate.metrics import average_precision
from labelfix.ingest import ingest_features
from labelfix.learn.config import TrainConfig
from labelfix.learn.head.trainer import train_head
from labelfix.store import open_store
from labelfix.store.labels import load_label_matrix
from labelfix.store.runs import read_predictions


def _random_label_store(tmp_path, n_train=120, n_val=30, dim=64, seed=0):
    """Labels independent of the features: only memorisation can predict a train label."""
    rng = np.random.default_rng(seed)
    n = n_train + n_val
    labels = rng.random((n, 2)) < 0.5
    labels[~labels.any(axis=1), 0] = True
    table = pa.table({
        "image_id": pa.array(np.arange(1, n + 1), pa.int64()),
        "labels": pa.array([[name for name, on in zip(("a", "b"), row) if on] for row in labels],
                           pa.list_(pa.string())),
        "embedding": pa.FixedSizeListArray.from_arrays(
            pa.array(rng.standard_normal((n, dim)).astype(np.float32).reshape(-1)), dim),
        "split": pa.array(["train"] * n_train + ["val"] * n_val)})
    pq.write_table(table, tmp_path / "random.parquet")
    store = open_store(tmp_path / "store.duckdb")
    ingest_features(store, table=tmp_path / "random.parquet")
    return store


def test_each_train_image_is_scored_once_by_a_model_that_did_not_see_it(tmp_path):
    store = _random_label_store(tmp_path)
    # A head free to memorise: no weight decay, no early stopping, many epochs.
    common = dict(method="an", mode="head", epochs=100, weight_decay=0.0, lr=0.05, early_stopping_patience=0,
                  standardize=True, device="cpu")
    in_sample = train_head(store, config=TrainConfig(**common, folds=1))
    crossed = train_head(store, config=TrainConfig(**common, folds=3))
    matrix = load_label_matrix(store)
    train = matrix.rows("train")
    stored = read_predictions(store, run_id=crossed.run_id)
    folds = stored.folds[train]
    # exactly one fold per train image, every fold used, balanced; val scored by all (-1)
    assert sorted(np.unique(folds).tolist()) == [0, 1, 2]
    assert np.bincount(folds).tolist() == [40, 40, 40]
    assert (stored.folds[matrix.rows("val")] == -1).all()
    positives = matrix.states[train] == 1
    ap_in = average_precision(scores=read_predictions(store, run_id=in_sample.run_id).probs[train].ravel(),
                              targets=positives.ravel())
    ap_out = average_precision(scores=stored.probs[train].ravel(), targets=positives.ravel())
    base_rate = positives.mean()
    # the in-sample model memorised the random labels; the fold models could not have seen them
    assert ap_in > 0.8
    assert abs(ap_out - base_rate) < 0.15 and ap_out < ap_in - 0.2
    store.close()
