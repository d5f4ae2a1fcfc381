"""The COCO memory benchmark runs at a tiny size and reports what it says (figures not asserted)."""

from __future__ import annotations

import json

from labelfix.bench.speed import coco_memory


def test_generated_file_is_valid_coco(tmp_path):
    path = tmp_path / "x.json"
    info = coco_memory.generate(path, n_images=5, n_annotations=12, n_categories=3)
    data = json.loads(path.read_text())
    assert (info["images"], info["annotations"]) == (5, 12)
    assert [len(data[key]) for key in ("images", "annotations", "categories")] == [5, 12, 3]
    assert {a["image_id"] for a in data["annotations"]} <= {i["id"] for i in data["images"]}
    assert list(data) == ["info", "licenses", "images", "annotations", "categories"]  # COCO 2017's key order


def test_benchmark_runs_every_step_at_a_tiny_size(tmp_path):
    out = tmp_path / "result.json"
    result = coco_memory.main(["--images", "30", "--annotations", "120", "--categories", "4", "--no-ijson",
                               "--repeat", "1", "--workdir", str(tmp_path / "work"), "--out", str(out)])
    assert json.loads(out.read_text()) == result
    steps = result["result"]["steps"]
    assert {"json_load", "ingest", "reingest", "export_inline"} <= set(steps)
    assert "already ingested" in steps["reingest"]["stdout"]
    assert "added 30 images" in steps["ingest"]["stdout"]
    assert all(step["peak_rss_mb"] > 0 and step["seconds"] > 0 for step in steps.values())
    assert set(result["result"]["goal"]) >= {"ingest_rss_ok", "export_rss_ok", "ingest_vs_reference_time"}
    assert len(result["machine"]["load_average_before"]) == 3
