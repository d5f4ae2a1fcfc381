"""Benchmark data: a fully labelled dataset with one embedding per image (truth, splits, difficulty).

Loaded once per benchmark from a COCO file with images (embedded with a backbone, cached) or from a
features table; every hiding seed and method then works on these arrays.
"""

from __future__ import annotations


from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow.parquet as pq

from labelfix.errors import InputError
from labelfix.ingest_contract import SPLITS

# Splits of a dataset that names none: seeded, the same for every hiding seed.
FALLBACK_SPLIT_SHARES = {"train": 0.7, "val": 0.1, "test": 0.2}


@dataclass
class BenchData:
    """A fully labelled dataset with one embedding per image; rows sorted by image id.

    ``difficulty`` [N, C] in [0, 1] (how easily a positive is missed) or None (all equal);
    ``split_source`` says where the splits came from.
    """

    image_ids: np.ndarray        # int64 [N]
    splits: np.ndarray           # object [N]
    class_names: list[str]
    truth: np.ndarray            # bool [N, C]
    embeddings: np.ndarray       # float32 [N, D]
    difficulty: Optional[np.ndarray]
    source: dict[str, Any]
    split_source: str
    demo_parameters: Optional[dict[str, Any]] = None

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.splits == split)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def train_counts(self) -> np.ndarray:
        """True positives per class in the train split (int64 [C]), for the shot split."""
        return self.truth[self.rows("train")].sum(axis=0).astype(np.int64)

    def describe(self) -> dict[str, Any]:
        return {**self.source, "split_source": self.split_source, "num_images": int(len(self.image_ids)),
                "split_sizes": {s: int((self.splits == s).sum()) for s in SPLITS},
                "embedding_dim": int(self.embeddings.shape[1]), "class_names": list(self.class_names),
                "train_class_counts": self.train_counts().tolist(),
                "positives": {s: int(self.truth[self.rows(s)].sum()) for s in SPLITS},
                "difficulty": "demo-data object size" if self.demo_parameters else
                ("1 - relative bbox area of the class's largest box" if self.difficulty is not None else "none")}


def _fallback_splits(n: int, seed: int) -> np.ndarray:
    """A seeded 70/10/20 split of ``n`` images (object array of split names)."""
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(round(FALLBACK_SPLIT_SHARES["train"] * n))
    n_val = int(round(FALLBACK_SPLIT_SHARES["val"] * n))
    splits = np.empty(n, dtype=object)
    splits[order[:n_train]] = "train"
    splits[order[n_train:n_train + n_val]] = "val"
    splits[order[n_train + n_val:]] = "test"
    return splits


def _resolve_splits(given: list[Optional[str]], seed: int) -> tuple[np.ndarray, str]:
    if any(s is not None for s in given):
        return np.array([s or "train" for s in given], dtype=object), "file"
    return _fallback_splits(len(given), seed), f"seeded 70/10/20 (split_seed {seed})"


def _check_splits(data: BenchData) -> BenchData:
    for split in SPLITS:
        if not (data.splits == split).any():
            raise InputError(f"the {split} split is empty", file=data.source.get("path"),
                             fix="give images a train/val/test split, or none at all for a seeded 70/10/20 split")
    if not data.truth[data.rows("test")].any():
        raise InputError("the test split has no positive label", file=data.source.get("path"),
                         fix="a benchmark needs a labelled test split")
    return data


def load_features_bench_data(path: str | Path, *, split_seed: int = 0) -> BenchData:
    """A fully labelled features table (``image_id``, ``labels``, ``embedding``, optional ``split``).

    Read with :func:`labelfix.io.table.read_features_table` (same validation as ``ingest features``).
    Classes are the label names in sorted order.
    """
    from labelfix.io.table import read_features_table

    path = Path(path)
    batch = read_features_table(path)
    assert batch.embeddings is not None  # a features table always carries its embeddings
    has_split = "split" in pq.read_schema(path).names
    names = sorted(c["name"] for c in batch.categories)
    column_of = {c["category_id"]: names.index(c["name"]) for c in batch.categories}
    ids = np.asarray([image["image_id"] for image in batch.images], dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    sorted_row = np.empty_like(order)
    sorted_row[order] = np.arange(len(order))  # batch row -> row in id order
    truth = np.zeros((len(ids), len(names)), dtype=bool)
    for row, category_id in batch.positives.tolist():
        truth[sorted_row[row], column_of[category_id]] = True
    split_of = {int(i["image_id"]): i["split"] for i in batch.images}
    given = [split_of[int(i)] if has_split else None for i in ids[order]]
    splits, split_source = _resolve_splits(given, split_seed)
    return _check_splits(BenchData(
        image_ids=ids[order], splits=splits, class_names=names, truth=truth,
        embeddings=np.ascontiguousarray(batch.embeddings[order], dtype=np.float32), difficulty=None,
        source={"kind": "features", "path": str(path.resolve()), "sha256": batch.sha256},
        split_source=split_source))


def read_coco_truth(coco: str | Path, *, split_seed: int = 0) -> BenchData:
    """A fully labelled COCO file's truth, splits and difficulty; ``embeddings`` is an empty (N, 0) array.

    Difficulty: the demo generator's own for labelfix demo data (so hiding matches ``demo-data``
    exactly), else 1 - relative bbox area of the class's largest box (:func:`_bbox_difficulty`).
    """
    from labelfix.io.coco import load_json, read_coco

    coco = Path(coco)
    batch = read_coco(coco, images_root=None, progress=False, records=False)  # validation; records below
    records = sorted(batch.images, key=lambda i: i["image_id"])
    image_ids = np.array([i["image_id"] for i in records], dtype=np.int64)
    categories = sorted(batch.categories, key=lambda c: c["category_id"])
    names = [str(c["name"]) for c in categories]
    column_of = {c["category_id"]: column for column, c in enumerate(categories)}
    row_of = {int(image_id): row for row, image_id in enumerate(image_ids)}
    truth = np.zeros((len(image_ids), len(names)), dtype=bool)
    for batch_row, category_id in batch.positives.tolist():
        truth[row_of[batch.images[batch_row]["image_id"]], column_of[category_id]] = True
    document = load_json(coco)
    raw_by_id = {image["id"]: image for image in document["images"]}
    raw_images = [raw_by_id[i["image_id"]] for i in records]
    splits, split_source = _resolve_splits([i.get("split") for i in raw_images], split_seed)
    raw_annotations = document["annotations"]
    demo = _demo_parameters(batch.header)
    difficulty: Optional[np.ndarray]
    if demo is not None:
        difficulty = _demo_difficulty(raw_images, raw_annotations, demo["image_size"])
    else:
        difficulty = _bbox_difficulty(raw_images, raw_annotations, row_of, column_of)
    return BenchData(image_ids=image_ids, splits=splits, class_names=names, truth=truth,
                     embeddings=np.zeros((len(image_ids), 0), np.float32), difficulty=difficulty,
                     source={"kind": "coco", "path": str(coco.resolve()), "sha256": batch.sha256},
                     split_source=split_source, demo_parameters=demo)


def load_coco_bench_data(coco: str | Path, *, images: str | Path, cache_dir: str | Path | None = None,
                         backbone: str = "mobilenet_v2", split_seed: int = 0,
                         progress: bool = True, adapt_image_size: Optional[int] = None) -> BenchData:
    """A fully labelled COCO file and its images, embedded once (:func:`read_coco_truth` + embeddings).

    The embeddings are cached in a scratch store ``cache_dir/embed-<sha256[:12]>.duckdb`` (default
    ``cache_dir``: ``labelfix-bench-cache`` beside the COCO file); a second benchmark on the same
    file reuses them (:func:`labelfix.learn.embed.compute_embeddings` embeds only new images).

    With ``adapt_image_size`` (adapt mode) the images are not embedded: adapt trains on the feature maps
    cached at that size in the same store, and the bench's "embeddings" (used only by the logreg
    baseline) are those maps averaged over space -- one pass over the images instead of two.
    """
    from labelfix.ingest import ingest_coco
    from labelfix.learn.embed import EmbedConfig, compute_embeddings
    from labelfix.store.database import open_store
    from labelfix.store.embeddings import read_embedding_set

    coco, images = Path(coco), Path(images)
    data = read_coco_truth(coco, split_seed=split_seed)
    cache = Path(cache_dir) if cache_dir is not None else coco.parent / "labelfix-bench-cache"
    with open_store(cache / f"embed-{data.source['sha256'][:12]}.duckdb") as store:
        ingest_coco(store, annotations=coco, images=images, check_images="header")
        if adapt_image_size is not None:
            embedded_ids, vectors, set_name = _pooled_feature_maps(store, backbone=backbone, image_size=adapt_image_size,
                                                                   progress=progress, coco=coco)
        else:
            result = compute_embeddings(store, config=EmbedConfig(backbone=backbone), progress=progress)
            if result.failed_ids:
                raise InputError(f"{result.failed} images could not be decoded (e.g. ids {result.failed_ids[:5]})",
                                 file=coco, fix="fix or remove those images; a benchmark needs every image")
            embedded_ids, vectors = read_embedding_set(store, result.name)
            set_name = result.name
    position = {int(i): p for p, i in enumerate(embedded_ids)}
    missing = [int(i) for i in data.image_ids if int(i) not in position]
    if missing:
        raise InputError(f"{len(missing)} images have no embedding (e.g. ids {missing[:5]})", file=coco,
                         fix="check the image folder matches the COCO file")
    data.embeddings = np.stack([vectors[position[int(i)]] for i in data.image_ids]).astype(np.float32)
    data.source.update({"images": str(images.resolve()), "embedding_set": set_name,
                        # adapt mode caches its feature maps in this store too
                        "cache_store": str((cache / f"embed-{data.source['sha256'][:12]}.duckdb").resolve())})
    return _check_splits(data)


def _pooled_feature_maps(store: Any, *, backbone: str, image_size: int, progress: bool,
                         coco: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """Cache the store's feature maps; return (image ids, maps averaged over space [N, C], map set name)."""
    from labelfix.learn.adapt import FeatureMapSet, cache_feature_maps

    result = cache_feature_maps(store, backbone=backbone, image_size=image_size, progress=progress)
    if result.failed_ids:
        raise InputError(f"{len(result.failed_ids)} images could not be decoded (e.g. ids {result.failed_ids[:5]})",
                         file=coco, fix="fix or remove those images; a benchmark needs every image")
    maps = FeatureMapSet(result.folder)
    ids = maps.image_ids
    pooled = np.concatenate([maps.read(ids[i:i + 512]).astype(np.float32).mean(axis=(2, 3))
                             for i in range(0, len(ids), 512)]) if len(ids) else np.zeros((0, result.shape[0]), np.float32)
    return ids, pooled, result.name


def _demo_parameters(header: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The generator parameters when the file is labelfix's demo data (then its hiding is reused exactly)."""
    info = header.get("info")
    if not isinstance(info, dict) or not str(info.get("description", "")).startswith("labelfix demo data"):
        return None
    parameters = info.get("parameters")
    return parameters if isinstance(parameters, dict) and "image_size" in parameters else None


def _demo_difficulty(images: list[dict], annotations: list[dict], image_size: int) -> np.ndarray:
    """The demo generator's own difficulty (1 - relative log height of the class's largest digit)."""
    from labelfix.io.demo_data import label_matrices  # one definition, shared with demo-data

    return label_matrices(images, annotations, image_size=image_size)[1]


def _bbox_difficulty(images: list[dict], annotations: list[dict], row_of: dict[int, int],
                     column_of: dict[int, int]) -> Optional[np.ndarray]:
    """1 - (area of the class's largest box / image area) per positive cell; None without boxes.

    Cells whose size cannot be computed (no bbox or no image size) get the median difficulty.
    """
    area_of = {int(i["id"]): float(i["width"]) * float(i["height"]) for i in images
               if isinstance(i.get("width"), (int, float)) and isinstance(i.get("height"), (int, float))
               and i["width"] > 0 and i["height"] > 0}
    largest = np.full((len(row_of), len(column_of)), np.nan)
    for annotation in annotations:
        box = annotation.get("bbox")
        image_area = area_of.get(int(annotation["image_id"]))
        if not isinstance(box, list) or len(box) != 4 or image_area is None:
            continue
        share = float(np.clip(float(box[2]) * float(box[3]) / image_area, 0.0, 1.0))
        row, column = row_of[int(annotation["image_id"])], column_of[annotation["category_id"]]
        largest[row, column] = share if np.isnan(largest[row, column]) else max(largest[row, column], share)
    known = ~np.isnan(largest)
    if not known.any():
        return None
    difficulty = 1.0 - largest
    return np.where(known, difficulty, float(np.median(difficulty[known])))
