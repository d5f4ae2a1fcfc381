"""Run one trainer method on one seed: its train config, training, and its scores of every cell.

The baselines (:mod:`labelfix.bench.baselines`) build on :func:`run_trainer_method`;
:func:`labelfix.bench.harness.score_method` dispatches between the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from labelfix.bench.seeds import SeedContext
from labelfix.bench.settings import METHOD_VARIANTS, BenchSettings
from labelfix.errors import LabelfixError
from labelfix.internal.json_values import finite_or_none, jsonable
from labelfix.learn.config import TrainConfig, resolve_config
from labelfix.learn.head.trainer import train_head
from labelfix.store.runs import read_predictions


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


def merge_train_fields(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """TrainConfig fields ``base`` updated by ``extra``; ``loss_params`` dicts are merged, not replaced."""
    merged = {key: (dict(value) if isinstance(value, dict) else value) for key, value in base.items()}
    for key, value in extra.items():
        if key == "loss_params":
            merged["loss_params"] = {**merged.get("loss_params", {}), **value}
        else:
            merged[key] = value
    return merged


def train_config_for(method: str, settings: BenchSettings, *, seed: int, folds: int = 1,
                     overrides: Optional[dict[str, Any]] = None) -> TrainConfig:
    """The :class:`TrainConfig` a method runs with: its defaults, the benchmark's settings, then
    ``overrides`` (default: ``settings.overrides[method]``, e.g. what ``--tune`` chose)."""
    base, fields = METHOD_VARIANTS.get(method, (method, {}))
    chosen = settings.overrides.get(method, {}) if overrides is None else overrides
    fields = merge_train_fields(fields, chosen)
    update: dict[str, Any] = {"method": base, "mode": settings.mode, "seed": seed, "device": "cpu", **fields}
    if settings.mode == "adapt":
        update.setdefault("backbone", settings.backbone)
        if settings.image_size is not None:
            update.setdefault("image_size", settings.image_size)
        if settings.adapt_select is not None:
            update.setdefault("adapt_select", settings.adapt_select)
    if folds != 1 or settings.mode == "adapt":  # adapt's own default is cross-fitted; the bench names it
        update["folds"] = folds
    epochs = settings.epochs if settings.epochs is not None else (5 if settings.quick else None)
    if epochs is not None and "epochs" not in chosen:
        update["epochs"] = epochs
        if base == "em_apl":  # APL starts after a third of the epochs (the trainer's default ratio)
            update["loss_params"] = {**update.get("loss_params", {}), "warmup_epochs": max(1, round(epochs / 3))}
    return TrainConfig(**update)


def _read_aligned_predictions(ctx: SeedContext, run_id: int) -> np.ndarray:
    predictions = read_predictions(ctx.store, run_id=run_id)
    if not np.array_equal(predictions.image_ids, ctx.data.image_ids) or not np.array_equal(
            predictions.category_ids, np.arange(1, ctx.data.num_classes + 1)):
        raise RuntimeError(f"run {run_id}'s predictions do not cover every benchmark image and class")
    return predictions.probs


def run_trainer_method(ctx: SeedContext, method: str, settings: BenchSettings, *, folds: int = 1,
                       label_states: Optional[np.ndarray] = None,
                       overrides: Optional[dict[str, Any]] = None) -> MethodOutcome:
    """Train one method in the seed's store and read back its stored predictions."""
    config = train_config_for(method, settings, seed=ctx.seed, folds=folds, overrides=overrides)
    if settings.mode == "adapt":
        from labelfix.learn.adapt import map_set_for_store, resolve_adapt_config, train_adapt

        if "cache_store" not in ctx.data.source:
            raise LabelfixError("adapt mode needs the images", fix="use --coco FILE --images DIR, or --mode head")
        maps = map_set_for_store(ctx.data.source["cache_store"], backbone=settings.backbone,
                                 image_size=resolve_adapt_config(config).image_size)
        result = train_adapt(ctx.store, config=config, label_states=label_states, maps=maps)
        resolved = resolve_adapt_config(config)
    else:
        result = train_head(ctx.store, config=config, label_states=label_states)
        resolved = resolve_config(config)
    return MethodOutcome(
        method=method, probs=_read_aligned_predictions(ctx, result.run_id), folds=folds,
        scoring="in-sample" if folds == 1 else "cross-fitted", run_id=result.run_id,
        val_map=finite_or_none(result.metrics.get("val_map")), best_epoch=result.best_epoch,
        hyperparameters={key: jsonable(value) for key, value in resolved.model_dump(mode="json").items()
                         if key in ("method", "epochs", "batch_size", "lr", "weight_decay", "early_stopping_patience",
                                    "loss_params", "head", "standardize", "folds", "cls_tau_h", "cls_tau_l", "cls_e_k",
                                    "mode", "cut", "image_size", "ema_decay", "adapt_augment", "adapt_select",
                                    "probe_share")},
        extra={"num_treated": result.metrics.get("num_treated"), "epochs_trained": result.metrics.get("epochs_trained"),
               "seconds_per_epoch": result.metrics.get("seconds_per_epoch")},
        history=[{k: jsonable(v) for k, v in h.items()} for h in result.history])


__all__ = ["MethodOutcome", "merge_train_fields", "run_trainer_method", "train_config_for"]
