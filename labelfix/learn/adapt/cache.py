"""Feature-map cache of adapt mode: a backbone's output at a cut point, computed once per image.

Adapt mode (:mod:`labelfix.learn.adapt.train`) trains only the backbone's top blocks
(``features[cut:]``) and the classifier. The bottom blocks (``features[:cut]``) are frozen, so their
output is computed once per (image, backbone, weights hash, cut, image size) and kept on disk:

    <store cache_dir>/feature_maps/<name>/shard-00000.npy    fp16 [n, C, H, W], one file per shard
                                         /index.parquet      image_id, shard, row (the registry)
                                         /meta.json          backbone, weights_hash, cut, image_size, shape

``<name>`` is :func:`map_set_name` (``mobilenet_v2-<hash>-cut14-224px``), so another backbone, weights
file, cut or size never reuses a stale map. Images are processed ``shard_size`` at a time and each shard
is written (atomically) before the next is computed: RAM stays at one shard whatever the dataset size.
A second call computes only the images not in the index yet.

Every image is **resized whole** to ``image_size × image_size`` (no centre crop): an object at the
border of a multi-label image must stay in the picture, or its label becomes false.

Disk cost per image: ``C·H·W·2`` bytes. MobileNetV2 at cut 14 and 224 px: 96×14×14 fp16 = 37,632 B
(37.6 GB per million images); at 160 px 96×10×10 = 19,200 B.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn
from torchvision.transforms import v2 as T
from tqdm.auto import tqdm

from labelfix.errors import LabelfixError
from labelfix.internal.atomic import atomic_target, write_text_atomic
from labelfix.learn.adapt.cache_workers import compute_maps, plan_jobs, run_jobs
from labelfix.learn.backbones import Backbone, build_backbone
from labelfix.learn.embed import _cpu_threads
from labelfix.learn.image_data import image_records
from labelfix.store.database import Store

# Default cut per backbone: the block index where the cached part ends. MobileNetV2, demo data, oracle
# test mAP after 4 epochs of features[cut:] + linear head at 160 px (issue 12, branch h12): cut 17
# (160x5x5, 8,000 B/image) 0.444, cut 14 (96x10x10, 19,200 B) 0.582; head mode's frozen embedding 0.41.
# Cut 17 keeps too little to adapt; cut 14 is where the issue measured 0.668 at 224 px (6 epochs).
DEFAULT_CUTS: dict[str, int] = {"mobilenet_v2": 14, "tiny": 3}


def feature_blocks(backbone: Backbone) -> nn.Sequential:
    """The backbone's block sequence (torchvision's ``features``), which the cut splits."""
    model = backbone.model
    for candidate in (getattr(model, "net", None), model):
        blocks = getattr(candidate, "features", None)
        if isinstance(blocks, nn.Sequential):
            return blocks
    raise LabelfixError(f"adapt mode cannot split backbone {backbone.name!r} into blocks",
                        fix="use --backbone mobilenet_v2 (or another torchvision model with a `features` sequence)")


def resolve_cut(backbone: Backbone, cut: Optional[int]) -> int:
    """``cut`` checked against the backbone's blocks; None gives :data:`DEFAULT_CUTS` (or the middle)."""
    blocks = feature_blocks(backbone)
    chosen = DEFAULT_CUTS.get(backbone.name, len(blocks) // 2) if cut is None else int(cut)
    if not 1 <= chosen < len(blocks):
        raise LabelfixError(f"cut {chosen} is outside 1..{len(blocks) - 1} for {backbone.name}",
                            fix=f"pass a cut between 1 and {len(blocks) - 1}")
    return chosen


def whole_image_transform(backbone: Backbone, image_size: int) -> T.Compose:
    """Resize the whole image to ``image_size`` square (no crop), then the weights' normalisation."""
    p = backbone.preprocessing
    return T.Compose([T.ToImage(), T.Resize((image_size, image_size), interpolation=p.interpolation, antialias=True),
                      T.ToDtype(torch.float32, scale=True), T.Normalize(p.mean, p.std)])


def map_set_name(backbone: Backbone, *, cut: int, image_size: int) -> str:
    """``{backbone}-{weights_hash}-cut{cut}-{size}px``: the cache key besides the image id."""
    return f"{backbone.name}-{backbone.weights_hash}-cut{cut}-{image_size}px"


@dataclass
class MapCacheResult:
    """What :func:`cache_feature_maps` did; ``folder`` holds the shards and the index."""

    name: str
    folder: Path
    shape: tuple[int, int, int]
    computed: int
    reused: int
    failed_ids: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def bytes_per_image(self) -> int:
        return int(np.prod(self.shape)) * 2


class FeatureMapSet:
    """A cached map set opened for reading: image ids, and maps by image id (shards memory-mapped).

    Examples
    --------
    >>> maps = FeatureMapSet(folder)  # doctest: +SKIP
    >>> maps.read(maps.image_ids[:2]).shape  # doctest: +SKIP
    (2, 96, 14, 14)
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        index_path = self.folder / "index.parquet"
        if not index_path.exists():
            raise LabelfixError(f"no feature-map index in {self.folder}", file=self.folder,
                                fix="run adapt training (it caches the maps) or delete the folder")
        self.meta = json.loads((self.folder / "meta.json").read_text(encoding="utf-8"))
        index = pq.read_table(index_path)
        self.image_ids = index.column("image_id").to_numpy().astype(np.int64)
        self._shard = index.column("shard").to_numpy().astype(np.int64)
        self._row = index.column("row").to_numpy().astype(np.int64)
        self._position = {int(i): p for p, i in enumerate(self.image_ids)}
        self._shards: dict[int, np.ndarray] = {}

    @property
    def shape(self) -> tuple[int, int, int]:
        channels, height, width = (int(v) for v in self.meta["shape"])
        return channels, height, width

    @property
    def num_shards(self) -> int:
        return int(self._shard.max()) + 1 if len(self._shard) else 0

    def _shard_array(self, shard: int) -> np.ndarray:
        if shard not in self._shards:
            self._shards[shard] = np.load(self.folder / f"shard-{shard:05d}.npy", mmap_mode="r")
        return self._shards[shard]

    def has(self, image_ids: np.ndarray) -> np.ndarray:
        """bool [N]: which ids have a map."""
        return np.array([int(i) in self._position for i in image_ids], dtype=bool)

    def read(self, image_ids: np.ndarray) -> np.ndarray:
        """fp16 [N, C, H, W] of ``image_ids`` (every id must be cached), read shard by shard."""
        out = np.empty((len(image_ids), *self.shape), np.float16)
        positions = np.array([self._position[int(i)] for i in image_ids], dtype=np.int64)
        shards = self._shard[positions]
        for shard in np.unique(shards):
            where = np.flatnonzero(shards == shard)
            out[where] = self._shard_array(int(shard))[self._row[positions[where]]]
        return out


def map_folder(store: Store, name: str) -> Path:
    return store.cache_dir / "feature_maps" / name


def _write_index(folder: Path, ids: np.ndarray, shards: np.ndarray, rows: np.ndarray) -> None:
    table = pa.table({"image_id": pa.array(ids, pa.int64()), "shard": pa.array(shards, pa.int32()),
                      "row": pa.array(rows, pa.int32())})
    with atomic_target(folder / "index.parquet") as temporary:
        pq.write_table(table, temporary)


def cache_feature_maps(store: Store, *, backbone: str | Backbone = "mobilenet_v2", weights: str | Path | None = "default",
                       cut: Optional[int] = None, image_size: int = 224, shard_size: int = 1024,
                       batch_size: int = 32, device: str | torch.device = "cpu", num_threads: Optional[int] = None,
                       splits: Optional[tuple[str, ...]] = None, progress: bool = False,
                       nproc: int = 1) -> MapCacheResult:
    """Cache ``features[:cut]`` of every image of the store (those not cached yet), shard by shard.

    Parameters
    ----------
    store
        An open store whose images have files (not a features table).
    backbone, weights
        A backbone name and weights (as :func:`labelfix.learn.backbones.build_backbone`), or a built
        :class:`Backbone`.
    cut
        Number of blocks cached; None: :data:`DEFAULT_CUTS`.
    image_size
        Side of the square the whole image is resized to.
    shard_size
        Images per shard file; RAM holds one shard of maps at a time.
    batch_size, device, num_threads
        How the bottom blocks run (bf16 autocast on CUDA only).
    splits
        Only images of these splits (default all).
    progress
        Show a tqdm bar (one process only).
    nproc
        Worker processes (``--nproc N``): each caches a contiguous share of the images into shards of
        its own, on GPU ``rank mod GPUs`` when ``device`` is CUDA, else on ``cores / nproc`` CPU threads
        (:mod:`labelfix.learn.adapt.cache_workers`). 1 computes in this process.

    Returns
    -------
    MapCacheResult
        Name, folder, map shape, images computed / reused, the ids that failed to decode (reported,
        not cached; training leaves them out).
    """
    built = backbone if isinstance(backbone, Backbone) else build_backbone(backbone, weights=weights)
    cut = resolve_cut(built, cut)
    device = torch.device(device)
    name = map_set_name(built, cut=cut, image_size=image_size)
    folder = map_folder(store, name)
    bottom = feature_blocks(built)[:cut].to(device).eval()
    records = image_records(store, splits=splits)
    existing = FeatureMapSet(folder) if (folder / "index.parquet").exists() else None
    known = set(existing.image_ids.tolist()) if existing is not None else set()
    todo = [r for r in records if r.image_id not in known]
    with torch.inference_mode():
        channels, height, width = bottom(torch.zeros(1, 3, image_size, image_size, device=device)).shape[1:]
    shape = (int(channels), int(height), int(width))
    started = time.perf_counter()
    failed: list[int] = []
    ids = [existing.image_ids] if existing is not None else []
    shard_of = [existing._shard] if existing is not None else []
    row_of = [existing._row] if existing is not None else []
    next_shard = existing.num_shards if existing is not None else 0
    if existing is None:
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / "meta.json", json.dumps(
            {"backbone": built.name, "weights_hash": built.weights_hash, "cut": cut, "image_size": image_size,
             "shape": list(shape), "dtype": "float16", "resize": "whole image, no crop"}, indent=1))
    transform = whole_image_transform(built, image_size)
    if nproc > 1 and len(todo) > 1:
        jobs = plan_jobs(todo, nproc=nproc, first_shard=next_shard, folder=folder, shard_size=shard_size,
                         batch_size=batch_size, image_size=image_size, device=device)
        for output in run_jobs(jobs, bottom=bottom, transform=transform):
            failed.extend(output.failed_ids)
            ids.append(output.ids)
            shard_of.append(output.shards)
            row_of.append(output.rows)
        _write_index(folder, np.concatenate(ids), np.concatenate(shard_of), np.concatenate(row_of))
    else:
        with _cpu_threads(device, num_threads), tqdm(total=len(todo), unit="img", desc=f"cache {name}",
                                                     disable=not progress) as bar:
            for start in range(0, len(todo), shard_size):
                chunk = todo[start:start + shard_size]
                chunk_ids, maps, chunk_failed = compute_maps(chunk, bottom=bottom, transform=transform,
                                                             image_size=image_size, batch_size=batch_size,
                                                             device=device)
                failed.extend(chunk_failed)
                bar.update(len(chunk))
                if not len(chunk_ids):
                    continue
                with atomic_target(folder / f"shard-{next_shard:05d}.npy") as temporary:
                    with open(temporary, "wb") as handle:
                        np.save(handle, maps)
                ids.append(chunk_ids)
                shard_of.append(np.full(len(chunk_ids), next_shard, np.int64))
                row_of.append(np.arange(len(chunk_ids), dtype=np.int64))
                # The index is rewritten after every shard: an interrupted run keeps what it finished.
                _write_index(folder, np.concatenate(ids), np.concatenate(shard_of), np.concatenate(row_of))
                next_shard += 1
    if existing is None and not ids:
        _write_index(folder, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    computed = sum(len(a) for a in ids) - len(known)
    return MapCacheResult(name=name, folder=folder, shape=shape, computed=computed, reused=len(records) - len(todo),
                          failed_ids=failed, seconds=time.perf_counter() - started)


def map_set_for_store(path: str | Path, *, backbone: str = "mobilenet_v2", weights: str | Path | None = "default",
                      cut: Optional[int] = None, image_size: int = 224, device: str | torch.device = "cpu",
                      progress: bool = False) -> FeatureMapSet:
    """The maps of every image of the store at ``path`` (cached there first): a benchmark's shared cache.

    Raises
    ------
    LabelfixError
        When an image does not decode (a benchmark needs every image).
    """
    from labelfix.store.database import open_store

    with open_store(Path(path), create=False) as store:
        result = cache_feature_maps(store, backbone=backbone, weights=weights, cut=cut, image_size=image_size,
                                    device=device, progress=progress)
    if result.failed_ids:
        raise LabelfixError(f"{len(result.failed_ids)} images could not be decoded (e.g. ids {result.failed_ids[:5]})",
                            file=path, fix="fix or remove those images; a benchmark needs every image")
    return FeatureMapSet(result.folder)


__all__ = ["DEFAULT_CUTS", "FeatureMapSet", "MapCacheResult", "cache_feature_maps", "compute_maps", "feature_blocks",
           "map_folder", "map_set_for_store", "map_set_name", "resolve_cut", "whole_image_transform"]
