"""Write corrected labels as COCO: the image-level "labels" form, and the source file with labels inline.

Pure format code: the documents are built from plain records (dicts as the source had them, label
cells as tuples) and written atomically. Reading them from the store is :mod:`labelfix.export`'s job.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from labelfix.internal.atomic import write_text_atomic

INLINE_WARNING = ("instances_corrected.json adds bbox-less annotations for the added labels: "
                  "detection loaders (pycocotools, torchvision, mmdet) expect a bbox on every annotation")

# (image_id, category_id, origin) of a positive label cell; origin is the labels table's origin column.
LabelCell = tuple[int, int, str]


def write_json_atomic(data: Any, path: Path) -> str:
    """Write JSON atomically (see :func:`labelfix.internal.atomic.write_text_atomic`); return the file's sha256."""
    return write_text_atomic(path, json.dumps(data, ensure_ascii=False, indent=1))


def merge_headers(headers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Top-level keys of several COCO sources (info, licenses, unknown keys); the first source's value wins.

    Examples
    --------
    >>> merge_headers([{"info": {"year": 2017}}, {"info": {"year": 2024}, "licenses": []}])
    {'info': {'year': 2017}, 'licenses': []}
    """
    header: dict[str, Any] = {}
    for source_header in headers:
        for key, value in source_header.items():
            header.setdefault(key, value)
    return header


def labels_document(*, header: Mapping[str, Any], images: list[dict[str, Any]], categories: list[dict[str, Any]],
                    positives: Iterable[LabelCell]) -> dict[str, Any]:
    """The COCO "labels" form (Datumaro ``coco_labels``): one bbox-less annotation per positive cell.

    Annotations are numbered from 1 in the order of ``positives``; each keeps its origin as
    ``attributes.source``.

    Examples
    --------
    >>> labels_document(header={}, images=[{"id": 1}], categories=[{"id": 3, "name": "cat"}],
    ...                 positives=[(1, 3, "accepted")])["annotations"]
    [{'id': 1, 'image_id': 1, 'category_id': 3, 'attributes': {'source': 'accepted'}}]
    """
    document = dict(header)
    document["images"] = images
    document["categories"] = categories
    document["annotations"] = [
        {"id": number, "image_id": image_id, "category_id": category_id, "attributes": {"source": origin}}
        for number, (image_id, category_id, origin) in enumerate(positives, start=1)]
    return document


def inline_document(*, header: Mapping[str, Any], images: list[dict[str, Any]], categories: list[dict[str, Any]],
                    annotations: list[dict[str, Any]], added: Iterable[LabelCell]) -> dict[str, Any]:
    """A COCO source file as it was plus one bbox-less annotation per ``added`` cell.

    New annotation ids continue after the source's highest id.
    """
    document = dict(header)
    document["images"] = images
    document["categories"] = categories
    annotations = list(annotations)
    next_id = max((a["id"] for a in annotations), default=0) + 1
    for offset, (image_id, category_id, origin) in enumerate(added):
        annotations.append({"id": next_id + offset, "image_id": image_id, "category_id": category_id,
                            "iscrowd": 0, "attributes": {"source": origin}})
    document["annotations"] = annotations
    return document
