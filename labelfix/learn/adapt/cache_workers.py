"""Feature-map caching spread over processes (``--nproc N``): one worker per GPU, or per share of the CPU cores.

:func:`labelfix.learn.adapt.cache.cache_feature_maps` hands each worker a contiguous slice of the images
still to cache and a block of shard numbers of its own, so workers never write the same file. Each
worker runs the frozen bottom blocks and writes its shards atomically; the parent then writes the one
index (``index.parquet``) over every worker's shards. Workers are started with the ``spawn`` method
(safe with CUDA and with torch's thread pools) and never open the store: the parent passes them the
images' paths.

An interrupted multi-process run keeps its finished shards on disk but not in the index; the next run
recomputes those images into new shards (the orphans are overwritten or ignored, never read).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from labelfix.internal.atomic import atomic_target
from labelfix.learn.image_data import ImageRecord, StoreImageDataset


@dataclass(frozen=True)
class WorkerJob:
    """One worker's share: its images, its first shard number, where and how to compute."""

    rank: int
    records: list[ImageRecord]
    first_shard: int
    folder: Path
    shard_size: int
    batch_size: int
    image_size: int
    device: str
    num_threads: int


@dataclass(frozen=True)
class WorkerOutput:
    """The index rows a worker wrote (image id, shard, row) and the ids that failed to decode."""

    ids: np.ndarray
    shards: np.ndarray
    rows: np.ndarray
    failed_ids: list[int]


def compute_maps(records: list[ImageRecord], *, bottom: nn.Module, transform: Callable[[Any], torch.Tensor],
                 image_size: int, batch_size: int, device: torch.device) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Maps of ``records`` in order: (ids int64 [n], fp16 [n, C, H, W], ids that failed to decode)."""
    dataset = StoreImageDataset(records, transform=transform, image_size=image_size)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    ids: list[int] = []
    parts: list[np.ndarray] = []
    failed: list[int] = []
    on_cuda = device.type == "cuda"
    with torch.inference_mode():
        for images, positions, ok in loader:
            ok = ok.bool()
            failed.extend(records[int(p)].image_id for p in positions[~ok])
            if not ok.any():
                continue
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=on_cuda):
                maps = bottom(images[ok].to(device))
            parts.append(maps.to(torch.float16).cpu().numpy())
            ids.extend(records[int(p)].image_id for p in positions[ok])
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.float16), failed
    return np.asarray(ids, np.int64), np.concatenate(parts), failed


def plan_jobs(records: list[ImageRecord], *, nproc: int, first_shard: int, folder: Path, shard_size: int,
              batch_size: int, image_size: int, device: torch.device) -> list[WorkerJob]:
    """Split ``records`` into at most ``nproc`` contiguous shares with disjoint shard numbers.

    On CUDA, worker ``r`` uses GPU ``r mod (GPUs seen)``; on CPU the cores are divided between workers.
    """
    nproc = max(1, min(nproc, len(records)))
    per_worker = math.ceil(len(records) / nproc)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    jobs: list[WorkerJob] = []
    next_shard = first_shard
    for rank in range(nproc):
        share = records[rank * per_worker:(rank + 1) * per_worker]
        if not share:
            break
        where = f"cuda:{rank % gpus}" if gpus else str(device)
        jobs.append(WorkerJob(rank=rank, records=share, first_shard=next_shard, folder=folder, shard_size=shard_size,
                              batch_size=batch_size, image_size=image_size, device=where,
                              num_threads=max(1, cores // nproc)))
        next_shard += math.ceil(len(share) / shard_size)
    return jobs


def run_job(job: WorkerJob, bottom: nn.Module, transform: Callable[[Any], torch.Tensor],
            compute: Callable[..., tuple[np.ndarray, np.ndarray, list[int]]]) -> WorkerOutput:
    """Cache one share, shard by shard (called in the worker process, or inline for one worker)."""
    device = torch.device(job.device)
    if device.type == "cpu":
        torch.set_num_threads(job.num_threads)
    bottom = bottom.to(device).eval()
    ids: list[np.ndarray] = []
    shards: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    failed: list[int] = []
    shard = job.first_shard
    for start in range(0, len(job.records), job.shard_size):
        chunk = job.records[start:start + job.shard_size]
        chunk_ids, maps, chunk_failed = compute(chunk, bottom=bottom, transform=transform, image_size=job.image_size,
                                                batch_size=job.batch_size, device=device)
        failed.extend(chunk_failed)
        if len(chunk_ids):
            with atomic_target(job.folder / f"shard-{shard:05d}.npy") as temporary:
                with open(temporary, "wb") as handle:
                    np.save(handle, maps)
            ids.append(chunk_ids)
            shards.append(np.full(len(chunk_ids), shard, np.int64))
            rows.append(np.arange(len(chunk_ids), dtype=np.int64))
        shard += 1
    empty = np.zeros(0, np.int64)
    return WorkerOutput(ids=np.concatenate(ids) if ids else empty, shards=np.concatenate(shards) if shards else empty,
                        rows=np.concatenate(rows) if rows else empty, failed_ids=failed)


def _worker(job: WorkerJob, bottom: nn.Module, transform: Callable[[Any], torch.Tensor]) -> WorkerOutput:
    return run_job(job, bottom, transform, compute_maps)


def run_jobs(jobs: list[WorkerJob], *, bottom: nn.Module, transform: Callable[[Any], torch.Tensor]) -> list[WorkerOutput]:
    """Run every job in its own spawned process; results in rank order.

    Raises
    ------
    RuntimeError
        When a worker process fails (its exception is chained).
    """
    from concurrent.futures import ProcessPoolExecutor

    context = torch.multiprocessing.get_context("spawn")
    bottom = bottom.to("cpu")  # moved to each worker's own device there
    with ProcessPoolExecutor(max_workers=len(jobs), mp_context=context) as pool:
        futures = [pool.submit(_worker, job, bottom, transform) for job in jobs]
        return [future.result() for future in futures]


__all__ = ["WorkerJob", "WorkerOutput", "compute_maps", "plan_jobs", "run_job", "run_jobs"]
