"""Finetune augmentation: label-preserving policy vs the old random resized crop (issue 12, item 2).

Finetunes a backbone end to end with labelfix's finetune trainer
(:func:`labelfix.learn.finetune.trainer.train_finetune`) on a demo dataset's *observed* labels, once
per train-augmentation policy, changing nothing else:

* ``current``: labelfix's policy (:meth:`labelfix.learn.backbones.Backbone.train_transform`): the whole
  image resized to a square, horizontal flip, RandAugment (2 ops, magnitude 9), small Cutout.
* ``rrc``: the policy it replaced: ``RandomResizedCrop(size, scale=(0.08, 1))`` + horizontal flip, the
  same normalisation. A crop down to 8 % of a mosaic cuts digits out while their labels stay positive.

The policy is swapped by patching ``Backbone.train_transform`` for the duration of one run (nothing
in labelfix changes); evaluation always sees the whole image resized (``eval_transform``).
Scores are the run's stored predictions (best epoch on the val split's observed mAP, EMA weights);
metrics are the benchmark's own (:func:`labelfix.bench.harness.evaluate_scores`): pooled and macro
missing-label AP over the train split's unknown cells (in-sample), recall at precision 0.9, precision
at k, and test mAP on the fully labelled test split.

Made for a CPU proxy (small images, few epochs); the same script runs at full size on a GPU with
``--device cuda --image-size 224 --epochs 30``. Example::

    labelfix demo-data --out /tmp/h12h/data --seed 0 --n-train 1500 --n-val 300 --n-test 500
    python benchmarks/finetune_augment.py --data /tmp/h12h/data --work /tmp/h12h/work \\
        --out benchmarks/results/finetune_augment --image-size 96 --epochs 4 --methods an --seeds 0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.transforms import v2 as T

from labelfix.bench.data import read_coco_truth
from labelfix.bench.harness import evaluate_scores
from labelfix.bench.seeds import SeedContext
from labelfix.ingest import ingest_coco
from labelfix.learn.backbones import Backbone
from labelfix.learn.config import TrainConfig
from labelfix.learn.finetune.trainer import train_finetune
from labelfix.states import POSITIVE
from labelfix.store.database import open_store
from labelfix.store.labels import load_label_matrix
from labelfix.store.runs import read_predictions

POLICIES = ("current", "rrc")


def _rrc_transform(self: Backbone, image_size: int | None = None) -> Any:
    """The finetune augmentation labelfix used before issue 12 (commit af27794 replaced it)."""
    p = self.preprocessing
    return T.Compose([
        T.ToImage(), T.RandomResizedCrop(image_size or p.crop_size, scale=(0.08, 1.0),
                                         interpolation=p.interpolation, antialias=True),
        T.RandomHorizontalFlip(), T.ToDtype(torch.float32, scale=True), T.Normalize(p.mean, p.std)])


@contextlib.contextmanager
def augmentation(policy: str) -> Iterator[None]:
    """Run the finetune trainer with ``policy``'s train augmentation (``current`` leaves labelfix as is)."""
    if policy == "current":
        yield
        return
    original = Backbone.train_transform
    Backbone.train_transform = _rrc_transform  # type: ignore[method-assign]
    try:
        yield
    finally:
        Backbone.train_transform = original  # type: ignore[method-assign]


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    return {key: record[key] for key in ("missing_label_ap", "missing_label_macro_ap", "recall_at_precision_0_9",
                                         "test_map")} | {"precision_at_half": record["precision_at"].get("0.5")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        help="demo-data folder: instances_full.json, instances_observed.json, images/")
    parser.add_argument("--work", type=Path, help="scratch folder for the store and checkpoints")
    parser.add_argument("--out", type=Path, required=True, help="where results.json and results.md go")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=None,
                        help="default: finetune mode's own (1e-4, tuned for 30 epochs); a short proxy run wants more")
    parser.add_argument("--methods", default="an", help="comma-separated trainer methods, e.g. an,gr")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds (the hiding is the data's)")
    parser.add_argument("--policies", default=",".join(POLICIES), help=f"comma-separated, of {POLICIES}")
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--combine", type=Path, nargs="+", metavar="RESULTS_JSON",
                        help="only merge the records of these results.json files (runs made in parallel) into --out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.combine:
        parts = [json.loads(path.read_text(encoding="utf-8")) for path in args.combine]
        settings = {**parts[0]["settings"], "combined_from": [str(path) for path in args.combine]}
        _write(args.out, settings, [record for part in parts for record in part["records"]])
        return
    if args.data is None or args.work is None:
        parser.error("--data and --work are needed (or --combine)")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    if unknown := [p for p in policies if p not in POLICIES]:
        parser.error(f"unknown policies {unknown}; use {POLICIES}")

    data = read_coco_truth(args.data / "instances_full.json")
    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    store = open_store(args.work / "store.duckdb")
    ingest_coco(store, annotations=args.data / "instances_observed.json", images=args.data / "images",
                check_images="header", progress=False)
    matrix = load_label_matrix(store)
    if not np.array_equal(matrix.image_ids, data.image_ids):
        raise SystemExit("the observed and full files do not hold the same images")
    observed = matrix.states == POSITIVE
    if (observed & ~data.truth).any():
        raise SystemExit("the observed file has labels the full file lacks")
    ctx = SeedContext(data=data, seed=0, observed=observed, hidden=data.truth & ~observed, store=store,
                      store_path=args.work / "store.duckdb", features_table=args.work / "unused.parquet")

    settings = {"data": str(args.data), "image_size": args.image_size, "epochs": args.epochs,
                "batch_size": args.batch_size, "lr": args.lr, "backbone": args.backbone, "device": args.device,
                "num_workers": args.num_workers, "torch_threads": torch.get_num_threads(),
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "python": platform.python_version(),
                "torch": torch.__version__, "num_hidden_train": int(ctx.hidden[ctx.train_rows].sum()),
                "num_candidates": int(ctx.candidate.sum())}
    records: list[dict[str, Any]] = []
    for seed in seeds:
        for method in methods:
            for policy in policies:
                config = TrainConfig(method=method, mode="finetune", seed=seed, epochs=args.epochs,
                                     batch_size=args.batch_size, **({} if args.lr is None else {"lr": args.lr}),
                                     image_size=args.image_size, device=args.device,
                                     backbone=args.backbone, num_workers=args.num_workers,
                                     early_stopping_patience=args.epochs, checkpoint_dir=args.work / "checkpoints")
                started = time.perf_counter()
                with augmentation(policy):
                    result = train_finetune(store, config=config)
                seconds = time.perf_counter() - started
                predictions = read_predictions(store, run_id=result.run_id)
                metrics = evaluate_scores(ctx, predictions.probs)
                record = {"method": method, "policy": policy, "seed": seed, "run_id": result.run_id,
                          "best_epoch": result.best_epoch, "seconds": round(seconds, 1),
                          "history": [{k: v for k, v in h.items()} for h in result.history],
                          "load_average": os.getloadavg(), **metrics}
                records.append(record)
                print(json.dumps({"method": method, "policy": policy, "seed": seed, "seconds": round(seconds, 1),
                                  "best_epoch": result.best_epoch, **_summary(record)}), flush=True)
                _write(args.out, settings, records)
    store.close()


def _write(out: Path, settings: dict[str, Any], records: list[dict[str, Any]]) -> None:
    (out / "results.json").write_text(json.dumps({"settings": settings, "records": records}, indent=1,
                                                      default=float) + "\n", encoding="utf-8")
    lines = ["| method | policy | seed | missing-label AP | macro AP | R@P0.9 | P@k (k = hidden/2) | test mAP "
             "| best epoch | s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        s = _summary(r)
        lines.append(f"| {r['method']} | {r['policy']} | {r['seed']} | {_f(s['missing_label_ap'])} | "
                     f"{_f(s['missing_label_macro_ap'])} | {_f(s['recall_at_precision_0_9'])} | "
                     f"{_f(s['precision_at_half'])} | {_f(s['test_map'])} | {r['best_epoch']} | {r['seconds']} |")
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _f(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
