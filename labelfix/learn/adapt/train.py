"""Adapt mode: train the backbone's top blocks + the classifier on cached feature maps, record a run.

The cached-trunk regime between head mode (a linear head on frozen pooled embeddings: seconds, but
the frozen features are the ceiling) and finetune mode (the whole network on images: a GPU's job).
``features[:cut]`` runs once per image (:mod:`labelfix.learn.adapt.cache`); every epoch trains
``features[cut:]`` and the method's head(s) with the method's loss (:mod:`labelfix.learn.adapt.model`
wraps head mode's schemes, so AN … CLS, COMIC with HTB and the oracle are the same code), with
label-preserving augmentation of the maps, an EMA of the weights, and early stopping / model choice
on the val split's observed labels (as head mode).

Memorisation control (issue 12 item 3): a network that can fit its training labels learns "absent"
for the very missing labels it should find; its in-sample scores of the train cells can stop
improving while its val mAP still rises, so val cannot see it. Controls: cross-fitting (``folds=K``:
K models each score the train images they never saw; val / test get the mean of the K models) and the
scoring epoch chosen by a probe (``adapt_select``, :mod:`labelfix.learn.adapt.select`). Measured on the
demo data (40 % hidden, seed 0, cut 14, 160 px; ``benchmarks/results/adapt_memo_*``), missing-label AP
AN / GR: in-sample 4 epochs 0.683 / 0.702; 3-fold cross-fitted 0.650 / 0.597; in-sample 8 epochs
0.674 / 0.751; 8 epochs chosen by hidden val positives 0.674 / 0.714, by hidden train positives
0.663 / 0.706. The default is what validation alone picks: val mAP (observed labels) was highest for
both methods in-sample at 8 epochs (0.437 / 0.445, against 0.423 / 0.405 at 4 epochs and 0.426 /
0.393 cross-fitted), so 8 epochs, in-sample, epoch by val mAP. AN does memorise a little (its AP
falls from 0.683 to 0.674 while its val mAP rises); GR's pseudo-labels keep it from doing so.

Writes the run exactly like head mode (``create_run`` … ``write_predictions``, ``write_corrections``,
``finish_run``), so ``labelfix suggest`` and the review app work on an adapt run unchanged.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, cast

import numpy as np
import torch
from rich.console import Console

from labelfix.errors import LabelfixError, StoreError
from labelfix.learn.adapt.augment import MapAugment, augment_maps
from labelfix.learn.adapt.cache import FeatureMapSet, cache_feature_maps, feature_blocks
from labelfix.learn.adapt.model import TrunkScheme, build_trunk_scheme, top_blocks
from labelfix.learn.adapt.select import Probe, hide_probe
from labelfix.learn.backbones import build_backbone
from labelfix.learn.config import TrainConfig
from labelfix.learn.config import METHOD_DEFAULTS, TRAIN_METHODS, TrainResult
from labelfix.learn.ema import ModelEma
from labelfix.learn.fit import Fit, make_optimizer, note_corrections
from labelfix.learn.schemes.base import TrainingScheme
from labelfix.learn.validation import chosen_epoch_text, observed_map, val_map_text
from labelfix.states import POSITIVE
from labelfix.store.database import Store
from labelfix.store.labels import load_label_matrix
from labelfix.store.runs import create_run, finish_run, record_epoch, write_corrections, write_predictions

SPLITS = ("train", "val", "test")
# Adapt-mode defaults, filled in where the user did not set a field (head mode's weight decay 2.0 is
# a head's regulariser; a network's top blocks use AdamW's usual small decay). Chosen from the
# measurements in the report of branch h12 (issue 12): see labelfix/learn/adapt/__init__.py.
ADAPT_DEFAULTS: dict[str, Any] = {"lr": 1e-3, "weight_decay": 1e-4, "epochs": 8, "early_stopping_patience": 3,
                                  "batch_size": 64, "ema_decay": 0.99, "folds": 1, "image_size": 224}


def resolve_adapt_config(config: TrainConfig) -> TrainConfig:
    """``config`` with adapt defaults and the method's loss parameters where the user set nothing."""
    if config.method not in METHOD_DEFAULTS:
        raise LabelfixError(f"unknown method {config.method!r}", fix=f"use one of: {', '.join(TRAIN_METHODS)}")
    method = METHOD_DEFAULTS[config.method]
    update = {key: value for key, value in ADAPT_DEFAULTS.items() if key not in config.model_fields_set}
    for key in ("cls_e_k", "cls_tau_h", "cls_tau_l"):
        if key in method and key not in config.model_fields_set:
            update[key] = method[key]
    update["loss_params"] = {**method.get("loss_params", {}), **config.loss_params}
    if config.method == "em_apl" and "warmup_epochs" not in config.loss_params:
        # APL starts after a third of the epochs, as head mode's benchmark scales the paper's 5 of 10.
        update["loss_params"]["warmup_epochs"] = max(1, round(update.get("epochs", config.epochs) / 3))
    return config.model_copy(update=update)


def _rows_with_maps(image_ids: np.ndarray, maps: FeatureMapSet) -> np.ndarray:
    return np.flatnonzero(maps.has(image_ids))


def fit_adapt(scheme: TrunkScheme, *, maps: torch.Tensor, states: np.ndarray, train_rows: np.ndarray,
              val_rows: np.ndarray, config: TrainConfig, seed: int, device: torch.device,
              on_epoch: Callable[[dict[str, Any]], None], probe: Optional[Probe] = None) -> Fit:
    """Train ``scheme`` on ``train_rows`` of ``maps`` (fp16 [N, C, H, W] on CPU); keep the best epoch.

    The returned fit's scheme is the EMA model (when ``config.ema_decay``) with the weights of the epoch
    of best val mAP on the observed labels or, with a ``probe`` (:mod:`labelfix.learn.adapt.select`;
    its positives already hidden in ``states``), of the best AP of the probe positives.
    """
    scheme.to(device)
    augment = MapAugment.from_dict(config.adapt_augment)
    s_train = torch.from_numpy(states[train_rows]).to(device)
    val_states = states[val_rows]
    can_select = bool((val_states == POSITIVE).any())
    optimizer = make_optimizer(scheme, config)
    ema = ModelEma(scheme, decay=config.ema_decay) if config.ema_decay else None
    generator = torch.Generator().manual_seed(seed)
    first = (np.full((len(train_rows), states.shape[1]), -1, np.int32),
             np.full((len(train_rows), states.shape[1]), np.nan, np.float32))
    local_rows = np.arange(len(train_rows))
    train_index = torch.from_numpy(train_rows)
    history: list[dict[str, Any]] = []
    best_score, best_epoch, best_state = -np.inf, -1, None
    for epoch in range(config.epochs):
        started = time.perf_counter()
        scheme.set_epoch(epoch, config.epochs)
        pseudo = (scheme.start_epoch(epoch=epoch, num_epochs=config.epochs, features=maps[train_index],
                                     states=s_train) if scheme.has_epoch_work else None)
        if pseudo is not None:
            note_corrections(first, pseudo[0], pseudo[1], local_rows, epoch)
        scheme.train()
        order = torch.randperm(len(train_rows), generator=generator)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            index = order[start:start + config.batch_size]
            batch = augment_maps(maps[train_index[index]], augment, generator=generator).to(device, non_blocking=True)
            index_device = index.to(device)
            loss = scheme.training_loss(batch, s_train[index_device], index=index_device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            scheme.after_backward()
            optimizer.step()
            if ema is not None:
                ema.update(scheme)
            total += float(loss.detach()) * len(index)
            if scheme.last_corrections is not None:
                note_corrections(first, scheme.last_corrections, scheme.last_correction_probs, index.numpy(), epoch)
        evaluated = cast(TrunkScheme, ema.module) if ema is not None else scheme
        val_probs = predict_maps(evaluated, maps, val_rows, device=device) if len(val_rows) else None
        val_map = observed_map(val_probs, val_states) if val_probs is not None else float("nan")
        score, probe_ap = val_map, None
        if probe is not None:
            reuse = val_probs is not None and np.array_equal(probe.rows, val_rows)
            probe_ap = probe.score(val_probs if reuse and val_probs is not None
                                   else predict_maps(evaluated, maps, probe.rows, device=device))
            score = probe_ap if np.isfinite(probe_ap) else val_map
        improved = (score > best_score) if can_select else True
        if improved:
            best_score, best_epoch = (score if can_select else best_score), epoch
            best_state = copy.deepcopy(evaluated.state_dict())
        record = {"epoch": epoch, "train_loss": total / max(len(train_rows), 1), "val_map": val_map,
                  **({"probe_ap": probe_ap} if probe is not None else {}),
                  "best": improved, "num_treated": int((first[0] >= 0).sum()),
                  "seconds": round(time.perf_counter() - started, 4), **scheme.epoch_metrics()}
        history.append(record)
        on_epoch(record)
        patience = config.early_stopping_patience
        if can_select and patience > 0 and epoch - best_epoch >= patience:
            break
    final = cast(TrunkScheme, ema.module) if ema is not None else scheme
    if best_state is not None:
        final.load_state_dict(best_state)
    selection = ("last epoch (no val positives)" if not can_select else
                 "best val mAP" if probe is None else f"best {config.adapt_select} probe AP")
    return Fit(final, best_epoch, history, first[0], first[1], selection)


@torch.no_grad()
def predict_maps(scheme: TrainingScheme, maps: torch.Tensor, rows: np.ndarray, *, device: torch.device,
                 batch_size: int = 256) -> np.ndarray:
    """Probabilities float64 [len(rows), C] of ``maps[rows]`` in eval mode (no tie at 1.0 below logit ~36)."""
    was = scheme.training
    scheme.eval()
    parts = []
    try:
        for start in range(0, len(rows), batch_size):
            index = torch.from_numpy(rows[start:start + batch_size])
            parts.append(scheme.probabilities(maps[index].to(device)).double().cpu().numpy())
    finally:
        scheme.train(was)
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float64)


def train_adapt(store: Store, *, config: TrainConfig, console: Optional[Console] = None,
                label_states: Optional[np.ndarray] = None, maps: Optional[FeatureMapSet] = None) -> TrainResult:
    """Train ``config.method`` in adapt mode and record the run (as :func:`labelfix.learn.head.trainer.train_head`).

    Parameters
    ----------
    store : Store
        The project store, with image files (adapt mode needs images; a features table has none).
    config : TrainConfig
        ``backbone``, ``weights``, ``cut`` (None: the backbone's default), ``image_size``,
        ``adapt_augment``, ``folds`` (default 1: in-sample; K > 1 cross-fits), ``ema_decay``,
        and everything head mode uses; unset fields take :data:`ADAPT_DEFAULTS` and the method's loss
        parameters.
    console : rich.console.Console, optional
        One line per epoch and a summary.
    label_states : np.ndarray, optional
        int8 [N_all, C] replacing the store's states (rows as ``load_label_matrix(store)``); the
        oracle's hidden truth in benchmarks.
    maps : FeatureMapSet, optional
        Cached maps to train on (a benchmark's shared cache); default: this store's cache, computed
        for the images not cached yet.

    Returns
    -------
    TrainResult
        Run id, best epoch, metrics and the probabilities of every split.
    """
    config = resolve_adapt_config(config)
    if config.method == "oracle" and label_states is None:
        raise LabelfixError("the oracle trains on the hidden true labels, which only a benchmark has",
                            fix="pass label_states= (benchmarks), or pick another --method")
    device = torch.device(config.resolved_device())
    backbone = build_backbone(config.backbone, weights=str(config.weights) if config.weights else "default")
    if maps is None:
        cached = cache_feature_maps(store, backbone=backbone, cut=config.cut, image_size=config.image_size,
                                    device=device, progress=console is not None, nproc=config.cache_nproc)
        if console is not None:
            console.print(f"feature maps: {cached.name} ({cached.computed} computed, {cached.reused} reused, "
                          f"{len(cached.failed_ids)} failed to decode{', e.g. ids ' + str(cached.failed_ids[:5]) if cached.failed_ids else ''}; "
                          f"{cached.bytes_per_image:,} B per image)", highlight=False)
        maps = FeatureMapSet(cached.folder)
    meta = maps.meta
    if meta["backbone"] != backbone.name or meta["weights_hash"] != backbone.weights_hash:
        raise LabelfixError(f"the feature maps in {maps.folder} come from {meta['backbone']}-{meta['weights_hash']}, "
                            f"not {backbone.name}-{backbone.weights_hash}", fix="use the matching --backbone / weights")
    matrix = load_label_matrix(store)
    states = matrix.states
    if label_states is not None:
        label_states = np.asarray(label_states, np.int8)
        if label_states.shape != states.shape:
            raise ValueError(f"label_states must be {states.shape} like the store's label matrix, got {label_states.shape}")
        states = label_states
    rows = _rows_with_maps(matrix.image_ids, maps)
    if not len(rows):
        raise StoreError("no labelled image has a cached feature map", file=store.path,
                         fix="check that the images decode (`labelfix embed` reports the ones that fail)")
    missing_ids = matrix.image_ids[np.setdiff1d(np.arange(len(matrix.image_ids)), rows)]
    image_ids, splits, states = matrix.image_ids[rows], matrix.splits[rows], states[rows]
    stored = {**config.model_dump(mode="json"), "cut": int(meta["cut"]), "map_set": maps.folder.name}
    run_id = create_run(store, method=config.method, mode="adapt", config=stored)
    try:
        return _run(store, run_id=run_id, config=config, backbone_blocks=feature_blocks(backbone), maps=maps,
                    image_ids=image_ids, category_ids=matrix.category_ids, splits=splits, states=states,
                    missing_ids=missing_ids, device=device, console=console)
    except BaseException as error:  # also Ctrl-C: the run must not stay 'running' forever
        finish_run(store, run_id=run_id, metrics={"error": f"{type(error).__name__}: {error}"}, status="failed")
        raise


def _run(store: Store, *, run_id: int, config: TrainConfig, backbone_blocks: torch.nn.Sequential,
         maps: FeatureMapSet, image_ids: np.ndarray, category_ids: np.ndarray, splits: np.ndarray,
         states: np.ndarray, missing_ids: np.ndarray, device: torch.device,
         console: Optional[Console]) -> TrainResult:
    started = time.perf_counter()
    if console is not None and len(missing_ids):
        console.print(f"[yellow]{len(missing_ids)} images have no feature map and are left out[/] "
                      f"(e.g. ids {missing_ids[:5].tolist()})")
    all_maps = torch.from_numpy(maps.read(image_ids))  # fp16: N x bytes_per_image of RAM
    cut = int(maps.meta["cut"])
    by_split = {split: np.flatnonzero(splits == split) for split in SPLITS}
    train_rows, val_rows = by_split["train"], by_split["val"]
    if not len(train_rows):
        raise StoreError("no training image has a feature map", file=store.path, fix="give some images split 'train'")
    folds = max(int(config.folds), 1)
    if folds > len(train_rows):
        raise LabelfixError(f"folds={folds} but only {len(train_rows)} training images", fix="lower --folds")
    fold_of = np.full(len(image_ids), -1, np.int16)
    if folds > 1:
        fold_of[train_rows] = np.random.default_rng(config.seed).permutation(len(train_rows)) % folds
    probs = np.zeros((len(image_ids), len(category_ids)), np.float64)
    treated_epoch = np.full(probs.shape, -1, np.int32)
    treated_prob = np.full(probs.shape, np.nan, np.float32)
    history: list[dict[str, Any]] = []
    fits: list[Fit] = []
    everything = np.arange(len(image_ids))
    for fold in range(folds):
        fit_rows = train_rows if folds == 1 else train_rows[fold_of[train_rows] != fold]
        seed = config.seed + 1000 * fold

        def on_epoch(record: dict[str, Any], fold: int = fold) -> None:
            record = {**record, "fold": fold} if folds > 1 else record
            record_epoch(store, run_id=run_id, epoch=len(history), metrics=record)
            history.append(record)
            if console is not None:
                prefix = f"fold {fold + 1}/{folds} " if folds > 1 else ""
                shown = val_map_text(record["val_map"])  # no "val mAP nan" without val positives
                console.print(f"{prefix}epoch {record['epoch'] + 1:>3}/{config.epochs}  loss {record['train_loss']:.4f}"
                              f"{shown}  {record['seconds']:.1f}s"
                              f"{'  *' if record['best'] and shown else ''}", highlight=False)

        fit_states, probe = states, None
        if config.adapt_select != "val_map":  # hide the probe positives (select.py)
            probe_rows = val_rows if config.adapt_select == "val_hidden" else fit_rows
            fit_states, probe = hide_probe(states, probe_rows, share=config.probe_share, seed=seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            top, dim = top_blocks(backbone_blocks, cut=cut, map_shape=maps.shape)
            scheme = build_trunk_scheme(top=top, dim=dim, config=config, states=fit_states, train_rows=fit_rows,
                                        seed=seed, device=device.type)
            fit = fit_adapt(scheme, maps=all_maps, states=fit_states, train_rows=fit_rows, val_rows=val_rows,
                            config=config, seed=seed, device=device, on_epoch=on_epoch, probe=probe)
        fits.append(fit)
        scored = np.flatnonzero(fold_of == fold) if folds > 1 else everything
        probs[scored] = predict_maps(fit.scheme, all_maps, scored, device=device)
        if folds > 1:  # val / test / other splits: the mean of the K models
            others = np.flatnonzero(fold_of < 0)
            probs[others] += predict_maps(fit.scheme, all_maps, others, device=device) / folds
        newer = (fit.first_epoch >= 0) & ((treated_epoch[fit_rows] < 0) | (fit.first_epoch < treated_epoch[fit_rows]))
        r, c = np.nonzero(newer)
        treated_epoch[fit_rows[r], c] = fit.first_epoch[r, c]
        treated_prob[fit_rows[r], c] = fit.first_prob[r, c]
    correction_sign = fits[-1].scheme.correction_sign
    write_predictions(store, run_id=run_id, image_ids=image_ids, category_ids=category_ids, probs=probs,
                      folds=fold_of if folds > 1 else None)
    r, c = np.nonzero(treated_epoch >= 0)
    if len(r):
        write_corrections(store, run_id=run_id, image_ids=image_ids[r], category_ids=category_ids[c],
                          epochs=treated_epoch[r, c], treated_as=np.full(len(r), correction_sign, np.int8),
                          probs=treated_prob[r, c])
    checkpoint = _save_checkpoint(store, run_id=run_id, config=config, fits=fits, category_ids=category_ids,
                                  maps=maps)
    best_epochs = [fit.best_epoch for fit in fits]
    best_epoch = best_epochs[0] if folds == 1 else int(np.median(best_epochs))
    epoch_seconds = [h["seconds"] for h in history]
    metrics: dict[str, Any] = {
        "best_epoch": best_epoch, "epochs_trained": len(history), "selection": fits[0].selection,
        "val_map": observed_map(probs[val_rows], states[val_rows]),
        # Reported for information only; never used to choose anything.
        "test_map_observed": observed_map(probs[by_split["test"]], states[by_split["test"]]),
        "train_map_observed": observed_map(probs[train_rows], states[train_rows]),
        "num_images": int(len(image_ids)), "missing_feature_maps": int(len(missing_ids)),
        "num_treated": int(len(r)), "treated_as": int(scheme.correction_sign) if len(r) else None,
        "map_set": maps.folder.name, "cut": cut, "folds": folds,
        "seconds_per_epoch": float(np.median(epoch_seconds)) if epoch_seconds else None,
        "seconds": round(time.perf_counter() - started, 3)}
    if folds > 1:
        metrics["best_epochs"] = best_epochs
    finish_run(store, run_id=run_id, metrics=metrics, checkpoint_path=str(checkpoint))
    if console is not None:
        chosen = chosen_epoch_text(best_epoch=best_epoch, epochs_trained=len(history) // folds,
                                   val_map=metrics["val_map"])
        console.print(f"run {run_id} ({config.method}, adapt): {chosen}, {metrics['num_treated']} cells treated, "
                      f"{metrics['seconds']:.1f}s", highlight=False)
    return TrainResult(run_id=run_id, best_epoch=best_epoch, metrics=metrics,
                       probs={split: probs[rows] for split, rows in by_split.items()},
                       image_ids={split: image_ids[rows] for split, rows in by_split.items()},
                       category_ids=category_ids, history=history, model=scheme)


def _save_checkpoint(store: Store, *, run_id: int, config: TrainConfig, fits: list[Fit], category_ids: np.ndarray,
                     maps: FeatureMapSet) -> Path:
    """Best weights (one per fold) plus the map set they read (backbone, weights hash, cut, size)."""
    folder = Path(config.checkpoint_dir) if config.checkpoint_dir else store.cache_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"run-{run_id}.pt"
    torch.save({"method": config.method, "mode": "adapt", "config": config.model_dump(mode="json"),
                "state_dicts": [{k: v.cpu() for k, v in fit.scheme.state_dict().items()} for fit in fits],
                "category_ids": torch.from_numpy(category_ids), "map_set": dict(maps.meta)}, path)
    return path


__all__ = ["ADAPT_DEFAULTS", "fit_adapt", "predict_maps", "resolve_adapt_config", "train_adapt"]
