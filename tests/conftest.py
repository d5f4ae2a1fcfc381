"""Shared fixtures: tiny datasets built in the test's temp folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")

STORE_TABLES = ("sources", "images", "categories", "annotations", "original_labels", "labels", "runs", "run_epochs",
                "predictions", "corrections", "suggestions", "review_events", "leases", "exports", "embedding_sets")


def write_image(path: Path, *, size=(32, 24), mode="RGB", seed=0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").convert(mode).save(path)
    return path


def make_coco(root: Path, *, n_images: int = 4, name: str = "instances.json", id_offset: int = 0) -> Path:
    """A small valid COCO file with images on disk: 3 categories, some images unannotated."""
    images, annotations = [], []
    for index in range(n_images):
        image_id = id_offset + index + 1
        file_name = f"img_{image_id}.png"
        write_image(root / "images" / file_name, seed=image_id)
        images.append({"id": image_id, "file_name": file_name, "width": 32, "height": 24, "split": "train",
                       "custom_key": {"camera": "a"}})
    categories = [{"id": 1, "name": "cat", "supercategory": "animal"}, {"id": 2, "name": "dog", "supercategory": "animal"},
                  {"id": 5, "name": "car", "supercategory": "vehicle", "extra": True}]
    next_id = id_offset * 10 + 1
    for image in images[:-1]:  # the last image has no annotations
        for category_id in (1, 5) if image["id"] % 2 else (2,):
            annotations.append({"id": next_id, "image_id": image["id"], "category_id": category_id,
                                "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 0, "note": "kept"})
            next_id += 1
    data = {"info": {"description": "tiny"}, "licenses": [{"id": 1, "name": "cc"}], "my_top_key": [1, 2],
            "images": images, "annotations": annotations, "categories": categories}
    path = root / name
    path.write_text(json.dumps(data))
    return path


def store_snapshot(db_path: Path) -> dict[str, list]:
    """Every row of every table, for 'the store is unchanged' assertions."""
    import duckdb

    if not db_path.exists():
        return {}
    connection = duckdb.connect(str(db_path), read_only=True)
    try:
        return {table: sorted(map(repr, connection.execute(f"SELECT * FROM {table}").fetchall()))
                for table in STORE_TABLES}
    finally:
        connection.close()


@pytest.fixture
def tiny_coco(tmp_path: Path) -> Path:
    return make_coco(tmp_path)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.duckdb"



@pytest.fixture
def playwright_sync():
    """A sync playwright for the browser tests; skips (saying how to install) without chromium or playwright."""
    from labelfix.bench.browser import CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium) "
                    f"to run the browser test")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install playwright==1.65.2)")
    with sync_playwright() as playwright:
        yield playwright
