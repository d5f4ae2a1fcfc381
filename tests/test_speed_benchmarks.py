"""The speed benchmarks of labelfix.bench.speed run and measure what they say (tiny sizes; timings not asserted)."""

from __future__ import annotations

import json

import numpy as np

from labelfix.bench.speed import embed_throughput, head_training_time, review_queries, suggest_scale


def test_embed_throughput_compares_labelfix_with_a_bare_loop_over_the_same_images(tmp_path) -> None:
    out = tmp_path / "embed.json"
    assert embed_throughput.main(["--n", "10", "--batch-size", "4", "--backbone", "tiny",
                                  "--source-size", "48", "40", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["n_images"] == 10 and report["failed"] == 0 and report["cached_rerun_computed"] == 0
    for key in ("end_to_end_images_per_s", "embedding_loop_images_per_s", "bare_loop_images_per_s",
                "model_only_images_per_s"):
        assert report[key] > 0, key
    # The bare loop embedded the very images labelfix stored: identical features.
    assert report["max_abs_diff"] < 1e-5


def test_bare_loop_features_are_the_backbone_of_the_decoded_files(tmp_path) -> None:
    from labelfix.learn.backbones import build_backbone

    embed_throughput.write_synthetic_dataset(tmp_path, n=3, size=(40, 32))
    paths = sorted((tmp_path / "images").glob("*.png"))
    backbone = build_backbone("tiny", weights=None)
    rate, features = embed_throughput.bare_loop(paths, backbone=backbone, batch_size=2,
                                                device=embed_throughput.torch.device("cpu"))
    expected = backbone.model(embed_throughput._decode(paths, backbone)).detach().numpy()
    assert rate > 0 and features.shape == (3, 32)
    np.testing.assert_allclose(features, expected, atol=1e-5)


def test_head_training_time_writes_one_row_per_size(tmp_path) -> None:
    out = tmp_path / "head.json"
    head_training_time.main(["--sizes", "120", "--dim", "8", "--classes", "4", "--epochs", "1", "--out", str(out)])
    (row,) = json.loads(out.read_text())["results"]
    assert row["images"] == 120 and row["epochs"] == 1 and row["seconds_per_epoch"] > 0


def test_suggest_scale_runs_its_worker_as_a_module(tmp_path) -> None:
    out = tmp_path / "scale.json"
    suggest_scale.main(["--sizes", "300", "--classes", "4", "--workdir", str(tmp_path), "--out", str(out)])
    result = json.loads(out.read_text())
    (row,) = result["results"]
    assert row["predictions"] == 1200 and row["rows_written"] >= 0
    assert result["command"].endswith("-m labelfix.bench.speed.suggest_scale --sizes 300 --classes 4 --workdir "
                                      f"{tmp_path} --out {out}")


def test_review_queries_builds_its_store_and_times_every_call(tmp_path) -> None:
    out = tmp_path / "review.json"
    db = tmp_path / "kept.duckdb"
    assert review_queries.main(["--images", "300", "--classes", "8", "--repeats", "2", "--db", str(db),
                                "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    store = report["store"]
    assert store["images"] == 300 and store["categories"] == 8 and report["decided"] == 60
    assert 40 <= store["review_events"] <= 64  # the top 8 missing-label suggestions of each class, where it has 8
    assert 1000 < store["suggestions"] < 2400 and 900 < store["labels"] - store["review_events"] < 1500
    for key in ("class_list", "head_class_page", "tail_class_page", "all_classes_page", "decide", "undo",
                "decision_and_page_reload", "page_reload_app_service", "page_reload_open_and_close_per_page"):
        assert report["results"][key]["median_ms"] > 0, key
    assert report["results"]["accept_above"]["accepted"] > 0
    # a kept store is reused as generated (the measuring ran on a copy)
    assert review_queries.main(["--images", "300", "--classes", "8", "--repeats", "2", "--db", str(db)]) == 0
