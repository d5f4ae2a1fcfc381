"""The ingest contract: what a reader hands the store, and what the store tells a reader it already holds.

``io/`` readers validate one input file into an :class:`IngestBatch`; ``store.catalog.ingest_batch``
merges it. Table readers reuse the store's ids through a :class:`KnownVocabulary` that
``store.catalog.known_vocabulary`` builds. The store defines the contract, but it lives here, below
both ``io/`` and ``store/``, so that neither imports the other: :mod:`labelfix.ingest` (the door in)
is the one module that joins them. Plain data only: no file or store access.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SPLITS = ("train", "val", "test")


@dataclass
class AnnotationColumns:
    """A source's annotations as columns (a COCO file may hold millions): one entry per annotation, in file order.

    Attributes
    ----------
    annotation_ids : np.ndarray
        int64 [A], the source's ids.
    image_rows : np.ndarray
        int64 [A], the annotated image's position in :attr:`IngestBatch.images`.
    category_ids : np.ndarray
        int64 [A], the source's category ids.

    The records themselves are in :attr:`IngestBatch.record_files` (``annotations``).
    """

    annotation_ids: np.ndarray
    image_rows: np.ndarray
    category_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.annotation_ids)


@dataclass
class IngestBatch:
    """What one input file adds to the store. Readers validate; the store merges.

    Identity: an image is its file (``file_key``: the images root joined with the normalised relative
    ``file_name``); a category is its name. The store gives each new image and category its own id (the
    source's id when that is free) and keeps every source's own ids beside, for that source's export.

    Attributes
    ----------
    kind : str
        ``coco``, ``table`` or ``features`` (the ``sources.kind`` column).
    path, sha256, images_root
        The file, its content hash (re-ingesting the same content changes nothing) and the image folder.
    header : dict
        COCO top-level keys other than images/annotations/categories, kept for the export.
    images : list[dict]
        One per image, in file order: ``image_id`` (the source's id: an int, or a string for a features
        table keyed by names), ``file_name`` (normalised, or None), ``file_key`` (identity, or None: then the
        id is the identity), ``width``, ``height``, ``split`` and ``record`` (the source's JSON text).
    categories : list[dict]
        ``category_id`` (the source's), ``name``, ``supercategory`` and ``record`` (JSON text).
    annotations : AnnotationColumns, optional
        COCO annotations.
    positives : np.ndarray
        int64 [K, 2]: (position in ``images``, source category id) of every cell the source labels positive.
    negatives : np.ndarray
        int64 [K, 2]: the same for cells a reviewer verified absent (the ``negative_labels`` list of a
        labelfix ``labels.json``), so an export and its re-ingest hold the same labels.
    embeddings : np.ndarray, optional
        float32 [N, D] for features tables, row i belonging to ``images[i]``.
    record_files : dict[str, Path]
        For large sources (COCO): the records spooled to disk instead of held in memory, one JSON array
        file per section, the records' source text in file order: ``images`` (the images' ``record`` is then
        None; record i is ``images[i]``) and ``annotations`` (record i is :attr:`annotations` entry i). The
        reader writes them, the store reads them, :meth:`discard` removes them.
    """

    kind: str
    path: Path
    sha256: str
    images_root: Path | None
    header: dict[str, Any] = field(default_factory=dict)
    images: list[dict[str, Any]] = field(default_factory=list)
    categories: list[dict[str, Any]] = field(default_factory=list)
    annotations: AnnotationColumns | None = None
    positives: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    negatives: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    embeddings: np.ndarray | None = None
    record_files: dict[str, Path] = field(default_factory=dict)

    def discard(self) -> None:
        """Remove the spooled record files (after the store took them, or on failure)."""
        for path in self.record_files.values():
            path.unlink(missing_ok=True)
        self.record_files = {}


@dataclass
class KnownVocabulary:
    """What the store already holds, so a table can reuse its ids."""

    category_ids: Mapping[str, int] = field(default_factory=dict)
    next_category_id: int = 1
