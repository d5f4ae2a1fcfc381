"""Finetune mode: a backbone plus a linear classifier trained end to end on decoded images.

bf16 autocast and channels_last on CUDA, a DataLoader with workers and pinned memory, an EMA of the
weights that validation and predictions use (as SPLC's authors do), AdamW with a OneCycle schedule,
validation mAP each epoch with early stopping, a checkpoint every epoch and exact resume. The
training loop (:func:`finetune_loop`) never touches the store, so :mod:`labelfix.learn.distributed`
runs it on every rank while rank 0 alone records the run.
"""

from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

from labelfix.errors import InputError, StoreError
from labelfix.io.atomic import atomic_target
from labelfix.learn.comic_finetune import (
    HTB_KEYS, ComicBalancerLoss, ComicFinetuneModel, split_params, uses_balancer)
from labelfix.learn.config import TrainConfig
from labelfix.learn.image_data import ImageRecord, StoreImageDataset, image_records
from labelfix.learn.losses import build_loss
from labelfix.learn.trainer import TrainResult, observed_map, resolve_config
from labelfix.states import NEGATIVE, POSITIVE
from labelfix.store.database import Store
from labelfix.store.labels import LabelMatrix, load_label_matrix
from labelfix.store.runs import create_run, finish_run, record_epoch, write_corrections, write_predictions

CHECKPOINT_FORMAT = 1
FINETUNE_WEIGHT_DECAY = 1e-4
FINETUNE_LR = 1e-4
NO_CORRECTION = np.iinfo(np.int32).max  # "never corrected" in the first-correction-epoch matrix


class FinetuneModel(nn.Module):
    """Backbone (pooled features [B, D]) followed by a linear classifier to C logits."""

    def __init__(self, backbone: nn.Module, *, dim: int, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.backbone(images))


class ModelEma:
    """Exponential moving average of a model's parameters (buffers are copied as they are).

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` after n updates (as TensorFlow's
    ExponentialMovingAverage does), so short runs do not evaluate what is nearly the initial model.
    """

    def __init__(self, model: nn.Module, *, decay: float) -> None:
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = float(decay)
        self.num_updates = 0  # a host int: reading it never waits for the device

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = min(self.decay, (1.0 + self.num_updates) / (10.0 + self.num_updates))
        torch._foreach_lerp_(list(self.module.parameters()), [p.detach() for p in model.parameters()], 1.0 - decay)
        for ema_buffer, buffer in zip(self.module.buffers(), model.buffers()):
            ema_buffer.copy_(buffer)
        self.num_updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "num_updates": self.num_updates, "decay": self.decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.num_updates, self.decay = int(state["num_updates"]), float(state["decay"])


class TrainStep:
    """One optimisation step of finetune mode; also what ``benchmarks/gpu_throughput.py`` times.

    Moves the batch to the device (non-blocking from pinned memory), runs the forward pass under
    bf16 autocast when enabled, then backward, optimizer, scheduler and EMA. Returns the detached
    loss without ``.item()``, so the host never waits for the device inside the loop.
    """

    def __init__(self, *, model: nn.Module, loss: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device,
                 bf16: bool, channels_last: bool, scheduler: Optional[Any] = None,
                 ema: Optional[ModelEma] = None, ema_source: Optional[nn.Module] = None) -> None:
        self.model, self.loss, self.optimizer, self.scheduler = model, loss, optimizer, scheduler
        self.device, self.bf16, self.channels_last = device, bf16, channels_last
        self.ema, self.ema_source = ema, ema_source if ema_source is not None else model

    def __call__(self, images: Tensor, states: Tensor, index: Optional[Tensor] = None) -> Tensor:
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        images = images.to(self.device, non_blocking=True, memory_format=memory_format)
        states = states.to(self.device, non_blocking=True)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(images)
        loss = self.loss(logits.float(), states, index=index)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        after_backward = getattr(self.loss, "after_backward", None)
        if after_backward is not None:  # e.g. COMIC's HTB reads the fresh gradients (its e_t)
            after_backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.ema_source)
        return loss.detach()


@dataclass
class FinetuneData:
    """What training needs from the store, picklable so that rank 0 can broadcast it."""

    records: list[ImageRecord]
    labels: LabelMatrix

    def rows(self, split: str) -> np.ndarray:
        return self.labels.rows(split)


@dataclass
class LoopOutcome:
    best_epoch: int
    best_val_map: float
    history: list[dict[str, Any]]
    probs: np.ndarray               # [N, C] of every image, NaN rows for images that failed to decode
    failed_image_ids: list[int]
    first_correction: np.ndarray    # [N_train, C] int32, NO_CORRECTION where never corrected
    pseudo_epoch: np.ndarray        # [N_train, C] int32, NO_CORRECTION where no APL pseudo-label
    checkpoint_path: Path
    model: Optional[nn.Module] = None  # the evaluated model (EMA when enabled) with the best epoch's weights


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


def checkpoint_dir_for(store: Store, *, config: TrainConfig, run_id: int) -> Path:
    base = config.checkpoint_dir if config.checkpoint_dir is not None else store.cache_dir / "checkpoints"
    return Path(base) / f"run-{run_id}"


def build_finetune_loss(config: TrainConfig, *, num_classes: int, class_counts: list[int], num_train: int) -> nn.Module:
    """The method's loss; for CLS the co-label selection over a :class:`CoTrainingPair`'s two networks."""
    if config.method == "cls":
        from labelfix.learn.cls_finetune import CoLabelSelectionLoss

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


def _rng_states() -> dict[str, Any]:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _save_atomically(payload: dict[str, Any], path: Path) -> None:
    # A crash while writing must never leave a truncated last.pt behind: write aside, then rename.
    with atomic_target(path) as temporary:
        torch.save(payload, temporary)


def _loader(dataset: StoreImageDataset, *, config: TrainConfig, ctx: DistContext, batch_size: int,
            train: bool, generator: Optional[torch.Generator] = None) -> DataLoader:
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
    """Sigmoid probabilities [N, C] (float32) and decode success [N] of ``records``, gathered over ranks."""
    dataset = StoreImageDataset(records, transform=transform, image_size=config.image_size)
    loader = _loader(dataset, config=config, ctx=ctx, batch_size=batch_size, train=False)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    was_training = model.training
    model.eval()
    positions, chunks, oks = [], [], []
    for images, position, ok in loader:
        images = images.to(ctx.device, non_blocking=True, memory_format=memory_format)
        with torch.autocast(device_type=ctx.device.type, dtype=torch.bfloat16, enabled=bf16):
            chunks.append(torch.sigmoid(model(images).float()).cpu())
        positions.append(position)
        oks.append(ok)
    model.train(was_training)
    local = (torch.cat(positions).numpy() if positions else np.zeros(0, np.int64),
             torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), np.float32),
             torch.cat(oks).numpy() if oks else np.zeros(0, bool))
    parts = [local]
    if ctx.world_size > 1:
        parts = [None] * ctx.world_size
        dist.all_gather_object(parts, local)
    num_classes = next(p[1].shape[1] for p in parts if len(p[0]))
    probs, ok = np.full((len(records), num_classes), np.nan, np.float32), np.zeros(len(records), bool)
    for part_positions, part_probs, part_ok in parts:
        probs[part_positions], ok[part_positions] = part_probs, part_ok
    probs[~ok] = np.nan
    return probs, ok


def _observed_map(probs: np.ndarray, states: np.ndarray) -> float:
    """Head mode's observed-label mAP, over the images that decoded (rows without NaN)."""
    keep = ~np.isnan(probs).any(axis=1) if probs.size else np.zeros(len(probs), bool)
    return observed_map(probs[keep], states[keep]) if keep.any() else float("nan")


def finetune_loop(data: FinetuneData, *, config: TrainConfig, ctx: DistContext, checkpoint_dir: Path,
                  on_epoch: Optional[Callable[[int, dict[str, Any]], None]] = None) -> LoopOutcome:
    """Train, validate, checkpoint and predict; identical on every rank, store-free.

    Resumes from ``checkpoint_dir / "last.pt"`` when ``config.resume`` is set and that file exists.
    ``on_epoch(epoch, metrics)`` is called on rank 0 after each epoch's checkpoint is written.
    """
    from labelfix.learn.backbones import build_backbone

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
        from labelfix.learn.cls_finetune import CoTrainingPair

        torch.manual_seed(config.seed + 1)
        peer = FinetuneModel(build_backbone(config.backbone, weights=weights).model, dim=backbone.dim,
                             num_classes=num_classes)
        model = CoTrainingPair(model, peer)
    elif uses_balancer(config):  # COMIC with its three HTB branches on the backbone's features
        model = ComicFinetuneModel(backbone.model, dim=backbone.dim, num_classes=num_classes,
                                   class_counts=class_counts, params=split_params(config.loss_params))
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(ctx.device, memory_format=memory_format)
    ema = ModelEma(model, decay=config.ema_decay) if config.ema_decay else None
    if isinstance(model, ComicFinetuneModel):
        loss_fn: nn.Module = ComicBalancerLoss(model.balancer)
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
            before = loss_fn.has_pseudo_label.cpu().numpy()
            loss_fn.update_pseudo_labels(probs=torch.from_numpy(np.nan_to_num(train_probs, nan=1.0)),
                                         states=train_states, epoch=epoch, num_epochs=config.epochs)
            pseudo_epoch[loss_fn.has_pseudo_label.cpu().numpy() & ~before] = epoch
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


def resolve_finetune_config(config: TrainConfig) -> TrainConfig:
    """Head mode's method defaults, except the learning rate and weight decay when the user left them
    unset: a pretrained backbone trained end to end wants about 1e-4 for both (the ASL / SPLC authors'
    AdamW + OneCycle setting). Head mode's strong decay was measured for a linear head on frozen
    embeddings, where it keeps the head from memorising the missing labels; it would wreck a backbone."""
    resolved = resolve_config(config)
    if "lr" not in config.model_fields_set:
        resolved = resolved.model_copy(update={"lr": FINETUNE_LR})
    if "weight_decay" not in config.model_fields_set:
        resolved = resolved.model_copy(update={"weight_decay": FINETUNE_WEIGHT_DECAY})
    return resolved.model_copy(update={"mode": "finetune"})


def start_or_resume_run(store: Store, *, config: TrainConfig) -> tuple[int, TrainConfig, Path]:
    """Create a run, or with ``config.resume`` reopen ``config.resume_run`` (default: the latest
    unfinished finetune run) with the config its checkpoint holds. Returns (run_id, config, checkpoint dir)."""
    if not config.resume:
        config = resolve_finetune_config(config)
        run_id = create_run(store, method=config.method, mode="finetune", config=config.model_dump(mode="json"))
        return run_id, config, checkpoint_dir_for(store, config=config, run_id=run_id)
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
    with store.transaction():
        store.execute("UPDATE runs SET status = 'running' WHERE run_id = ?", [int(run_id)])
    return int(run_id), resumed, directory


def make_result(*, run_id: int, data: FinetuneData, outcome: LoopOutcome, metrics: dict[str, Any]) -> TrainResult:
    """The head-mode trainer's ``TrainResult`` for this finetune run."""
    rows = {split: data.rows(split) for split in ("train", "val", "test")}
    return TrainResult(run_id=run_id, best_epoch=outcome.best_epoch, metrics=metrics,
                       probs={split: outcome.probs[r] for split, r in rows.items()},
                       image_ids={split: data.labels.image_ids[r] for split, r in rows.items()},
                       category_ids=data.labels.category_ids, history=outcome.history, model=outcome.model)


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
            console.print(f"epoch {epoch + 1}/{config.epochs}  loss {metrics['train_loss']:.4f}  "
                          f"val mAP {metrics['val_map']:.4f}  {metrics['seconds']:.1f}s")

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
