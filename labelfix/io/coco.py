"""Read COCO annotation files (instances, image-level labels) into an :class:`IngestBatch`, streaming.

Image-level labels are the set of category ids of an image's annotations: bbox, segmentation or
bbox-less annotations alike. Every record is kept as the source's JSON text, so an export can give it
back. The file is read in one pass (:mod:`labelfix.io.json_stream`, a run of records per parser call):
ids go into arrays, record texts into spool files (a JSON array per section) that the store reads itself,
never a list of dicts, so a COCO-2017-train-sized file is read in a few hundred MB; references between the
lists are checked once all are read, so key order does not matter. A labelfix ``labels.json`` may carry
``negative_labels`` (verified-absent cells), read back as such.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from array import array
from pathlib import Path
from typing import Any, Literal

import numpy as np

from labelfix.errors import InputError, LabelfixWarning
from labelfix.ingest_contract import SPLITS, AnnotationColumns, IngestBatch
from labelfix.io.common import file_sha256, id_range_error, is_int_id
from labelfix.io.images import SHOWN_NAMES, check_image_files, image_file_key, normalize_file_name
from labelfix.io.json_stream import iter_top_level, not_utf8

REQUIRED_KEYS = ("images", "annotations", "categories")
NEGATIVES_KEY = "negative_labels"  # labels.json's verified-absent cells (labelfix's own key; COCO tools ignore it)
CheckImages = Literal["full", "header", "none"]


class _Spool:
    """Records written to a JSON array file as they are read (runs of source text), not kept in memory.

    DuckDB reads it back with ``read_json_objects(format = 'array')``, in order.
    """

    def __init__(self, folder: Path | None, name: str) -> None:
        descriptor, path = tempfile.mkstemp(dir=folder, prefix=f".labelfix-{name}-", suffix=".json")
        self.path = Path(path)
        self.handle = os.fdopen(descriptor, "w", encoding="utf-8")
        self.handle.write("[")
        self.separator = ""

    def add(self, text: str) -> None:
        """Add one or more records: their source text, separated by commas as in the source."""
        self.handle.write(self.separator)
        self.handle.write(text)
        self.separator = ","

    def close(self) -> Path:
        self.handle.write("]")
        self.handle.close()
        return self.path


def load_json(path: Path) -> Any:
    """Parse a (small) JSON file, reporting the line and column of a syntax error; a UTF-8 BOM is accepted."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"file {path} does not exist", file=path, fix="check the path")
    try:
        with open(path, encoding="utf-8-sig") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise InputError(f"invalid JSON: {error.msg}", file=path,
                         record=f"line {error.lineno}, column {error.colno}",
                         fix="repair the file (e.g. `python -m json.tool FILE` shows the spot)") from error
    except UnicodeDecodeError as error:
        raise not_utf8(path, error) from error


def read_coco(path: str | Path, *, images_root: str | Path | None, check_images: CheckImages = "full",
              default_split: str = "train", progress: bool = True, sha256: str | None = None,
              records: bool = True, spool_dir: str | Path | None = None) -> IngestBatch:
    """Validate a COCO file and return what it adds to the store.

    Parameters
    ----------
    path
        The COCO JSON file (instances, or the image-level "labels" form labelfix exports). UTF-8, with
        or without a byte-order mark.
    images_root
        Folder the images' ``file_name`` are relative to. ``None`` skips all image checks
        (for stores that will only use a features table).
    check_images
        ``full`` decodes every image (catches truncated files), ``header`` reads headers only,
        ``none`` only checks the names lexically (no absolute paths, no ``..``), without touching the disk.
    default_split
        Split of images whose record has no ``split`` key.
    sha256
        The file's hash if the caller already computed it.
    records
        Keep the image and annotation records (spooled to ``spool_dir``, default the temporary folder,
        in :attr:`IngestBatch.record_files`; call ``batch.discard()`` when done). ``False`` validates only.

    Raises
    ------
    InputError
        Naming the file, the record and the fix, for any problem; nothing is written. All missing or
        unreadable image files are reported in one message.

    Warns
    -----
    LabelfixWarning
        When declared width/height contradict the image files (e.g. EXIF-rotated photos): the files'
        displayed sizes are kept.
    """
    path = Path(path)
    if default_split not in SPLITS:
        raise InputError(f"split {default_split!r} is not one of {SPLITS}", fix="pass --split train|val|test")
    reader = _Reader(path, default_split, spool_dir=Path(spool_dir) if spool_dir else None, records=records)
    try:
        header = _read_sections(path, reader)
        annotations, positives = reader.finish_annotations()
        negatives = _negative_labels(reader, header.pop(NEGATIVES_KEY, None), positives)
        root = Path(images_root).resolve() if images_root is not None else None
        for image in reader.images:
            image["file_key"] = image_file_key(root, image["file_name"])
        if root is not None and check_images != "none":
            _check_image_files(path, reader.images, root, check_images, progress)
        record_files = reader.close()
    except BaseException:
        reader.discard()
        raise
    return IngestBatch(kind="coco", path=path.resolve(), sha256=sha256 or file_sha256(path), images_root=root,
                       header=header, images=reader.images, categories=list(reader.categories.values()),
                       annotations=annotations, positives=positives, negatives=negatives,
                       record_files=record_files)


def _negative_labels(reader: "_Reader", listed: Any, positives: np.ndarray) -> np.ndarray:
    """The ``negative_labels`` list of a labels.json as (image row, source category id) pairs, int64 [K, 2].

    Each entry is ``{"image_id", "category_id", "source"}`` naming an image and a category of this file;
    a cell may not be both a positive (an annotation) and a verified negative.
    """
    if listed is None:
        return np.zeros((0, 2), np.int64)
    fix = f"{NEGATIVES_KEY} is a list of {{\"image_id\": int, \"category_id\": int}} (as labelfix exports it)"
    if not isinstance(listed, list):
        raise reader.fail(f"top-level {NEGATIVES_KEY!r} is {type(listed).__name__}, not a list", NEGATIVES_KEY, fix)
    cells = []
    for position, entry in enumerate(listed):
        where = f"{NEGATIVES_KEY}[{position}]"
        image_id = entry.get("image_id") if isinstance(entry, dict) else None
        category_id = entry.get("category_id") if isinstance(entry, dict) else None
        if not is_int_id(image_id) or not is_int_id(category_id):
            raise reader.fail(f"entry {entry!r} needs integer image_id and category_id", where, fix)
        if image_id not in reader.image_rows:
            raise reader.fail(f"image_id {image_id} is not in images", where, "add the image or remove the entry")
        if category_id not in reader.categories:
            raise reader.fail(f"category_id {category_id} is not in categories", where,
                              "add the category or remove the entry")
        cells.append((reader.image_rows[image_id], category_id))
    negatives = _unique_cells(*np.array(cells, np.int64).reshape(-1, 2).T)
    if len(negatives) and len(positives):
        nearby = positives[np.isin(positives[:, 0], negatives[:, 0])]  # positives on those images only
        annotated = set(map(tuple, nearby.tolist()))
        for row, category_id in negatives.tolist():
            if (row, category_id) in annotated:
                raise reader.fail(f"image id {reader.images[row]['image_id']}, category {category_id} is both "
                                  f"annotated and listed as a verified negative", NEGATIVES_KEY,
                                  "remove the annotation or the negative_labels entry")
    return negatives


def _read_sections(path: Path, reader: "_Reader") -> dict[str, Any]:
    """Walk the file once, feeding each list's records to ``reader``; return the other top-level keys."""
    header: dict[str, Any] = {}
    for key, value, stream in iter_top_level(path, arrays=REQUIRED_KEYS):
        if key in reader.seen:
            raise InputError(f"top-level key {key!r} appears twice", file=path, fix=f"keep one {key} list")
        if key in REQUIRED_KEYS:
            reader.seen.add(key)
            if stream is None:
                raise InputError(f"top-level {key!r} is {type(value).__name__}, not a list", file=path,
                                 fix=f"make {key} a JSON list")
            if key == "categories":
                for position, (record, text) in enumerate(stream.items()):
                    reader.add_category(position, record, text)
                continue
            add = reader.add_images if key == "images" else reader.add_annotations
            position = 0
            for records, text in stream.item_runs():
                add(position, records, text)
                position += len(records)
        else:
            header[key] = value
    missing = [key for key in REQUIRED_KEYS if key not in reader.seen]
    if missing:
        raise InputError(f"missing top-level key(s): {', '.join(missing)}", file=path,
                         fix="a COCO file needs images, annotations and categories lists "
                             "(an empty list is fine)")
    return header


class _Reader:
    """Validates records as the stream yields them and collects them (annotations as columns)."""

    def __init__(self, path: Path, default_split: str, *, spool_dir: Path | None, records: bool) -> None:
        self.path = path
        self.default_split = default_split
        self.seen: set[str] = set()
        self.categories: dict[int, dict[str, Any]] = {}
        self.category_names: dict[str, int] = {}
        self.images: list[dict[str, Any]] = []
        self.image_rows: dict[int, int] = {}
        self.file_names: dict[str, int] = {}
        self.annotation_ids, self.annotation_images, self.annotation_categories = array("q"), array("q"), array("q")
        self.spools: dict[str, _Spool] = {}
        if records:
            self.spools = {"images": _Spool(spool_dir, "images"), "annotations": _Spool(spool_dir, "annotations")}

    def close(self) -> dict[str, Path]:
        return {name: spool.close() for name, spool in self.spools.items()}

    def discard(self) -> None:
        for spool in self.spools.values():
            spool.handle.close()
            spool.path.unlink(missing_ok=True)

    def fail(self, problem: str, record: str, fix: str) -> InputError:
        return InputError(problem, file=self.path, record=record, fix=fix)

    def add_category(self, position: int, record: Any, text: str) -> None:
        where = f"categories[{position}]"
        if not isinstance(record, dict):
            raise self.fail("category record is not an object", where, "each category is {\"id\": int, \"name\": str}")
        category_id, name = record.get("id"), record.get("name")
        if not is_int_id(category_id):
            raise self.fail(f"category id {category_id!r} is not an integer", where, "use integer category ids")
        out_of_range = id_range_error(category_id, name="category id", file=self.path, record=where)
        if out_of_range:
            raise out_of_range
        where = f"category id {category_id}"
        if not isinstance(name, str) or not name:
            raise self.fail(f"category name {name!r} is not a non-empty string", where, "give every category a name")
        if category_id in self.categories:
            raise self.fail("duplicate category id", where, "give each category its own id")
        if name in self.category_names:
            raise self.fail(f"duplicate category name {name!r} (also id {self.category_names[name]})", where,
                            "merge the two categories or rename one")
        self.category_names[name] = category_id
        supercategory = record.get("supercategory")
        self.categories[category_id] = {"category_id": category_id, "name": name,
                                        "supercategory": supercategory if isinstance(supercategory, str) else None,
                                        "record": text}

    def add_images(self, first: int, records: list[Any], text: str) -> None:
        """Check a run of image records (positions ``first``...) and spool their source ``text``."""
        for offset, record in enumerate(records):
            self.add_image(first + offset, record)
        if self.spools:
            self.spools["images"].add(text)

    def add_image(self, position: int, record: Any) -> None:
        where = f"images[{position}]"
        if not isinstance(record, dict):
            raise self.fail("image record is not an object", where, "each image is {\"id\": int, \"file_name\": str, ...}")
        image_id = record.get("id")
        if not is_int_id(image_id):
            raise self.fail(f"image id {image_id!r} is not an integer", where, "use integer image ids")
        out_of_range = id_range_error(image_id, name="image id", file=self.path, record=where)
        if out_of_range:
            raise out_of_range
        where = f"image id {image_id}"
        if image_id in self.image_rows:
            raise self.fail("duplicate image id", where, "give each image its own id")
        file_name = normalize_file_name(record.get("file_name"), source=self.path, record=where)
        if file_name in self.file_names:
            other = self.images[self.file_names[file_name]]["image_id"]
            # Two ids for one file would be two images with contradictory labels, and merging them would
            # rewrite this file's ids in its own export; the label table refuses the same case.
            raise self.fail(f"file_name {record.get('file_name')!r} appears twice (image ids {other} and {image_id})",
                            where, "one record per image: move the annotations of one id to the other and "
                                   "delete the duplicate record")
        split = record.get("split", self.default_split)
        if split not in SPLITS:
            raise self.fail(f"split {split!r} is not one of {SPLITS}", where, "use train, val or test")
        width, height = record.get("width"), record.get("height")
        for key, value in (("width", width), ("height", height)):
            if value is not None and (not is_int_id(value) or value <= 0):
                raise self.fail(f"{key} {value!r} is not a positive integer", where,
                                f"fix or remove the {key} key (it is read from the image)")
        self.image_rows[image_id] = len(self.images)
        self.file_names[file_name] = len(self.images)
        self.images.append({"image_id": image_id, "file_name": file_name, "width": width, "height": height,
                            "split": split, "record": None})

    def add_annotations(self, first: int, records: list[Any], text: str) -> None:
        """Check a run of annotation records (positions ``first``...), keep their ids as columns and spool
        their source ``text``. The common case is checked per column (C loops); any odd record is then
        looked at one by one for the message."""
        try:
            ids = [record["id"] for record in records]
            image_ids = [record["image_id"] for record in records]
            category_ids = [record["category_id"] for record in records]
            if {*map(type, ids), *map(type, image_ids), *map(type, category_ids)} != {int}:
                raise TypeError("not all ids are integers")
            self.annotation_ids.extend(ids)  # OverflowError past 64 bits
            self.annotation_images.extend(image_ids)
            self.annotation_categories.extend(category_ids)
        except (KeyError, TypeError, OverflowError):
            for offset, record in enumerate(records):
                self._check_annotation(first + offset, record)
            raise  # unreachable unless a check above is missing: better a traceback than a silent store
        if self.spools:
            self.spools["annotations"].add(text)

    def _check_annotation(self, position: int, record: Any) -> None:
        """The message for a record :meth:`add_annotations` could not take (returns if the record is fine)."""
        if not isinstance(record, dict):
            raise self.fail("annotation record is not an object", f"annotations[{position}]",
                            "each annotation is {\"id\", \"image_id\", \"category_id\", ...}")
        self._bad_ids(position, record.get("id"), record.get("image_id"), record.get("category_id"))

    def _bad_ids(self, position: int, annotation_id: Any, image_id: Any, category_id: Any) -> None:
        if not is_int_id(annotation_id):
            raise self.fail(f"annotation id {annotation_id!r} is not an integer", f"annotations[{position}]",
                            "use integer annotation ids")
        if not is_int_id(image_id) or not is_int_id(category_id):
            raise self.fail(f"image_id {image_id!r} / category_id {category_id!r} must be integers",
                            f"annotation id {annotation_id}", "use the integer ids of images and categories")
        for name, value in (("annotation id", annotation_id), ("image_id", image_id), ("category_id", category_id)):
            out_of_range = id_range_error(value, name=name, file=self.path, record=f"annotations[{position}]")
            if out_of_range:
                raise out_of_range

    def finish_annotations(self) -> tuple[AnnotationColumns, np.ndarray]:
        """Check the annotations' ids and references (vectorised) and return them as columns."""
        ids = np.frombuffer(self.annotation_ids, dtype=np.int64)
        image_ids = np.frombuffer(self.annotation_images, dtype=np.int64)
        category_ids = np.frombuffer(self.annotation_categories, dtype=np.int64)
        if len(ids):
            order = np.argsort(ids, kind="stable")
            repeated = np.flatnonzero(ids[order][1:] == ids[order][:-1])
            if repeated.size:
                first = int(order[1:][repeated].min())
                raise self.fail("duplicate annotation id", f"annotation id {int(ids[first])}",
                                "give each annotation its own id")
        rows = _lookup(image_ids, self.image_rows)
        if (rows < 0).any():
            first = int(np.flatnonzero(rows < 0)[0])
            raise self.fail(f"image_id {int(image_ids[first])} is not in images", f"annotation id {int(ids[first])}",
                            "add the image record or remove the annotation")
        known = np.isin(category_ids, np.fromiter(self.categories, np.int64, len(self.categories)))
        if not known.all():
            first = int(np.flatnonzero(~known)[0])
            raise self.fail(f"category_id {int(category_ids[first])} is not in categories",
                            f"annotation id {int(ids[first])}", "add the category or remove the annotation")
        return AnnotationColumns(annotation_ids=ids.copy(), image_rows=rows, category_ids=category_ids.copy()), \
            _unique_cells(rows, category_ids)


def _unique_cells(rows: np.ndarray, category_ids: np.ndarray) -> np.ndarray:
    """The distinct (image row, category id) pairs, int64 [K, 2], sorted.

    Through one int64 key per pair (np.unique(axis=0) copies the pairs thrice), unless the ids are so
    large that the key could overflow.

    Examples
    --------
    >>> _unique_cells(np.array([1, 0, 1]), np.array([5, 3, 5])).tolist()
    [[0, 3], [1, 5]]
    """
    if not len(rows):
        return np.zeros((0, 2), np.int64)
    low = int(category_ids.min())
    width = int(category_ids.max()) - low + 1
    if width * (int(rows.max()) + 1) >= 2**62:
        return np.unique(np.stack([rows, category_ids], axis=1), axis=0)
    keys = np.sort(rows * width + (category_ids - low))
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    return np.stack([keys // width, keys % width + low], axis=1)


def _lookup(values: np.ndarray, positions: dict[int, int]) -> np.ndarray:
    """The position of each value in ``positions`` (-1 where it is absent), vectorised."""
    if not positions:
        return np.full(len(values), -1, np.int64)
    keys = np.fromiter(positions, np.int64, len(positions))
    rows = np.fromiter(positions.values(), np.int64, len(positions))
    order = np.argsort(keys)
    keys, rows = keys[order], rows[order]
    found = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
    return np.where(keys[found] == values, rows[found], -1)


def _check_image_files(path: Path, images: list[dict[str, Any]], root: Path, check_images: CheckImages,
                       progress: bool) -> None:
    """Decode (or read the header of) every image; keep the displayed sizes, warn on contradicting ones."""
    from labelfix.io.images import safe_image_path

    files = [(safe_image_path(root=root, file_name=image["file_name"], source=path,
                              record=f"image id {image['image_id']}"), image["file_name"],
              f"image id {image['image_id']}") for image in images]
    sizes = check_image_files(files, full=check_images == "full", source=path, progress=progress)
    contradicting = []
    for image, (width, height) in zip(images, sizes):
        declared = (image["width"], image["height"])
        if None not in declared and declared != (width, height):
            contradicting.append(f"{image['file_name']} declares {declared[0]}x{declared[1]}, "
                                 f"the file shows {width}x{height}")
        image["width"], image["height"] = width, height
    if contradicting:
        listed = "; ".join(contradicting[:SHOWN_NAMES]) + ("; ..." if len(contradicting) > SHOWN_NAMES else "")
        warnings.warn(LabelfixWarning(
            f"{path.name}: {len(contradicting)} of {len(images)} images declare a width/height that differs from "
            f"the image file as displayed (after EXIF orientation): {listed}. labelfix stores and exports the "
            f"file's size in labels.json; instances_corrected.json keeps the declared values, as the source had "
            f"them. Fix the records if your boxes were drawn on the displayed image"), stacklevel=3)
