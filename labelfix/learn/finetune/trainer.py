"""Finetune mode: a backbone plus a linear classifier trained end to end on decoded images.

bf16 autocast and channels_last on CUDA, a DataLoader with workers and pinned memory, an EMA of the
weights that validation and predictions use (as SPLC's authors do), AdamW with a OneCycle schedule,
validation mAP each epoch with early stopping, a checkpoint every epoch and exact resume. The
training loop (:func:`finetune_loop`) never touches the store, so
:mod:`labelfix.learn.finetune.distributed` runs it on every rank while rank 0 alone records the run.

The per-step pieces live in :mod:`labelfix.learn.finetune.step`, the run's bookkeeping (store and
checkpoint files) in :mod:`labelfix.learn.finetune.runs`, and the CLS / COMIC models in
:mod:`labelfix.learn.finetune.cls` / :mod:`labelfix.learn.finetune.comic`.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, cast

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Sampler, SequentialSampler

from labelfix.errors import InputError, StoreError
from labelfix.learn.backbones import build_backbone
from labelfix.learn.config import HTB_KEYS, TrainConfig, TrainResult
from labelfix.learn.finetune.cls import CoLabelSelectionLoss, CoTrainingPair
from labelfix.learn.finetune.comic import ComicBalancerLoss, ComicFinetuneModel, split_params, uses_balancer
from labelfix.learn.finetune.runs import (
    CHECKPOINT_FORMAT, NO_CORRECTION, FinetuneData, LoopOutcome, _observed_map, _rng_states, _save_atomically,
    make_result, record_outcome, start_or_resume_run)
from labelfix.learn.finetune.step import FinetuneModel, ModelEma, TrainStep
from labelfix.learn.image_data import ImageRecord, StoreImageDataset, image_records
from labelfix.learn.losses import PartialLabelLoss, build_loss
from labelfix.learn.validation import val_map_text
from labelfix.states import POSITIVE
from labelfix.store.database import Store
from labelfix.store.labels import load_label_matrix
from labelfix.store.runs import finish_run, record_epoch

if TYPE_CHECKING:
    from labelfix.learn.losses.entropy import EntropyMaximizationAPLLoss


@dataclass
class DistContext:
    """Where this process sits: world size 1 and rank 0 without torch.distributed."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def prepare_data(store: Store) -> FinetuneData:
    """Images with paths and the current label states, aligned row by row (sorted by image id)."""
    records = image_records(store)
    labels = load_label_matrix(store)
    if [r.image_id for r in records] != labels.image_ids.tolist():
        raise StoreError("images and label matrix disagree", file=store.path, fix="re-run the ingest")
    if len(labels.rows("train")) == 0:
        raise InputError("the store has no train images", file=store.path, fix="ingest images with --split train")
    return FinetuneData(records, labels)


def build_finetune_loss(config: TrainConfig, *, num_classes: int, class_counts: list[int],
                        num_train: int) -> PartialLabelLoss:
    """The method's loss; for CLS the co-label selection over a :class:`CoTrainingPair`'s two networks."""
    if config.method == "cls":
        return CoLabelSelectionLoss(e_k=config.cls_e_k, tau_h=config.cls_tau_h, tau_l=config.cls_tau_l)
    params = dict(config.loss_params)
    if config.method == "comic":  # without HTB: the branch and classifier settings do not apply
        params = {key: value for key, value in params.items() if key != "htb" and key not in HTB_KEYS}
    if config.method == "em_apl":
        params.setdefault("num_train", num_train)
    try:
        return build_loss(config.method, num_classes=num_classes, class_counts=class_counts, **params)
    except (TypeError, ValueError) as error:
        raise InputError(f"cannot build the loss of method {config.method!r}: {error}",
                         fix="check --method and loss_params") from error


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _loader(dataset: StoreImageDataset, *, config: TrainConfig, ctx: DistContext, batch_size: int,
            train: bool, generator: Optional[torch.Generator] = None) -> DataLoader:
    sampler: Sampler
    if ctx.world_size > 1:
        sampler = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=train,
                                     seed=config.seed, drop_last=False)
    else:
        sampler = RandomSampler(dataset, generator=generator) if train else SequentialSampler(dataset)
    # Workers are not persistent: each epoch restarts them with seeds drawn from the per-epoch
    # generator, so an epoch's augmentations do not depend on earlier epochs (exact resume).
    # Dropping a partial last batch keeps tiny batches out of BatchNorm, unless it is the only batch.
    drop_last = train and len(dataset) // ctx.world_size > batch_size
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=config.num_workers,
                      pin_memory=ctx.device.type == "cuda", drop_last=drop_last, generator=generator)


@torch.no_grad()
def predict(model: nn.Module, records: list[ImageRecord], *, transform: Callable, config: TrainConfig,
            ctx: DistContext, batch_size: int, bf16: bool) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid probabilities [N, C] (float64: no tie at 1.0) and decode success [N] of ``records``, gathered over ranks."""
    dataset = StoreImageDataset(records, transform=transform, image_size=config.image_size)
    loader = _loader(dataset, config=config, ctx=ctx, batch_size=batch_size, train=False)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    was_training = model.training
    model.eval()
    positions, chunks, oks = [], [], []
    for images, position, ok in loader:
        images = images.to(ctx.device, non_blocking=True, memory_format=memory_format)
        with torch.autocast(device_type=ctx.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(images)
        chunks.append(torch.sigmoid(logits.double()).cpu())  # outside autocast: float64, no tie at 1.0
        positions.append(position)
        oks.append(ok)
    model.train(was_training)
    local = (torch.cat(positions).numpy() if positions else np.zeros(0, np.int64),
             torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), np.float64),
             torch.cat(oks).numpy() if oks else np.zeros(0, bool))
    parts: list[Any] = [local]
    if ctx.world_size > 1:
        parts = [None] * ctx.world_size
        dist.all_gather_object(parts, local)
    num_classes = next(p[1].shape[1] for p in parts if len(p[0]))
    probs, ok = np.full((len(records), num_classes), np.nan, np.float64), np.zeros(len(records), bool)
    for part_positions, part_probs, part_ok in parts:
        probs[part_positions], ok[part_positions] = part_probs, part_ok
    probs[~ok] = np.nan
    return probs, ok


def finetune_loop(data: FinetuneData, *, config: TrainConfig, ctx: DistContext, checkpoint_dir: Path,
                  on_epoch: Optional[Callable[[int, dict[str, Any]], None]] = None) -> LoopOutcome:
    """Train, validate, checkpoint and predict; identical on every rank, store-free.

    Resumes from ``checkpoint_dir / "last.pt"`` when ``config.resume`` is set and that file exists.
    ``on_epoch(epoch, metrics)`` is called on rank 0 after each epoch's checkpoint is written.
    """
    labels = data.labels
    train_rows, val_rows = data.rows("train"), data.rows("val")
    num_classes = len(labels.category_ids)
    train_states = torch.from_numpy(labels.states[train_rows].astype(np.int8))
    class_counts = (labels.states[train_rows] == POSITIVE).sum(axis=0).tolist()
    _seed_everything(config.seed)  # same initial weights on every rank
    weights: Any = config.weights if config.weights is not None else "default"
    backbone = build_backbone(config.backbone, weights=weights)
    model: nn.Module = FinetuneModel(backbone.model, dim=backbone.dim, num_classes=num_classes)
    if config.method == "cls":  # two networks: same pretrained backbone, a differently seeded head
        torch.manual_seed(config.seed + 1)
        peer = FinetuneModel(build_backbone(config.backbone, weights=weights).model, dim=backbone.dim,
                             num_classes=num_classes)
        model = CoTrainingPair(model, peer)
    elif uses_balancer(config):  # COMIC with its three HTB branches on the backbone's features
        model = ComicFinetuneModel(backbone.model, dim=backbone.dim, num_classes=num_classes,
                                   class_counts=class_counts, params=split_params(config.loss_params))
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    # Module.to takes device and memory_format together; torch's overload stubs list them apart.
    model = model.to(ctx.device, memory_format=memory_format)  # type: ignore[call-overload]
    ema = ModelEma(model, decay=config.ema_decay) if config.ema_decay else None
    if isinstance(model, ComicFinetuneModel):
        loss_fn: PartialLabelLoss = ComicBalancerLoss(model.balancer)
    else:
        loss_fn = build_finetune_loss(config, num_classes=num_classes, class_counts=class_counts,
                                      num_train=len(train_rows)).to(ctx.device)
    trained: nn.Module = model
    if ctx.world_size > 1:
        # BatchNorm stays per-rank (no SyncBatchNorm): the per-rank batch is the global batch / world size.
        device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        trained = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    batch_size = max(1, config.batch_size // ctx.world_size)
    train_set = StoreImageDataset([data.records[i] for i in train_rows],
                                  transform=backbone.train_transform(config.image_size), image_size=config.image_size)
    generator = torch.Generator()
    train_loader = _loader(train_set, config=config, ctx=ctx, batch_size=batch_size, train=True, generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, epochs=config.epochs,
                                                    steps_per_epoch=max(1, len(train_loader)), pct_start=0.2)
    bf16 = config.bf16 and ctx.device.type == "cuda"
    step = TrainStep(model=trained, loss=loss_fn, optimizer=optimizer, device=ctx.device, bf16=bf16,
                     channels_last=config.channels_last, scheduler=scheduler, ema=ema, ema_source=model)
    eval_model = ema.module if ema is not None else model
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = checkpoint_dir / "last.pt", checkpoint_dir / "best.pt"

    start_epoch, best_epoch, best_map, bad_epochs = 0, -1, -float("inf"), 0
    history: list[dict[str, Any]] = []
    # First epoch each train cell was corrected to positive, kept on the device: no per-step host sync.
    first_correction = torch.full((len(train_rows), num_classes), NO_CORRECTION, dtype=torch.int32, device=ctx.device)
    pseudo_epoch = np.full((len(train_rows), num_classes), NO_CORRECTION, np.int32)
    if config.resume and last_path.exists():
        state = torch.load(last_path, map_location=ctx.device, weights_only=False)
        model.load_state_dict(state["model"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        loss_fn.load_state_dict(state["loss"])
        start_epoch, best_epoch, best_map = state["epoch"], state["best_epoch"], state["best_metric"]
        bad_epochs, history = state["bad_epochs"], state["history"]
        first_correction = torch.from_numpy(state["first_correction"]).to(ctx.device)
        pseudo_epoch = state["pseudo_epoch"]
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])

    eval_transform = backbone.eval_transform
    val_records = [data.records[i] for i in val_rows]
    for epoch in range(start_epoch, config.epochs):
        if bad_epochs >= config.early_stopping_patience:
            break
        started = time.perf_counter()
        # Reseed per epoch: an epoch's shuffle, augmentation and dropout depend only on (seed, epoch, rank),
        # which is what makes a resumed run match an uninterrupted one.
        _seed_everything(config.seed * 100_003 + epoch * 1_009 + ctx.rank)
        generator.manual_seed(config.seed * 100_003 + epoch)
        if isinstance(train_loader.sampler, DistributedSampler):
            train_loader.sampler.set_epoch(epoch)
        loss_fn.set_epoch(epoch, config.epochs)
        if hasattr(loss_fn, "update_pseudo_labels") and epoch >= getattr(loss_fn, "warmup_epochs", 0):
            train_probs, _ = predict(eval_model, train_set.records, transform=eval_transform, config=config, ctx=ctx,
                                     batch_size=batch_size, bf16=bf16)
            apl = cast("EntropyMaximizationAPLLoss", loss_fn)  # the loss that pseudo-labels
            before = apl.has_pseudo_label.cpu().numpy()
            apl.update_pseudo_labels(probs=torch.from_numpy(np.nan_to_num(train_probs, nan=1.0)),
                                     states=train_states, epoch=epoch, num_epochs=config.epochs)
            pseudo_epoch[apl.has_pseudo_label.cpu().numpy() & ~before] = epoch
        trained.train()
        loss_sum, steps = torch.zeros((), device=ctx.device), 0
        for images, positions, ok in train_loader:
            if not bool(ok.all()):
                images, positions = images[ok], positions[ok]  # undecodable images are left out of training
                if len(positions) == 0:
                    continue
            index = positions.to(ctx.device, non_blocking=True)
            loss_sum += step(images, train_states[positions], index)
            steps += 1
            corrected = getattr(loss_fn, "last_corrections", None)
            if corrected is not None:
                seen = first_correction[index]
                first_correction[index] = torch.where(corrected & (seen > epoch), epoch, seen).to(torch.int32)
        totals = torch.stack([loss_sum.float(), torch.tensor(float(steps), device=ctx.device)])
        if ctx.world_size > 1:
            dist.all_reduce(totals)
            dist.all_reduce(first_correction, op=dist.ReduceOp.MIN)
        val_probs, _ = predict(eval_model, val_records, transform=eval_transform, config=config, ctx=ctx,
                               batch_size=batch_size, bf16=bf16) if len(val_records) else (np.zeros((0, 0)), None)
        val_map = _observed_map(val_probs, labels.states[val_rows]) if len(val_records) else float("nan")
        # Without val positives every epoch counts as the best so far: the last epoch is kept.
        improved = np.isnan(val_map) or val_map > best_map
        if improved:
            best_epoch, best_map, bad_epochs = epoch, (best_map if np.isnan(val_map) else val_map), 0
        else:
            bad_epochs += 1
        metrics = {"train_loss": float(totals[0] / max(float(totals[1]), 1.0)), "val_map": val_map,
                   "lr": scheduler.get_last_lr()[0], "seconds": time.perf_counter() - started}
        history.append({"epoch": epoch, **metrics})
        if ctx.is_main:
            if improved:
                _save_atomically({"model": eval_model.state_dict(), "epoch": epoch, "val_map": val_map}, best_path)
            _save_atomically({
                "format": CHECKPOINT_FORMAT, "epoch": epoch + 1, "model": model.state_dict(),
                "ema": ema.state_dict() if ema is not None else None, "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "loss": loss_fn.state_dict(), "rng": _rng_states(),
                "best_epoch": best_epoch, "best_metric": best_map, "bad_epochs": bad_epochs, "history": history,
                "first_correction": first_correction.cpu().numpy(), "pseudo_epoch": pseudo_epoch,
                "config": config.model_dump(mode="json")}, last_path)
            if on_epoch is not None:
                on_epoch(epoch, metrics)
        if ctx.world_size > 1:
            dist.barrier()  # other ranks must not read best.pt before rank 0 has written it

    best = torch.load(best_path, map_location=ctx.device, weights_only=False)
    eval_model.load_state_dict(best["model"])
    probs, ok = predict(eval_model, data.records, transform=eval_transform, config=config, ctx=ctx,
                        batch_size=batch_size, bf16=bf16)
    failed = [int(data.records[i].image_id) for i in np.flatnonzero(~ok)]
    best_val = float("nan") if not np.isfinite(best_map) else float(best_map)
    return LoopOutcome(best_epoch, best_val, history, probs, failed, first_correction.cpu().numpy(), pseudo_epoch,
                       best_path, eval_model)


def train_finetune(store: Store, *, config: TrainConfig, console: Any = None) -> TrainResult:
    """Train in finetune mode (one process) and record the run in ``store``.

    Parameters
    ----------
    store : Store
        The project store; read for images and labels, written with the run, epochs and predictions.
    config : TrainConfig
        ``backbone``, ``weights``, ``image_size``, ``epochs``, ``lr``, ``ema_decay``, ``bf16`` ... With
        ``resume=True`` the run ``resume_run`` (default: the latest unfinished finetune run) continues
        from its last checkpoint.
    console : rich.console.Console, optional
        Where a line per epoch goes.

    Returns
    -------
    TrainResult
        Run id, best epoch, final metrics and the probabilities of each split.
    """
    run_id, config, directory = start_or_resume_run(store, config=config)
    data = prepare_data(store)
    device = torch.device(config.resolved_device())

    def on_epoch(epoch: int, metrics: dict[str, Any]) -> None:
        record_epoch(store, run_id=run_id, epoch=epoch, metrics=metrics)
        if console is not None:
            console.print(f"epoch {epoch + 1}/{config.epochs}  loss {metrics['train_loss']:.4f}"
                          f"{val_map_text(metrics['val_map'])}  {metrics['seconds']:.1f}s")

    try:
        outcome = finetune_loop(data, config=config, ctx=DistContext(device), checkpoint_dir=directory,
                                on_epoch=on_epoch)
    except BaseException as error:  # also Ctrl-C: the run must not stay 'running'; it stays resumable
        finish_run(store, run_id=run_id, metrics={"error": f"{type(error).__name__}: {error}"}, status="failed")
        raise
    metrics = record_outcome(store, run_id=run_id, data=data, outcome=outcome)
    if console is not None and outcome.failed_image_ids:
        console.print(f"[yellow]{len(outcome.failed_image_ids)} images failed to decode: "
                      f"{outcome.failed_image_ids[:20]}[/yellow]")
    return make_result(run_id=run_id, data=data, outcome=outcome, metrics=metrics)


__all__ = ["DistContext", "build_finetune_loss", "finetune_loop", "predict", "prepare_data", "train_finetune"]
