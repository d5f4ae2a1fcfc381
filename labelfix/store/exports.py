"""The ``exports`` table: one row per file an export wrote (kind, path, sha256, counts)."""

from __future__ import annotations

from pathlib import Path

from labelfix.store.database import Store


def record_export(store: Store, *, kind: str, path: Path, sha256: str, n_images: int, n_annotations: int) -> None:
    """Record one written file (its resolved path and content hash). Call inside the export's transaction."""
    store.execute("INSERT INTO exports (kind, path, sha256, n_images, n_annotations) VALUES (?, ?, ?, ?, ?)",
                  [kind, str(Path(path).resolve()), sha256, n_images, n_annotations])
