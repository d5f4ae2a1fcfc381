"""Read label tables (CSV / Parquet, one row per image) and features tables (Parquet with embeddings)."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from labelfix.errors import InputError, LabelfixWarning
from labelfix.ingest_contract import SPLITS, IngestBatch, KnownVocabulary
from labelfix.io.common import file_sha256, id_range_error, is_int_id
from labelfix.io.csv_text import read_csv_table
from labelfix.io.coco import CheckImages
from labelfix.io.images import check_image_files, image_file_key, normalize_file_name, safe_image_path


_INTEGER = re.compile(r"[+-]?[0-9]+")  # ASCII digits only: str.isdigit() also takes "²", which int() refuses


def _read_arrow(path: Path, *, required: tuple[str, ...] = ()) -> pa.Table:
    if not path.exists():
        raise InputError(f"file {path} does not exist", file=path, fix="check the path")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv", ".txt"):
            # Every column as text: ids and labels are parsed (and checked) below.
            return read_csv_table(path, required=required, text_columns=("labels", "file_name", "split", "image_id"))
        if suffix in (".parquet", ".pq"):
            return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"cannot read the table ({error})", file=path,
                         fix="check it is a valid CSV (with a header row) or Parquet file") from error
    raise InputError(f"unsupported table type {suffix!r}", file=path, fix="use .csv, .tsv or .parquet")


def _row_label(path: Path, index: int) -> str:
    # CSV line numbers count the header as line 1; Parquet rows are 0-based.
    return f"line {index + 2}" if path.suffix.lower() in (".csv", ".tsv", ".txt") else f"row {index}"


def _parse_labels(value: Any, *, path: Path, where: str, separator: str = ";") -> list[str]:
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
            items = text.split() if separator == " " else [part.strip() for part in text.split(separator)]
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


def _looks_like_several(name: str, known: Mapping[str, int], new: list[str]) -> bool:
    """Whether a class name is likely several labels: it holds a comma, ``|`` or tab, or white space between
    parts that are classes on their own or are joined with ``_`` ("scab frog_eye_leaf_spot"); a name such
    as "traffic light" is not."""
    if any(mark in name for mark in (",", "|", "\t")):
        return True
    parts = name.split()
    if len(parts) < 2:
        return False
    return all(part in known or part in new for part in parts) or any("_" in part for part in parts)


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
    suspicious = [name for name in new_names if _looks_like_several(name, category_ids, new_names)]
    if suspicious:
        marks = sorted({mark for name in suspicious for mark in (",", " ", "|", "\t") if mark in name})
        shown = ", ".join(repr(name) for name in suspicious[:5]) + (", ..." if len(suspicious) > 5 else "")
        option = {",": "','", " ": "' '", "|": "'|'", "\t": "tab"}[marks[0]]
        warnings.warn(LabelfixWarning(
            f"{path.name}: {len(suspicious)} new class name(s) contain {' or '.join(repr(m) for m in marks)}, "
            f"which look like label separators: {shown}. They were created as single classes; if they are "
            f"several labels, ingest again into a new store with --label-separator {option} (labels are "
            f"separated by ';' or written as [\"a\", \"b\"])"), stacklevel=3)
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


def _text(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def _categories(category_ids: dict[str, int]) -> list[dict[str, Any]]:
    return [{"category_id": cid, "name": name, "supercategory": None, "record": _text({"id": cid, "name": name})}
            for name, cid in category_ids.items()]


def _positives(rows_labels: list[list[str]], category_ids: dict[str, int]) -> np.ndarray:
    cells = sorted({(row, category_ids[name]) for row, names in enumerate(rows_labels) for name in names})
    return np.asarray(cells, dtype=np.int64).reshape(-1, 2)


def read_label_table(path: str | Path, *, images_root: str | Path, known: KnownVocabulary | None = None,
                     add_classes: bool = False, check_images: CheckImages = "full",
                     default_split: str = "train", label_separator: str = ";", sha256: str | None = None,
                     progress: bool = True) -> IngestBatch:
    """Validate a label table: one row per image, ``file_name`` and ``labels`` columns.

    ``labels`` is a list of class names (Parquet list, or JSON list text in CSV) or a string separated by
    ``label_separator`` (``;``; ``" "`` splits on any white space). Optional columns: ``split``
    (train/val/test), ``image_id`` (integer; kept as the source's id). A CSV may be separated by commas,
    semicolons or tabs and be UTF-8 (with or without BOM) or Windows-1252 (read with a warning).

    Examples
    --------
    A CSV::

        file_name,labels,split
        a.jpg,cat;dog,train
        b.jpg,"[""cat""]",val
    """
    path = Path(path)
    known = known or KnownVocabulary()
    table = _read_arrow(path, required=("file_name", "labels"))
    for column in ("file_name", "labels"):
        if column not in table.column_names:
            raise InputError(f"missing column {column!r} (found: {', '.join(table.column_names)})",
                             file=path, fix="a label table needs file_name and labels columns")
    rows = table.to_pylist()
    rows_labels = [_parse_labels(row["labels"], path=path, where=_row_label(path, i), separator=label_separator)
                   for i, row in enumerate(rows)]
    category_ids = _assign_categories(path, rows_labels, known, add_classes)
    root = Path(images_root).resolve()

    images: list[dict[str, Any]] = []
    seen_ids: set[int] = set()
    seen_files: dict[str, int] = {}
    for index, row in enumerate(rows):
        where = _row_label(path, index)
        file_name = normalize_file_name(row["file_name"], source=path, record=where)
        if file_name in seen_files:
            raise InputError(f"file_name {row['file_name']!r} appears twice (also {_row_label(path, seen_files[file_name])})",
                             file=path, record=where, fix="one row per image: merge the label lists")
        seen_files[file_name] = index
        image_id = row.get("image_id")
        if isinstance(image_id, str) and _INTEGER.fullmatch(image_id.strip()):
            image_id = int(image_id)
        if image_id == "":
            image_id = None
        if image_id is not None and not is_int_id(image_id):
            raise InputError(f"image_id {image_id!r} is not an integer", file=path, record=where,
                             fix="use integer image ids, or leave the column out")
        if image_id is not None:
            out_of_range = id_range_error(image_id, name="image_id", file=path, record=where)
            if out_of_range:
                raise out_of_range
            if image_id in seen_ids:
                raise InputError(f"duplicate image_id {image_id}", file=path, record=where,
                                 fix="give each image its own id")
            seen_ids.add(image_id)
        split = _split_of(row, default_split=default_split, path=path, where=where)
        images.append({"image_id": image_id, "file_name": file_name, "file_key": image_file_key(root, file_name),
                       "width": None, "height": None, "split": split})
    if check_images != "none":
        files = [(safe_image_path(root=root, file_name=image["file_name"], source=path, record=_row_label(path, i)),
                  image["file_name"], _row_label(path, i)) for i, image in enumerate(images)]
        sizes = check_image_files(files, full=check_images == "full", source=path, progress=progress)
        for image, (width, height) in zip(images, sizes):
            image["width"], image["height"] = width, height
    for image in images:
        record = {"id": image["image_id"]} if image["image_id"] is not None else {}
        record.update(file_name=image["file_name"], width=image["width"], height=image["height"], split=image["split"])
        image["record"] = _text(record)
    return IngestBatch(kind="table", path=path.resolve(), sha256=sha256 or file_sha256(path), images_root=root,
                       images=images, categories=_categories(category_ids),
                       positives=_positives(rows_labels, category_ids))


def read_features_table(path: str | Path, *, known: KnownVocabulary | None = None, add_classes: bool = False,
                        default_split: str = "train", sha256: str | None = None) -> IngestBatch:
    """Validate a features table (Parquet): ``image_id``, ``labels``, ``embedding``, optional ``split``, ``file_name``.

    For users who already have embeddings: no image files are needed, and the embeddings become the
    store's ``features-<hash>`` embedding set. ``image_id`` may be integers or strings (file names or
    UUIDs, as embedding pipelines write them): they are kept as the source's ids; a string id without a
    ``file_name`` column is the image's file name (as Datumaro names items), so ``labels.json`` gives it back.
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
    seen: dict[Any, int] = {}
    for index, row in enumerate(rows):
        where = _row_label(path, index)
        image_id = row["image_id"]
        if not is_int_id(image_id) and not (isinstance(image_id, str) and image_id.strip()):
            raise InputError(f"image_id {image_id!r} is neither an integer nor a non-empty string", file=path,
                             record=where, fix="use integer ids, or names (file names, UUIDs) as strings")
        out_of_range = id_range_error(image_id, name="image_id", file=path, record=where) if is_int_id(image_id) \
            else None
        if out_of_range:
            raise out_of_range
        if image_id in seen:
            raise InputError(f"duplicate image_id {image_id!r} (also {_row_label(path, seen[image_id])})", file=path,
                             record=where, fix="one row per image")
        seen[image_id] = index
        split = _split_of(row, default_split=default_split, path=path, where=where)
        file_name = row.get("file_name")
        if file_name is None and isinstance(image_id, str):
            file_name = image_id  # a name is the image's file name
        record: dict[str, Any] = {"id": image_id}
        if file_name is not None:
            record["file_name"] = file_name
            file_name = normalize_file_name(file_name, source=path, record=where)
        record["split"] = split
        images.append({"image_id": image_id, "file_name": file_name, "file_key": file_name, "width": None,
                       "height": None, "split": split, "record": _text(record)})
    return IngestBatch(kind="features", path=path.resolve(), sha256=sha256 or file_sha256(path), images_root=None,
                       images=images, categories=_categories(category_ids),
                       positives=_positives(rows_labels, category_ids), embeddings=embeddings)
