"""Ingest entry points, the door in: read and validate a file (io/), then merge it into the store (one transaction).

The file's content hash is checked first: a file already ingested is not read again. A file ingested again
after an edit (an earlier version in the store: :mod:`labelfix.store.source_versions`) only adds labels, with
a warning that says what the store keeps; with ``replace_source`` it replaces the earlier version.
:mod:`labelfix.export` is the door out.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from labelfix.errors import LabelfixWarning
from labelfix.io.coco import CheckImages, read_coco
from labelfix.io.common import file_sha256
from labelfix.io.table import read_features_table, read_label_table
from labelfix.ingest_contract import IngestBatch
from labelfix.store.catalog import IngestSummary, ingest_batch, is_ingested, known_vocabulary, replace_in_force
from labelfix.store.database import Store

ALREADY_INGESTED = IngestSummary(None, True, 0, 0, 0, 0)
EMPTY_INPUT = IngestSummary(None, False, 0, 0, 0, 0, empty_input=True)


def _root(images: str | Path | None) -> Path | None:
    return None if images is None else Path(images).resolve()


def _seen_before(store: Store, *, sha256: str, kind: str, images_root: Path | None,
                 replace_source: bool) -> IngestSummary | None:
    """The summary for a file already ingested (with ``replace_source``, its earlier versions replaced now)."""
    if not is_ingested(store, sha256=sha256, kind=kind, images_root=images_root):
        return None
    if replace_source:
        return replace_in_force(store, sha256=sha256, kind=kind, images_root=images_root)
    return ALREADY_INGESTED


def _merge(store: Store, batch: IngestBatch, *, replace_source: bool) -> IngestSummary:
    summary = ingest_batch(store, batch, replace=replace_source)
    diff = summary.versions
    if diff is not None and not summary.replaced:
        labels = "original label" if diff.labels_not_in_file == 1 else "original labels"
        kept = (f" The store keeps {diff.labels_not_in_file} {labels} that only the earlier version gives "
                f"(e.g. {diff.example}): an ingest adds labels, it never removes one."
                if diff.labels_not_in_file else "")
        images = (f" {diff.images_not_in_file} images only the earlier version lists stay in the store."
                  if diff.images_not_in_file else "")
        warnings.warn(LabelfixWarning(
            f"{batch.path.name} was ingested before with other content: {diff.names()}; both versions are now in "
            f"the store, and `export coco --inline` writes one file for each.{kept}{images} If this file is an "
            f"edited version of it, run the same command with --replace-source: the store's original labels "
            f"then follow this version (reviewers' decisions are kept)"), stacklevel=3)
    return summary


def ingest_coco(store: Store, *, annotations: str | Path, images: str | Path | None,
                check_images: CheckImages = "full", split: str = "train", progress: bool = True,
                replace_source: bool = False) -> IngestSummary:
    """Ingest a COCO file; image-level labels are the categories of each image's annotations.

    An image already in the store (the same file, e.g. from another annotation pass) gains this file's
    labels; a new one keeps its COCO id when the store has no image with that id (per-split files that
    each number from 1 get new ids), and the file's own ids are kept for its inline export.
    ``replace_source``: the file is an edited version of one ingested before and replaces it
    (:func:`labelfix.store.catalog.replace_sources`); without it an earlier version gets a warning.
    """
    sha256 = file_sha256(Path(annotations))
    seen = _seen_before(store, sha256=sha256, kind="coco", images_root=_root(images), replace_source=replace_source)
    if seen is not None:
        return seen
    store.cache_dir.mkdir(parents=True, exist_ok=True)  # the records are spooled beside the store, not in /tmp
    batch = read_coco(annotations, images_root=images, check_images=check_images, default_split=split,
                      progress=progress, sha256=sha256, spool_dir=store.cache_dir)
    try:
        return _merge(store, batch, replace_source=replace_source)
    finally:
        batch.discard()


def ingest_table(store: Store, *, table: str | Path, images: str | Path, add_classes: bool = False,
                 check_images: CheckImages = "full", split: str = "train",
                 label_separator: str = ";", replace_source: bool = False) -> IngestSummary:
    """Ingest a CSV/Parquet label table (``file_name``, ``labels``, optional ``split``, ``image_id``);
    ``replace_source`` as for :func:`ingest_coco`."""
    sha256 = file_sha256(Path(table))
    seen = _seen_before(store, sha256=sha256, kind="table", images_root=_root(images), replace_source=replace_source)
    if seen is not None:
        return seen
    batch = read_label_table(table, images_root=images, known=known_vocabulary(store), add_classes=add_classes,
                             check_images=check_images, default_split=split, label_separator=label_separator,
                             sha256=sha256)
    if not batch.images:
        # Most likely a table saved without its rows; nothing is recorded, so the same file with rows later
        # is not taken for one already ingested.
        warnings.warn(LabelfixWarning(f"{Path(table).name} has a header and no rows: nothing was ingested"),
                      stacklevel=2)
        return EMPTY_INPUT
    return _merge(store, batch, replace_source=replace_source)


def ingest_features(store: Store, *, table: str | Path, add_classes: bool = False,
                    split: str = "train", replace_source: bool = False) -> IngestSummary:
    """Ingest a features table (``image_id``, ``labels``, ``embedding``): no image files needed;
    ``replace_source`` as for :func:`ingest_coco`."""
    sha256 = file_sha256(Path(table))
    seen = _seen_before(store, sha256=sha256, kind="features", images_root=None, replace_source=replace_source)
    if seen is not None:
        return seen
    batch = read_features_table(table, known=known_vocabulary(store), add_classes=add_classes, default_split=split,
                                sha256=sha256)
    return _merge(store, batch, replace_source=replace_source)
