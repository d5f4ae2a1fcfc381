"""Scale benchmark of `labelfix suggest`: synthetic predictions for N images x C classes, streamed.

Each size gets a fresh store whose images, labels and predictions are generated inside DuckDB with
SQL (hash-based pseudo-random numbers, never a dense matrix in Python). The suggestion step then
runs in a child process, so its peak memory (``ru_maxrss``, and ``tracemalloc`` for Python/numpy
allocations) is not inflated by the generation.

Synthetic data: class c has prevalence 0.3 * 0.95**c (head to tail); every 10th image is in val,
whose labels are complete (as if verified: the hiding estimate of precision is then unbiased); 40%
of train's true positives are missing; 0.2% of negatives are annotated anyway (spurious). Probabilities: positives U(0.35, 1), negatives 0.55 * U^2.

Usage::

    python -m labelfix.bench.speed.suggest_scale --sizes 100000 1000000 --out benchmarks/results/suggest_scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from labelfix.bench.speed.report import emit_report

MODULE = "labelfix.bench.speed.suggest_scale"  # the child process runs this module again

GENERATE_SQL = """
CREATE OR REPLACE TEMP MACRO u(i, c, k) AS (hash(i, c, k) % 1000003) / 1000003.0;
CREATE OR REPLACE TEMP MACRO truth(i, c) AS u(i, c, 1) < 0.3 * pow(0.95, c);
-- val (every 10th image) is complete, as if verified; train misses 40% of its positives.
CREATE OR REPLACE TEMP MACRO observed(i, c) AS
    (truth(i, c) AND (i % 10 = 0 OR u(i, c, 2) >= 0.4)) OR (NOT truth(i, c) AND u(i, c, 4) < 0.002);
INSERT INTO sources (source_id, kind, path, sha256, images_root, header, ingested_at)
    VALUES (1, 'features', 'synthetic', '-', NULL, NULL, now());
INSERT INTO categories SELECT c + 1, 'class_' || lpad((c + 1)::VARCHAR, 3, '0'), NULL, '{{}}' FROM range({C}) t(c);
INSERT INTO images (image_id, split, source_id, record)
    SELECT i + 1, CASE WHEN i % 10 = 0 THEN 'val' ELSE 'train' END, 1, '{{}}' FROM range({N}) t(i);
INSERT INTO original_labels
    SELECT i + 1, c + 1, 1 FROM range({N}) a(i), range({C}) b(c) WHERE observed(i, c);
INSERT INTO labels (image_id, category_id, state, origin) SELECT image_id, category_id, 1, 'original' FROM original_labels;
INSERT INTO runs (method, mode, status, config) VALUES ('an', 'head', 'finished', '{{"synthetic": true}}');
INSERT INTO run_epochs VALUES (1, 10, '{{}}');
INSERT INTO predictions
    SELECT 1, i + 1, c + 1,
           (CASE WHEN truth(i, c) THEN 0.35 + 0.65 * u(i, c, 3) ELSE 0.55 * u(i, c, 3) * u(i, c, 3) END)::FLOAT,
           (CASE WHEN i % 10 = 0 THEN -1 ELSE i % 5 END)::SMALLINT
    FROM range({N}) a(i), range({C}) b(c);
"""


def generate(db: Path, *, n_images: int, n_classes: int) -> dict:
    from labelfix.store import open_store

    started = time.perf_counter()
    with open_store(db) as store:
        store.connection.execute(GENERATE_SQL.format(N=n_images, C=n_classes))
        counts = {"labels": store.scalar("SELECT count(*) FROM labels"),
                  "predictions": store.scalar("SELECT count(*) FROM predictions")}
        store.execute("CHECKPOINT")
    return {"generate_seconds": round(time.perf_counter() - started, 2), **counts,
            "store_mb": round(db.stat().st_size / 2**20, 1)}


def worker(db: Path, *, memory_limit: str, batch_rows: int) -> dict:
    """Run one suggestion step and measure it (runs in its own process)."""
    from labelfix.suggest.run import SuggestConfig, suggest
    from labelfix.store import open_store

    tracemalloc.start()
    with open_store(db) as store:
        store.execute(f"SET memory_limit = '{memory_limit}'")
        started = time.perf_counter()
        report = suggest(store, config=SuggestConfig(batch_rows=batch_rows))
        seconds = time.perf_counter() - started
        stored = store.scalar("SELECT count(*) FROM suggestions WHERE call_id = ?", [report.call_id])
    _, traced_peak = tracemalloc.get_traced_memory()
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    pooled = sum(c.pooled for c in report.classes)
    return {"suggest_seconds": round(seconds, 2), "peak_rss_mb": round(maxrss_kb / 1024, 1),
            "tracemalloc_peak_mb": round(traced_peak / 2**20, 1), "missing_suggestions": report.n_missing,
            "spurious_suggestions": report.n_spurious, "rows_written": stored, "pooled_classes": pooled,
            "duckdb_memory_limit": memory_limit, "batch_rows": batch_rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=None, help="Where the stores go (default: a temp folder).")
    parser.add_argument("--out", type=Path, default=None, help="Write the JSON here as well as to stdout.")
    parser.add_argument("--memory-limit", default="2GB", help="DuckDB memory_limit during the suggestion step.")
    parser.add_argument("--batch-rows", type=int, default=1_000_000)
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(worker(args.worker, memory_limit=args.memory_limit, batch_rows=args.batch_rows)))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="labelfix-scale-"))
    results = []
    for n_images in args.sizes:
        db = workdir / f"scale_{n_images}.duckdb"
        if db.exists():
            db.unlink()
        record = {"images": n_images, "classes": args.classes, "cells": n_images * args.classes}
        record |= generate(db, n_images=n_images, n_classes=args.classes)
        child = subprocess.run([sys.executable, "-m", MODULE, "--worker", str(db), "--memory-limit", args.memory_limit,
                                "--batch-rows", str(args.batch_rows)], capture_output=True, text=True, check=True)
        record |= json.loads(child.stdout.strip().splitlines()[-1])
        print(json.dumps(record), file=sys.stderr)
        results.append(record)
        db.unlink()
    command = " ".join([Path(sys.executable).name, "-m", MODULE, *(sys.argv[1:] if argv is None else argv)])
    output = {"benchmark": "suggest_scale", "command": command,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
              "results": results}
    emit_report(output, args.out)


if __name__ == "__main__":
    main()
