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
class IngestBatch:
    """What one input file adds to the store. Readers validate; the store merges.

    Attributes
    ----------
    kind : str
        ``coco``, ``table`` or ``features`` (the ``sources.kind`` column).
    path, sha256, images_root
        The file, its content hash (re-ingesting the same content changes nothing) and the image folder.
    header : dict
        COCO top-level keys other than images/annotations/categories, kept for the export.
    images, categories, annotations : list[dict]
        One dict per row of the store table of that name (``record`` is the source's JSON record).
    positives : set[tuple[int, int]]
        (image_id, category_id) cells the source labels positive.
    embedding_image_ids, embeddings : np.ndarray, optional
        int64 [N] and float32 [N, D], for features tables.
    """

    kind: str
    path: Path
    sha256: str
    images_root: Path | None
    header: dict[str, Any] = field(default_factory=dict)
    images: list[dict[str, Any]] = field(default_factory=list)
    categories: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    positives: set[tuple[int, int]] = field(default_factory=set)
    embedding_image_ids: np.ndarray | None = None
    embeddings: np.ndarray | None = None


@dataclass
class KnownVocabulary:
    """What the store already holds, so a table can reuse its ids."""

    category_ids: Mapping[str, int] = field(default_factory=dict)
    image_ids_by_file: Mapping[str, int] = field(default_factory=dict)
    next_image_id: int = 1
    next_category_id: int = 1
