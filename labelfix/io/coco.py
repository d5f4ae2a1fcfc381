"""Read COCO annotation files (instances, image-level labels) into an :class:`IngestBatch`.

Image-level labels are the set of category ids of an image's annotations: bbox, segmentation or
bbox-less annotations alike. Every key of every record is kept, so an export can give it back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from tqdm import tqdm

from labelfix.errors import InputError
from labelfix.ingest_contract import SPLITS, IngestBatch
from labelfix.io.common import file_sha256, is_int_id
from labelfix.io.images import check_image, safe_image_path

REQUIRED_KEYS = ("images", "annotations", "categories")
CheckImages = Literal["full", "header", "none"]


def load_json(path: Path) -> Any:
    """Parse a JSON file, reporting the line and column of a syntax error."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"file {path} does not exist", file=path, fix="check the path")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise InputError(f"invalid JSON: {error.msg}", file=path,
                         record=f"line {error.lineno}, column {error.colno}",
                         fix="repair the file (e.g. `python -m json.tool FILE` shows the spot)") from error
    except UnicodeDecodeError as error:
        raise InputError(f"not UTF-8 text ({error.reason})", file=path,
                         fix="save the annotations as UTF-8 JSON") from error


def read_coco(path: str | Path, *, images_root: str | Path | None, check_images: CheckImages = "full",
              default_split: str = "train", progress: bool = True) -> IngestBatch:
    """Validate a COCO file and return what it adds to the store.

    Parameters
    ----------
    path
        The COCO JSON file (instances, or the image-level "labels" form labelfix exports).
    images_root
        Folder the images' ``file_name`` are relative to. ``None`` skips all image checks
        (for stores that will only use a features table).
    check_images
        ``full`` decodes every image (catches truncated files), ``header`` reads headers only,
        ``none`` only checks the path stays inside ``images_root``.
    default_split
        Split of images whose record has no ``split`` key.

    Raises
    ------
    InputError
        Naming the file, the record and the fix, for any problem; nothing is written.
    """
    path = Path(path)
    data = load_json(path)
    if not isinstance(data, dict):
        raise InputError("top level is not a JSON object", file=path,
                         fix="a COCO file is an object with images, annotations and categories")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise InputError(f"missing top-level key(s): {', '.join(missing)}", file=path,
                         fix="a COCO file needs images, annotations and categories lists "
                             "(an empty list is fine)")
    for key in REQUIRED_KEYS:
        if not isinstance(data[key], list):
            raise InputError(f"top-level {key!r} is {type(data[key]).__name__}, not a list", file=path,
                             fix=f"make {key} a JSON list")
    if default_split not in SPLITS:
        raise InputError(f"split {default_split!r} is not one of {SPLITS}", fix="pass --split train|val|test")

    categories = _read_categories(path, data["categories"])
    images = _read_images(path, data["images"], default_split)
    annotations, positives = _read_annotations(path, data["annotations"], images, categories)
    root = Path(images_root).resolve() if images_root is not None else None
    if root is not None:
        _check_image_files(path, images, root, check_images, progress)

    header = {key: value for key, value in data.items() if key not in REQUIRED_KEYS}
    return IngestBatch(kind="coco", path=path.resolve(), sha256=file_sha256(path), images_root=root,
                       header=header, images=list(images.values()), categories=list(categories.values()),
                       annotations=annotations, positives=positives)


def _read_categories(path: Path, records: list[Any]) -> dict[int, dict[str, Any]]:
    categories: dict[int, dict[str, Any]] = {}
    names: dict[str, int] = {}
    for position, record in enumerate(records):
        where = f"categories[{position}]"
        if not isinstance(record, dict):
            raise InputError("category record is not an object", file=path, record=where,
                             fix="each category is {\"id\": int, \"name\": str}")
        category_id, name = record.get("id"), record.get("name")
        if not is_int_id(category_id):
            raise InputError(f"category id {category_id!r} is not an integer", file=path, record=where,
                             fix="use integer category ids")
        where = f"category id {category_id}"
        if not isinstance(name, str) or not name:
            raise InputError(f"category name {name!r} is not a non-empty string", file=path, record=where,
                             fix="give every category a name")
        if category_id in categories:
            raise InputError("duplicate category id", file=path, record=where,
                             fix="give each category its own id")
        if name in names:
            raise InputError(f"duplicate category name {name!r} (also id {names[name]})", file=path,
                             record=where, fix="merge the two categories or rename one")
        names[name] = category_id
        supercategory = record.get("supercategory")
        categories[category_id] = {"category_id": category_id, "name": name,
                                   "supercategory": supercategory if isinstance(supercategory, str) else None,
                                   "record": record}
    return categories


def _read_images(path: Path, records: list[Any], default_split: str) -> dict[int, dict[str, Any]]:
    images: dict[int, dict[str, Any]] = {}
    for position, record in enumerate(records):
        where = f"images[{position}]"
        if not isinstance(record, dict):
            raise InputError("image record is not an object", file=path, record=where,
                             fix="each image is {\"id\": int, \"file_name\": str, ...}")
        image_id = record.get("id")
        if not is_int_id(image_id):
            raise InputError(f"image id {image_id!r} is not an integer", file=path, record=where,
                             fix="use integer image ids")
        where = f"image id {image_id}"
        if image_id in images:
            raise InputError("duplicate image id", file=path, record=where, fix="give each image its own id")
        file_name = record.get("file_name")
        if not isinstance(file_name, str) or not file_name:
            raise InputError(f"file_name {file_name!r} is not a non-empty string", file=path, record=where,
                             fix="give every image a relative file_name")
        split = record.get("split", default_split)
        if split not in SPLITS:
            raise InputError(f"split {split!r} is not one of {SPLITS}", file=path, record=where,
                             fix="use train, val or test")
        width, height = record.get("width"), record.get("height")
        for key, value in (("width", width), ("height", height)):
            if value is not None and (not is_int_id(value) or value <= 0):
                raise InputError(f"{key} {value!r} is not a positive integer", file=path, record=where,
                                 fix=f"fix or remove the {key} key (it is read from the image)")
        images[image_id] = {"image_id": image_id, "file_name": file_name, "width": width,
                            "height": height, "split": split, "record": record}
    return images


def _read_annotations(path: Path, records: list[Any], images: dict, categories: dict
                      ) -> tuple[list[dict[str, Any]], set[tuple[int, int]]]:
    annotations: list[dict[str, Any]] = []
    seen: set[int] = set()
    positives: set[tuple[int, int]] = set()
    for position, record in enumerate(records):
        where = f"annotations[{position}]"
        if not isinstance(record, dict):
            raise InputError("annotation record is not an object", file=path, record=where,
                             fix="each annotation is {\"id\", \"image_id\", \"category_id\", ...}")
        annotation_id = record.get("id")
        if not is_int_id(annotation_id):
            raise InputError(f"annotation id {annotation_id!r} is not an integer", file=path, record=where,
                             fix="use integer annotation ids")
        where = f"annotation id {annotation_id}"
        if annotation_id in seen:
            raise InputError("duplicate annotation id", file=path, record=where,
                             fix="give each annotation its own id")
        seen.add(annotation_id)
        image_id, category_id = record.get("image_id"), record.get("category_id")
        if not is_int_id(image_id) or not is_int_id(category_id):
            raise InputError(f"image_id {image_id!r} / category_id {category_id!r} must be integers",
                             file=path, record=where, fix="use the integer ids of images and categories")
        if image_id not in images:
            raise InputError(f"image_id {image_id} is not in images", file=path, record=where,
                             fix="add the image record or remove the annotation")
        if category_id not in categories:
            raise InputError(f"category_id {category_id} is not in categories", file=path, record=where,
                             fix="add the category or remove the annotation")
        annotations.append({"annotation_id": annotation_id, "image_id": image_id,
                            "category_id": category_id, "record": record})
        positives.add((image_id, category_id))
    return annotations, positives


def _check_image_files(path: Path, images: dict, root: Path, check_images: CheckImages, progress: bool) -> None:
    for image in tqdm(images.values(), desc="checking images", unit="img", disable=not progress or None,
                      leave=False):
        where = f"image id {image['image_id']}"
        image_path = safe_image_path(root=root, file_name=image["file_name"], source=path, record=where)
        if check_images == "none":
            continue
        width, height = check_image(image_path, full=check_images == "full", source=path, record=where)
        if image["width"] is None:
            image["width"] = width
        if image["height"] is None:
            image["height"] = height
