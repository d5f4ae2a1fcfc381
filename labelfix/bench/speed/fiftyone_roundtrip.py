"""Speed of the FiftyOne round trip (issue 14: push 4,500 images in 32 s and pull in 23-25 s; goal <= 10 s each).

A temporary store ingests a COCO file (by default the demo dataset's ``instances_observed.json``), gets
suggestions (the labels the observed file hides, if the full file is given, plus random unlabelled cells
and a few spurious ones on labelled cells), then ``labelfix fiftyone push`` is timed; a reviewer's tags
(``accept`` on every third add suggestion, ``reject`` on the others, ``accept`` on every remove one) are
set in bulk, and ``pull`` is timed twice (the second records nothing). FiftyOne's own start (import and its
database) is timed apart. The FiftyOne database lives in a temporary folder unless
``$FIFTYONE_DATABASE_DIR`` is set.

Usage::

    python -m labelfix.bench.speed.fiftyone_roundtrip --coco DATA/instances_observed.json \\
        --full DATA/instances_full.json --images DATA/images --out benchmarks/results/fiftyone_roundtrip.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from labelfix.bench.speed.report import emit_report, load_average


def _suggest(store: Any, *, full: Path | None, n_random: int, n_spurious: int, seed: int) -> dict[str, int]:
    """File missing suggestions (hidden labels + random unlabelled cells) and spurious ones; return counts."""
    import numpy as np
    import pyarrow as pa

    from labelfix.store.runs import create_run
    from labelfix.store.suggestions import add_suggestions

    rng = np.random.default_rng(seed)
    positives = {(int(i), int(c)) for i, c in store.fetchall("SELECT image_id, category_id FROM labels WHERE state = 1")}
    image_ids = np.array([i for (i,) in store.fetchall("SELECT image_id FROM images ORDER BY image_id")])
    category_ids = np.array([c for (c,) in store.fetchall("SELECT category_id FROM categories ORDER BY category_id")])
    missing: set[tuple[int, int]] = set()
    if full is not None:
        document = json.loads(full.read_text())
        missing = {(int(a["image_id"]), int(a["category_id"])) for a in document["annotations"]} - positives
    target = len(missing) + n_random
    while len(missing) < target:
        cell = (int(rng.choice(image_ids)), int(rng.choice(category_ids)))
        if cell not in positives:
            missing.add(cell)
    spurious = [sorted(positives)[int(k)] for k in rng.choice(len(positives), size=min(n_spurious, len(positives)),
                                                               replace=False)]
    run_id = create_run(store, method="bench", mode="suggest", config={"bench": "fiftyone_roundtrip"})
    counts = {}
    for kind, cells, low, high in (("missing", sorted(missing), 0.5, 1.0), ("spurious", spurious, 0.0, 0.05)):
        if not cells:
            continue
        scores = rng.uniform(low, high, size=len(cells)).astype(np.float32)
        table = pa.table({"image_id": pa.array([c[0] for c in cells], pa.int64()),
                          "category_id": pa.array([c[1] for c in cells], pa.int64()),
                          "score": pa.array(scores),
                          "rank_in_class": pa.array(np.arange(1, len(cells) + 1, dtype=np.int32))})
        add_suggestions(store, run_id=run_id, cells=table, kind=kind, reason="benchmark")
        counts[kind] = len(cells)
    return counts


def _tag(dataset: Any) -> int:
    """Tag as a reviewer would, in bulk: accept every third add suggestion, reject the rest; accept removals."""
    from labelfix.review.fiftyone_sync import ADD_FIELD, REMOVE_FIELD

    n = 0
    for field_name in (ADD_FIELD, REMOVE_FIELD):
        path = f"{field_name}.classifications.tags"
        tags = dataset.values(path)
        for sample_tags in tags:
            for index, label_tags in enumerate(sample_tags or []):
                label_tags.append("accept" if field_name == REMOVE_FIELD or n % 3 == 0 else "reject")
                n += 1
                sample_tags[index] = label_tags
        dataset.set_values(path, tags)
    return n


def run(*, coco: Path, images: Path, full: Path | None, n_random: int, n_spurious: int, seed: int,
        workdir: Path) -> dict[str, Any]:
    os.environ.setdefault("FIFTYONE_DATABASE_DIR", str(workdir / "fiftyone-db"))
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    from labelfix.ingest import ingest_coco
    from labelfix.review.fiftyone_sync import pull, push
    from labelfix.store import open_store

    result: dict[str, Any] = {}
    db = workdir / "bench.duckdb"
    with open_store(db) as store:
        started = time.perf_counter()
        ingest_coco(store, annotations=coco, images=images, check_images="none")
        result["ingest_seconds"] = round(time.perf_counter() - started, 2)
        with store.transaction():
            result["suggestions"] = _suggest(store, full=full, n_random=n_random, n_spurious=n_spurious, seed=seed)
        result["images"] = int(store.scalar("SELECT count(*) FROM images"))
    started = time.perf_counter()
    import fiftyone as fo

    fo.list_datasets()  # imports FiftyOne and starts its database
    result["fiftyone_start_seconds"] = round(time.perf_counter() - started, 2)
    name = f"labelfix-bench-{uuid.uuid4().hex[:8]}"
    try:
        with open_store(db, create=False) as store:
            started = time.perf_counter()
            dataset = push(store, dataset_name=name, persistent=False)
            result["push_seconds"] = round(time.perf_counter() - started, 2)
            result["pushed"] = dataset.info["labelfix"]
            result["tagged"] = _tag(dataset)
            started = time.perf_counter()
            first = pull(store, dataset_name=name, reviewer="bench")
            result["pull_seconds"] = round(time.perf_counter() - started, 2)
            started = time.perf_counter()
            second = pull(store, dataset_name=name, reviewer="bench")
            result["second_pull_seconds"] = round(time.perf_counter() - started, 2)
            result["pull"] = {"recorded": len(first.recorded), "conflicts": len(first.conflicts),
                              "second_recorded": len(second.recorded), "second_already": second.already}
    finally:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coco", type=Path, required=True, help="COCO file to ingest")
    parser.add_argument("--images", type=Path, required=True, help="its images folder")
    parser.add_argument("--full", type=Path, default=None, help="the complete COCO file: hidden labels become "
                                                                "add suggestions")
    parser.add_argument("--random", type=int, default=500, help="extra add suggestions on random unlabelled cells")
    parser.add_argument("--spurious", type=int, default=100, help="remove suggestions on random labelled cells")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    report: dict[str, Any] = {
        "command": " ".join(["python -m labelfix.bench.speed.fiftyone_roundtrip",
                             *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average_start": load_average()}}
    with tempfile.TemporaryDirectory() as tmp:
        report["results"] = run(coco=args.coco, images=args.images, full=args.full, n_random=args.random,
                                n_spurious=args.spurious, seed=args.seed, workdir=Path(tmp))
    report["machine"]["load_average_end"] = load_average()
    emit_report(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
