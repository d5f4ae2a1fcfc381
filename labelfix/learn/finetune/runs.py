"""Finetune mode's run bookkeeping: the run in the store, its checkpoint files and what the loop hands back.

:func:`~labelfix.learn.finetune.trainer.finetune_loop` never touches the store; these functions open or
reopen the run before it and record its outcome after it, on rank 0 alone under
:mod:`labelfix.learn.finetune.distributed`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from labelfix.errors import StoreError
from labelfix.internal.atomic import atomic_target
from labelfix.learn.config import TrainConfig, TrainResult, resolve_finetune_config
from labelfix.learn.image_data import ImageRecord
from labelfix.learn.validation import observed_map
from labelfix.states import NEGATIVE, POSITIVE
from labelfix.store.database import Store
from labelfix.store.labels import LabelMatrix
from labelfix.store.runs import create_run, finish_run, reopen_run, write_corrections, write_predictions

CHECKPOINT_FORMAT = 1
NO_CORRECTION = np.iinfo(np.int32).max  # "never corrected" in the first-correction-epoch matrix


@dataclass
class FinetuneData:
    """What training needs from the store, picklable so that rank 0 can broadcast it."""

    records: list[ImageRecord]
    labels: LabelMatrix

    def rows(self, split: str) -> np.ndarray:
        return self.labels.rows(split)


@dataclass
class LoopOutcome:
    """What :func:`~labelfix.learn.finetune.trainer.finetune_loop` hands back, the same on every rank."""

    best_epoch: int
    best_val_map: float
    history: list[dict[str, Any]]
    probs: np.ndarray               # [N, C] of every image, NaN rows for images that failed to decode
    failed_image_ids: list[int]
    first_correction: np.ndarray    # [N_train, C] int32, NO_CORRECTION where never corrected
    pseudo_epoch: np.ndarray        # [N_train, C] int32, NO_CORRECTION where no APL pseudo-label
    checkpoint_path: Path
    model: Optional[nn.Module] = None  # the evaluated model (EMA when enabled) with the best epoch's weights


def checkpoint_dir_for(store: Store, *, config: TrainConfig, run_id: int) -> Path:
    """The run's folder for ``last.pt`` and ``best.pt``: under ``config.checkpoint_dir``, else the store's cache."""
    base = config.checkpoint_dir if config.checkpoint_dir is not None else store.cache_dir / "checkpoints"
    return Path(base) / f"run-{run_id}"


def _rng_states() -> dict[str, Any]:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _save_atomically(payload: dict[str, Any], path: Path) -> None:
    # A crash while writing must never leave a truncated last.pt behind: write aside, then rename.
    with atomic_target(path) as temporary:
        torch.save(payload, temporary)


def _observed_map(probs: np.ndarray, states: np.ndarray) -> float:
    """Head mode's observed-label mAP, over the images that decoded (rows without NaN)."""
    keep = ~np.isnan(probs).any(axis=1) if probs.size else np.zeros(len(probs), bool)
    return observed_map(probs[keep], states[keep]) if keep.any() else float("nan")


def start_or_resume_run(store: Store, *, config: TrainConfig) -> tuple[int, TrainConfig, Path]:
    """Create a run, or with ``config.resume`` reopen ``config.resume_run`` (default: the latest
    unfinished finetune run) with the config its checkpoint holds. Returns (run_id, config, checkpoint dir)."""
    if not config.resume:
        config = resolve_finetune_config(config)
        new_run_id = create_run(store, method=config.method, mode="finetune", config=config.model_dump(mode="json"))
        return new_run_id, config, checkpoint_dir_for(store, config=config, run_id=new_run_id)
    run_id = config.resume_run
    if run_id is None:
        run_id = store.scalar("SELECT max(run_id) FROM runs WHERE mode = 'finetune' AND status <> 'finished'")
        if run_id is None:
            raise StoreError("no unfinished finetune run to resume", file=store.path, fix="train without --resume")
    row = store.fetchone("SELECT status, config FROM runs WHERE run_id = ?", [int(run_id)])
    if row is None or row[0] == "finished":
        raise StoreError(f"run {run_id} is {'missing' if row is None else 'finished'}; nothing to resume",
                         file=store.path, fix="pass the id of an interrupted finetune run")
    stored = TrainConfig(**json.loads(row[1]))
    # The stored config decides the training; only where and how fast it runs may change on resume.
    resumed = stored.model_copy(update={"resume": True, "resume_run": int(run_id), "device": config.device,
                                        "num_workers": config.num_workers})
    directory = checkpoint_dir_for(store, config=stored, run_id=int(run_id))
    if not (directory / "last.pt").exists():
        raise StoreError(f"run {run_id} has no checkpoint in {directory}", file=store.path,
                         fix="train again without --resume")
    reopen_run(store, run_id=int(run_id))
    return int(run_id), resumed, directory


def record_outcome(store: Store, *, run_id: int, data: FinetuneData, outcome: LoopOutcome) -> dict[str, Any]:
    """Write predictions, corrections and the final metrics of a finished loop (rank 0 only)."""
    labels = data.labels
    write_predictions(store, run_id=run_id, image_ids=labels.image_ids, category_ids=labels.category_ids,
                      probs=outcome.probs)
    train_ids = labels.image_ids[labels.rows("train")]
    for matrix, treated_as in ((outcome.first_correction, POSITIVE), (outcome.pseudo_epoch, NEGATIVE)):
        rows, cols = np.nonzero(matrix != NO_CORRECTION)
        if len(rows):
            write_corrections(store, run_id=run_id, image_ids=train_ids[rows], category_ids=labels.category_ids[cols],
                              epochs=matrix[rows, cols], treated_as=np.full(len(rows), treated_as, np.int8))
    test_rows = labels.rows("test")
    metrics = {"best_epoch": outcome.best_epoch, "epochs_trained": len(outcome.history),
               "selection": "best val mAP" if np.isfinite(outcome.best_val_map) else "last epoch (no val positives)",
               "val_map": outcome.best_val_map,
               # Reported for information only; never used to choose anything.
               "test_map_observed": _observed_map(outcome.probs[test_rows], labels.states[test_rows]),
               "num_images": int(len(labels.image_ids)), "failed_image_ids": outcome.failed_image_ids,
               "num_treated": int((outcome.first_correction != NO_CORRECTION).sum()
                                  + (outcome.pseudo_epoch != NO_CORRECTION).sum()),
               "seconds": round(sum(h["seconds"] for h in outcome.history), 3)}
    finish_run(store, run_id=run_id, metrics=metrics, checkpoint_path=str(outcome.checkpoint_path))
    return metrics


def make_result(*, run_id: int, data: FinetuneData, outcome: LoopOutcome, metrics: dict[str, Any]) -> TrainResult:
    """The :class:`~labelfix.learn.config.TrainResult` of this finetune run."""
    rows = {split: data.rows(split) for split in ("train", "val", "test")}
    return TrainResult(run_id=run_id, best_epoch=outcome.best_epoch, metrics=metrics,
                       probs={split: outcome.probs[r] for split, r in rows.items()},
                       image_ids={split: data.labels.image_ids[r] for split, r in rows.items()},
                       category_ids=data.labels.category_ids, history=outcome.history, model=outcome.model)


__all__ = ["CHECKPOINT_FORMAT", "NO_CORRECTION", "FinetuneData", "LoopOutcome", "checkpoint_dir_for",
           "make_result", "record_outcome", "start_or_resume_run"]
