"""Head-mode trainer: a linear / MLP head on cached embeddings, recorded as a run in the store.

One training loop serves every method: a :class:`TrainingScheme` turns a batch into a loss and
features into probabilities. The plain scheme is one head and one loss from
:func:`labelfix.learn.losses.build_loss`; CLS (:mod:`labelfix.learn.schemes.cls`) and COMIC
(:mod:`labelfix.learn.schemes.comic`) bring their own. The loop does AdamW mini-batches with fixed
seeds, validation mAP on the **val split's observed labels** after every epoch (positives against
every other cell, never the test split), early stopping, and restores the best epoch's weights
before it predicts every (image, class) cell of every split.

Example
-------
>>> from labelfix.learn.config import TrainConfig
>>> result = train_head(store, config=TrainConfig(method="em"))  # doctest: +SKIP
>>> result.run_id, result.best_epoch, result.probs["val"].shape  # doctest: +SKIP
(3, 7, (500, 10))
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from rich.console import Console
from torch import Tensor, nn

from labelfix.errors import LabelfixError
from labelfix.learn.config import TrainConfig, TrainResult, resolve_config
from labelfix.learn.head.data import SPLITS, HeadData, load_head_data
from labelfix.learn.fit import Fit, make_optimizer, note_corrections
from labelfix.learn.schemes.base import SchemeBuilder, TrainingScheme, build_single_head_scheme, predict
from labelfix.learn.schemes.cls import build_cls_scheme
from labelfix.learn.schemes.comic import build_comic_scheme
from labelfix.learn.validation import chosen_epoch_text, observed_map, val_map_text
from labelfix.states import POSITIVE
from labelfix.store.database import Store
from labelfix.store.runs import create_run, finish_run, record_epoch, write_corrections, write_predictions


def fit_scheme(scheme: TrainingScheme, *, data: HeadData, config: TrainConfig, train_rows: np.ndarray,
               seed: int, device: torch.device, on_epoch: Callable[[dict[str, Any]], None]) -> Fit:
    """Train ``scheme`` on ``train_rows``; keep the weights of the best val-mAP epoch."""
    scheme.to(device)
    x_train = torch.from_numpy(data.features[train_rows]).to(device)
    s_train = torch.from_numpy(data.states[train_rows]).to(device)
    val_rows = data.rows("val")
    x_val = torch.from_numpy(data.features[val_rows]).to(device)
    val_states = data.states[val_rows]
    # Without a positive in val there is nothing to select on: train all epochs, keep the last.
    can_select = bool((val_states == POSITIVE).any())
    optimizer = make_optimizer(scheme, config)
    generator = torch.Generator().manual_seed(seed)
    first = (np.full((len(train_rows), data.num_classes), -1, np.int32),
             np.full((len(train_rows), data.num_classes), np.nan, np.float32))
    local_rows = np.arange(len(train_rows))
    history: list[dict[str, Any]] = []
    best_score, best_epoch, best_state = -np.inf, -1, None
    for epoch in range(config.epochs):
        started = time.perf_counter()
        scheme.set_epoch(epoch, config.epochs)
        pseudo = scheme.start_epoch(epoch=epoch, num_epochs=config.epochs, features=x_train, states=s_train)
        if pseudo is not None:
            note_corrections(first, pseudo[0], pseudo[1], local_rows, epoch)
        scheme.train()
        order = torch.randperm(len(train_rows), generator=generator)
        total = torch.zeros((), dtype=torch.float64, device=device)
        for start in range(0, len(order), config.batch_size):
            index = order[start:start + config.batch_size]
            index_device = index.to(device)
            loss = scheme.training_loss(x_train[index_device], s_train[index_device], index=index_device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            scheme.after_backward()
            optimizer.step()
            total += loss.detach().double() * len(index)
            if scheme.last_corrections is not None:
                note_corrections(first, scheme.last_corrections, scheme.last_correction_probs, index.numpy(), epoch)
        val_map = observed_map(predict(scheme, x_val).cpu().numpy(), val_states) if len(val_rows) else float("nan")
        improved = (val_map > best_score) if can_select else True
        if improved:
            best_score, best_epoch = (val_map if can_select else best_score), epoch
            best_state = copy.deepcopy(scheme.state_dict())
        record = {"epoch": epoch, "train_loss": float(total.item()) / max(len(train_rows), 1), "val_map": val_map,
                  "best": improved, "num_treated": int((first[0] >= 0).sum()),
                  "seconds": round(time.perf_counter() - started, 4), **scheme.epoch_metrics()}
        history.append(record)
        on_epoch(record)
        patience = config.early_stopping_patience
        if can_select and patience > 0 and epoch - best_epoch >= patience:
            break
    if best_state is not None:
        scheme.load_state_dict(best_state)
    return Fit(scheme, best_epoch, history, first[0], first[1],
                "best val mAP" if can_select else "last epoch (no val positives)")


def train_head(store: Store, *, config: TrainConfig, console: Optional[Console] = None,
               label_states: Optional[np.ndarray] = None,
               scheme_builder: Optional[SchemeBuilder] = None) -> TrainResult:
    """Train ``config.method`` in head mode on the store's embeddings and record the run.

    Parameters
    ----------
    store : Store
        The project store; must hold an embedding set (``labelfix embed`` or a features table).
    config : TrainConfig
        ``method`` is any of :data:`~labelfix.learn.config.TRAIN_METHODS`; fields the user did not
        set take the method's defaults (:data:`~labelfix.learn.config.METHOD_DEFAULTS`).
        ``folds > 1`` cross-fits: K models each score the train images they did not see; val / test
        get the mean of the K models.
    console : rich.console.Console, optional
        Prints one line per epoch and a summary.
    label_states : np.ndarray, optional
        int8 [N_all, C] replacing the store's label states (rows as ``load_label_matrix(store)``);
        required by ``oracle`` (the hidden truth, benchmarks only).
    scheme_builder : callable, optional
        Overrides the scheme chosen from the method (e.g. a variant of a method's scheme).

    Returns
    -------
    TrainResult
        Run id, best epoch, metrics and the probabilities of every split.
    """
    config = resolve_config(config)
    if config.method == "oracle" and label_states is None:
        raise LabelfixError("the oracle trains on the hidden true labels, which only a benchmark has",
                            fix="pass label_states= (benchmarks), or pick another --method")
    builder = scheme_builder or _scheme_builder_for(config)
    data = load_head_data(store, embedding_set=config.embedding_set, standardize=config.standardize,
                          label_states=label_states)
    stored_config = {**config.model_dump(mode="json"), "embedding_set": data.embedding_set}
    run_id = create_run(store, method=config.method, mode="head", config=stored_config)
    try:
        return _run(store, run_id=run_id, data=data, config=config, builder=builder, console=console)
    except BaseException as error:  # also Ctrl-C: the run must not stay 'running' forever
        finish_run(store, run_id=run_id, metrics={"error": f"{type(error).__name__}: {error}"}, status="failed")
        raise


def _scheme_builder_for(config: TrainConfig) -> SchemeBuilder:
    if config.method == "cls":
        return build_cls_scheme
    if config.method == "comic":
        return build_comic_scheme
    return build_single_head_scheme


def _run(store: Store, *, run_id: int, data: HeadData, config: TrainConfig, builder: SchemeBuilder,
         console: Optional[Console]) -> TrainResult:
    started = time.perf_counter()
    device = torch.device(config.resolved_device())
    if console is not None and len(data.missing_image_ids):
        console.print(f"[yellow]{len(data.missing_image_ids)} images have no embedding in "
                      f"{data.embedding_set!r} and are left out[/] (e.g. ids {data.missing_image_ids[:5].tolist()})")
    train_rows = data.rows("train")
    folds = max(int(config.folds), 1)
    fold_of = np.full(len(data.image_ids), -1, np.int16)
    if folds > 1:
        if folds > len(train_rows):
            raise LabelfixError(f"folds={folds} but only {len(train_rows)} training images", fix="lower folds")
        assignment = np.random.default_rng(config.seed).permutation(len(train_rows)) % folds
        fold_of[train_rows] = assignment
    probs = np.zeros((len(data.image_ids), data.num_classes), np.float64)
    features = torch.from_numpy(data.features).to(device)
    history: list[dict[str, Any]] = []
    treated_epoch = np.full((len(data.image_ids), data.num_classes), -1, np.int32)
    treated_prob = np.full(treated_epoch.shape, np.nan, np.float32)
    best_epochs, fits = [], []
    for fold in range(folds):
        fit_rows = train_rows if folds == 1 else train_rows[fold_of[train_rows] != fold]
        seed = config.seed + 1000 * fold

        def on_epoch(record: dict[str, Any], fold: int = fold) -> None:
            step = len(history)
            record = {**record, "fold": fold} if folds > 1 else record
            history.append(record)
            record_epoch(store, run_id=run_id, epoch=step, metrics=record)
            if console is not None:
                prefix = f"fold {fold + 1}/{folds} " if folds > 1 else ""
                shown = val_map_text(record["val_map"])  # no "val mAP nan" without val positives
                console.print(f"{prefix}epoch {record['epoch'] + 1:>3}/{config.epochs}  loss {record['train_loss']:.4f}"
                              f"{shown}{'  *' if record['best'] and shown else ''}", highlight=False)

        torch.manual_seed(seed)
        fit = fit_scheme(builder(data, config, fit_rows, seed), data=data, config=config, train_rows=fit_rows,
                         seed=seed, device=device, on_epoch=on_epoch)
        fits.append(fit)
        best_epochs.append(fit.best_epoch)
        fold_probs = predict(fit.scheme, features).cpu().numpy()
        scored = np.flatnonzero(fold_of == fold) if folds > 1 else np.arange(len(data.image_ids))
        probs[scored] = fold_probs[scored]
        if folds > 1:  # val / test / other splits: the mean of the K models
            others = np.flatnonzero(fold_of < 0)
            probs[others] += fold_probs[others] / folds
        # A cell treated by several folds keeps the earliest epoch.
        newer = (fit.first_epoch >= 0) & ((treated_epoch[fit_rows] < 0) | (fit.first_epoch < treated_epoch[fit_rows]))
        r, c = np.nonzero(newer)
        treated_epoch[fit_rows[r], c] = fit.first_epoch[r, c]
        treated_prob[fit_rows[r], c] = fit.first_prob[r, c]
    scheme = fits[-1].scheme
    write_predictions(store, run_id=run_id, image_ids=data.image_ids, category_ids=data.category_ids, probs=probs,
                      folds=fold_of if folds > 1 else None)
    r, c = np.nonzero(treated_epoch >= 0)
    if len(r):
        write_corrections(store, run_id=run_id, image_ids=data.image_ids[r], category_ids=data.category_ids[c],
                          epochs=treated_epoch[r, c], treated_as=np.full(len(r), scheme.correction_sign, np.int8),
                          probs=treated_prob[r, c])
    checkpoint = _save_checkpoint(store, run_id=run_id, config=config, data=data, fits=fits)
    by_split = {split: data.rows(split) for split in SPLITS}
    best_epoch = best_epochs[0] if folds == 1 else int(np.median(best_epochs))
    metrics: dict[str, Any] = {
        "best_epoch": best_epoch, "epochs_trained": len(history), "selection": fits[0].selection,
        "val_map": observed_map(probs[by_split["val"]], data.states[by_split["val"]]),
        # Reported for information only; never used to choose anything.
        "test_map_observed": observed_map(probs[by_split["test"]], data.states[by_split["test"]]),
        "train_map_observed": observed_map(probs[by_split["train"]], data.states[by_split["train"]]),
        "num_images": int(len(data.image_ids)), "missing_embeddings": int(len(data.missing_image_ids)),
        "num_treated": int(len(r)), "treated_as": int(scheme.correction_sign) if len(r) else None,
        "embedding_set": data.embedding_set, "seconds": round(time.perf_counter() - started, 3)}
    if folds > 1:
        metrics["best_epochs"] = best_epochs
    finish_run(store, run_id=run_id, metrics=metrics, checkpoint_path=str(checkpoint))
    if console is not None:
        chosen = chosen_epoch_text(best_epoch=best_epoch, epochs_trained=len(history) // folds,
                                   val_map=metrics["val_map"])
        console.print(f"run {run_id} ({config.method}): {chosen}, "
                      f"{metrics['num_treated']} cells treated, {metrics['seconds']:.1f}s", highlight=False)
    return TrainResult(run_id=run_id, best_epoch=best_epoch, metrics=metrics,
                       probs={split: probs[rows] for split, rows in by_split.items()},
                       image_ids={split: data.image_ids[rows] for split, rows in by_split.items()},
                       category_ids=data.category_ids, history=history, model=scheme)


def _save_checkpoint(store: Store, *, run_id: int, config: TrainConfig, data: HeadData, fits: list[Fit]) -> Path:
    """Best weights (one per fold) plus what is needed to score new embeddings."""
    folder = Path(config.checkpoint_dir) if config.checkpoint_dir else store.cache_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"run-{run_id}.pt"
    torch.save({"method": config.method, "config": config.model_dump(mode="json"),
                "state_dicts": [{k: v.cpu() for k, v in fit.scheme.state_dict().items()} for fit in fits],
                "mean": torch.from_numpy(data.mean), "std": torch.from_numpy(data.std),
                "category_ids": torch.from_numpy(data.category_ids),
                "embedding_set": data.embedding_set}, path)
    return path


__all__ = ["fit_scheme", "train_head"]
