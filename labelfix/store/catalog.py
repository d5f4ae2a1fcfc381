"""Merge validated input batches into the store: sources, images, categories, annotations, labels.

The store's input contract (:class:`~labelfix.ingest_contract.IngestBatch` in,
:class:`~labelfix.ingest_contract.KnownVocabulary` out) is defined in :mod:`labelfix.ingest_contract`,
a plain-data module below both ``io/`` and ``store/``: readers build batches without importing the
store, and the store merges them without importing any reader. :mod:`labelfix.ingest` joins the two.
This module owns the ``sources``, ``images``, ``categories``, ``annotations`` and ``original_labels``
tables (owners are named in ``schemas/migrations``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from labelfix.errors import InputError
from labelfix.ingest_contract import IngestBatch, KnownVocabulary
from labelfix.store.database import Store
from labelfix.store.embeddings import write_embedding_set
from labelfix.store.labels import add_original_positives


@dataclass(frozen=True)
class IngestSummary:
    """What an ingest changed."""

    source_id: int | None
    already_ingested: bool
    new_images: int
    new_categories: int
    new_annotations: int
    new_positive_labels: int

    def describe(self) -> str:
        if self.already_ingested:
            return "already ingested (same file content): nothing changed"
        return (f"added {self.new_images} images, {self.new_categories} categories, "
                f"{self.new_annotations} annotations, {self.new_positive_labels} positive labels")


def known_vocabulary(store: Store) -> KnownVocabulary:
    """Category names and image file names already in the store, to reuse their ids."""
    category_ids = dict(store.fetchall("SELECT name, category_id FROM categories"))
    image_ids = dict(store.fetchall("SELECT file_name, image_id FROM images WHERE file_name IS NOT NULL"))
    next_image = store.scalar("SELECT coalesce(max(image_id), 0) + 1 FROM images")
    next_category = store.scalar("SELECT coalesce(max(category_id), 0) + 1 FROM categories")
    return KnownVocabulary(category_ids=category_ids, image_ids_by_file=image_ids,
                           next_image_id=int(next_image), next_category_id=int(next_category))


def _check_categories(store: Store, batch: IngestBatch) -> list[dict]:
    existing = {cid: name for cid, name in store.fetchall("SELECT category_id, name FROM categories")}
    by_name = {name: cid for cid, name in existing.items()}
    new = []
    for category in batch.categories:
        cid, name = category["category_id"], category["name"]
        if cid in existing:
            if existing[cid] != name:
                raise InputError(f"category id {cid} is {name!r} here but {existing[cid]!r} in the store",
                                 file=batch.path, record=f"category id {cid}",
                                 fix="use the store's category ids, or ingest into a new --db")
            continue
        if name in by_name:
            raise InputError(f"category {name!r} has id {cid} here but {by_name[name]} in the store",
                             file=batch.path, record=f"category id {cid}",
                             fix="use the store's category ids, or ingest into a new --db")
        new.append(category)
    return new


def _check_images(store: Store, batch: IngestBatch) -> list[dict]:
    existing = dict(store.fetchall("SELECT image_id, coalesce(file_name, '') FROM images"))
    new = []
    for image in batch.images:
        image_id = image["image_id"]
        if image_id in existing:
            if existing[image_id] != (image["file_name"] or ""):
                raise InputError(
                    f"image id {image_id} is {image['file_name']!r} here but {existing[image_id]!r} in the store",
                    file=batch.path, record=f"image id {image_id}",
                    fix="image ids must be unique across files: renumber this file's images, or use a new --db")
            continue
        new.append(image)
    return new


def ingest_batch(store: Store, batch: IngestBatch) -> IngestSummary:
    """Add a validated batch to the store in one transaction; re-ingesting a file changes nothing.

    Raises
    ------
    InputError
        When the batch conflicts with the store (an id that means something else there). Nothing is written.
    """
    with store.transaction():
        if store.scalar("SELECT source_id FROM sources WHERE sha256 = ? AND kind = ?", [batch.sha256, batch.kind]):
            return IngestSummary(None, True, 0, 0, 0, 0)
        new_categories = _check_categories(store, batch)
        new_images = _check_images(store, batch)
        source_id = int(store.scalar("SELECT coalesce(max(source_id), 0) + 1 FROM sources"))
        store.execute(
            "INSERT INTO sources (source_id, kind, path, sha256, images_root, header) VALUES (?, ?, ?, ?, ?, ?)",
            [source_id, batch.kind, str(batch.path), batch.sha256,
             str(batch.images_root) if batch.images_root else None, json.dumps(batch.header)])
        if new_categories:
            categories = pa.table({
                "category_id": [c["category_id"] for c in new_categories],
                "name": [c["name"] for c in new_categories],
                "supercategory": [c["supercategory"] for c in new_categories],
                "record": [json.dumps(c["record"], ensure_ascii=False) for c in new_categories]})
            store.insert_arrow("INSERT INTO categories SELECT category_id, name, supercategory, record FROM batch_categories",
                               batch_categories=categories)
        if new_images:
            images = pa.table({
                "image_id": pa.array([i["image_id"] for i in new_images], pa.int64()),
                "file_name": [i["file_name"] for i in new_images],
                "width": pa.array([i["width"] for i in new_images], pa.int32()),
                "height": pa.array([i["height"] for i in new_images], pa.int32()),
                "split": [i["split"] for i in new_images],
                "record": [json.dumps(i["record"], ensure_ascii=False) for i in new_images]})
            root = str(batch.images_root) if batch.images_root else None
            store.insert_arrow(f"INSERT INTO images SELECT image_id, file_name, width, height, split, "
                               f"{source_id}, {_sql_text(root)}, record FROM batch_images", batch_images=images)
        new_annotations = 0
        if batch.annotations:
            annotations = pa.table({
                "annotation_id": pa.array([a["annotation_id"] for a in batch.annotations], pa.int64()),
                "image_id": pa.array([a["image_id"] for a in batch.annotations], pa.int64()),
                "category_id": pa.array([a["category_id"] for a in batch.annotations], pa.int64()),
                "record": [json.dumps(a["record"], ensure_ascii=False) for a in batch.annotations]})
            store.insert_arrow(f"INSERT INTO annotations SELECT {source_id}, annotation_id, image_id, category_id, "
                               f"record FROM batch_annotations", batch_annotations=annotations)
            new_annotations = len(batch.annotations)
        added_labels = 0
        if batch.positives:
            cells = sorted(batch.positives)
            positives = pa.table({"image_id": pa.array([c[0] for c in cells], pa.int64()),
                                  "category_id": pa.array([c[1] for c in cells], pa.int64())})
            # A cell a reviewer already decided keeps its decision: reviews outrank re-ingested originals.
            added_labels = add_original_positives(store, cells=positives)
            store.insert_arrow(f"INSERT INTO original_labels SELECT image_id, category_id, {source_id} "
                               f"FROM batch_positives ON CONFLICT DO NOTHING", batch_positives=positives)
        if batch.embeddings is not None:
            assert batch.embedding_image_ids is not None, "a features batch carries its image ids"
            write_embedding_set(store, name=f"features-{batch.sha256[:12]}", backbone="features",
                                weights_hash=batch.sha256[:12], image_ids=batch.embedding_image_ids,
                                embeddings=batch.embeddings)
        return IngestSummary(source_id, False, len(new_images), len(new_categories), new_annotations, added_labels)


def _sql_text(value: str | None) -> str:
    """A SQL string literal (or NULL) for a value that came from a resolved path."""
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def images_root_of(store: Store, image_id: int) -> Path | None:
    root = store.scalar("SELECT images_root FROM images WHERE image_id = ?", [image_id])
    return Path(root) if root else None


# -- reading the catalog back (the export) ------------------------------------------------------------------
def _loads(text: str | None) -> Any:
    return json.loads(text) if text else {}


def source_headers(store: Store, *, kind: str | None = None) -> list[tuple[int, dict[str, Any]]]:
    """(source_id, COCO top-level keys) of every source (of one ``kind``), in ingest order."""
    where, parameters = ("", []) if kind is None else ("WHERE kind = ?", [kind])
    return [(int(source_id), _loads(text)) for source_id, text in
            store.fetchall(f"SELECT source_id, header FROM sources {where} ORDER BY source_id", parameters)]


def image_records(store: Store, *, source_id: int | None = None) -> list[dict[str, Any]]:
    """The source's image records (every key kept), by image id; all images or one source's."""
    where, parameters = ("", []) if source_id is None else ("WHERE source_id = ?", [source_id])
    return [_loads(text) for (text,) in
            store.fetchall(f"SELECT record FROM images {where} ORDER BY image_id", parameters)]


def category_records(store: Store) -> list[dict[str, Any]]:
    """The category records (every key kept), by category id."""
    return [_loads(text) for (text,) in store.fetchall("SELECT record FROM categories ORDER BY category_id")]


def annotation_records(store: Store, *, source_id: int) -> list[dict[str, Any]]:
    """One source's annotation records as they were, by annotation id."""
    return [_loads(text) for (text,) in store.fetchall(
        "SELECT record FROM annotations WHERE source_id = ? ORDER BY annotation_id", [source_id])]
