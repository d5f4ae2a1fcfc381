"""`labelfix bench` on a tiny synthetic features table: output schema, oracle vs AN, metric plumbing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labelfix.evaluate import metrics
from labelfix.bench.harness import (BenchSettings, evaluate_scores, hide_labels, load_features_bench_data,
                                    parse_methods, prepare_seed)
from labelfix.bench.report import check_payload, load_schema, summarize
from labelfix.cli.main import main

CLASSES = ("ant", "bee", "cat", "dog")


def write_synthetic_features(path: Path, *, n: int = 320, dim: int = 24, seed: int = 0) -> Path:
    """Linearly separable multi-label data: each class adds its own direction to the embedding."""
    rng = np.random.default_rng(seed)
    truth = rng.random((n, len(CLASSES))) < np.array([0.7, 0.6, 0.5, 0.4])
    truth[~truth.any(axis=1), 0] = True
    directions = rng.normal(size=(len(CLASSES), dim)) * 2.0
    embeddings = (truth @ directions + rng.normal(scale=0.7, size=(n, dim))).astype(np.float32)
    splits = np.array(["train"] * int(n * 0.6) + ["val"] * int(n * 0.2) + ["test"] * (n - int(n * 0.6) - int(n * 0.2)))
    names = np.array(CLASSES, dtype=object)
    table = pa.table({
        "image_id": pa.array(np.arange(1, n + 1), pa.int64()),
        "labels": pa.array([names[row].tolist() for row in truth], pa.list_(pa.string())),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(embeddings.reshape(-1)), dim),
        "split": pa.array(splits.tolist()),
    })
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="module")
def bench_out(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bench")
    features = write_synthetic_features(folder / "features.parquet")
    out = folder / "out"
    code = main(["bench", "--features", str(features), "--methods", "an,em", "--seeds", "0", "--epochs", "30",
                 "--baseline-folds", "3", "--tune", "--out", str(out), "--quiet"])
    assert code == 0
    return out


def test_bench_writes_valid_results(bench_out: Path) -> None:
    payload = json.loads((bench_out / "results.json").read_text())
    assert check_payload(payload) == []
    assert payload["schema_version"] == 1
    methods = {r["method"] for r in payload["results"]}
    assert methods == {"an", "em", "cleanlab", "oracle"}
    for record in payload["results"]:
        assert set(record["precision_at"]) == {"0.1", "0.25", "0.5"}
        assert 0.0 <= record["missing_label_ap"] <= 1.0 + 1e-9 and 0.0 <= record["test_map"] <= 1.0 + 1e-9
        assert record["seconds"] >= 0 and record["peak_memory_mb"] is not None
        assert len(record["per_class"]["missing_label_ap"]) == len(CLASSES)
        assert isinstance(record["run_id"], int)  # head baselines are runs in the seed's store too
    summary = {s["method"]: s for s in payload["summary"]}
    assert summary["oracle"]["fraction_of_oracle"]["mean"] == pytest.approx(1.0)
    assert summary["an"]["ratio_to_an"]["mean"] == pytest.approx(1.0)
    for name in ("results.md", "pr_missing.png", "per_class_ap_vs_frequency.png"):
        assert (bench_out / name).stat().st_size > 0
    assert "missing-label AP" in (bench_out / "results.md").read_text()


def test_tuning_picks_the_best_val_map_and_uses_it(bench_out: Path) -> None:
    payload = json.loads((bench_out / "results.json").read_text())
    tuning = payload["tuning"]
    assert set(tuning) == {"an", "em"} and len(tuning["an"]["trials"]) == 3 and len(tuning["em"]["trials"]) == 9
    for method, tune in tuning.items():
        best = max(tune["trials"], key=lambda t: t["val_map"])
        assert tune["chosen"] == best["params"]
        record = next(r for r in payload["results"] if r["method"] == method)
        assert record["hyperparameters"]["weight_decay"] == tune["chosen"]["weight_decay"]
    assert "Settings tried on val" in (bench_out / "results.md").read_text()


def test_oracle_finds_more_than_an_on_an_easy_case(bench_out: Path) -> None:
    records = {r["method"]: r for r in json.loads((bench_out / "results.json").read_text())["results"]}
    assert records["oracle"]["missing_label_ap"] >= records["an"]["missing_label_ap"]
    assert records["oracle"]["missing_label_ap"] > 0.8  # separable data: the truth-trained model finds them
    assert records["oracle"]["extra"]["memory_measure"]


def test_schema_check_catches_missing_and_mistyped_keys(bench_out: Path) -> None:
    payload = json.loads((bench_out / "results.json").read_text())
    del payload["results"][0]["missing_label_ap"]
    payload["results"][1]["seed"] = "zero"
    problems = check_payload(payload)
    assert any("missing_label_ap" in p for p in problems) and any("seed" in p for p in problems)
    # The hand check used without jsonschema finds the same.
    from labelfix.bench.report import _hand_check

    schema = load_schema()
    hand = _hand_check(payload, schema, root=schema)
    assert any("missing_label_ap" in p for p in hand) and any("seed" in p for p in hand)


def test_evaluate_scores_matches_metrics_on_a_hand_made_prediction(tmp_path: Path) -> None:
    data = load_features_bench_data(write_synthetic_features(tmp_path / "f.parquet", n=120))
    settings = BenchSettings(methods=["an"], seeds=[0], hide_rate=0.4)
    ctx = prepare_seed(data, settings, seed=0, work_dir=tmp_path / "work")
    try:
        rng = np.random.default_rng(1)
        probs = rng.random(data.truth.shape).astype(np.float32)
        result = evaluate_scores(ctx, probs)
        train, test = data.rows("train"), data.rows("test")
        candidate = ~ctx.observed[train]
        hidden = (data.truth & ~ctx.observed)[train]
        assert hidden.sum() > 0 and not (hidden & ~candidate).any()
        # Pooled missing-label AP over the unknown train cells, positives = hidden.
        expected_ap = metrics.average_precision(scores=probs[train][candidate], targets=hidden[candidate])
        assert result["missing_label_ap"] == pytest.approx(expected_ap)
        k = max(1, int(np.floor(0.25 * hidden.sum() + 0.5)))
        assert result["precision_at"]["0.25"] == pytest.approx(
            metrics.precision_at_k(scores=probs[train][candidate], targets=hidden[candidate], k=k))
        assert result["recall_at_precision_0_9"] == pytest.approx(
            metrics.recall_at_precision(scores=probs[train][candidate], targets=hidden[candidate], precision=0.9))
        assert result["test_map"] == pytest.approx(
            metrics.mean_average_precision(probs=probs[test], truth=data.truth[test]).mean_ap)
        assert result["num_hidden"] == int(hidden.sum()) and result["num_candidates"] == int(candidate.sum())
        # Perfect scores: every metric is 1.
        perfect = evaluate_scores(ctx, (data.truth).astype(np.float32))
        assert perfect["missing_label_ap"] == pytest.approx(1.0) and perfect["test_map"] == pytest.approx(1.0)
        assert perfect["recall_at_precision_0_9"] == pytest.approx(1.0)
    finally:
        ctx.close()


def test_hiding_is_per_split_and_leaves_test_alone(tmp_path: Path) -> None:
    data = load_features_bench_data(write_synthetic_features(tmp_path / "f.parquet", n=200))
    observed = hide_labels(data, seed=3, rate=0.4, single_positive=False)
    for split in ("train", "val"):
        rows = data.rows(split)
        assert (data.truth[rows] & ~observed[rows]).sum() == round(0.4 * data.truth[rows].sum())
    test = data.rows("test")
    assert np.array_equal(observed[test], data.truth[test])
    single = hide_labels(data, seed=3, rate=0.4, single_positive=True)
    assert (single[data.rows("train")].sum(axis=1) == 1).all()
    assert np.array_equal(hide_labels(data, seed=3, rate=0.4, single_positive=False), observed)


def test_parse_methods_and_summary_ratios() -> None:
    assert parse_methods("an,em") == ["an", "em", "cleanlab", "oracle"]
    assert parse_methods("an", baselines=False) == ["an"]
    every = parse_methods("all")
    assert {"an", "cls", "comic", "comic_nohtb", "cleanlab", "oracle"} <= set(every)
    with pytest.raises(Exception):
        parse_methods("nope")
    base = {"folds": 1, "scoring": "in-sample", "precision_at": {"0.1": 0.5}, "recall_at_precision_0_9": 0.1,
            "test_map": 0.5, "test_map_shots": {"many": 0.5, "medium": None, "few": None}, "seconds": 1.0,
            "peak_memory_mb": 1.0}
    records = [{**base, "method": m, "seed": s, "missing_label_ap": ap}
               for m, s, ap in [("an", 0, 0.2), ("an", 1, 0.4), ("oracle", 0, 0.5), ("oracle", 1, 0.8),
                                ("em", 0, 0.3), ("em", 1, 0.4)]]
    summary = {s["method"]: s for s in summarize(records)}
    assert summary["em"]["fraction_of_oracle"]["mean"] == pytest.approx((0.3 / 0.5 + 0.4 / 0.8) / 2)
    assert summary["em"]["ratio_to_an"]["mean"] == pytest.approx((1.5 + 1.0) / 2)
    assert summary["an"]["missing_label_ap"]["std"] == pytest.approx(np.std([0.2, 0.4], ddof=1))
    assert summary["em"]["ratio_to_cleanlab"]["n"] == 0


def test_seed_reproduces_demo_data_hiding(tmp_path: Path) -> None:
    """Bench seed s on the demo's instances_full.json hides exactly what demo-data seed s hid."""
    from labelfix.bench.harness import read_coco_truth
    from labelfix.io.demo_data import make_demo_dataset

    demo = make_demo_dataset(out_dir=tmp_path / "demo", seed=2, n_train=40, n_val=20, n_test=10, image_size=48)
    data = read_coco_truth(demo.full_annotations)
    assert data.demo_parameters is not None and data.split_source == "file"
    observed_file = np.zeros_like(data.truth)
    row = {int(i): r for r, i in enumerate(data.image_ids)}
    for annotation in json.loads(demo.observed_annotations.read_text())["annotations"]:
        observed_file[row[annotation["image_id"]], annotation["category_id"] - 1] = True
    assert np.array_equal(hide_labels(data, seed=2, rate=0.4, single_positive=False), observed_file)


def test_logreg_out_of_fold_scores_every_train_row_with_a_model_that_did_not_see_it() -> None:
    from labelfix.bench.baselines import logreg_out_of_fold

    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 5)).astype(np.float32)
    y = np.stack([x[:, 0] > 0, x[:, 1] > 0.5], axis=1)
    train, val = np.arange(60), np.arange(60, 90)
    probs, info = logreg_out_of_fold(x, y, train_rows=train, val_rows=val, cs=(0.1, 1.0), folds=3, seed=0)
    assert probs.shape == (90, 2) and info["C"] in (0.1, 1.0) and set(info["val_map_by_C"]) == {"0.1", "1"}
    # A training row's label flipped changes no out-of-fold score of that row's own fold-mates' model
    # only through the other folds: flipping row 0 must leave row 0's own score unchanged.
    flipped = y.copy()
    flipped[0] = ~flipped[0]
    again, _ = logreg_out_of_fold(x, flipped, train_rows=train, val_rows=val, cs=(info["C"],), folds=3, seed=0)
    assert np.allclose(again[0], probs[0], atol=1e-6)
