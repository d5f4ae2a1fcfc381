"""A small store with suggestions for the review tests (service, Streamlit app, FiftyOne, browser)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from PIL import Image, ImageDraw

from labelfix.ingest import ingest_coco
from labelfix.store import open_store
from labelfix.store.database import Store

# Class frequencies (positives in train): cat 6 (head), dog 3, car 1 (tail), bird 0 (no suggestions).
CLASSES = {1: "cat", 2: "dog", 5: "car", 7: "bird"}
POSITIVES = {1: range(1, 7), 2: range(1, 4), 5: range(1, 2)}
N_IMAGES = 10

# Missing-label suggestions on unknown cells: car (tail) 3, dog 3, cat (head) 2.
DEFAULT_SUGGESTIONS = [(2, 5, 0.91), (3, 5, 0.72), (4, 5, 0.55),
                       (4, 2, 0.88), (5, 2, 0.66), (6, 2, 0.61),
                       (7, 1, 0.95), (8, 1, 0.52)]


WIDTH, HEIGHT = 160, 120
SHAPE_COLORS = {1: (230, 140, 40), 2: (120, 80, 40), 5: (40, 90, 200), 7: (60, 170, 80)}
BOXES = {1: [10, 50, 50, 50], 2: [60, 30, 40, 70], 5: [100, 60, 50, 40], 7: [20, 8, 30, 24]}


def _draw_image(path: Path, image_id: int, classes: list[int]) -> None:
    """A simple scene: a tinted background with one shape per present class (also unannotated ones)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (WIDTH, HEIGHT), (235 - 8 * image_id, 235, 220 + 3 * image_id))
    draw = ImageDraw.Draw(image)
    for category_id in classes:
        x, y, w, h = BOXES[category_id]
        draw.ellipse([x, y, x + w, y + h], fill=SHAPE_COLORS[category_id])
    image.save(path)


def make_review_coco(root: Path) -> Path:
    """COCO file with bboxes on every annotation and images on disk."""
    suggested = {}
    for image_id, category_id, _ in DEFAULT_SUGGESTIONS:
        suggested.setdefault(image_id, []).append(category_id)
    images = []
    for image_id in range(1, N_IMAGES + 1):
        file_name = f"img_{image_id}.png"
        present = [c for c, ids in POSITIVES.items() if image_id in ids] + suggested.get(image_id, [])
        _draw_image(root / "images" / file_name, image_id, present)
        images.append({"id": image_id, "file_name": file_name, "width": WIDTH, "height": HEIGHT, "split": "train"})
    annotations = []
    for category_id, image_ids in POSITIVES.items():
        for image_id in image_ids:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category_id,
                                "bbox": BOXES[category_id], "area": 320, "iscrowd": 0})
    data = {"info": {"description": "review test"}, "images": images, "annotations": annotations,
            "categories": [{"id": cid, "name": name} for cid, name in CLASSES.items()]}
    path = root / "instances.json"
    path.write_text(json.dumps(data))
    return path


def add_suggestions(store: Store, rows: list[tuple[int, int, float]], *, kind: str = "missing") -> int:
    """Insert one run's suggestions ``(image_id, category_id, score)``; return the run id."""
    run_id = store.scalar("INSERT INTO runs (method, mode, status, config) VALUES ('test', 'suggest', 'done', '{}') "
                          "RETURNING run_id")
    by_class: dict[int, list] = {}
    for image_id, category_id, score in rows:
        by_class.setdefault(category_id, []).append((image_id, score))
    with store.transaction():
        for category_id, cells in by_class.items():
            for rank, (image_id, score) in enumerate(sorted(cells, key=lambda c: -c[1]), start=1):
                store.execute("INSERT INTO suggestions (run_id, image_id, category_id, kind, score, rank_in_class, "
                              "threshold, reason) VALUES (?, ?, ?, ?, ?, ?, 0.5, 'test')",
                              [run_id, image_id, category_id, kind, score, rank])
    return int(run_id)


def make_review_store(tmp_path: Path, *, suggestions=DEFAULT_SUGGESTIONS) -> Path:
    """Build ``tmp_path/review.duckdb`` with the images, labels and suggestions; return its path."""
    coco = make_review_coco(tmp_path / "data")
    db = tmp_path / "review.duckdb"
    with open_store(db) as store:
        ingest_coco(store, annotations=coco, images=tmp_path / "data" / "images", check_images="none")
        add_suggestions(store, list(suggestions))
    return db


class FakeClock:
    """An injected clock for lease and session expiry: starts at 2026-01-01 12:00, moves only on advance()."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 1, 12, 0, 0)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def open_review_app(reviewer: str | None = None, *, timeout: float = 60):
    """The review app as one browser session (streamlit's AppTest), opened under ``?reviewer=`` and run once
    without an exception; the store comes from ``LABELFIX_DB``."""
    from streamlit.testing.v1 import AppTest

    from labelfix.cli.review_commands import app_script

    at = AppTest.from_file(str(app_script()), default_timeout=timeout)
    if reviewer:
        at.query_params["reviewer"] = reviewer
    at.run()
    assert not at.exception, at.exception
    return at
