"""Ingest entry points, the door in: read and validate a file (io/), then merge it into the store (one transaction).

The file's content hash is checked first: a file already ingested is not read again.
:mod:`labelfix.export` is the door out.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from labelfix.errors import LabelfixWarning
from labelfix.io.coco import CheckImages, read_coco
from labelfix.io.common import file_sha256
from labelfix.io.table import read_features_table, read_label_table
from labelfix.store.catalog import IngestSummary, ingest_batch, is_ingested, known_vocabulary
from labelfix.store.database import Store

ALREADY_INGESTED = IngestSummary(None, True, 0, 0, 0, 0)
EMPTY_INPUT = IngestSummary(None, False, 0, 0, 0, 0, empty_input=True)


def _root(images: str | Path | None) -> Path | None:
    return None if images is None else Path(images).resolve()


def ingest_coco(store: Store, *, annotations: str | Path, images: str | Path | None,
                check_images: CheckImages = "full", split: str = "train", progress: bool = True) -> IngestSummary:
    """Ingest a COCO file; image-level labels are the categories of each image's annotations.

    An image already in the store (the same file, e.g. from another annotation pass) gains this file's
    labels; a new one keeps its COCO id when the store has no image with that id (per-split files that
    each number from 1 get new ids), and the file's own ids are kept for its inline export.
    """
    sha256 = file_sha256(Path(annotations))
    if is_ingested(store, sha256=sha256, kind="coco", images_root=_root(images)):
        return ALREADY_INGESTED
    store.cache_dir.mkdir(parents=True, exist_ok=True)  # the records are spooled beside the store, not in /tmp
    batch = read_coco(annotations, images_root=images, check_images=check_images, default_split=split,
                      progress=progress, sha256=sha256, spool_dir=store.cache_dir)
    try:
        return ingest_batch(store, batch)
    finally:
        batch.discard()


def ingest_table(store: Store, *, table: str | Path, images: str | Path, add_classes: bool = False,
                 check_images: CheckImages = "full", split: str = "train",
                 label_separator: str = ";") -> IngestSummary:
    """Ingest a CSV/Parquet label table (``file_name``, ``labels``, optional ``split``, ``image_id``)."""
    sha256 = file_sha256(Path(table))
    if is_ingested(store, sha256=sha256, kind="table", images_root=_root(images)):
        return ALREADY_INGESTED
    batch = read_label_table(table, images_root=images, known=known_vocabulary(store), add_classes=add_classes,
                             check_images=check_images, default_split=split, label_separator=label_separator,
                             sha256=sha256)
    if not batch.images:
        # Most likely a table saved without its rows; nothing is recorded, so the same file with rows later
        # is not taken for one already ingested.
        warnings.warn(LabelfixWarning(f"{Path(table).name} has a header and no rows: nothing was ingested"),
                      stacklevel=2)
        return EMPTY_INPUT
    return ingest_batch(store, batch)


def ingest_features(store: Store, *, table: str | Path, add_classes: bool = False,
                    split: str = "train") -> IngestSummary:
    """Ingest a features table (``image_id``, ``labels``, ``embedding``): no image files needed."""
    sha256 = file_sha256(Path(table))
    if is_ingested(store, sha256=sha256, kind="features", images_root=None):
        return ALREADY_INGESTED
    batch = read_features_table(table, known=known_vocabulary(store), add_classes=add_classes, default_split=split,
                                sha256=sha256)
    return ingest_batch(store, batch)
