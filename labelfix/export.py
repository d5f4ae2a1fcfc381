"""Export entry point, the door out: read the corrected labels from the store and write them as COCO.

The store modules read the records and label cells (:mod:`labelfix.store.catalog`,
:mod:`labelfix.store.labels`); :mod:`labelfix.io.coco_writer` writes the documents compactly, streaming
the records from the store; the files written are recorded in the store's ``exports`` table.
:mod:`labelfix.ingest` is the door in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelfix.internal.atomic import AtomicSet, atomic_targets, refuse_a_folder
from labelfix.io.coco_writer import (INLINE_WARNING, added_annotation_texts, label_annotation_texts, merge_headers,
                                     negative_label_texts, write_coco)
from labelfix.store.catalog import (annotation_texts, category_record, category_record_texts,
                                    declared_size_mismatches, image_record_texts, max_annotation_id, source_categories,
                                    source_headers, source_image_texts, source_paths)
from labelfix.store.database import Store
from labelfix.store.exports import record_export
from labelfix.store.labels import label_counts_by_origin, labels_added_for_source, negative_cells, positive_cells

__all__ = ["ExportSummary", "export_coco", "inline_file_names"]


@dataclass
class ExportSummary:
    """Files written and what they hold."""

    paths: list[Path] = field(default_factory=list)
    n_images: int = 0
    n_annotations: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    added_inline: dict[str, int] = field(default_factory=dict)  # inline file name: bbox-less annotations added
    n_negatives: int = 0  # verified negatives in labels.json's negative_labels (re-ingested as such)
    warnings: list[str] = field(default_factory=list)


def inline_file_names(paths: dict[int, Path]) -> dict[int, str]:
    """The inline export's file per COCO source: ``instances_corrected.json`` for one source; for several,
    ``<source stem>_corrected.json`` (``instances_train_corrected.json``), with the source id if two stems match.

    Examples
    --------
    >>> inline_file_names({1: Path("a/persons.json"), 2: Path("b/bikes.json")})
    {1: 'persons_corrected.json', 2: 'bikes_corrected.json'}
    >>> inline_file_names({1: Path("x/ann.json"), 3: Path("y/ann.json")})
    {1: 'ann_corrected.1.json', 3: 'ann_corrected.3.json'}
    """
    if len(paths) == 1:
        return {source_id: "instances_corrected.json" for source_id in paths}
    stems = [path.stem for path in paths.values()]
    return {source_id: f"{path.stem}_corrected.json" if stems.count(path.stem) == 1 and path.stem != "labels"
            else f"{path.stem}_corrected.{source_id}.json" for source_id, path in paths.items()}


def _inline_sections(store: Store, source_id: int) -> tuple[list[tuple[str, Iterable[str]]], int]:
    """The sections of one source's inline file, and how many annotations it adds."""
    added = labels_added_for_source(store, source_id=source_id)
    categories = source_categories(store, source_id=source_id)
    category_texts = [text for _, _, text in categories]
    used = {source_category for source_category, _, _ in categories}
    extra: dict[int, int] = {}  # store category id -> the id it gets in this file (a class review added)
    for _, category_id, source_category, _ in added:
        if source_category is None and category_id not in extra:
            new_id = category_id if category_id not in used else max(used) + 1
            used.add(new_id)
            extra[category_id] = new_id
            category_texts.append(json.dumps({**category_record(store, category_id=category_id), "id": new_id},
                                             ensure_ascii=False, separators=(",", ":")))
    cells = [(json.loads(image), source_category if source_category is not None else extra[category_id], origin)
             for image, category_id, source_category, origin in added]
    first_id = max_annotation_id(store, source_id=source_id) + 1

    def annotations() -> Iterator[str]:
        yield from annotation_texts(store, source_id=source_id)
        yield from added_annotation_texts(cells, first_id=first_id)

    return [("images", source_image_texts(store, source_id=source_id)), ("categories", category_texts),
            ("annotations", annotations())], len(cells)


def export_coco(store: Store, *, out_dir: str | Path, inline: bool = False) -> ExportSummary:
    """Write ``labels.json`` (and with ``inline``, one corrected copy of each COCO source) into ``out_dir``.

    ``labels.json`` holds every image once (the store's ids; the image file's displayed width/height),
    and one annotation per positive cell. Each inline file is its source as it was (its own image and
    category ids, records in its order) plus bbox-less annotations for the labels review added to its
    images. Verified negatives never become annotations; images left with zero labels are kept. Files
    are written compactly, streaming from the store, and atomically as a set (all replaced, or none:
    :func:`labelfix.internal.atomic.atomic_targets`), then recorded in ``exports``.

    Examples
    --------
    >>> summary = export_coco(store, out_dir="corrected")  # doctest: +SKIP
    >>> [p.name for p in summary.paths]  # doctest: +SKIP
    ['labels.json']
    """
    out_dir = Path(out_dir)
    summary = ExportSummary()
    # All files or none: each is written to a temporary, and the set replaces the targets only when all
    # are written, so a failure on the second file leaves the previous export as it was (and records none).
    headers = dict(source_headers(store, kind="coco")) if inline else {}
    names = inline_file_names({source_id: path for source_id, path in source_paths(store).items()
                               if source_id in headers})
    for name in ["labels.json", *names.values()]:  # before the first file is written, not after
        refuse_a_folder(out_dir / name)
    with atomic_targets() as files:
        records = [_write_labels(store, files=files, path=out_dir / "labels.json", summary=summary)]
        if inline:
            if not headers:
                summary.warnings.append("--inline needs a COCO source: this store was ingested from tables only")
            records += _write_inline(store, files=files, out_dir=out_dir, headers=headers, names=names,
                                     summary=summary)
    with store.transaction():
        for kind, written, digest, n_images, n_annotations in records:
            record_export(store, kind=kind, path=written, sha256=digest, n_images=n_images,
                          n_annotations=n_annotations)
    return summary


ExportRecord = tuple[str, Path, str, int, int]  # kind, path, sha256, images, annotations


def _write_labels(store: Store, *, files: AtomicSet, path: Path, summary: ExportSummary) -> ExportRecord:
    header = merge_headers(header for _, header in source_headers(store))
    sha, counts = write_coco(files.temporary(path), header=header, sections=[
        ("images", image_record_texts(store)), ("categories", category_record_texts(store)),
        ("annotations", label_annotation_texts(positive_cells(store))),
        ("negative_labels", negative_label_texts(negative_cells(store)))])
    summary.paths.append(path)
    summary.n_images, summary.n_annotations = counts["images"], counts["annotations"]
    summary.n_negatives = counts["negative_labels"]
    summary.by_source = label_counts_by_origin(store)
    return ("labels", path, sha, summary.n_images, summary.n_annotations)


def _write_inline(store: Store, *, files: AtomicSet, out_dir: Path, headers: dict[int, dict[str, Any]],
                  names: dict[int, str], summary: ExportSummary) -> list[ExportRecord]:
    records: list[ExportRecord] = []
    for source_id, source_header in headers.items():
        sections, n_added = _inline_sections(store, source_id)
        inline_path = out_dir / names[source_id]
        inline_sha, inline_counts = write_coco(files.temporary(inline_path), header=source_header, sections=sections)
        summary.paths.append(inline_path)
        summary.added_inline[inline_path.name] = n_added
        mismatched = declared_size_mismatches(store, source_id=source_id)
        if mismatched:
            summary.warnings.append(
                f"{inline_path.name} keeps its source's width/height, which for {mismatched} images differ from "
                f"the image files as displayed (EXIF orientation); labels.json has the files' sizes")
        records.append(("inline", inline_path, inline_sha, inline_counts["images"], inline_counts["annotations"]))
    with_added = [name for name, count in summary.added_inline.items() if count]
    if with_added:
        summary.warnings.append(INLINE_WARNING.format(files=", ".join(with_added)))
    return records
