"""Compute image embeddings once per (image, backbone, weights) and keep them as a Parquet embedding set."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from labelfix.errors import LabelfixError, StoreError
from labelfix.learn.backbones import Backbone, build_backbone
from labelfix.learn.image_data import ImageRecord, StoreImageDataset, image_records
from labelfix.store.database import Store
from labelfix.store.embeddings import read_embedding_set, write_embedding_set


class EmbedConfig(BaseModel):
    """Settings of one ``labelfix embed`` run.

    ``weights``: ``"default"`` (installed ImageNet weights), a state dict path, or ``"random"``/None.
    ``num_workers=None`` decodes images in the main process on CPU (workers would compete with the
    model for the same cores) and in 4 workers on a GPU. ``image_size=None`` uses the weights' size.
    """

    model_config = ConfigDict(extra="forbid")

    backbone: str = "mobilenet_v2"
    weights: Optional[Union[str, Path]] = "default"
    batch_size: int = Field(32, ge=1)
    num_workers: Optional[int] = Field(None, ge=0)
    device: str = "auto"
    image_size: Optional[int] = Field(None, ge=16)
    num_threads: Optional[int] = Field(None, ge=1)
    splits: Optional[tuple[str, ...]] = None

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(self.device)
        except RuntimeError as error:
            raise LabelfixError(f"unknown device {self.device!r}", fix="use auto, cpu, cuda or cuda:N") from error
        if device.type == "cuda" and not torch.cuda.is_available():
            raise LabelfixError("--device cuda was asked for but no GPU is available", fix="use --device cpu or auto")
        return device


@dataclass
class EmbedResult:
    """What :func:`compute_embeddings` did."""

    name: str
    backbone: str
    weights_hash: str
    dim: int
    path: Optional[Path]
    computed: int
    reused: int
    failed_ids: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return len(self.failed_ids)

    @property
    def images_per_second(self) -> float:
        return self.computed / self.seconds if self.seconds > 0 else 0.0


def embedding_set_name(backbone: Backbone, *, image_size: Optional[int] = None) -> str:
    """``{backbone}-{weights_hash}-whole``, plus ``-{size}px`` when the size is not the weights' own.

    ``-whole``: the whole image resized, no centre crop (sets made with a crop have no suffix and are
    never reused for it).
    """
    name = f"{backbone.name}-{backbone.weights_hash}-whole"
    return f"{name}-{image_size}px" if image_size else name


@contextlib.contextmanager
def _cpu_threads(device: torch.device, requested: Optional[int]) -> Iterator[None]:
    """Use the cores this process may run on (torch may count the whole machine inside a container)."""
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    torch.set_num_threads(max(1, requested or min(previous, available)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _existing(store: Store, name: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows already stored under ``name``; empty when the set is absent, its file lost, or its dim differs."""
    empty = (np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32))
    if store.scalar("SELECT count(*) FROM embedding_sets WHERE name = ?", [name]) == 0:
        return empty
    try:
        ids, embeddings = read_embedding_set(store, name)
    except StoreError:  # file missing: recompute rather than fail
        return empty
    if embeddings.shape[1] != dim:
        return empty
    return ids.astype(np.int64), embeddings


def compute_embeddings(store: Store, *, config: EmbedConfig | None = None, progress: bool = True) -> EmbedResult:
    """Embed the store's images with a backbone and save them as embedding set ``{backbone}-{weights_hash}``.

    Images already in that set are not computed again; new ones are added and the Parquet rewritten.
    An image that fails to decode is reported in ``failed_ids`` and not stored; the others go on.

    Parameters
    ----------
    store
        An open, writable store.
    config
        Backbone, weights, batch size, device; defaults to mobilenet_v2 with its installed weights.
    progress
        Show a tqdm bar on stderr.

    Returns
    -------
    EmbedResult
        The set's name and dim, and how many images were computed, reused and failed.

    Examples
    --------
    >>> result = compute_embeddings(store, config=EmbedConfig(backbone="mobilenet_v2"))  # doctest: +SKIP
    >>> result.name, result.dim, result.computed  # doctest: +SKIP
    ('mobilenet_v2-…', 1280, 120)
    """
    config = config or EmbedConfig()
    device = config.resolved_device()
    backbone = build_backbone(config.backbone, weights=config.weights, image_size=config.image_size)
    # Another crop size gives other embeddings, so it is part of the cache key.
    overridden = backbone.image_size if backbone.image_size != backbone.native_image_size else None
    name = embedding_set_name(backbone, image_size=overridden)

    records = image_records(store, splits=config.splits)
    old_ids, old_embeddings = _existing(store, name, backbone.dim)
    known = set(old_ids.tolist())
    todo = [record for record in records if record.image_id not in known]
    reused = len(records) - len(todo)
    started = time.perf_counter()
    new_ids, new_embeddings, failed = _embed_records(todo, backbone=backbone, config=config, device=device,
                                                     progress=progress)
    seconds = time.perf_counter() - started

    registered = store.fetchone("SELECT path FROM embedding_sets WHERE name = ?", [name])
    if len(new_ids) or registered is None or not Path(registered[0]).exists():
        path = write_embedding_set(
            store, name=name, backbone=backbone.name, weights_hash=backbone.weights_hash,
            image_ids=np.concatenate([old_ids, new_ids]), embeddings=np.concatenate([old_embeddings, new_embeddings]))
    else:
        path = Path(registered[0])
    return EmbedResult(name=name, backbone=backbone.name, weights_hash=backbone.weights_hash, dim=backbone.dim,
                       path=path, computed=len(new_ids), reused=reused, failed_ids=failed, seconds=seconds)


def _embed_records(records: list[ImageRecord], *, backbone: Backbone, config: EmbedConfig, device: torch.device,
                   progress: bool) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(image ids, embeddings, failed ids) of ``records``, in batches."""
    ids: list[np.ndarray] = []
    chunks: list[np.ndarray] = []
    failed: list[int] = []
    if not records:
        return np.zeros(0, dtype=np.int64), np.zeros((0, backbone.dim), dtype=np.float32), failed
    on_cuda = device.type == "cuda"
    workers = config.num_workers if config.num_workers is not None else (min(4, os.cpu_count() or 1) if on_cuda else 0)
    dataset = StoreImageDataset(records, transform=backbone.eval_transform, image_size=backbone.image_size)
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=False, num_workers=workers,
                        pin_memory=on_cuda, persistent_workers=False)
    model = backbone.model.to(device).eval()
    if on_cuda:
        model = model.to(memory_format=torch.channels_last)
    with _cpu_threads(device, config.num_threads), torch.inference_mode(), \
            tqdm(total=len(records), unit="img", desc=f"embed {backbone.name}", disable=not progress) as bar:
        for images, positions, ok in loader:
            ok = ok.bool()
            failed.extend(records[int(p)].image_id for p in positions[~ok])
            if ok.any():
                batch = images[ok].to(device, non_blocking=True)
                if on_cuda:
                    batch = batch.contiguous(memory_format=torch.channels_last)
                # bf16 autocast only on CUDA: CPU bf16 is slower than fp32 on most CPUs.
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=on_cuda):
                    features = model(batch)
                chunks.append(features.float().cpu().numpy())
                ids.append(np.array([records[int(p)].image_id for p in positions[ok]], dtype=np.int64))
            bar.update(len(positions))
    if not chunks:
        return np.zeros(0, dtype=np.int64), np.zeros((0, backbone.dim), dtype=np.float32), failed
    return np.concatenate(ids), np.concatenate(chunks).astype(np.float32, copy=False), failed
