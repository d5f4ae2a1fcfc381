"""Model runs: config, per-epoch metrics, predictions of every cell, and the corrections a method made.

Owner of the ``runs``, ``run_epochs``, ``predictions`` and ``corrections`` tables.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from labelfix._version import __version__
from labelfix.errors import StoreError
from labelfix.internal.json_values import jsonable
from labelfix.store.database import Store


def code_version() -> str:
    """labelfix's version plus the git commit when run from a checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+{commit}" if commit else __version__


def create_run(store: Store, *, method: str, mode: str, config: dict[str, Any]) -> int:
    """Register a run as ``running``; returns its id."""
    with store.transaction():
        return int(store.scalar("INSERT INTO runs (method, mode, config, code_version) VALUES (?, ?, ?, ?) "
                                "RETURNING run_id", [method, mode, json.dumps(config, default=str), code_version()]))


def _metrics_json(metrics: dict[str, Any]) -> str:
    # Strict JSON: NaN / inf (e.g. val mAP with no val positives) are stored as null, for every trainer.
    return json.dumps(jsonable(metrics), default=float, allow_nan=False)


def record_epoch(store: Store, *, run_id: int, epoch: int, metrics: dict[str, Any]) -> None:
    with store.transaction():
        store.execute("INSERT OR REPLACE INTO run_epochs VALUES (?, ?, ?)", [run_id, epoch, _metrics_json(metrics)])


def finish_run(store: Store, *, run_id: int, metrics: dict[str, Any], checkpoint_path: str | None = None,
               status: str = "finished") -> None:
    with store.transaction():
        store.execute("UPDATE runs SET status = ?, metrics = ?, checkpoint_path = ? WHERE run_id = ?",
                      [status, _metrics_json(metrics), checkpoint_path, run_id])


def write_predictions(store: Store, *, run_id: int, image_ids: np.ndarray, category_ids: np.ndarray,
                      probs: np.ndarray, folds: np.ndarray | None = None) -> int:
    """Store P(class | image) for every (image, class) cell in bulk; returns the number of rows.

    ``probs`` is [N, C] aligned with ``image_ids`` and ``category_ids``; ``folds`` [N] says which
    cross-fitted model scored each image (-1 or ``None``: all models / in-sample).
    """
    n_images, n_classes = probs.shape
    fold_column = np.full(n_images, -1, np.int16) if folds is None else np.asarray(folds, np.int16)
    table = pa.table({
        "run_id": pa.array(np.full(n_images * n_classes, run_id, np.int32)),
        "image_id": pa.array(np.repeat(np.asarray(image_ids, np.int64), n_classes)),
        "category_id": pa.array(np.tile(np.asarray(category_ids, np.int64), n_images)),
        # float64: a float32 probability ties every logit above ~16.6 at 1.0 (migration 0007)
        "prob": pa.array(np.asarray(probs, np.float64).reshape(-1)),
        "fold": pa.array(np.repeat(fold_column, n_classes))})
    with store.transaction():
        store.execute("DELETE FROM predictions WHERE run_id = ?", [run_id])
        store.insert_arrow("INSERT INTO predictions SELECT run_id, image_id, category_id, prob, fold FROM batch",
                           batch=table)
    return table.num_rows


@dataclass
class Predictions:
    image_ids: np.ndarray      # int64 [N]
    category_ids: np.ndarray   # int64 [C]
    probs: np.ndarray          # float64 [N, C]
    folds: np.ndarray          # int16 [N]


def read_predictions(store: Store, *, run_id: int) -> Predictions:
    """The run's predictions as a dense matrix (rows sorted by image id, columns by category id)."""
    data = store.execute("SELECT image_id, category_id, prob, fold FROM predictions WHERE run_id = ? "
                         "ORDER BY image_id, category_id", [run_id]).fetchnumpy()
    if len(data["image_id"]) == 0:
        raise StoreError(f"run {run_id} has no predictions", file=store.path,
                         fix="train a model first (`labelfix train`), or pass another --run")
    image_ids = np.unique(data["image_id"])
    category_ids = np.unique(data["category_id"])
    probs = np.asarray(data["prob"], np.float64).reshape(len(image_ids), len(category_ids))
    folds = np.asarray(data["fold"], np.int16).reshape(len(image_ids), len(category_ids))[:, 0]
    return Predictions(image_ids.astype(np.int64), category_ids.astype(np.int64), probs, folds)


def write_corrections(store: Store, *, run_id: int, image_ids: np.ndarray, category_ids: np.ndarray,
                      epochs: np.ndarray, treated_as: np.ndarray, probs: np.ndarray | None = None) -> int:
    """Record which unknown cells a correction-based method (SPLC, RLC, CLS, APL) treated as +1/-1, when."""
    count = len(image_ids)
    table = pa.table({
        "run_id": pa.array(np.full(count, run_id, np.int32)),
        "image_id": pa.array(np.asarray(image_ids, np.int64)),
        "category_id": pa.array(np.asarray(category_ids, np.int64)),
        "epoch": pa.array(np.asarray(epochs, np.int32)),
        "treated_as": pa.array(np.asarray(treated_as, np.int8)),
        "prob": pa.array(np.full(count, np.nan) if probs is None else np.asarray(probs, np.float64))})
    with store.transaction():
        store.insert_arrow("INSERT INTO corrections SELECT * FROM batch", batch=table)
    return count


def reopen_run(store: Store, *, run_id: int) -> None:
    """Mark an interrupted run ``running`` again (a resumed finetune)."""
    with store.transaction():
        store.execute("UPDATE runs SET status = 'running' WHERE run_id = ?", [int(run_id)])


def ensemble_run(store: Store, *, source_runs: list[int], combine: str) -> int:
    """The run row that stands for a combination of runs (suggestions are filed under it); made once.

    Its status is ``ensemble``, not ``finished``: it has no predictions, so :func:`latest_run_id` never picks it.
    """
    key = json.dumps({"runs": source_runs, "combine": combine})
    found = store.scalar("SELECT min(run_id) FROM runs WHERE mode = 'ensemble' AND config::VARCHAR = ?", [key])
    if found is not None:
        return int(found)
    return int(store.scalar("INSERT INTO runs (method, mode, status, config) VALUES (?, 'ensemble', 'ensemble', ?) "
                            "RETURNING run_id", [f"{combine}(" + "+".join(map(str, source_runs)) + ")", key]))


def latest_run_id(store: Store, *, status: str = "finished") -> int:
    run_id = store.scalar("SELECT max(run_id) FROM runs WHERE status = ?", [status])
    if run_id is None:
        raise StoreError("the store has no finished run", file=store.path, fix="run `labelfix train` first")
    return int(run_id)


def list_runs(store: Store) -> list[dict[str, Any]]:
    rows = store.fetchall("SELECT run_id, created_at, method, mode, status, metrics FROM runs ORDER BY run_id")
    return [{"run_id": r[0], "created_at": r[1], "method": r[2], "mode": r[3], "status": r[4],
             "metrics": json.loads(r[5]) if r[5] else {}} for r in rows]
