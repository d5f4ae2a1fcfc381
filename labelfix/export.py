"""Export entry point, the door out: read the corrected labels from the store and write them as COCO.

The store modules read the records and label cells (:mod:`labelfix.store.catalog`,
:mod:`labelfix.store.labels`); :mod:`labelfix.io.coco_writer` builds and writes the documents; the
files written are recorded in the store's ``exports`` table. :mod:`labelfix.ingest` is the door in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelfix.io.coco_writer import INLINE_WARNING, inline_document, labels_document, merge_headers, write_json_atomic
from labelfix.store.catalog import annotation_records, category_records, image_records, source_headers
from labelfix.store.database import Store
from labelfix.store.exports import record_export
from labelfix.store.labels import positive_cells, positives_without_annotation

__all__ = ["ExportSummary", "build_inline_documents", "build_labels_document", "export_coco"]


@dataclass
class ExportSummary:
    """Files written and what they hold."""

    paths: list[Path] = field(default_factory=list)
    n_images: int = 0
    n_annotations: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def build_labels_document(store: Store) -> dict[str, Any]:
    """The corrected labels in COCO "labels" form (Datumaro ``coco_labels``), as a dict."""
    return labels_document(header=merge_headers(header for _, header in source_headers(store)),
                           images=image_records(store), categories=category_records(store),
                           positives=positive_cells(store))


def build_inline_documents(store: Store) -> dict[int, dict[str, Any]]:
    """Per COCO source: the source file as it was plus bbox-less annotations for labels added since."""
    return {source_id: inline_document(header=header, images=image_records(store, source_id=source_id),
                                       categories=category_records(store),
                                       annotations=annotation_records(store, source_id=source_id),
                                       added=positives_without_annotation(store, source_id=source_id))
            for source_id, header in source_headers(store, kind="coco")}


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
        for source_id, inline_doc in documents.items():
            name = "instances_corrected.json" if len(documents) == 1 else f"instances_corrected.{source_id}.json"
            inline_path = out_dir / name
            inline_sha = write_json_atomic(inline_doc, inline_path)
            summary.paths.append(inline_path)
            records.append(("inline", inline_path, inline_sha, len(inline_doc["images"]),
                            len(inline_doc["annotations"])))
        if documents:
            summary.warnings.append(INLINE_WARNING)
    with store.transaction():
        for kind, written, digest, n_images, n_annotations in records:
            record_export(store, kind=kind, path=written, sha256=digest, n_images=n_images,
                          n_annotations=n_annotations)
    return summary
