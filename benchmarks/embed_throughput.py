"""Embedding throughput (images/s) of `labelfix embed` on synthetic images.

Measures two numbers:

* ``end_to_end``: :func:`labelfix.learn.embed.compute_embeddings` on a temporary store of N PNG files
  (decode + resize/crop + forward + Parquet write), as a user sees it;
* ``model_only``: forward passes on ready tensors, the ceiling the decoding path is compared with.

Example::

    python benchmarks/embed_throughput.py --n 256 --batch-size 32 --out benchmarks/results/embed_throughput_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from labelfix.ingest import ingest_coco
from labelfix.learn.backbones import build_backbone
from labelfix.learn.embed import EmbedConfig, compute_embeddings
from labelfix.store import open_store


def write_synthetic_dataset(root: Path, *, n: int, size: tuple[int, int], seed: int = 0) -> Path:
    """N smooth random RGB images (noise blurred by upsampling, so PNG decoding cost is realistic) + COCO file."""
    rng = np.random.default_rng(seed)
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    images = []
    for index in range(n):
        small = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize(size, Image.BILINEAR).save(images_dir / f"{index + 1}.png")
        images.append({"id": index + 1, "file_name": f"{index + 1}.png", "width": size[0], "height": size[1]})
    coco = {"images": images, "annotations": [], "categories": [{"id": 1, "name": "thing"}]}
    path = root / "instances.json"
    path.write_text(json.dumps(coco))
    return path


def model_only(*, backbone_name: str, n: int, batch_size: int, image_size: int, device: torch.device) -> float:
    """Images/s of forward passes alone (inference mode, the same thread count as the end-to-end run)."""
    backbone = build_backbone(backbone_name, weights="default")
    model = backbone.model.to(device).eval()
    batch = torch.randn(batch_size, 3, image_size, image_size, device=device)
    with torch.inference_mode():
        model(batch)  # warm-up: first call allocates and picks kernels
        started = time.perf_counter()
        done = 0
        while done < n:
            model(batch)
            done += batch_size
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return done / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="number of synthetic images")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--source-size", type=int, nargs=2, default=(320, 240), metavar=("W", "H"),
                        help="size of the synthetic PNG files before resize/crop")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args(argv)

    config = EmbedConfig(backbone=args.backbone, batch_size=args.batch_size, device=args.device)
    device = config.resolved_device()
    with tempfile.TemporaryDirectory(prefix="labelfix-bench-") as folder:
        root = Path(folder)
        coco = write_synthetic_dataset(root, n=args.n, size=tuple(args.source_size))
        with open_store(root / "bench.duckdb") as store:
            ingest_coco(store, annotations=coco, images=root / "images", check_images="none")
            started = time.perf_counter()
            result = compute_embeddings(store, config=config, progress=False)
            end_to_end_seconds = time.perf_counter() - started
            again = time.perf_counter()
            cached = compute_embeddings(store, config=config, progress=False)
            cached_seconds = time.perf_counter() - again
    image_size = build_backbone(args.backbone, weights="default").image_size
    forward = model_only(backbone_name=args.backbone, n=args.n, batch_size=args.batch_size,
                         image_size=image_size, device=device)
    report = {
        "benchmark": "embed_throughput",
        "backbone": args.backbone,
        "embedding_set": result.name,
        "dim": result.dim,
        "device": str(device),
        "n_images": args.n,
        "batch_size": args.batch_size,
        "image_size": image_size,
        "source_size": list(args.source_size),
        "end_to_end_images_per_s": round(args.n / end_to_end_seconds, 2),
        "end_to_end_seconds": round(end_to_end_seconds, 2),
        "embedding_loop_images_per_s": round(result.images_per_second, 2),
        "model_only_images_per_s": round(forward, 2),
        "cached_rerun_seconds": round(cached_seconds, 3),
        "cached_rerun_computed": cached.computed,
        "failed": result.failed,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        # Other processes on the machine slow a CPU benchmark; the load average says how much.
        "load_average_1m": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
