"""``labelfix bench --tune``: pick each method's settings on the **val** split only."""

from __future__ import annotations

import time
from typing import Any

from labelfix.bench.methods import merge_train_fields, run_trainer_method
from labelfix.bench.seeds import SeedContext
from labelfix.bench.settings import BASELINES, METHOD_VARIANTS, BenchSettings
from labelfix.internal.json_values import jsonable
from labelfix.learn.config import TrainConfig, resolve_config

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


def tune_candidates(method: str) -> list[dict[str, Any]]:
    """The settings ``--tune`` tries for ``method``: its grid x (default weight decay x
    :data:`TUNE_WEIGHT_DECAY_FACTORS`)."""
    if method in BASELINES:
        return []
    base, fields = METHOD_VARIANTS.get(method, (method, {}))
    default_wd = resolve_config(TrainConfig(method=base, **fields)).weight_decay
    return [merge_train_fields(candidate, {"weight_decay": float(f"{default_wd * factor:.6g}")})
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
        trials.append({"params": jsonable(candidate), "val_map": outcome.val_map, "best_epoch": outcome.best_epoch,
                       "run_id": outcome.run_id})
    scored = [t for t in trials if t["val_map"] is not None]
    chosen = max(scored, key=lambda t: t["val_map"])["params"] if scored else {}
    return {"seed": ctx.seed, "chosen": chosen, "trials": trials,
            "seconds": round(time.perf_counter() - started, 2)}


__all__ = ["TUNE_GRIDS", "TUNE_WEIGHT_DECAY_FACTORS", "tune_candidates", "tune_method"]
