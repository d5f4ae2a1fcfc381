"""Merge validated input batches into the store: sources, images, categories, annotations, labels.

The store's input contract (:class:`~labelfix.ingest_contract.IngestBatch` in,
:class:`~labelfix.ingest_contract.KnownVocabulary` out) is defined in :mod:`labelfix.ingest_contract`,
a plain-data module below both ``io/`` and ``store/``: readers build batches without importing the
store, and the store merges them without importing any reader. :mod:`labelfix.ingest` joins the two.
This module owns the ``sources``, ``images``, ``categories``, ``annotations``, ``original_labels``,
``source_images`` and ``source_categories`` tables (owners are named in ``schemas/migrations``).

Identity (schema version 4): an image is its file (``images.file_key``), a category its name. The store
id of a new image or category is the source's id when free, else the next free one; each source's own
ids and records stay in ``source_images`` / ``source_categories``, so its inline export is the source as
it was, and the labels of every source naming the same file merge on one image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import duckdb
import numpy as np

from labelfix.errors import InputError
from labelfix.ingest_contract import IngestBatch, KnownVocabulary
from labelfix.store.database import Store
from labelfix.store.embeddings import write_embedding_set
from labelfix.store.labels import add_original_positives, add_verified_negatives, remove_original_positives
from labelfix.store.source_versions import VersionDiff, compare_versions, find_earlier_versions, only_in_sql


_INT64_MAX = 2**63 - 1  # the largest BIGINT id
INGEST_MEMORY_LIMIT = "192MB"  # DuckDB's memory while an ingest writes (the Python side is apart)


@dataclass(frozen=True)
class IngestSummary:
    """What an ingest changed."""

    source_id: int | None
    already_ingested: bool
    new_images: int
    new_categories: int
    new_annotations: int
    new_positive_labels: int
    known_images: int = 0  # images of the file already in the store (same file): labels merged
    new_category_names: tuple[str, ...] = ()
    empty_input: bool = False  # the file holds no rows: nothing was ingested (not recorded as a source)
    versions: VersionDiff | None = None  # earlier versions of this file in the store, and what only they give
    replaced: bool = False  # ... which this file replaced (--replace-source): their labels only they gave are gone

    def describe(self) -> str:
        replaced = ""
        if self.replaced and self.versions is not None:
            diff = self.versions
            images = (f"; {diff.images_not_in_file} images only it listed stay in the store"
                      if diff.images_not_in_file else "")
            example = f" (e.g. {diff.example})" if diff.example else ""
            labels = "original label" if diff.labels_not_in_file == 1 else "original labels"
            replaced = (f"; replaced the earlier version {diff.names()}: removed {diff.labels_not_in_file} "
                        f"{labels} only it had{example}, reviewers' decisions kept{images}")
        if self.already_ingested:
            return f"already ingested (same file content){replaced or ': nothing changed'}"
        if self.empty_input:
            return "nothing ingested (the table has no rows)"
        known = f" ({self.known_images} already in the store: labels merged)" if self.known_images else ""
        names = ""
        if self.new_category_names:
            shown = ", ".join(self.new_category_names[:12])
            names = f" ({shown}{', ...' if len(self.new_category_names) > 12 else ''})"
        return (f"added {self.new_images} images{known}, {self.new_categories} categories{names}, "
                f"{self.new_annotations} annotations, {self.new_positive_labels} positive labels{replaced}")


def is_ingested(store: Store, *, sha256: str, kind: str, images_root: Path | None) -> bool:
    """Whether a file with this content was already ingested as ``kind`` over the same images folder
    (checked before the file is read; the same annotations over another folder are other images)."""
    return bool(store.scalar("SELECT count(*) FROM sources WHERE sha256 = ? AND kind = ? "
                             "AND images_root IS NOT DISTINCT FROM ? AND replaced_by IS NULL",
                             [sha256, kind, None if images_root is None else str(images_root)]))


def known_vocabulary(store: Store) -> KnownVocabulary:
    """Category names already in the store, to reuse their ids."""
    category_ids = dict(store.fetchall("SELECT name, category_id FROM categories"))
    # Below 2^62, so a source's category ids up to the 64-bit limit cannot make it overflow (the store
    # gives a taken id's category a free one in any case).
    next_category = store.scalar("SELECT coalesce(max(category_id) FILTER (WHERE category_id < 4611686018427387904), "
                                 "0) + 1 FROM categories")
    return KnownVocabulary(category_ids=category_ids, next_category_id=int(next_category))


def _source_key(image: dict[str, Any]) -> str:
    """The source's own id of an image as JSON text (a table without image_id: its file name)."""
    key = image["image_id"] if image["image_id"] is not None else image["file_name"]
    if type(key) is int:  # noqa: E721 - the usual case (COCO ids), 118k times: str() is json.dumps for an int
        return str(key)
    return json.dumps(key, ensure_ascii=False)


def _store_category_ids(store: Store, batch: IngestBatch) -> tuple[dict[int, int], list[dict[str, Any]]]:
    """Source category id -> store category id (a category is its name), and the categories to create."""
    by_name = dict(store.fetchall("SELECT name, category_id FROM categories"))
    taken = set(by_name.values())
    mapping: dict[int, int] = {}
    new, later = [], []
    for category in batch.categories:
        source_id, name = category["category_id"], category["name"]
        if name in by_name:
            mapping[source_id] = by_name[name]
            continue
        if source_id not in taken:  # keep the source's id when it is free
            mapping[source_id] = source_id
            taken.add(source_id)
        else:
            later.append(category)
        new.append(category)
    for category, new_id in zip(later, _free_ids(taken, len(later))):
        mapping[category["category_id"]] = new_id
    return mapping, new


def _store_image_ids(store: Store, batch: IngestBatch) -> tuple[np.ndarray, list[int]]:
    """The store id of each batch image (an image is its file) and the rows of the images to create.

    An image with a file already in the store is that image; a new one keeps its source id when that id
    is free in the store, else gets the next free id. A features-table image without a file name is
    identified by its id, as before version 4.
    """
    existing = {int(image_id): (key, split) for image_id, key, split in
                store.fetchall("SELECT image_id, file_key, split FROM images")}
    by_key = {key: image_id for image_id, (key, _) in existing.items() if key is not None}
    ids = np.zeros(len(batch.images), np.int64)
    new_rows: list[int] = []
    unassigned: list[int] = []
    taken = set(existing)
    for row, image in enumerate(batch.images):
        key, source_id = image["file_key"], image["image_id"]
        found = by_key.get(key) if key is not None else (source_id if source_id in existing else None)
        if key is None and found is not None and existing[found][0] is not None:
            raise InputError(f"image id {source_id} has no file name here but is {existing[found][0]!r} in the "
                             f"store", file=batch.path, record=f"image id {source_id}",
                             fix="add a file_name column naming the same files, or ingest into a new --db")
        if found is not None:
            if existing[found][1] != image["split"]:
                raise InputError(f"image {image['file_name'] or source_id!r} is in split {image['split']!r} here but "
                                 f"{existing[found][1]!r} in the store", file=batch.path,
                                 record=f"image id {source_id}",
                                 fix=f"if they are the same images, pass --split {existing[found][1]} (or fix the "
                                     f"record's split key); if they are other files with the same names, pass "
                                     f"--images so they are told apart (an image is its file: --images joined "
                                     f"with file_name)")
            ids[row] = found
            continue
        new_rows.append(row)
        if isinstance(source_id, int) and not isinstance(source_id, bool) and source_id > 0 and source_id not in taken:
            ids[row] = source_id
            taken.add(source_id)
        else:
            unassigned.append(row)
    for row, new_id in zip(unassigned, _free_ids(taken, len(unassigned))):
        ids[row] = new_id
    return ids, new_rows


def _free_ids(taken: set[int], count: int) -> Iterator[int]:
    """``count`` ids not in ``taken``: after the largest one, or, when a source used ids up to the 64-bit
    limit (2^63-1), the free ones from 1 up.

    Examples
    --------
    >>> list(_free_ids({3, 5}, 2)), list(_free_ids({1, 2**63 - 1}, 2))
    ([6, 7], [2, 3])
    """
    start = max(taken, default=0) + 1
    if start + count <= _INT64_MAX:
        yield from range(start, start + count)
        return
    candidate = 1
    for _ in range(count):
        while candidate in taken:
            candidate += 1
        yield candidate
        candidate += 1


def _lookup(values: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    keys = np.fromiter(mapping, np.int64, len(mapping))
    targets = np.fromiter(mapping.values(), np.int64, len(mapping))
    order = np.argsort(keys)
    return targets[order][np.searchsorted(keys[order], values)]


def ingest_batch(store: Store, batch: IngestBatch, *, replace: bool = False) -> IngestSummary:
    """Add a validated batch to the store in one transaction; re-ingesting a file changes nothing.

    Images already in the store (the same file) keep their id and gain this source's labels; every
    source's own ids and records are kept in ``source_images`` / ``source_categories`` for its export.
    Earlier versions of the file (:mod:`labelfix.store.source_versions`) are reported in
    :attr:`IngestSummary.versions`; with ``replace`` this file replaces them (:func:`replace_sources`).

    Raises
    ------
    InputError
        When the batch conflicts with the store (an image in another split there). Nothing is written.
    """
    limit = store.scalar("SELECT current_setting('memory_limit')")
    # DuckDB would otherwise keep GBs of scan, insert and commit buffers for a large file; past this it
    # spills to disk (the store's .tmp folder), which the streaming inserts barely need.
    store.execute(f"SET memory_limit = '{INGEST_MEMORY_LIMIT}'")
    try:
        return _ingest(store, batch, replace=replace)
    except duckdb.OutOfMemoryException:
        if store.in_transaction:  # an outer transaction is aborted: nothing to retry in
            raise
        store.execute(f"SET memory_limit = '{limit}'")  # an unusual file: the rollback is done, try with room
        return _ingest(store, batch, replace=replace)
    finally:
        store.execute(f"SET memory_limit = '{limit}'")


def _ingest(store: Store, batch: IngestBatch, *, replace: bool) -> IngestSummary:
    with store.transaction():
        if is_ingested(store, sha256=batch.sha256, kind=batch.kind, images_root=batch.images_root):
            return IngestSummary(None, True, 0, 0, 0, 0)
        category_ids, new_categories = _store_category_ids(store, batch)
        image_ids, new_rows = _store_image_ids(store, batch)
        source_id = int(store.scalar("SELECT coalesce(max(source_id), 0) + 1 FROM sources"))
        root = str(batch.images_root) if batch.images_root else None
        store.execute(
            "INSERT INTO sources (source_id, kind, path, sha256, images_root, header) VALUES (?, ?, ?, ?, ?, ?)",
            [source_id, batch.kind, str(batch.path), batch.sha256, root, json.dumps(batch.header, ensure_ascii=False)])
        try:
            _insert_rows(store, batch, source_id=source_id, root=root, category_ids=category_ids,
                         new_categories=new_categories, image_ids=image_ids, new_rows=new_rows)
        except duckdb.InvalidInputException as error:  # e.g. a lone surrogate in a string, which Python allows
            raise InputError(f"a record cannot be stored as JSON ({error})", file=batch.path,
                             fix="save the file as valid UTF-8 JSON") from error
        new_annotations = len(batch.annotations) if batch.annotations is not None else 0
        added_labels = 0
        if len(batch.positives):
            positives = {"image_id": image_ids[batch.positives[:, 0]],
                         "category_id": _lookup(batch.positives[:, 1], category_ids)}
            # A cell a reviewer already decided keeps its decision: reviews outrank re-ingested originals.
            added_labels = add_original_positives(store, cells=positives)
            store.insert_arrow(f"INSERT INTO original_labels SELECT image_id, category_id, {source_id} "
                               f"FROM batch_positives c WHERE NOT EXISTS (SELECT 1 FROM original_labels o "
                               f"WHERE o.image_id = c.image_id AND o.category_id = c.category_id)",
                               batch_positives=positives)
            store.insert_arrow(f"INSERT INTO source_labels SELECT {source_id}, image_id, category_id "
                               f"FROM batch_positives", batch_positives=positives)
        if len(batch.negatives):
            added_labels += add_verified_negatives(store, cells={
                "image_id": image_ids[batch.negatives[:, 0]], "category_id": _lookup(batch.negatives[:, 1],
                                                                                     category_ids)})
        if batch.embeddings is not None:
            write_embedding_set(store, name=f"features-{batch.sha256[:12]}", backbone="features",
                                weights_hash=batch.sha256[:12], image_ids=image_ids, embeddings=batch.embeddings)
        versions = _versions(store, source_id=source_id, replace=replace)
        return IngestSummary(source_id, False, len(new_rows), len(new_categories), new_annotations, added_labels,
                             known_images=len(batch.images) - len(new_rows),
                             new_category_names=tuple(c["name"] for c in new_categories), versions=versions,
                             replaced=replace and versions is not None)


def _versions(store: Store, *, source_id: int, replace: bool) -> VersionDiff | None:
    """The earlier versions of a source just written, and what only they give; replaced with ``replace``."""
    earlier = find_earlier_versions(store, source_id=source_id)
    if not earlier:
        return None
    diff = compare_versions(store, earlier=earlier)
    if replace:
        replace_sources(store, old=[old for old, _ in earlier], new=source_id)
    return diff


def replace_in_force(store: Store, *, sha256: str, kind: str, images_root: Path | None) -> IngestSummary:
    """``--replace-source`` for a file already ingested (a plain ingest of the new version came first): it
    replaces its earlier versions now, without being read again."""
    with store.transaction():
        source_id = store.scalar("SELECT max(source_id) FROM sources WHERE sha256 = ? AND kind = ? "
                                 "AND images_root IS NOT DISTINCT FROM ? AND replaced_by IS NULL",
                                 [sha256, kind, None if images_root is None else str(images_root)])
        versions = None if source_id is None else _versions(store, source_id=int(source_id), replace=True)
    return IngestSummary(None if source_id is None else int(source_id), True, 0, 0, 0, 0, versions=versions,
                         replaced=versions is not None)


def replace_sources(store: Store, *, old: list[int], new: int) -> None:
    """Source ``new`` replaces the sources ``old`` (earlier versions of its file), in the caller's transaction.

    The old sources stay as history (their ``sources`` row, marked ``replaced_by``); their ids, records,
    annotations and cells go, so exports and boxes follow the new version. Original labels that no source in
    force gives any longer become unknown; a cell a person decided (accepted, rejected, added, auto) keeps
    its decision. Images only the old versions listed stay (with their decisions); those the new version
    lists take its record. Suggestions are left alone: the next ``suggest`` run supersedes open ones.
    """
    ids = ", ".join(str(int(source_id)) for source_id in old)
    gone = store.execute(only_in_sql(old, table="source_labels", columns="image_id, category_id")).fetchnumpy()
    store.execute(f"UPDATE sources SET replaced_by = {int(new)} WHERE source_id IN ({ids})")
    for table in ("annotations", "source_categories", "source_labels"):
        store.execute(f"DELETE FROM {table} WHERE source_id IN ({ids})")
    store.execute(f"UPDATE images SET source_id = {int(new)}, record = s.record FROM source_images s "
                  f"WHERE s.source_id = {int(new)} AND s.image_id = images.image_id AND images.source_id IN ({ids})")
    store.execute(f"DELETE FROM source_images WHERE source_id IN ({ids})")
    # A cell the old versions gave first keeps its original label when a source in force also gives it.
    store.execute(f"DELETE FROM original_labels WHERE source_id IN ({ids}) AND NOT EXISTS (SELECT 1 FROM "
                  f"source_labels l WHERE l.image_id = original_labels.image_id "
                  f"AND l.category_id = original_labels.category_id)")
    store.execute(f"UPDATE original_labels SET source_id = (SELECT min(l.source_id) FROM source_labels l "
                  f"WHERE l.image_id = original_labels.image_id AND l.category_id = original_labels.category_id) "
                  f"WHERE source_id IN ({ids})")
    if len(gone["image_id"]):
        remove_original_positives(store, cells=gone)


def _spooled(path: Path, *, ids: str, id_key: str) -> str:
    """SQL relation over a spool file (a JSON array of records, in source order): the columns of the
    registered table ``ids`` (``position``, ``id``, ...) and ``record``, minified. Record i is matched to
    row i of ``ids`` by a positional join (no hash join) and checked: a record whose ``id_key`` is not
    that row's ``id`` fails. Each record is parsed once (one ``json_extract`` of two paths)."""
    return (f"(SELECT p.*, CASE WHEN r.v[1]::VARCHAR = p.id::VARCHAR THEN r.v[2] "
            f"ELSE error('spooled records out of order') END AS record "
            f"FROM (SELECT json_extract(json, ['$.{id_key}', '$']) AS v FROM read_json_objects("
            f"{_sql_text(str(path))}, format = 'array', maximum_object_size = {1 << 24})) r "
            f"POSITIONAL JOIN {ids} p)")


def _ints(values: list[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1)


def _texts_of(values: list[Any]) -> np.ndarray:
    """An object array (DuckDB scans dicts of numpy arrays; None is NULL): no Arrow, so no pandas import."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _insert_rows(store: Store, batch: IngestBatch, *, source_id: int, root: str | None, category_ids: dict[int, int],
                 new_categories: list[dict[str, Any]], image_ids: np.ndarray, new_rows: list[int]) -> None:
    """The bulk inserts of :func:`ingest_batch`. Records are minified by DuckDB (``json()``); spooled
    records (large COCO files) are read by DuckDB from the reader's files, never through Python."""
    if new_categories:
        categories = {
            "category_id": _ints([category_ids[c["category_id"]] for c in new_categories]),
            "name": _texts_of([c["name"] for c in new_categories]),
            "supercategory": _texts_of([c["supercategory"] for c in new_categories]),
            "record": _texts_of([c["record"] for c in new_categories])}
        store.insert_arrow("INSERT INTO categories SELECT category_id, name, supercategory, json(record) "
                           "FROM batch_categories", batch_categories=categories)
    if batch.categories:
        store.insert_arrow(
            f"INSERT INTO source_categories SELECT {source_id}, source_category_id, category_id, position, json(record) "
            f"FROM batch_source_categories", batch_source_categories={
                "source_category_id": _ints([c["category_id"] for c in batch.categories]),
                "category_id": _ints([category_ids[c["category_id"]] for c in batch.categories]),
                "position": np.arange(len(batch.categories), dtype=np.int32),
                "record": _texts_of([c["record"] for c in batch.categories])})
    if batch.images:
        spool = batch.record_files.get("images")
        records = (_spooled(spool, ids="batch_spooled_ids", id_key="id") if spool else
                   "(SELECT position, json(record) AS record FROM batch_records)")
        tables: dict[str, dict[str, np.ndarray]] = {"batch_source_images": {
            "source_image_id": _texts_of([_source_key(i) for i in batch.images]),
            "image_id": image_ids,
            "position": np.arange(len(batch.images), dtype=np.int32)}}
        if spool is not None:  # spooled images (COCO) have integer ids
            tables["batch_spooled_ids"] = {"position": np.arange(len(batch.images), dtype=np.int32),
                                           "id": _ints([i["image_id"] for i in batch.images])}
        else:
            tables["batch_records"] = {"position": np.arange(len(batch.images), dtype=np.int32),
                                       "record": _texts_of([i["record"] for i in batch.images])}
        if new_rows:
            new = [batch.images[row] for row in new_rows]
            tables["batch_images"] = {
                "position": np.asarray(new_rows, dtype=np.int32),
                "file_name": _texts_of([i["file_name"] for i in new]),
                "width": _texts_of([i["width"] for i in new]),  # ints or None: DuckDB casts on insert
                "height": _texts_of([i["height"] for i in new]),
                "split": _texts_of([i["split"] for i in new]),
                "file_key": _texts_of([i["file_key"] for i in new])}
        store.insert_arrow(f"INSERT INTO source_images SELECT {source_id}, s.source_image_id, s.image_id, s.position, "
                           f"r.record FROM batch_source_images s JOIN {records} r USING (position)", **tables)
        if new_rows:  # their records from source_images, just written (the spool is read and parsed once)
            store.insert_arrow(
                f"INSERT INTO images (image_id, file_name, width, height, split, source_id, images_root, record, "
                f"file_key) SELECT s.image_id, b.file_name, b.width, b.height, b.split, {source_id}, "
                f"{_sql_text(root)}, s.record, b.file_key FROM batch_images b JOIN source_images s "
                f"ON s.source_id = {source_id} AND s.position = b.position", batch_images=tables["batch_images"])
    columns, spool = batch.annotations, batch.record_files.get("annotations")
    if columns is not None and len(columns) and spool is not None:
        ids = {"position": np.arange(len(columns), dtype=np.int32), "id": columns.annotation_ids,
               "image_id": image_ids[columns.image_rows], "category_id": _lookup(columns.category_ids, category_ids)}
        # Record i of the spool is annotation i: a positional join (no hash join on ids), checked record by record.
        store.insert_arrow(
            f"INSERT INTO annotations (source_id, annotation_id, image_id, category_id, record, position) "
            f"SELECT {source_id}, a.id, a.image_id, a.category_id, a.record, a.position "
            f"FROM {_spooled(spool, ids='batch_annotation_ids', id_key='id')} a", batch_annotation_ids=ids)


def _sql_text(value: str | None) -> str:
    """A SQL string literal (or NULL) for a value that came from a resolved path."""
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def images_root_of(store: Store, image_id: int) -> Path | None:
    root = store.scalar("SELECT images_root FROM images WHERE image_id = ?", [image_id])
    return Path(root) if root else None


# -- reading the catalog back (the export) ------------------------------------------------------------------
_BATCH_ROWS = 50_000


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else {}


def _texts(store: Store, sql: str, parameters: list[Any] | None = None) -> Iterator[str]:
    """The first column of a query, in batches (a cursor: consume it before the next query)."""
    reader = store.connection.sql(sql, params=parameters or None).to_arrow_reader(_BATCH_ROWS)
    for batch in reader:
        yield from batch.column(0).to_pylist()


def source_headers(store: Store, *, kind: str | None = None) -> list[tuple[int, dict[str, Any]]]:
    """(source_id, COCO top-level keys) of every source in force (of one ``kind``), in ingest order."""
    where, parameters = ("", []) if kind is None else ("AND kind = ?", [kind])
    return [(int(source_id), _loads(text)) for source_id, text in store.fetchall(
        f"SELECT source_id, header FROM sources WHERE replaced_by IS NULL {where} ORDER BY source_id", parameters)]


def source_paths(store: Store) -> dict[int, Path]:
    """The file each source in force was ingested from (replaced versions are history)."""
    return {int(source_id): Path(path) for source_id, path in
            store.fetchall("SELECT source_id, path FROM sources WHERE replaced_by IS NULL")}


def image_record_texts(store: Store) -> Iterator[str]:
    """Every image's record (JSON text, every key kept) by store id, for the merged "labels" export.

    The record gets the store's ``id`` (its own id, when different, stays as ``source_image_id``) and the
    image file's displayed ``width`` / ``height`` where it says otherwise, and the store's ``split`` where
    the record does not carry it (a split given by ``--split``; a record without one reads back as train);
    other records pass as stored.
    """
    reader = store.connection.sql("""
        SELECT record::VARCHAR, image_id, width, height,
               json_extract(record, '$.id')::VARCHAR IS DISTINCT FROM image_id::VARCHAR
               OR (width IS NOT NULL AND (json_extract(record, '$.width')::VARCHAR IS DISTINCT FROM width::VARCHAR
                   OR json_extract(record, '$.height')::VARCHAR IS DISTINCT FROM height::VARCHAR))
               OR (json_extract_string(record, '$.split') IS DISTINCT FROM split
                   AND NOT (split = 'train' AND json_extract(record, '$.split') IS NULL)),
               split
        FROM images ORDER BY image_id""").to_arrow_reader(_BATCH_ROWS)
    for batch in reader:
        for text, image_id, width, height, patch, split in zip(*(batch.column(i).to_pylist() for i in range(6))):
            if not patch:
                yield text
                continue
            record = json.loads(text)
            if "id" in record and record["id"] != image_id:
                record["source_image_id"] = record["id"]
            record["id"] = image_id
            if width is not None:
                record["width"], record["height"] = width, height
            if split != "train" or "split" in record:
                record["split"] = split
            yield json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def category_record_texts(store: Store) -> Iterator[str]:
    """Every category's record (JSON text) by store id, with the store's ``id``."""
    return _texts(store, """
        SELECT CASE WHEN json_extract(record, '$.id')::VARCHAR IS DISTINCT FROM category_id::VARCHAR
                    THEN json_merge_patch(record, json_object('id', category_id))::VARCHAR ELSE record::VARCHAR END
        FROM categories ORDER BY category_id""")


def source_image_texts(store: Store, *, source_id: int) -> Iterator[str]:
    """One source's image records as it had them, in its order."""
    return _texts(store, "SELECT record::VARCHAR FROM source_images WHERE source_id = ? ORDER BY position", [source_id])


def source_categories(store: Store, *, source_id: int) -> list[tuple[int, int, str]]:
    """(source's category id, store category id, record text) of one source's categories, in its order."""
    return [(int(a), int(b), str(c)) for a, b, c in store.fetchall(
        "SELECT source_category_id, category_id, record::VARCHAR FROM source_categories WHERE source_id = ? "
        "ORDER BY position", [source_id])]


def category_record(store: Store, *, category_id: int) -> dict[str, Any]:
    """One category's record (as first ingested)."""
    return _loads(store.scalar("SELECT record FROM categories WHERE category_id = ?", [category_id]))


def annotation_texts(store: Store, *, source_id: int) -> Iterator[str]:
    """One source's annotation records as they were, in its order."""
    return _texts(store, "SELECT record::VARCHAR FROM annotations WHERE source_id = ? "
                         "ORDER BY position NULLS LAST, annotation_id", [source_id])


def declared_size_mismatches(store: Store, *, source_id: int) -> int:
    """How many of a source's image records declare a width/height other than the image file's (as displayed)."""
    return int(store.scalar(
        "SELECT count(*) FROM source_images s JOIN images i USING (image_id) WHERE s.source_id = ? "
        "AND i.width IS NOT NULL AND json_extract(s.record, '$.width') IS NOT NULL "
        "AND (json_extract(s.record, '$.width')::VARCHAR <> i.width::VARCHAR "
        "OR json_extract(s.record, '$.height')::VARCHAR IS DISTINCT FROM i.height::VARCHAR)", [source_id]))


def max_annotation_id(store: Store, *, source_id: int) -> int:
    return int(store.scalar("SELECT coalesce(max(annotation_id), 0) FROM annotations WHERE source_id = ?",
                            [source_id]))


def image_records(store: Store, *, source_id: int | None = None) -> list[dict[str, Any]]:
    """Image records as dicts: the merged export's (store ids), or one source's as it had them."""
    texts = image_record_texts(store) if source_id is None else source_image_texts(store, source_id=source_id)
    return [_loads(text) for text in texts]


def category_records(store: Store) -> list[dict[str, Any]]:
    """The category records (every key kept, the store's ids), by category id."""
    return [_loads(text) for text in category_record_texts(store)]
