"""Embedding throughput (images/s) of `labelfix embed` against a bare torch loop over the same images.

Writes N synthetic PNG files once, then measures, in one process and at the same torch thread count:

* ``end_to_end``: :func:`labelfix.learn.embed.compute_embeddings` on a temporary store of those files
  (decode + resize/crop + forward + Parquet write), as a user sees it; ``embedding_loop`` is its
  decode + forward part alone;
* ``bare_loop``: the loop a user would write over the same files, in the same order and batch size:
  ``PIL.Image.open(path).convert("RGB")``, the backbone's own transform, ``torch.stack``, forward;
* ``model_only``: forward passes alone over the same images, decoded and transformed up front: the
  ceiling of any loop.

``labelfix_vs_bare`` is the embedding loop's images/s over the bare loop's; ``max_abs_diff`` checks
that the bare loop's features equal the stored embeddings (same images, same model). A warm-up pass
runs before anything is timed, so neither side pays for first-call kernel setup.

Example::

    python -m labelfix.bench.speed.embed_throughput --n 256 --batch-size 32 \
        --out benchmarks/results/embed_throughput_cpu.json
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

from labelfix.bench.speed.report import emit_report
from labelfix.ingest import ingest_coco
from labelfix.learn.backbones import Backbone, build_backbone
from labelfix.learn.embed import EmbedConfig, compute_embeddings
from labelfix.store import open_store
from labelfix.store.embeddings import read_embedding_set


def write_synthetic_dataset(root: Path, *, n: int, size: tuple[int, int], seed: int = 0) -> Path:
    """N smooth random RGB images (noise blurred by upsampling, so PNG decoding cost is realistic) + COCO file."""
    rng = np.random.default_rng(seed)
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    images = []
    for index in range(n):
        small = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize(size, Image.Resampling.BILINEAR).save(images_dir / f"{index + 1}.png")
        images.append({"id": index + 1, "file_name": f"{index + 1}.png", "width": size[0], "height": size[1]})
    coco = {"images": images, "annotations": [], "categories": [{"id": 1, "name": "thing"}]}
    path = root / "instances.json"
    path.write_text(json.dumps(coco))
    return path


def _decode(paths: list[Path], backbone: Backbone) -> torch.Tensor:
    """A batch ``[B, 3, S, S]`` of the files, through the backbone's evaluation transform."""
    return torch.stack([backbone.eval_transform(Image.open(path).convert("RGB")) for path in paths])


def _forward(model: torch.nn.Module, batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Features ``[B, dim]`` as ``labelfix embed`` computes them (bf16 autocast on CUDA only)."""
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        return model(batch.to(device, non_blocking=True)).float().cpu()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_loop(paths: list[Path], *, backbone: Backbone, batch_size: int,
              device: torch.device) -> tuple[float, np.ndarray]:
    """(images/s, features ``[N, dim]``) of a plain decode + transform + forward loop over ``paths``."""
    model = backbone.model.to(device).eval()
    chunks = []
    with torch.inference_mode():
        _sync(device)
        started = time.perf_counter()
        for first in range(0, len(paths), batch_size):
            chunks.append(_forward(model, _decode(paths[first:first + batch_size], backbone), device))
        _sync(device)
        seconds = time.perf_counter() - started
    return len(paths) / seconds, torch.cat(chunks).numpy()


def model_only(paths: list[Path], *, backbone: Backbone, batch_size: int, device: torch.device) -> float:
    """Images/s of forward passes alone over ``paths``, decoded and transformed before the clock starts."""
    model = backbone.model.to(device).eval()
    batches = [_decode(paths[first:first + batch_size], backbone) for first in range(0, len(paths), batch_size)]
    with torch.inference_mode():
        _sync(device)
        started = time.perf_counter()
        for batch in batches:
            _forward(model, batch, device)
        _sync(device)
        seconds = time.perf_counter() - started
    return len(paths) / seconds


def _warm_up(paths: list[Path], *, backbone: Backbone, batch_size: int, device: torch.device) -> None:
    """One untimed forward of a full batch: kernel selection and allocations happen here, for every loop."""
    model = backbone.model.to(device).eval()
    with torch.inference_mode():
        _forward(model, _decode(paths[:batch_size], backbone), device)


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
    load_at_start = os.getloadavg()[0]

    config = EmbedConfig(backbone=args.backbone, batch_size=args.batch_size, device=args.device)
    device = config.resolved_device()
    # compute_embeddings uses the cores this process may run on; the other loops get the same count.
    torch.set_num_threads(max(1, min(torch.get_num_threads(), len(os.sched_getaffinity(0)))))
    backbone = build_backbone(args.backbone, weights="default")
    with tempfile.TemporaryDirectory(prefix="labelfix-bench-") as folder:
        root = Path(folder)
        coco = write_synthetic_dataset(root, n=args.n, size=tuple(args.source_size))
        # The same files in the same order as the store gives them to compute_embeddings (by image id).
        paths = [root / "images" / f"{index + 1}.png" for index in range(args.n)]
        _warm_up(paths, backbone=backbone, batch_size=args.batch_size, device=device)
        with open_store(root / "bench.duckdb") as store:
            ingest_coco(store, annotations=coco, images=root / "images", check_images="none")
            started = time.perf_counter()
            result = compute_embeddings(store, config=config, progress=False)
            end_to_end_seconds = time.perf_counter() - started
            again = time.perf_counter()
            cached = compute_embeddings(store, config=config, progress=False)
            cached_seconds = time.perf_counter() - again
            stored_ids, stored = read_embedding_set(store, result.name)
        bare, features = bare_loop(paths, backbone=backbone, batch_size=args.batch_size, device=device)
        forward = model_only(paths, backbone=backbone, batch_size=args.batch_size, device=device)
    if stored_ids.tolist() != list(range(1, args.n + 1)):
        raise RuntimeError("the stored embeddings are not the synthetic images 1..N in order")
    image_size = backbone.image_size
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
        "bare_loop_images_per_s": round(bare, 2),
        "labelfix_vs_bare": round(result.images_per_second / bare, 3),
        "model_only_images_per_s": round(forward, 2),
        # Same images, same model: the bare loop's features must be the stored ones (fp32 on CPU).
        "max_abs_diff": float(np.abs(features - stored).max()),
        "cached_rerun_seconds": round(cached_seconds, 3),
        "cached_rerun_computed": cached.computed,
        "failed": result.failed,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        # Other processes on the machine slow a CPU benchmark; the load average says how much.
        "load_average_1m_at_start": round(load_at_start, 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
    }
    emit_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
