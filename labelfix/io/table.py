"""Read label tables (CSV / Parquet, one row per image) and features tables (Parquet with embeddings)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from labelfix.errors import InputError
from labelfix.ingest_contract import SPLITS, IngestBatch, KnownVocabulary
from labelfix.io.common import file_sha256, is_int_id
from labelfix.io.coco import CheckImages
from labelfix.io.images import check_image, safe_image_path


def _read_arrow(path: Path) -> pa.Table:
    if not path.exists():
        raise InputError(f"file {path} does not exist", file=path, fix="check the path")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            # Read every column as text: ids and labels are parsed (and checked) below.
            return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
                column_types={"labels": pa.string(), "file_name": pa.string(), "split": pa.string()},
                strings_can_be_null=False))
        if suffix in (".parquet", ".pq"):
            return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"cannot read the table ({error})", file=path,
                         fix="check it is a valid CSV (with a header row) or Parquet file") from error
    raise InputError(f"unsupported table type {suffix!r}", file=path, fix="use .csv or .parquet")


def _row_label(path: Path, index: int) -> str:
    # CSV line numbers count the header as line 1; Parquet rows are 0-based.
    return f"line {index + 2}" if path.suffix.lower() == ".csv" else f"row {index}"


def _parse_labels(value: Any, *, path: Path, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, float) and math.isnan(value):
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as error:
                raise InputError(f"malformed label list {value!r} ({error.msg})", file=path, record=where,
                                 fix='write labels as ["cat", "dog"] or as cat;dog') from error
            if not isinstance(items, list):
                raise InputError(f"malformed label list {value!r}", file=path, record=where,
                                 fix='write labels as ["cat", "dog"] or as cat;dog')
        else:
            items = [part.strip() for part in text.split(";")]
    else:
        raise InputError(f"labels value {value!r} is neither a list nor a string", file=path, record=where,
                         fix='write labels as ["cat", "dog"] or as cat;dog')
    names = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise InputError(f"malformed label list {value!r}: {item!r} is not a class name", file=path,
                             record=where, fix="remove empty entries; class names are strings")
        names.append(item.strip())
    return names


def _assign_categories(path: Path, rows_labels: list[list[str]], known: KnownVocabulary,
                       add_classes: bool) -> dict[str, int]:
    category_ids = dict(known.category_ids)
    allow_new = add_classes or not category_ids
    next_id = known.next_category_id
    new_names = sorted({name for names in rows_labels for name in names} - set(category_ids))
    if new_names and not allow_new:
        first = next(i for i, names in enumerate(rows_labels) if set(names) & set(new_names))
        raise InputError(f"unknown class {new_names[0]!r} (known: {', '.join(sorted(category_ids))})",
                         file=path, record=_row_label(path, first),
                         fix="correct the class name, or pass --add-classes to create it")
    for name in new_names:
        category_ids[name] = next_id
        next_id += 1
    return category_ids


def _split_of(table_row: dict[str, Any], *, default_split: str, path: Path, where: str) -> str:
    split = table_row.get("split") or default_split
    if split not in SPLITS:
        raise InputError(f"split {split!r} is not one of {SPLITS}", file=path, record=where,
                         fix="use train, val or test")
    return split


def read_label_table(path: str | Path, *, images_root: str | Path, known: KnownVocabulary | None = None,
                     add_classes: bool = False, check_images: CheckImages = "full",
                     default_split: str = "train") -> IngestBatch:
    """Validate a label table: one row per image, ``file_name`` and ``labels`` columns.

    ``labels`` is a list of class names (Parquet list, or JSON list text in CSV) or a ``;``-separated
    string. Optional columns: ``split`` (train/val/test), ``image_id`` (integer).

    Examples
    --------
    A CSV::

        file_name,labels,split
        a.jpg,cat;dog,train
        b.jpg,"[""cat""]",val
    """
    path = Path(path)
    known = known or KnownVocabulary()
    table = _read_arrow(path)
    for column in ("file_name", "labels"):
        if column not in table.column_names:
            raise InputError(f"missing column {column!r} (found: {', '.join(table.column_names)})",
                             file=path, fix="a label table needs file_name and labels columns")
    rows = table.to_pylist()
    rows_labels = [_parse_labels(row["labels"], path=path, where=_row_label(path, i)) for i, row in enumerate(rows)]
    category_ids = _assign_categories(path, rows_labels, known, add_classes)
    root = Path(images_root).resolve()

    images: list[dict[str, Any]] = []
    positives: set[tuple[int, int]] = set()
    seen_ids: set[int] = set()
    seen_files: set[str] = set()
    next_image_id = known.next_image_id
    for index, (row, names) in enumerate(zip(rows, rows_labels)):
        where = _row_label(path, index)
        file_name = row["file_name"]
        image_path = safe_image_path(root=root, file_name=file_name, source=path, record=where)
        if file_name in seen_files:
            raise InputError(f"file_name {file_name!r} appears twice", file=path, record=where,
                             fix="one row per image: merge the label lists")
        seen_files.add(file_name)
        image_id = row.get("image_id")
        if isinstance(image_id, str) and image_id.strip().lstrip("-").isdigit():
            image_id = int(image_id)
        if image_id is None or image_id == "":
            image_id = known.image_ids_by_file.get(file_name)
            if image_id is None:
                image_id, next_image_id = next_image_id, next_image_id + 1
        elif not is_int_id(image_id):
            raise InputError(f"image_id {image_id!r} is not an integer", file=path, record=where,
                             fix="use integer image ids, or leave the column out")
        if image_id in seen_ids:
            raise InputError(f"duplicate image_id {image_id}", file=path, record=where,
                             fix="give each image its own id")
        seen_ids.add(image_id)
        width = height = None
        if check_images != "none":
            width, height = check_image(image_path, full=check_images == "full", source=path, record=where)
        split = _split_of(row, default_split=default_split, path=path, where=where)
        record = {"id": image_id, "file_name": file_name, "width": width, "height": height, "split": split}
        images.append({"image_id": image_id, "file_name": file_name, "width": width, "height": height,
                       "split": split, "record": record})
        positives.update((image_id, category_ids[name]) for name in names)

    categories = [{"category_id": cid, "name": name, "supercategory": None,
                   "record": {"id": cid, "name": name}} for name, cid in category_ids.items()]
    return IngestBatch(kind="table", path=path.resolve(), sha256=file_sha256(path), images_root=root,
                       images=images, categories=categories, positives=positives)


def read_features_table(path: str | Path, *, known: KnownVocabulary | None = None, add_classes: bool = False,
                        default_split: str = "train") -> IngestBatch:
    """Validate a features table (Parquet): ``image_id``, ``labels``, ``embedding``, optional ``split``.

    For users who already have embeddings: no image files are needed, and the embeddings become the
    store's ``features-<hash>`` embedding set.
    """
    path = Path(path)
    known = known or KnownVocabulary()
    if path.suffix.lower() not in (".parquet", ".pq"):
        raise InputError("a features table must be Parquet", file=path, fix="write it with pandas/polars to .parquet")
    table = _read_arrow(path)
    for column in ("image_id", "labels", "embedding"):
        if column not in table.column_names:
            raise InputError(f"missing column {column!r} (found: {', '.join(table.column_names)})",
                             file=path, fix="a features table needs image_id, labels and embedding")
    embedding_column = table.column("embedding").combine_chunks()
    if len(embedding_column) == 0:
        raise InputError("the features table has no rows", file=path, fix="write at least one row")
    if not pa.types.is_list(embedding_column.type) and not pa.types.is_fixed_size_list(embedding_column.type) \
            and not pa.types.is_large_list(embedding_column.type):
        raise InputError(f"embedding column is {embedding_column.type}, not a list of floats", file=path,
                         fix="store each embedding as a list (ideally fixed-size) of float32")
    # Vectorised checks: a features table may hold millions of rows.
    lengths = pc.fill_null(pc.list_value_length(embedding_column), 0).to_numpy(zero_copy_only=False)
    dim = int(lengths[0])
    bad_rows = np.flatnonzero((lengths != dim) | (lengths == 0))
    if bad_rows.size:
        index = int(bad_rows[0])
        raise InputError(f"ragged embedding: length {int(lengths[index])}, expected {dim} like row 0", file=path,
                         record=_row_label(path, index), fix="every embedding must have the same length")
    # Nulls inside an embedding (pandas writes NaN as null) become NaN here and fail the check below.
    embeddings = embedding_column.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)
    bad = ~np.isfinite(embeddings).all(axis=1)
    if bad.any():
        raise InputError("embedding holds NaN, null or infinite values", file=path,
                         record=_row_label(path, int(np.flatnonzero(bad)[0])),
                         fix="recompute or drop the rows with non-finite embeddings")
    rows = table.drop_columns(["embedding"]).to_pylist()
    rows_labels = [_parse_labels(row["labels"], path=path, where=_row_label(path, i)) for i, row in enumerate(rows)]
    category_ids = _assign_categories(path, rows_labels, known, add_classes)
    images: list[dict[str, Any]] = []
    positives: set[tuple[int, int]] = set()
    ids: list[int] = []
    for index, (row, names) in enumerate(zip(rows, rows_labels)):
        where = _row_label(path, index)
        image_id = row["image_id"]
        if not is_int_id(image_id):
            raise InputError(f"image_id {image_id!r} is not an integer", file=path, record=where,
                             fix="use integer image ids")
        ids.append(image_id)
        split = _split_of(row, default_split=default_split, path=path, where=where)
        images.append({"image_id": image_id, "file_name": row.get("file_name"), "width": None, "height": None,
                       "split": split, "record": {"id": image_id, "split": split}})
        positives.update((image_id, category_ids[name]) for name in names)
    if len(set(ids)) != len(ids):
        seen: set[int] = set()
        for index, image_id in enumerate(ids):
            if image_id in seen:
                raise InputError(f"duplicate image_id {image_id}", file=path, record=_row_label(path, index),
                                 fix="one row per image")
            seen.add(image_id)
    categories = [{"category_id": cid, "name": name, "supercategory": None,
                   "record": {"id": cid, "name": name}} for name, cid in category_ids.items()]
    return IngestBatch(kind="features", path=path.resolve(), sha256=file_sha256(path), images_root=None,
                       images=images, categories=categories, positives=positives,
                       embedding_image_ids=np.asarray(ids, dtype=np.int64), embeddings=embeddings)
