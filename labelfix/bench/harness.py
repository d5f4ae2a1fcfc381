"""`labelfix bench`: hide known labels, train every method, measure how well each finds them.

One benchmark works on a **fully labelled** dataset (a COCO file with images, or a features table)::

    data  = load_coco_bench_data(...) | load_features_bench_data(...)   # truth + embeddings, once
    for seed in seeds:
        ctx = prepare_seed(data, settings, seed=seed, work_dir=...)     # hide positives, per-seed store
        for method in methods:
            outcome = score_method(ctx, method, settings)             # train, read scores of every cell
            record  = evaluate_scores(ctx, outcome.probs)             # test mAP, missing-label metrics

How the pieces are defined (also in ``schemas/bench_results.schema.json``):

* **Truth and splits.** The file's labels are the truth. Splits come from the image records'
  ``split`` key (COCO) or the ``split`` column (features table); without any, a seeded 70/10/20
  split (``split_seed``, the same for every hiding seed).
* **Hiding.** Train and val positives are hidden separately with
  :func:`labelfix.evaluate.simulate.hide_positives`, exactly as ``labelfix demo-data`` does (same
  per-split seed derivation, same difficulty for the demo data), so bench seed *s* on the demo's
  ``instances_full.json`` reproduces the demo's ``instances_observed.json`` of seed *s*. Test stays
  fully labelled.
* **Training.** Each seed gets its own store (a features table of the observed labels, ingested
  with :func:`labelfix.ingest`); each method is one :func:`labelfix.learn.head.trainer.train_head` run
  with the method's defaults, early stopping on the val split's *observed* labels. Nothing is chosen
  on test.
* **Scores.** The run's stored predictions (:func:`labelfix.store.runs.read_predictions`).
* **Test mAP** on the fully labelled test split; the many / medium / few-shot split counts each
  class's **true** positives in the train split (COMIC: > 100, 20–100, < 20).
* **Missing-label metrics** rank the train split's unknown cells; positives are the hidden labels
  (:func:`labelfix.evaluate.metrics.missing_label_metrics`).
* **Baselines** (:mod:`labelfix.bench.baselines`): ``cleanlab`` and the full-label ``oracle``, both
  out-of-fold.
* **Cost.** ``seconds``: wall time of training and scoring the method (store writes included,
  evaluation excluded). ``peak_memory_mb``: see :class:`labelfix.bench.memory.PeakMemory`.

Extending (cross-fitting, review rounds): ``BenchSettings.folds`` already lists the trainer fold
counts to report (``--folds 1,5`` gives every method in-sample and cross-fitted; records carry
``folds`` and ``scoring``). A review-round loop works on one :class:`SeedContext`: write review
decisions into ``ctx.store``, call :func:`score_method` again, and evaluate on the still-unreviewed
cells with ``evaluate_scores(ctx, probs, candidate=...)``.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from labelfix.bench.baselines import cleanlab_baseline, oracle_baseline
from labelfix.bench.data import BenchData, load_coco_bench_data, load_features_bench_data, read_coco_truth
from labelfix.bench.memory import PeakMemory
from labelfix.bench.methods import MethodOutcome, merge_train_fields, run_trainer_method, train_config_for
from labelfix.evaluate.metrics import mean_average_precision, missing_label_metrics, shot_split_map
from labelfix.bench.provenance import environment as run_environment
from labelfix.bench.report import SCHEMA_VERSION
from labelfix.bench.seeds import SeedContext, hide_labels, prepare_seed, write_features_table
from labelfix.bench.settings import (BASELINES, FRACTIONS, METHOD_VARIANTS, SHOTS, TARGET_PRECISION, BenchSettings,
                                     all_methods, parse_methods, trainer_methods)
from labelfix.bench.tuning import tune_candidates, tune_method
from labelfix.internal.json_values import finite_or_none, jsonable


def score_method(ctx: SeedContext, method: str, settings: BenchSettings, *, folds: int = 1) -> MethodOutcome:
    """Run one method (trainer method, variant or baseline), timed and memory-measured."""
    with PeakMemory() as memory:
        started = time.perf_counter()
        if method == "cleanlab":
            outcome = cleanlab_baseline(ctx, settings)
        elif method == "oracle":
            outcome = oracle_baseline(ctx, settings)
        else:
            outcome = run_trainer_method(ctx, method, settings, folds=folds)
        outcome.seconds = time.perf_counter() - started
    outcome.peak_memory_mb = memory.peak_mb
    outcome.extra["memory_measure"] = memory.method
    return outcome


def evaluate_scores(ctx: SeedContext, probs: np.ndarray, *, missing_scores: Optional[np.ndarray] = None,
                    candidate: Optional[np.ndarray] = None) -> dict[str, Any]:
    """Test mAP (with the shot split) and the missing-label metrics of one method's scores.

    ``candidate`` defaults to the train split's unknown cells; review rounds pass the still-unreviewed
    ones. Returns the metric part of a result record (JSON-ready).
    """
    data = ctx.data
    test = data.rows("test")
    test_map = mean_average_precision(probs=probs[test], truth=data.truth[test])
    shots = shot_split_map(per_class_ap=test_map.per_class_ap, train_counts=data.train_counts(),
                           many=SHOTS["many"], few=SHOTS["few"])
    candidate = ctx.candidate if candidate is None else candidate
    rows = ctx.train_rows
    scores = probs if missing_scores is None else missing_scores
    report = missing_label_metrics(scores=scores[rows], hidden=ctx.hidden[rows] & candidate[rows],
                                   candidate=candidate[rows], fractions=FRACTIONS, target_precision=TARGET_PRECISION)
    missing = report.to_dict()
    return {
        "test_map": finite_or_none(test_map.mean_ap),
        "test_map_shots": {k: finite_or_none(v) for k, v in shots.items()},
        "missing_label_ap": missing["average_precision"],
        "missing_label_macro_ap": missing["macro_average_precision"],
        "precision_at": missing["precision_at"],
        "recall_at_precision_0_9": missing["recall_at_target_precision"],
        "num_hidden": missing["num_hidden"],
        "num_candidates": missing["num_candidates"],
        "per_class": {
            "test_ap": [finite_or_none(v) for v in test_map.per_class_ap],
            "missing_label_ap": missing["per_class"]["average_precision"],
            "precision_at": missing["per_class"]["precision_at"],
            "recall_at_precision_0_9": missing["per_class"]["recall_at_target_precision"],
            "num_hidden": missing["per_class"]["num_hidden"],
        },
    }


def make_record(ctx: SeedContext, outcome: MethodOutcome) -> dict[str, Any]:
    """One ``results`` entry of ``results.json``."""
    record: dict[str, Any] = {
        "method": outcome.method, "seed": ctx.seed, "folds": outcome.folds, "scoring": outcome.scoring,
        **evaluate_scores(ctx, outcome.probs, missing_scores=outcome.missing_scores),
        "val_map": finite_or_none(outcome.val_map), "run_id": outcome.run_id, "best_epoch": outcome.best_epoch,
        "seconds": round(float(outcome.seconds), 3),
        "peak_memory_mb": None if math.isnan(outcome.peak_memory_mb) else round(float(outcome.peak_memory_mb), 1),
        "hyperparameters": outcome.hyperparameters, "extra": {k: jsonable(v) for k, v in outcome.extra.items()},
        "val_curve": [finite_or_none(h.get("val_map")) for h in outcome.history],
    }
    return record


@dataclass
class BenchRun:
    """What :func:`run_benchmark` produced: the JSON payload and the seed-0 PR curves for plots."""

    payload: dict[str, Any]
    curves: dict[str, tuple[np.ndarray, np.ndarray]]


def run_benchmark(data: BenchData, settings: BenchSettings, *, work_dir: Optional[Path] = None,
                  keep_work: bool = False, progress: bool = True,
                  on_record: Optional[Callable[[dict[str, Any]], None]] = None) -> BenchRun:
    """Every (seed, method[, folds]) of ``settings`` on ``data``; see the module docstring."""
    from labelfix.evaluate.metrics import precision_recall_curve
    from labelfix.bench.report import build_payload

    _import_method_code()
    owned = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="labelfix-bench-")) if work_dir is None else Path(work_dir)
    units = [(method, folds) for method in settings.methods
             for folds in ([settings.baseline_folds] if method in BASELINES else settings.folds)]
    records: list[dict[str, Any]] = []
    tuning: dict[str, Any] = {}
    seeds_info: list[dict[str, Any]] = []
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    started = time.perf_counter()
    to_tune = [m for m in settings.methods if tune_candidates(m)] if settings.tune else []
    bar = _progress_bar(total=len(units) * len(settings.seeds) + len(to_tune), enabled=progress)
    try:
        for seed in settings.seeds:
            bar.describe(f"seed {seed}: hiding labels")
            ctx = prepare_seed(data, settings, seed=seed, work_dir=work)
            seeds_info.append(ctx.describe())
            try:
                if seed == settings.seeds[0] and to_tune:
                    for method in to_tune:
                        bar.describe(f"seed {seed}: tuning {method} on val")
                        tuning[method] = tune_method(ctx, method, settings)
                        settings.overrides[method] = merge_train_fields(settings.overrides.get(method, {}),
                                                                   tuning[method]["chosen"])
                        bar.advance()
                for method, folds in units:
                    label = method if folds == 1 or method in BASELINES else f"{method} (folds {folds})"
                    bar.describe(f"seed {seed}: {label}")
                    outcome = score_method(ctx, method, settings, folds=folds)
                    record = make_record(ctx, outcome)
                    records.append(record)
                    if seed == settings.seeds[0]:
                        scores = outcome.probs if outcome.missing_scores is None else outcome.missing_scores
                        rows = ctx.train_rows
                        cand = ctx.candidate[rows]
                        precision, recall, _ = precision_recall_curve(scores=scores[rows][cand],
                                                                      targets=ctx.hidden[rows][cand])
                        curves[_series_name(record)] = _thin_curve(precision, recall)
                    if on_record is not None:
                        on_record(record)
                    bar.advance()
            finally:
                ctx.close()
                if not keep_work:
                    shutil.rmtree(work / f"seed{seed}", ignore_errors=True)
    finally:
        bar.close()
        if owned and not keep_work:
            shutil.rmtree(work, ignore_errors=True)
    environment = run_environment()
    environment["total_seconds"] = round(time.perf_counter() - started, 2)
    payload = build_payload(settings=settings.to_dict(), data=data.describe(), seeds=seeds_info, records=records,
                            environment=environment, tuning=tuning or None)
    return BenchRun(payload=payload, curves=curves)


def _import_method_code() -> None:
    """Import torch, the trainer, scikit-learn and cleanlab up front, so that the first method's
    time and memory do not include loading libraries every method shares."""
    import importlib

    for module in ("torch", "labelfix.learn.head.trainer", "sklearn.linear_model",
                   "cleanlab.multilabel_classification.filter"):
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    import torch

    # One tiny optimiser step: PyTorch initialises its CPU kernels and autograd on first use, which
    # would otherwise be billed to whichever method happens to run first.
    with torch.random.fork_rng(devices=[]):
        layer = torch.nn.Linear(4, 2)
        optimizer = torch.optim.AdamW(layer.parameters(), lr=1e-3)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(layer(torch.ones(3, 4)), torch.zeros(3, 2))
        loss.backward()
        optimizer.step()


def _series_name(record: dict[str, Any]) -> str:
    method = record["method"]
    return method if record["folds"] == 1 or method in BASELINES else f"{method}@{record['folds']}f"


def _thin_curve(precision: np.ndarray, recall: np.ndarray, points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    if len(precision) <= points:
        return precision, recall
    keep = np.unique(np.linspace(0, len(precision) - 1, points).round().astype(int))
    return precision[keep], recall[keep]


class _progress_bar:
    """A rich progress bar over (seed, method) units; silent when disabled or not a terminal."""

    def __init__(self, *, total: int, enabled: bool) -> None:
        self._progress = None
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("[bold]bench[/]"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TextColumn("{task.description}"), transient=False)
        self._progress.start()
        self._task = self._progress.add_task("", total=total)

    def describe(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text)

    def advance(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


__all__ = ["BASELINES", "METHOD_VARIANTS", "SCHEMA_VERSION", "BenchData", "BenchRun", "BenchSettings",
           "MethodOutcome", "PeakMemory", "SeedContext", "all_methods", "evaluate_scores", "hide_labels",
           "load_coco_bench_data", "load_features_bench_data", "read_coco_truth", "make_record", "parse_methods",
           "prepare_seed", "run_benchmark", "run_trainer_method", "score_method", "train_config_for", "trainer_methods",
           "tune_candidates", "tune_method", "write_features_table"]
