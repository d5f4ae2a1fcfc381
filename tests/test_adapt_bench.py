"""`labelfix bench --mode adapt` on a tiny COCO set (tiny backbone, 24 px): the methods and the oracle train in adapt mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labelfix.bench.data import load_coco_bench_data
from labelfix.bench.harness import run_benchmark
from labelfix.bench.settings import BenchSettings
from labelfix.errors import LabelfixError
from tests.conftest import write_image


def make_bench_coco(root: Path, *, n: int = 40, size: int = 24) -> Path:
    images, annotations = [], []
    for index in range(n):
        image_id = index + 1
        split = "train" if index < 24 else "val" if index < 32 else "test"
        write_image(root / "images" / f"{image_id}.png", size=(size, size), seed=image_id)
        images.append({"id": image_id, "file_name": f"{image_id}.png", "width": size, "height": size, "split": split})
        for category_id in {1 + index % 3, 1 + (index * 7 + 1) % 3}:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category_id,
                                "bbox": [0, 0, 4, 4], "area": 16, "iscrowd": 0})
    categories = [{"id": c, "name": name} for c, name in ((1, "a"), (2, "b"), (3, "c"))]
    path = root / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def test_bench_adapt_mode_trains_methods_and_oracle_in_adapt_mode(tmp_path: Path) -> None:
    coco = make_bench_coco(tmp_path / "data")
    data = load_coco_bench_data(coco, images=tmp_path / "data" / "images", cache_dir=tmp_path / "cache",
                                backbone="tiny", progress=False)
    small = {"image_size": 24, "epochs": 1, "batch_size": 8}
    settings = BenchSettings(methods=["an", "oracle"], seeds=[0], backbone="tiny", mode="adapt", baseline_folds=2,
                             folds=[1], overrides={"an": small, "oracle": small})
    payload = run_benchmark(data, settings, progress=False).payload
    records = {r["method"]: r for r in payload["results"]}
    assert set(records) == {"an", "oracle"}
    assert payload["config"]["mode"] == "adapt"
    assert records["an"]["hyperparameters"]["mode"] == "adapt" and records["an"]["hyperparameters"]["folds"] == 1
    assert records["oracle"]["hyperparameters"]["folds"] == 2
    assert records["oracle"]["scoring"] == "out-of-fold" and records["an"]["scoring"] == "in-sample"


def test_bench_adapt_mode_needs_images(tmp_path: Path) -> None:
    from labelfix.cli.main import main

    table = tmp_path / "features.parquet"
    table.write_bytes(b"")
    code = main(["bench", "--features", str(table), "--mode", "adapt", "--quick", "--out", str(tmp_path / "out")])
    assert code == 2
