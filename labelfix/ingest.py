"""Ingest entry points, the door in: read and validate a file (io/), then merge it into the store (one transaction).

:mod:`labelfix.export` is the door out.
"""

from __future__ import annotations

from pathlib import Path

from labelfix.io.coco import CheckImages, read_coco
from labelfix.io.table import read_features_table, read_label_table
from labelfix.store.catalog import IngestSummary, ingest_batch, known_vocabulary
from labelfix.store.database import Store


def ingest_coco(store: Store, *, annotations: str | Path, images: str | Path | None,
                check_images: CheckImages = "full", split: str = "train") -> IngestSummary:
    """Ingest a COCO file; image-level labels are the categories of each image's annotations."""
    batch = read_coco(annotations, images_root=images, check_images=check_images, default_split=split)
    return ingest_batch(store, batch)


def ingest_table(store: Store, *, table: str | Path, images: str | Path, add_classes: bool = False,
                 check_images: CheckImages = "full", split: str = "train") -> IngestSummary:
    """Ingest a CSV/Parquet label table (``file_name``, ``labels``, optional ``split``, ``image_id``)."""
    batch = read_label_table(table, images_root=images, known=known_vocabulary(store), add_classes=add_classes,
                             check_images=check_images, default_split=split)
    return ingest_batch(store, batch)


def ingest_features(store: Store, *, table: str | Path, add_classes: bool = False,
                    split: str = "train") -> IngestSummary:
    """Ingest a features table (``image_id``, ``labels``, ``embedding``): no image files needed."""
    batch = read_features_table(table, known=known_vocabulary(store), add_classes=add_classes, default_split=split)
    return ingest_batch(store, batch)
