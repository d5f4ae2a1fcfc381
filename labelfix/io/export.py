"""Write corrected labels as COCO: the image-level "labels" form, and optionally the source file inline."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelfix.internal.atomic import write_text_atomic
from labelfix.states import POSITIVE
from labelfix.store.database import Store

INLINE_WARNING = ("instances_corrected.json adds bbox-less annotations for the added labels: "
                  "detection loaders (pycocotools, torchvision, mmdet) expect a bbox on every annotation")


@dataclass
class ExportSummary:
    """Files written and what they hold."""

    paths: list[Path] = field(default_factory=list)
    n_images: int = 0
    n_annotations: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def write_json_atomic(data: Any, path: Path) -> str:
    """Write JSON atomically (see :func:`labelfix.internal.atomic.write_text_atomic`); return the file's sha256."""
    return write_text_atomic(path, json.dumps(data, ensure_ascii=False, indent=1))


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else {}


def _merged_header(store: Store) -> dict[str, Any]:
    """Top-level keys of the COCO sources (info, licenses, unknown keys), first source first."""
    header: dict[str, Any] = {}
    for (text,) in store.fetchall("SELECT header FROM sources ORDER BY source_id"):
        for key, value in _loads(text).items():
            header.setdefault(key, value)
    return header


def _categories(store: Store) -> list[dict]:
    return [_loads(text) for (text,) in store.fetchall("SELECT record FROM categories ORDER BY category_id")]


def build_labels_document(store: Store) -> dict[str, Any]:
    """The corrected labels in COCO "labels" form (Datumaro ``coco_labels``), as a dict."""
    document = _merged_header(store)
    document["images"] = [_loads(text) for (text,) in store.fetchall("SELECT record FROM images ORDER BY image_id")]
    document["categories"] = _categories(store)
    rows = store.fetchall(f"SELECT image_id, category_id, origin FROM labels WHERE state = {POSITIVE} "
                          f"ORDER BY image_id, category_id")
    document["annotations"] = [
        {"id": number, "image_id": image_id, "category_id": category_id, "attributes": {"source": origin}}
        for number, (image_id, category_id, origin) in enumerate(rows, start=1)]
    return document


def build_inline_documents(store: Store) -> dict[int, dict[str, Any]]:
    """Per COCO source: the source file as it was plus bbox-less annotations for labels added since."""
    documents = {}
    for source_id, header_text in store.fetchall("SELECT source_id, header FROM sources WHERE kind = 'coco' "
                                                 "ORDER BY source_id"):
        document = _loads(header_text)
        document["images"] = [_loads(t) for (t,) in store.fetchall(
            "SELECT record FROM images WHERE source_id = ? ORDER BY image_id", [source_id])]
        document["categories"] = _categories(store)
        annotations = [_loads(t) for (t,) in store.fetchall(
            "SELECT record FROM annotations WHERE source_id = ? ORDER BY annotation_id", [source_id])]
        next_id = max((a["id"] for a in annotations), default=0) + 1
        added = store.fetchall(
            f"SELECT l.image_id, l.category_id, l.origin FROM labels l JOIN images i USING (image_id) "
            f"WHERE i.source_id = ? AND l.state = {POSITIVE} AND NOT EXISTS (SELECT 1 FROM annotations a "
            f"WHERE a.source_id = ? AND a.image_id = l.image_id AND a.category_id = l.category_id) "
            f"ORDER BY l.image_id, l.category_id", [source_id, source_id])
        for offset, (image_id, category_id, origin) in enumerate(added):
            annotations.append({"id": next_id + offset, "image_id": image_id, "category_id": category_id,
                                "iscrowd": 0, "attributes": {"source": origin}})
        document["annotations"] = annotations
        documents[source_id] = document
    return documents


def export_coco(store: Store, *, out_dir: str | Path, inline: bool = False) -> ExportSummary:
    """Write ``labels.json`` (and with ``inline``, ``instances_corrected.json``) into ``out_dir``.

    Verified negatives never become annotations; images left with zero labels are kept. Every file is
    written atomically and recorded in the store's ``exports`` table.

    Examples
    --------
    >>> summary = export_coco(store, out_dir="corrected")  # doctest: +SKIP
    >>> [p.name for p in summary.paths]  # doctest: +SKIP
    ['labels.json']
    """
    out_dir = Path(out_dir)
    summary = ExportSummary()
    document = build_labels_document(store)
    path = out_dir / "labels.json"
    sha = write_json_atomic(document, path)
    summary.paths.append(path)
    summary.n_images = len(document["images"])
    summary.n_annotations = len(document["annotations"])
    for annotation in document["annotations"]:
        source = annotation["attributes"]["source"]
        summary.by_source[source] = summary.by_source.get(source, 0) + 1
    records = [("labels", path, sha, summary.n_images, summary.n_annotations)]
    if inline:
        documents = build_inline_documents(store)
        if not documents:
            summary.warnings.append("--inline needs a COCO source: this store was ingested from tables only")
        for source_id, inline_document in documents.items():
            name = "instances_corrected.json" if len(documents) == 1 else f"instances_corrected.{source_id}.json"
            inline_path = out_dir / name
            inline_sha = write_json_atomic(inline_document, inline_path)
            summary.paths.append(inline_path)
            records.append(("inline", inline_path, inline_sha, len(inline_document["images"]),
                            len(inline_document["annotations"])))
        if documents:
            summary.warnings.append(INLINE_WARNING)
    with store.transaction():
        for kind, written, digest, n_images, n_annotations in records:
            store.execute("INSERT INTO exports (kind, path, sha256, n_images, n_annotations) VALUES (?, ?, ?, ?, ?)",
                          [kind, str(written.resolve()), digest, n_images, n_annotations])
    return summary
