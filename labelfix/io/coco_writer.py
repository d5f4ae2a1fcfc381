"""Write corrected labels as COCO: the image-level "labels" form, and the source file with labels inline.

Pure format code. A document is written compactly and streaming (:func:`write_coco_atomic`): the
records arrive as JSON texts (as the store keeps them), section by section, and go to a temporary file
that replaces the target when complete, so a COCO-2017-sized export never holds its document in memory.
Reading the records from the store is :mod:`labelfix.export`'s job.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from labelfix.internal.atomic import atomic_target, write_text_atomic

INLINE_WARNING = ("{files} add bbox-less annotations for the added labels: "
                  "detection loaders (pycocotools, torchvision, mmdet) expect a bbox on every annotation")

# (image_id, category_id, origin) of a positive label cell; origin is the labels table's origin column.
LabelCell = tuple[int, int, str]
_COMPACT: dict[str, Any] = {"ensure_ascii": False, "separators": (",", ":")}


def write_json_atomic(data: Any, path: Path) -> str:
    """Write JSON compactly and atomically (see :func:`labelfix.internal.atomic.write_text_atomic`); return its sha256."""
    return write_text_atomic(path, json.dumps(data, **_COMPACT))


def write_coco_atomic(path: Path, *, header: Mapping[str, Any],
                      sections: Iterable[tuple[str, Iterable[str]]]) -> tuple[str, dict[str, int]]:
    """Write ``{header..., section: [texts...], ...}`` compactly and atomically, one record at a time.

    Parameters
    ----------
    header
        Top-level keys written first (``info``, ``licenses``, unknown keys), each serialised here.
    sections
        (key, iterable of JSON texts), written in order; each iterable is consumed only when its turn
        comes, so it may read from a store cursor.

    Returns
    -------
    tuple[str, dict[str, int]]
        The file's sha256 and the number of records per section.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "x.json"
    >>> write_coco_atomic(target, header={"info": {}}, sections=[("images", ['{"id":1}'])])[1]
    {'images': 1}
    >>> target.read_text()
    '{"info":{},"images":[{"id":1}]}'
    """
    with atomic_target(path) as temporary:
        return write_coco(temporary, header=header, sections=sections)


def write_coco(path: Path, *, header: Mapping[str, Any],
               sections: Iterable[tuple[str, Iterable[str]]]) -> tuple[str, dict[str, int]]:
    """Write the document of :func:`write_coco_atomic` straight to ``path`` (a temporary file of an atomic
    set, :func:`labelfix.internal.atomic.atomic_targets`), flushed to disk; return its sha256 and counts."""
    digest = hashlib.sha256()
    counts: dict[str, int] = {}
    with open(path, "wb") as handle:
        pending: list[str] = []

        def put(text: str) -> None:
            pending.append(text)
            if len(pending) >= 4096:
                flush()

        def flush() -> None:
            data = "".join(pending).encode("utf-8")
            pending.clear()
            digest.update(data)
            handle.write(data)

        put("{")
        first = True
        for key, value in header.items():
            put(("" if first else ",") + json.dumps(key, **_COMPACT) + ":" + json.dumps(value, **_COMPACT))
            first = False
        for key, texts in sections:
            put(("" if first else ",") + json.dumps(key, ensure_ascii=False) + ":[")
            first = False
            count = 0
            for text in texts:
                put(text if not count else "," + text)
                count += 1
            counts[key] = count
            put("]")
        put("}")
        flush()
        handle.flush()
        os.fsync(handle.fileno())
    return digest.hexdigest(), counts


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


def label_annotation_texts(positives: Iterable[LabelCell]) -> Iterable[str]:
    """The COCO "labels" form's annotations (Datumaro ``coco_labels``): one bbox-less annotation per cell.

    Annotations are numbered from 1 in the order of ``positives``; each keeps its origin as
    ``attributes.source``.

    Examples
    --------
    >>> list(label_annotation_texts([(1, 3, "accepted")]))
    ['{"id":1,"image_id":1,"category_id":3,"attributes":{"source":"accepted"}}']
    """
    for number, (image_id, category_id, origin) in enumerate(positives, start=1):
        yield (f'{{"id":{number},"image_id":{image_id},"category_id":{category_id},'
               f'"attributes":{{"source":{json.dumps(origin)}}}}}')


def negative_label_texts(negatives: Iterable[LabelCell]) -> Iterable[str]:
    """labels.json's ``negative_labels`` entries: cells a reviewer verified absent, with their origin.

    Examples
    --------
    >>> list(negative_label_texts([(4, 2, "manual")]))
    ['{"image_id":4,"category_id":2,"source":"manual"}']
    """
    for image_id, category_id, origin in negatives:
        yield f'{{"image_id":{image_id},"category_id":{category_id},"source":{json.dumps(origin)}}}'


def added_annotation_texts(cells: Iterable[tuple[Any, int, str]], *, first_id: int) -> Iterable[str]:
    """Bbox-less annotations for labels added since ingest, numbered from ``first_id``.

    ``cells`` are (the source's image id, the source's category id, origin).

    Examples
    --------
    >>> list(added_annotation_texts([(7, 2, "accepted")], first_id=10))
    ['{"id":10,"image_id":7,"category_id":2,"iscrowd":0,"attributes":{"source":"accepted"}}']
    """
    for number, (image_id, category_id, origin) in enumerate(cells, start=first_id):
        yield (f'{{"id":{number},"image_id":{json.dumps(image_id, ensure_ascii=False)},'
               f'"category_id":{category_id},"iscrowd":0,"attributes":{{"source":{json.dumps(origin)}}}}}')
