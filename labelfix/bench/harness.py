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
  :func:`labelfix.bench.simulate.hide_positives`, exactly as ``labelfix demo-data`` does (same
  per-split seed derivation, same difficulty for the demo data), so bench seed *s* on the demo's
  ``instances_full.json`` reproduces the demo's ``instances_observed.json`` of seed *s*. Test stays
  fully labelled.
* **Training.** Each seed gets its own store (a features table of the observed labels, ingested
  with :func:`labelfix.ingest`); each method is one :func:`labelfix.learn.trainer.train_head` run
  with the method's defaults, early stopping on the val split's *observed* labels. Nothing is chosen
  on test.
* **Scores.** The run's stored predictions (:func:`labelfix.store.runs.read_predictions`).
* **Test mAP** on the fully labelled test split; the many / medium / few-shot split counts each
  class's **true** positives in the train split (COMIC: > 100, 20–100, < 20).
* **Missing-label metrics** rank the train split's unknown cells; positives are the hidden labels
  (:func:`labelfix.bench.metrics.missing_label_metrics`).
* **Baselines** (:mod:`labelfix.bench.baselines`): ``cleanlab`` and the full-label ``oracle``, both
  out-of-fold.
* **Cost.** ``seconds``: wall time of training and scoring the method (store writes included,
  evaluation excluded). ``peak_memory_mb``: see :class:`PeakMemory`.

Extending (cross-fitting, review rounds): ``BenchSettings.folds`` already lists the trainer fold
counts to report (``--folds 1,5`` gives every method in-sample and cross-fitted; records carry
``folds`` and ``scoring``). A review-round loop works on one :class:`SeedContext`: write review
decisions into ``ctx.store``, call :func:`score_method` again, and evaluate on the still-unreviewed
cells with ``evaluate_scores(ctx, probs, candidate=...)``.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from labelfix.bench.data import BenchData, load_coco_bench_data, load_features_bench_data, read_coco_truth
from labelfix.bench.metrics import mean_average_precision, missing_label_metrics, shot_split_map
from labelfix.bench.report import SCHEMA_VERSION
from labelfix.bench.simulate import hide_positives
from labelfix.errors import LabelfixError

BASELINES: tuple[str, ...] = ("cleanlab", "oracle")
# Benchmark-only variants of trainer methods: name -> (trainer method, TrainConfig fields).
METHOD_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    # COMIC without its head-tail balancer (RLC + MFM only): what HTB adds (METHODS.md).
    "comic_nohtb": ("comic", {"loss_params": {"htb": False}}),
}
# --tune: candidate settings per method, each tried with the method's default weight decay times each
# of TUNE_WEIGHT_DECAY_FACTORS, on the first seed's store; the one with the best val mAP (the val
# split's observed labels, the trainer's own early-stopping criterion) is used for every seed. Loss
# settings around the papers' defaults (METHODS.md); loss_params are merged into the method's defaults.
TUNE_WEIGHT_DECAY_FACTORS: tuple[float, ...] = (0.1, 1.0, 4.0)
TUNE_GRIDS: dict[str, list[dict[str, Any]]] = {
    "focal": [{"loss_params": {"gamma": g}} for g in (1.0, 2.0)],
    "asl": [{"loss_params": {"gamma_neg": g}} for g in (2.0, 4.0)],
    "splc": [{"loss_params": {"tau": t}} for t in (0.5, 0.6, 0.7)],
    "em": [{"loss_params": {"alpha": a}} for a in (0.01, 0.1, 0.2)],
    "em_apl": [{"loss_params": {"alpha": a}} for a in (0.01, 0.1, 0.2)],
    "gr": [{"loss_params": {"w_end": 2.0, "b_end": -2.0}}, {"loss_params": {"w_end": 10.0, "b_end": -8.0}}],
    "comic": [{"loss_params": {"tau": t}} for t in (0.6, 0.7, 0.8)],
    "comic_nohtb": [{"loss_params": {"tau": t}} for t in (0.6, 0.7, 0.8)],
    "cls": [{"cls_tau_h": t} for t in (0.002, 0.01, 0.02)],
}
FRACTIONS: tuple[float, ...] = (0.1, 0.25, 0.5)
TARGET_PRECISION = 0.9
SHOTS = {"many": 100, "few": 20}  # COMIC: many > 100, medium 20-100, few < 20 train samples


def trainer_methods() -> tuple[str, ...]:
    """Every method ``train_head`` knows, except ``oracle`` (the oracle is a baseline here)."""
    from labelfix.learn.trainer import TRAIN_METHODS

    return tuple(m for m in TRAIN_METHODS if m != "oracle")


def all_methods() -> tuple[str, ...]:
    """What ``--methods all`` runs: every trainer method, the variants, cleanlab and the oracle."""
    return trainer_methods() + tuple(METHOD_VARIANTS) + BASELINES


def parse_methods(text: str, *, baselines: bool = True) -> list[str]:
    """``"an,em"`` / ``"all"`` -> method names (order kept, duplicates dropped).

    With ``baselines`` the cleanlab and oracle baselines are added when not named.
    """
    known = all_methods()
    names: list[str] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        expanded = list(known) if part == "all" else [part]
        for name in expanded:
            if name not in known:
                raise LabelfixError(f"unknown method {name!r}", fix=f"use all or some of: {', '.join(known)}")
            if name not in names:
                names.append(name)
    if not names:
        raise LabelfixError("no method given", fix="pass --methods an,em or --methods all")
    if baselines:
        names += [b for b in BASELINES if b not in names]
    return names


# ---------------------------------------------------------------------------------------------
# Settings


@dataclass
class BenchSettings:
    """Everything that decides a benchmark's numbers (written to ``results.json`` as ``config``).

    ``epochs=None`` keeps each method's default; ``folds`` lists the trainer's cross-fitting fold
    counts to report (1 = in-sample scoring, the trainer's default); ``baseline_folds`` is K of the
    out-of-fold cleanlab / oracle predictions; ``baseline_model`` is ``head`` (labelfix's linear head,
    ``an`` / ``oracle`` with ``folds=K``) or ``logreg`` (scikit-learn logistic regression per class,
    C chosen on val); see :mod:`labelfix.bench.baselines`.
    """

    methods: list[str]
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    hide_rate: float = 0.4
    single_positive: bool = False
    epochs: Optional[int] = None
    folds: list[int] = field(default_factory=lambda: [1])
    baseline_folds: int = 5
    baseline_model: Literal["logreg", "head"] = "head"
    logreg_cs: tuple[float, ...] = (0.01, 0.1, 1.0)
    split_seed: int = 0
    backbone: str = "mobilenet_v2"
    quick: bool = False
    tune: bool = False
    # Per-method TrainConfig fields on top of the method's defaults (filled by tuning, or given).
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"methods": list(self.methods), "seeds": list(self.seeds), "hide_rate": self.hide_rate,
                "single_positive": self.single_positive, "epochs": self.epochs, "folds": list(self.folds),
                "baseline_folds": self.baseline_folds, "baseline_model": self.baseline_model,
                "logreg_cs": list(self.logreg_cs), "split_seed": self.split_seed, "backbone": self.backbone,
                "quick": self.quick, "tune": self.tune, "overrides": _jsonable(self.overrides),
                "fractions": list(FRACTIONS), "target_precision": TARGET_PRECISION,
                "shots": {"many": f">{SHOTS['many']}", "medium": f"{SHOTS['few']}-{SHOTS['many']}",
                          "few": f"<{SHOTS['few']}", "counted_on": "true train labels"}}


# Data: labelfix.bench.data (BenchData, load_coco_bench_data, load_features_bench_data, read_coco_truth).

# ---------------------------------------------------------------------------------------------
# One seed: hide, write a store


@dataclass
class SeedContext:
    """One hiding seed: observed labels, hidden cells and the store the methods train in.

    ``observed`` and ``hidden`` are bool [N, C] aligned with ``data``; ``candidate`` marks the
    train split's unknown cells (the cells ranked for missing labels). ``store`` is open until
    :meth:`close`.
    """

    data: BenchData
    seed: int
    observed: np.ndarray
    hidden: np.ndarray
    store: Any
    store_path: Path
    features_table: Path

    @property
    def train_rows(self) -> np.ndarray:
        return self.data.rows("train")

    @property
    def candidate(self) -> np.ndarray:
        """bool [N, C]: unknown cells of the train split."""
        mask = np.zeros_like(self.observed)
        rows = self.train_rows
        mask[rows] = ~self.observed[rows]
        return mask

    def truth_states(self) -> np.ndarray:
        """int8 [N, C] of the true labels (+1 / 0), the oracle's training labels."""
        return self.data.truth.astype(np.int8)

    def describe(self) -> dict[str, Any]:
        return {"seed": self.seed,
                "hidden": {s: int(self.hidden[self.data.rows(s)].sum()) for s in ("train", "val")},
                "hidden_fraction": {s: _safe_ratio(self.hidden[self.data.rows(s)].sum(),
                                                   self.data.truth[self.data.rows(s)].sum()) for s in ("train", "val")},
                "candidates": int(self.candidate.sum())}

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


def hide_seed_for(seed: int, split: str) -> int:
    """The seed ``demo-data`` gives :func:`hide_positives` for ``split`` (so the two agree)."""
    from labelfix.io.demo_data import _SEED_TAG

    return int(np.random.SeedSequence([seed, _SEED_TAG[f"hide_{split}"]]).generate_state(1)[0])


def hide_labels(data: BenchData, *, seed: int, rate: float, single_positive: bool) -> np.ndarray:
    """Observed labels: train and val positives hidden separately as ``demo-data`` does; test kept."""
    from labelfix.io.demo_data import _feasible_rate

    observed = data.truth.copy()
    for split in ("train", "val"):
        rows = data.rows(split)
        truth = data.truth[rows]
        observed[rows] = hide_positives(
            truth, rate=_feasible_rate(truth, rate, split), single_positive=single_positive,
            seed=hide_seed_for(seed, split), difficulty=None if data.difficulty is None else data.difficulty[rows])
    return observed


def write_features_table(data: BenchData, observed: np.ndarray, path: Path) -> Path:
    """A features table (``image_id``, ``labels``, ``embedding``, ``split``) of the observed labels."""
    names = np.array(data.class_names, dtype=object)
    dim = data.embeddings.shape[1]
    table = pa.table({
        "image_id": pa.array(data.image_ids, pa.int64()),
        "labels": pa.array([names[row].tolist() for row in observed], pa.list_(pa.string())),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(data.embeddings.reshape(-1), pa.float32()), dim),
        "split": pa.array(data.splits.tolist(), pa.string())})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def prepare_seed(data: BenchData, settings: BenchSettings, *, seed: int, work_dir: Path) -> SeedContext:
    """Hide labels for ``seed`` and ingest the observed features table into a fresh store."""
    from labelfix.io.table import KnownVocabulary, read_features_table
    from labelfix.store.catalog import ingest_batch
    from labelfix.store.database import open_store
    from labelfix.store.labels import load_label_matrix

    observed = hide_labels(data, seed=seed, rate=settings.hide_rate, single_positive=settings.single_positive)
    folder = Path(work_dir) / f"seed{seed}"
    if folder.exists():
        shutil.rmtree(folder)
    table = write_features_table(data, observed, folder / "observed_features.parquet")
    # Every class keeps its id (1..C in class order), even one that lost all its observed labels.
    known = KnownVocabulary(category_ids={name: i + 1 for i, name in enumerate(data.class_names)},
                            next_category_id=data.num_classes + 1)
    store_path = folder / "store.duckdb"
    store = open_store(store_path)
    try:
        ingest_batch(store, read_features_table(table, known=known))
        matrix = load_label_matrix(store)
        if not (np.array_equal(matrix.image_ids, data.image_ids)
                and np.array_equal(matrix.category_ids, np.arange(1, data.num_classes + 1))
                and np.array_equal(matrix.states == 1, observed)):
            raise RuntimeError("the benchmark store does not hold the observed labels it was given")
    except BaseException:
        store.close()
        raise
    return SeedContext(data=data, seed=seed, observed=observed, hidden=data.truth & ~observed, store=store,
                       store_path=store_path, features_table=table)


# ---------------------------------------------------------------------------------------------
# Memory


def _status_kb(field_name: str) -> Optional[int]:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakMemory:
    """Peak resident-set-size (RSS) increase of this process during a block, in MB.

    ``peak_mb`` = highest RSS during the block minus RSS when it started: what running the method
    cost on top of what the process already held (the cached embeddings, earlier methods'
    allocator caches). It counts numpy, PyTorch and DuckDB memory alike. On Linux the kernel's
    high-water mark (VmHWM) is reset through ``/proc/self/clear_refs`` before the block and read
    after it (exact); elsewhere RSS is sampled every 10 ms with psutil (``method`` says which).
    """

    def __init__(self) -> None:
        self.peak_mb = math.nan
        self.method = ""
        self._start_kb = 0
        self._sampler: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._max_kb = 0

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        start = _status_kb("VmRSS")
        if start is not None and _reset_high_water_mark():
            self._start_kb, self.method = start, "VmHWM (reset via /proc/self/clear_refs)"
            return self
        import psutil

        process = psutil.Process()
        self._start_kb = self._max_kb = process.memory_info().rss // 1024
        self.method = "RSS sampled every 10 ms (psutil)"

        def sample() -> None:
            while not self._stop.wait(0.01):
                self._max_kb = max(self._max_kb, process.memory_info().rss // 1024)

        self._sampler = threading.Thread(target=sample, daemon=True)
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sampler is not None:
            self._stop.set()
            self._sampler.join()
            peak_kb = self._max_kb
        else:
            peak_kb = _status_kb("VmHWM") or self._start_kb
        self.peak_mb = max(peak_kb - self._start_kb, 0) / 1024.0


def _reset_high_water_mark() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# Methods


@dataclass
class MethodOutcome:
    """Scores of every (image, class) cell from one method: ``probs`` float32 [N, C] aligned with data.

    ``missing_scores`` (optional) replaces ``probs`` for the missing-label ranking (cleanlab ranks its
    flagged cells first); ``extra`` holds method-specific facts (chosen C, flags, corrections).
    """

    method: str
    probs: np.ndarray
    folds: int
    scoring: str
    run_id: Optional[int] = None
    val_map: Optional[float] = None
    best_epoch: Optional[int] = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    missing_scores: Optional[np.ndarray] = None
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = math.nan
    peak_memory_mb: float = math.nan


def _merge_fields(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """TrainConfig fields ``base`` updated by ``extra``; ``loss_params`` dicts are merged, not replaced."""
    merged = {key: (dict(value) if isinstance(value, dict) else value) for key, value in base.items()}
    for key, value in extra.items():
        if key == "loss_params":
            merged["loss_params"] = {**merged.get("loss_params", {}), **value}
        else:
            merged[key] = value
    return merged


def train_config_for(method: str, settings: BenchSettings, *, seed: int, folds: int = 1,
                     overrides: Optional[dict[str, Any]] = None):
    """The :class:`TrainConfig` a method runs with: its defaults, the benchmark's settings, then
    ``overrides`` (default: ``settings.overrides[method]``, e.g. what ``--tune`` chose)."""
    from labelfix.learn.config import TrainConfig

    base, fields = METHOD_VARIANTS.get(method, (method, {}))
    chosen = settings.overrides.get(method, {}) if overrides is None else overrides
    fields = _merge_fields(fields, chosen)
    update: dict[str, Any] = {"method": base, "mode": "head", "seed": seed, "device": "cpu", **fields}
    if folds != 1:
        update["folds"] = folds
    epochs = settings.epochs if settings.epochs is not None else (5 if settings.quick else None)
    if epochs is not None and "epochs" not in chosen:
        update["epochs"] = epochs
        if base == "em_apl":  # APL starts after a third of the epochs (the trainer's default ratio)
            update["loss_params"] = {**update.get("loss_params", {}), "warmup_epochs": max(1, round(epochs / 3))}
    return TrainConfig(**update)


def _read_aligned_predictions(ctx: SeedContext, run_id: int) -> np.ndarray:
    from labelfix.store.runs import read_predictions

    predictions = read_predictions(ctx.store, run_id=run_id)
    if not np.array_equal(predictions.image_ids, ctx.data.image_ids) or not np.array_equal(
            predictions.category_ids, np.arange(1, ctx.data.num_classes + 1)):
        raise RuntimeError(f"run {run_id}'s predictions do not cover every benchmark image and class")
    return predictions.probs


def run_trainer_method(ctx: SeedContext, method: str, settings: BenchSettings, *, folds: int = 1,
                       label_states: Optional[np.ndarray] = None,
                       overrides: Optional[dict[str, Any]] = None) -> MethodOutcome:
    """Train one method in the seed's store and read back its stored predictions."""
    from labelfix.learn.trainer import resolve_config, train_head

    config = train_config_for(method, settings, seed=ctx.seed, folds=folds, overrides=overrides)
    result = train_head(ctx.store, config=config, label_states=label_states)
    resolved = resolve_config(config)
    return MethodOutcome(
        method=method, probs=_read_aligned_predictions(ctx, result.run_id), folds=folds,
        scoring="in-sample" if folds == 1 else "cross-fitted", run_id=result.run_id,
        val_map=_finite_or_none(result.metrics.get("val_map")), best_epoch=result.best_epoch,
        hyperparameters={key: _jsonable(value) for key, value in resolved.model_dump(mode="json").items()
                         if key in ("method", "epochs", "batch_size", "lr", "weight_decay", "early_stopping_patience",
                                    "loss_params", "head", "standardize", "folds", "cls_tau_h", "cls_tau_l", "cls_e_k")},
        extra={"num_treated": result.metrics.get("num_treated"), "epochs_trained": result.metrics.get("epochs_trained")},
        history=[{k: _jsonable(v) for k, v in h.items()} for h in result.history])


def score_method(ctx: SeedContext, method: str, settings: BenchSettings, *, folds: int = 1) -> MethodOutcome:
    """Run one method (trainer method, variant or baseline), timed and memory-measured."""
    from labelfix.bench import baselines

    with PeakMemory() as memory:
        started = time.perf_counter()
        if method == "cleanlab":
            outcome = baselines.cleanlab_baseline(ctx, settings)
        elif method == "oracle":
            outcome = baselines.oracle_baseline(ctx, settings)
        else:
            outcome = run_trainer_method(ctx, method, settings, folds=folds)
        outcome.seconds = time.perf_counter() - started
    outcome.peak_memory_mb = memory.peak_mb
    outcome.extra["memory_measure"] = memory.method
    return outcome


# ---------------------------------------------------------------------------------------------
# Evaluation


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
        "test_map": _finite_or_none(test_map.mean_ap),
        "test_map_shots": {k: _finite_or_none(v) for k, v in shots.items()},
        "missing_label_ap": missing["average_precision"],
        "missing_label_macro_ap": missing["macro_average_precision"],
        "precision_at": missing["precision_at"],
        "recall_at_precision_0_9": missing["recall_at_target_precision"],
        "num_hidden": missing["num_hidden"],
        "num_candidates": missing["num_candidates"],
        "per_class": {
            "test_ap": [_finite_or_none(v) for v in test_map.per_class_ap],
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
        "val_map": _finite_or_none(outcome.val_map), "run_id": outcome.run_id, "best_epoch": outcome.best_epoch,
        "seconds": round(float(outcome.seconds), 3),
        "peak_memory_mb": None if math.isnan(outcome.peak_memory_mb) else round(float(outcome.peak_memory_mb), 1),
        "hyperparameters": outcome.hyperparameters, "extra": {k: _jsonable(v) for k, v in outcome.extra.items()},
        "val_curve": [_finite_or_none(h.get("val_map")) for h in outcome.history],
    }
    return record


# ---------------------------------------------------------------------------------------------
# Tuning on val


def tune_candidates(method: str) -> list[dict[str, Any]]:
    """The settings ``--tune`` tries for ``method``: its grid x (default weight decay x
    :data:`TUNE_WEIGHT_DECAY_FACTORS`)."""
    from labelfix.learn.config import TrainConfig
    from labelfix.learn.trainer import resolve_config

    if method in BASELINES:
        return []
    base, fields = METHOD_VARIANTS.get(method, (method, {}))
    default_wd = resolve_config(TrainConfig(method=base, **fields)).weight_decay
    return [_merge_fields(candidate, {"weight_decay": float(f"{default_wd * factor:.6g}")})
            for candidate in TUNE_GRIDS.get(method, [{}]) for factor in TUNE_WEIGHT_DECAY_FACTORS]


def tune_method(ctx: SeedContext, method: str, settings: BenchSettings) -> dict[str, Any]:
    """Try every candidate of ``method`` on ``ctx`` and keep the best **val** mAP (observed val labels).

    Nothing about the train split's hidden labels or the test split is looked at. Returns
    ``{"seed", "chosen", "trials": [{"params", "val_map", "best_epoch", "run_id"}], "seconds"}``.
    """
    started = time.perf_counter()
    trials = []
    for candidate in tune_candidates(method):
        outcome = run_trainer_method(ctx, method, settings, overrides=candidate)
        trials.append({"params": _jsonable(candidate), "val_map": outcome.val_map, "best_epoch": outcome.best_epoch,
                       "run_id": outcome.run_id})
    scored = [t for t in trials if t["val_map"] is not None]
    chosen = max(scored, key=lambda t: t["val_map"])["params"] if scored else {}
    return {"seed": ctx.seed, "chosen": chosen, "trials": trials,
            "seconds": round(time.perf_counter() - started, 2)}


# ---------------------------------------------------------------------------------------------
# The whole benchmark


@dataclass
class BenchRun:
    """What :func:`run_benchmark` produced: the JSON payload and the seed-0 PR curves for plots."""

    payload: dict[str, Any]
    curves: dict[str, tuple[np.ndarray, np.ndarray]]


def run_benchmark(data: BenchData, settings: BenchSettings, *, work_dir: Optional[Path] = None,
                  keep_work: bool = False, progress: bool = True,
                  on_record: Optional[Callable[[dict[str, Any]], None]] = None) -> BenchRun:
    """Every (seed, method[, folds]) of ``settings`` on ``data``; see the module docstring."""
    from labelfix.bench.metrics import precision_recall_curve
    from labelfix.bench.report import build_payload

    _import_method_code()
    owned = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="labelfix-bench-")) if owned else Path(work_dir)
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
                        settings.overrides[method] = _merge_fields(settings.overrides.get(method, {}),
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
    environment = _environment()
    environment["total_seconds"] = round(time.perf_counter() - started, 2)
    payload = build_payload(settings=settings.to_dict(), data=data.describe(), seeds=seeds_info, records=records,
                            environment=environment, tuning=tuning or None)
    return BenchRun(payload=payload, curves=curves)


def _import_method_code() -> None:
    """Import torch, the trainer, scikit-learn and cleanlab up front, so that the first method's
    time and memory do not include loading libraries every method shares."""
    import importlib

    for module in ("torch", "labelfix.learn.trainer", "labelfix.learn.cotrain", "labelfix.learn.comic_train",
                   "sklearn.linear_model", "cleanlab.multilabel_classification.filter"):
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


def _environment() -> dict[str, Any]:
    import sklearn
    import torch

    from labelfix.store.runs import code_version

    versions = {"labelfix": code_version(), "python": platform.python_version(), "numpy": np.__version__,
                "torch": torch.__version__, "scikit-learn": sklearn.__version__}
    try:
        import cleanlab

        versions["cleanlab"] = cleanlab.__version__
    except ImportError:
        versions["cleanlab"] = None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return {"versions": versions, "source_sha256": _source_digest(), "cpu_cores": cores, "torch_threads": torch.get_num_threads(),
            "platform": platform.platform()}


def _source_digest() -> str:
    """sha256 of labelfix's Python sources: which code produced the numbers, even in a dirty checkout."""
    import hashlib

    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _safe_ratio(numerator: float, denominator: float) -> Optional[float]:
    return float(numerator) / float(denominator) if denominator else None


def _finite_or_none(value: Any) -> Optional[float]:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _finite_or_none(value)
    if isinstance(value, Path):
        return str(value)
    return value


__all__ = ["BASELINES", "METHOD_VARIANTS", "SCHEMA_VERSION", "BenchData", "BenchRun", "BenchSettings",
           "MethodOutcome", "PeakMemory", "SeedContext", "all_methods", "evaluate_scores", "hide_labels",
           "load_coco_bench_data", "load_features_bench_data", "read_coco_truth", "make_record", "parse_methods", "prepare_seed",
           "run_benchmark", "run_trainer_method", "score_method", "train_config_for", "tune_candidates", "tune_method",
           "write_features_table"]
