"""The validated, store-ready content of one input file, whatever its format."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SPLITS = ("train", "val", "test")


@dataclass
class IngestBatch:
    """What one input file adds to the store. Readers validate; the store merges."""

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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_int_id(value: Any) -> bool:
    """COCO ids are integers; bools and numeric strings are refused."""
    return isinstance(value, int) and not isinstance(value, bool)
