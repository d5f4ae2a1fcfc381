"""Head-mode training time per epoch vs number of images (synthetic embeddings, 80 classes).

Each size gets a features table (1280-d float32 embeddings, like MobileNetV2's, 80 classes with
long-tailed frequencies, 70/10/20 splits), ingested into a fresh store; then ``train_head`` runs a
fixed number of epochs without early stopping, and the seconds per epoch are read from the run's
per-epoch records. Writes JSON. Example:

    .venv/bin/python -m labelfix.bench.speed.head_training_time --sizes 1000 10000 100000 \
        --out benchmarks/results/head_training_time.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def write_features(path: Path, *, n: int, dim: int, classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    prevalence = 0.3 * 0.95 ** np.arange(classes)
    truth = rng.random((n, classes)) < prevalence
    directions = rng.normal(size=(classes, dim)).astype(np.float32)
    embeddings = truth.astype(np.float32) @ directions + rng.normal(size=(n, dim)).astype(np.float32)
    names = np.array([f"class{c:02d}" for c in range(classes)], dtype=object)
    splits = rng.choice(np.array(["train", "val", "test"]), size=n, p=[0.7, 0.1, 0.2])
    pq.write_table(pa.table({
        "image_id": pa.array(np.arange(1, n + 1), pa.int64()),
        "labels": pa.array([names[row].tolist() for row in truth], pa.list_(pa.string())),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(embeddings.reshape(-1)), dim),
        "split": pa.array(splits.tolist())}), path)


def measure(n: int, *, dim: int, classes: int, epochs: int, method: str, folder: Path) -> dict:
    from labelfix.ingest import ingest_features
    from labelfix.learn.config import TrainConfig
    from labelfix.learn.head.trainer import train_head
    from labelfix.store import open_store

    table = folder / f"features_{n}.parquet"
    write_features(table, n=n, dim=dim, classes=classes, seed=n)
    with open_store(folder / f"store_{n}.duckdb") as store:
        started = time.perf_counter()
        ingest_features(store, table=table)
        ingest_seconds = time.perf_counter() - started
        config = TrainConfig(method=method, mode="head", epochs=epochs, early_stopping_patience=0, device="cpu")
        started = time.perf_counter()
        result = train_head(store, config=config)
        total = time.perf_counter() - started
    seconds = [float(h["seconds"]) for h in result.history if h.get("seconds") is not None]
    return {"images": n, "train_images": int(len(result.image_ids["train"])), "classes": classes, "dim": dim,
            "method": method, "epochs": len(result.history),
            "seconds_per_epoch": float(np.median(seconds)) if seconds else (total / max(len(result.history), 1)),
            "epoch_seconds_source": "run_epochs" if seconds else "total / epochs (includes prediction)",
            "train_head_total_seconds": round(total, 2), "ingest_seconds": round(ingest_seconds, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--classes", type=int, default=80)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--method", default="an")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="labelfix-headbench-") as scratch:
        for n in args.sizes:
            results.append(measure(n, dim=args.dim, classes=args.classes, epochs=args.epochs, method=args.method,
                                   folder=Path(scratch)))
            print(json.dumps(results[-1]), flush=True)
    payload = {"benchmark": "head_training_time", "results": results,
               "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "load_average_1m": os.getloadavg()[0]}}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
