"""Adapt-mode training cost per epoch vs number of images, on synthetic cached feature maps.

Runs labelfix's own adapt loop (:func:`labelfix.learn.adapt.train.fit_adapt`: map augmentation, the
backbone's top blocks, the method's loss, AdamW, EMA, and the val mAP after the epoch) for one epoch
on random fp16 maps of the cached shape (MobileNetV2 cut 14 at 224 px: 96x14x14), 70/10/20 splits
and long-tailed labels. Maps are random: the cost of a step does not depend on their values.

Each measured size holds ``n`` maps in RAM and trains on its 70 % train split, then scores its 10 %
val split. With ``--max-train-images M`` only a seeded random M of the train images are trained
(and at most M val images scored) — the real loop, gathering from the full ``n``-map array — and the
epoch cost at ``n`` is the measured rate times the split sizes (``epoch_seconds_at_n``; labelled
"rate measured on M images"): this measures a 100k-image epoch in a minute. ``--extrapolate`` fits
seconds = a + b * images over the measured sizes (labelled as extrapolated). Writes JSON. Example
(2 CPU cores, 1 and 2 torch threads side by side):

    .venv/bin/python -m labelfix.bench.speed.adapt_epoch --sizes 100000 --max-train-images 2048 \
        --image-size 160 --threads 1 2 --extrapolate 0 --out benchmarks/results/adapt_epoch.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch


def measure(n: int, *, backbone: str, image_size: int, classes: int, method: str, batch_size: int,
            seed: int = 0, max_train: Optional[int] = None) -> dict[str, Any]:
    """One epoch of ``fit_adapt`` on ``n`` synthetic images (or ``max_train`` of them); seconds and rates."""
    from labelfix.learn.adapt.cache import feature_blocks, resolve_cut
    from labelfix.learn.adapt.model import build_trunk_scheme, top_blocks
    from labelfix.learn.adapt.train import fit_adapt, predict_maps, resolve_adapt_config
    from labelfix.learn.backbones import build_backbone
    from labelfix.learn.config import TrainConfig

    built = build_backbone(backbone, weights=None)  # random weights cost the same as trained ones
    blocks = feature_blocks(built)
    cut = resolve_cut(built, None)
    with torch.inference_mode():
        shape = tuple(int(s) for s in blocks[:cut](torch.zeros(1, 3, image_size, image_size)).shape[1:])
    rng = np.random.default_rng(seed)
    maps = torch.empty((n, *shape), dtype=torch.float16)
    for start in range(0, n, 4096):  # in chunks: no float32 copy of the whole array
        stop = min(start + 4096, n)
        maps[start:stop] = torch.from_numpy(rng.standard_normal((stop - start, *shape), dtype=np.float32))
    prevalence = 0.3 * 0.95 ** np.arange(classes)
    states = (rng.random((n, classes)) < prevalence).astype(np.int8)  # +1 observed, 0 unknown
    split = rng.choice(3, size=n, p=[0.7, 0.1, 0.2])
    train_rows, val_rows = np.flatnonzero(split == 0), np.flatnonzero(split == 1)
    run_train, run_val = train_rows, val_rows
    if max_train is not None and max_train < len(train_rows):
        run_train = np.sort(rng.choice(train_rows, size=max_train, replace=False))
        run_val = np.sort(rng.choice(val_rows, size=min(max_train, len(val_rows)), replace=False))
    config = resolve_adapt_config(TrainConfig(method=method, mode="adapt", epochs=1, batch_size=batch_size,
                                              device="cpu", image_size=image_size))
    torch.manual_seed(seed)
    top, dim = top_blocks(blocks, cut=cut, map_shape=shape)  # type: ignore[arg-type]
    scheme = build_trunk_scheme(top=top, dim=dim, config=config, states=states, train_rows=train_rows, seed=seed,
                                device="cpu")
    started, cpu_started = time.perf_counter(), time.process_time()
    fit = fit_adapt(scheme, maps=maps, states=states, train_rows=run_train, val_rows=np.zeros(0, np.int64),
                    config=config, seed=seed, device=torch.device("cpu"), on_epoch=lambda record: None)
    train_s, train_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    started, cpu_started = time.perf_counter(), time.process_time()
    predict_maps(fit.scheme, maps, run_val, device=torch.device("cpu"))
    val_s, val_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    train_rate, val_rate = len(run_train) / max(train_s, 1e-9), len(run_val) / max(val_s, 1e-9)
    at_n = len(train_rows) / train_rate + len(val_rows) / val_rate
    cpu_at_n = train_cpu * len(train_rows) / len(run_train) + val_cpu * len(val_rows) / max(len(run_val), 1)
    return {"images": n, "train_images": int(len(train_rows)), "val_images": int(len(val_rows)),
            "measured_train_images": int(len(run_train)), "measured_val_images": int(len(run_val)),
            "classes": classes, "map_shape": list(shape), "map_bytes_per_image": int(np.prod(shape)) * 2,
            "backbone": backbone, "cut": cut, "image_size": image_size, "method": method, "batch_size": batch_size,
            "torch_threads": torch.get_num_threads(),
            "train_images_per_s": round(train_rate, 2), "val_images_per_s": round(val_rate, 2),
            "train_seconds": round(train_s, 3), "val_seconds": round(val_s, 3),
            "epoch_seconds": round(train_s + val_s, 3),
            "epoch_seconds_at_n": round(at_n, 1),
            # CPU seconds of this process: on a machine shared with other work the wall time grows with
            # the load while this does not (much).
            "epoch_cpu_seconds_at_n": round(cpu_at_n, 1),
            "source": ("measured on every image" if len(run_train) == len(train_rows)
                       else f"rate measured on {len(run_train)} train / {len(run_val)} val images of the {n}-map array"),
            "load_average_1m": round(os.getloadavg()[0], 2)}


def extrapolate(rows: list[dict[str, Any]], images: int, *, key: str = "epoch_seconds_at_n") -> Optional[dict[str, Any]]:
    """Least-squares line through (images, ``key``) of the measured rows, evaluated at ``images``."""
    sizes = np.array([r["images"] for r in rows], float)
    seconds = np.array([r[key] for r in rows], float)
    if len(np.unique(sizes)) < 2:
        if not len(sizes):
            return None
        slope, intercept = float(seconds[-1] / sizes[-1]), 0.0  # one size: proportional
    else:
        slope, intercept = (float(v) for v in np.polyfit(sizes, seconds, 1))
    return {"images": images, key: round(intercept + slope * images, 1),
            "seconds_per_1000_images": round(slope * 1000, 3), "fixed_seconds": round(intercept, 3),
            "map_ram_gb": round(images * rows[-1]["map_bytes_per_image"] / 1e9, 2),
            "map_disk_gb": round(images * rows[-1]["map_bytes_per_image"] / 1e9, 2),
            "source": f"extrapolated from measured sizes {sorted(int(s) for s in sizes)}"}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--extrapolate", type=int, default=100_000, help="0: no extrapolation")
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=80)
    parser.add_argument("--method", default="gr")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, nargs="+", default=[0],
                        help="torch thread counts, each measured at every size (0: torch's default)")
    parser.add_argument("--max-train-images", type=int, default=None,
                        help="train only this many of each size's train images (the rate times the split sizes "
                             "gives the epoch)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    default_threads = torch.get_num_threads()
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads or default_threads)
        for n in args.sizes:
            rows.append(measure(n, backbone=args.backbone, image_size=args.image_size, classes=args.classes,
                                method=args.method, batch_size=args.batch_size, max_train=args.max_train_images))
            print(json.dumps(rows[-1]), flush=True)
    fitted = [r for r in rows if r["torch_threads"] == rows[0]["torch_threads"]]
    payload = {"benchmark": "adapt_epoch", "results": rows,
               "extrapolated": extrapolate(fitted, args.extrapolate) if args.extrapolate else None,
               "extrapolated_cpu": (extrapolate(fitted, args.extrapolate, key="epoch_cpu_seconds_at_n")
                                    if args.extrapolate else None),
               "command": " ".join([Path(sys.executable).name, "-m", "labelfix.bench.speed.adapt_epoch",
                                    *(argv if argv is not None else sys.argv[1:])]),
               "machine": {"cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)),
                           "default_torch_threads": default_threads, "platform": platform.platform(),
                           "load_average_1m": round(os.getloadavg()[0], 2)}}
    print(json.dumps(payload["extrapolated"]), json.dumps(payload["extrapolated_cpu"]), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
