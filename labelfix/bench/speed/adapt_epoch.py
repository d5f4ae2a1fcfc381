"""Adapt-mode training cost per epoch vs number of images, on synthetic cached feature maps.

Runs labelfix's own adapt loop (:func:`labelfix.learn.adapt.train.fit_adapt`: map augmentation, the
backbone's top blocks, the method's loss, AdamW, EMA, and the val mAP after the epoch) for one epoch
on random fp16 maps of the cached shape (MobileNetV2 cut 14 at 224 px: 96x14x14), 70/10/20 splits
and long-tailed labels. Maps are random: the cost of a step does not depend on their values.

Each measured size trains on its 70 % train split and scores its 10 % val split; ``--extrapolate``
fits seconds = a + b * images over the measured sizes and states the epoch cost at that many images
(labelled as extrapolated; a measured size is never labelled so). The loop has no per-dataset work
beyond holding the maps in RAM (N x 37,632 B: 3.8 GB at 100k images), so the cost is linear in N.
Writes JSON. Example (2 CPU cores):

    .venv/bin/python -m labelfix.bench.speed.adapt_epoch --sizes 1000 2000 --extrapolate 100000 \
        --out benchmarks/results/adapt_epoch.json
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
            seed: int = 0) -> dict[str, Any]:
    """One epoch of ``fit_adapt`` on ``n`` synthetic images; seconds of the epoch (train + val scoring)."""
    from labelfix.learn.adapt.cache import feature_blocks, resolve_cut
    from labelfix.learn.adapt.model import build_trunk_scheme, top_blocks
    from labelfix.learn.adapt.train import fit_adapt, resolve_adapt_config
    from labelfix.learn.backbones import build_backbone
    from labelfix.learn.config import TrainConfig

    built = build_backbone(backbone, weights=None)  # random weights cost the same as trained ones
    blocks = feature_blocks(built)
    cut = resolve_cut(built, None)
    with torch.inference_mode():
        shape = tuple(int(s) for s in blocks[:cut](torch.zeros(1, 3, image_size, image_size)).shape[1:])
    rng = np.random.default_rng(seed)
    maps = torch.from_numpy(rng.standard_normal((n, *shape), dtype=np.float32).astype(np.float16))
    prevalence = 0.3 * 0.95 ** np.arange(classes)
    states = (rng.random((n, classes)) < prevalence).astype(np.int8)  # +1 observed, 0 unknown
    split = rng.choice(3, size=n, p=[0.7, 0.1, 0.2])
    train_rows, val_rows = np.flatnonzero(split == 0), np.flatnonzero(split == 1)
    config = resolve_adapt_config(TrainConfig(method=method, mode="adapt", epochs=1, batch_size=batch_size,
                                              device="cpu", image_size=image_size))
    torch.manual_seed(seed)
    top, dim = top_blocks(blocks, cut=cut, map_shape=shape)  # type: ignore[arg-type]
    scheme = build_trunk_scheme(top=top, dim=dim, config=config, states=states, train_rows=train_rows, seed=seed,
                                device="cpu")
    started, cpu_started = time.perf_counter(), time.process_time()
    fit = fit_adapt(scheme, maps=maps, states=states, train_rows=train_rows, val_rows=val_rows, config=config,
                    seed=seed, device=torch.device("cpu"), on_epoch=lambda record: None)
    total, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {"images": n, "train_images": int(len(train_rows)), "val_images": int(len(val_rows)), "classes": classes,
            "map_shape": list(shape), "map_bytes_per_image": int(np.prod(shape)) * 2, "backbone": backbone, "cut": cut,
            "image_size": image_size, "method": method, "batch_size": batch_size,
            "epoch_seconds": round(float(fit.history[0]["seconds"]), 3), "fit_seconds": round(total, 3),
            # CPU seconds of this process: on a machine shared with other work, the wall time above grows
            # with the load while this does not (much); cpu / threads is the wall time on idle cores.
            "fit_cpu_seconds": round(cpu, 3), "torch_threads": torch.get_num_threads(),
            "train_images_per_s": round(len(train_rows) / max(float(fit.history[0]["seconds"]), 1e-9), 2)}


def extrapolate(rows: list[dict[str, Any]], images: int, *, key: str = "epoch_seconds") -> Optional[dict[str, Any]]:
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
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for n in args.sizes:
        rows.append(measure(n, backbone=args.backbone, image_size=args.image_size, classes=args.classes,
                            method=args.method, batch_size=args.batch_size))
        print(json.dumps(rows[-1]), flush=True)
    payload = {"benchmark": "adapt_epoch", "results": rows,
               "extrapolated": extrapolate(rows, args.extrapolate) if args.extrapolate else None,
               "extrapolated_cpu": extrapolate(rows, args.extrapolate, key="fit_cpu_seconds") if args.extrapolate else None,
               "command": " ".join([Path(sys.executable).name, "-m", "labelfix.bench.speed.adapt_epoch",
                                    *(argv if argv is not None else sys.argv[1:])]),
               "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                           "platform": platform.platform(), "load_average_1m": round(os.getloadavg()[0], 2)}}
    print(json.dumps(payload["extrapolated"]), json.dumps(payload["extrapolated_cpu"]), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
