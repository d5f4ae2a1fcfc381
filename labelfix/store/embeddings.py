"""Embedding sets: Parquet files beside the store (image_id, embedding), registered in ``embedding_sets``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from labelfix.errors import StoreError
from labelfix.internal.atomic import atomic_target
from labelfix.store.database import Store


def embedding_path(store: Store, name: str) -> Path:
    return store.cache_dir / "embeddings" / f"{name}.parquet"


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    """Write Parquet beside ``path``, then rename: a reader never sees half a file."""
    with atomic_target(path) as temporary:
        pq.write_table(table, temporary)


def write_embedding_set(store: Store, *, name: str, backbone: str, weights_hash: str, image_ids: np.ndarray,
                        embeddings: np.ndarray) -> Path:
    """Save embeddings (rows aligned with ``image_ids``) and register them under ``name``."""
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    dim = int(embeddings.shape[1])
    table = pa.table({
        "image_id": pa.array(np.asarray(image_ids, dtype=np.int64)),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(embeddings.reshape(-1)), dim)})
    path = embedding_path(store, name)
    write_parquet_atomic(table, path)
    with store.transaction():
        store.execute("DELETE FROM embedding_sets WHERE name = ?", [name])
        store.execute("INSERT INTO embedding_sets (name, backbone, weights_hash, dim, path) VALUES (?, ?, ?, ?, ?)",
                      [name, backbone, weights_hash, dim, str(path)])
    return path


def read_embedding_set(store: Store, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(image_ids, embeddings float32 [N, D]) of a registered set."""
    row = store.fetchone("SELECT path, dim FROM embedding_sets WHERE name = ?", [name])
    if row is None:
        names = [r[0] for r in store.fetchall("SELECT name FROM embedding_sets ORDER BY created_at")]
        raise StoreError(f"no embedding set {name!r} (have: {', '.join(names) or 'none'})", file=store.path,
                         fix="run `labelfix embed` first, or name an existing set")
    path, dim = Path(row[0]), int(row[1])
    if not path.exists():
        raise StoreError(f"embedding file {path} is missing", file=store.path, fix="run `labelfix embed` again")
    table = pq.read_table(path)
    ids = table.column("image_id").to_numpy()
    flat = table.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return ids, flat.reshape(-1, dim).astype(np.float32, copy=False)


def embedding_sets(store: Store) -> list[dict]:
    rows = store.fetchall("SELECT name, backbone, weights_hash, dim, path, created_at FROM embedding_sets "
                          "ORDER BY created_at")
    keys = ("name", "backbone", "weights_hash", "dim", "path", "created_at")
    return [dict(zip(keys, row)) for row in rows]
