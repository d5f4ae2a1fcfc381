"""What every training regime shares: the config, the method defaults, their resolution, the result.

* :class:`TrainConfig`: everything a run needs (a pydantic model, stored as the run's config).
* :data:`METHOD_DEFAULTS` / :func:`resolve_config`: each method's measured defaults, filled in where
  the user left a field unset; :func:`resolve_finetune_config` adapts them to a trained backbone.
* :data:`TRAIN_METHODS`: the method names ``labelfix train`` accepts.
* :data:`HTB_KEYS` / :data:`CLASSIFIER_KEYS`: which COMIC ``loss_params`` belong to the head-tail
  balancer and its cosine classifiers (both regimes split ``loss_params`` with them).
* :class:`TrainResult`: what a run hands back, whichever regime trained it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import nn

from labelfix.errors import InputError, LabelfixError
from labelfix.internal.settings_errors import settings_problems
from labelfix.learn.losses import LOSS_NAMES


# The flag of `labelfix train` that sets a TrainConfig field, where it is not --FIELD-NAME.
TRAIN_OPTIONS: dict[str, str] = {"resume_run": "--run", "embedding_set": "--embedding-set", "method": "--method",
                                 "mode": "--mode", "epochs": "--epochs", "seed": "--seed", "lr": "--lr",
                                 "folds": "--folds", "resume": "--resume",
                                 "image_size": "--image-size", "adapt_select": "--select"}


class TrainConfig(BaseModel):
    """Everything a training run needs; stored as the run's config.

    ``mode=None`` picks ``finetune`` when a GPU is present and ``head`` otherwise; ``adapt`` (top blocks on
    cached feature maps, :mod:`labelfix.learn.adapt`) is asked for by name.
    ``loss_params`` go to the loss builder (e.g. ``{"alpha": 0.1}`` for EM).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    method: str = "gr"  # best missing-label AP in benchmarks/results (demo data)
    mode: Optional[Literal["head", "adapt", "finetune"]] = None
    seed: int = Field(0, ge=0)
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, ge=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    early_stopping_patience: int = Field(5, ge=0)
    loss_params: dict[str, Any] = Field(default_factory=dict)
    device: str = "auto"
    # head mode
    embedding_set: Optional[str] = None
    head: Literal["linear", "mlp"] = "linear"
    hidden_dim: int = 256
    dropout: float = 0.0
    standardize: bool = True
    # finetune mode
    backbone: str = "mobilenet_v2"
    weights: Optional[Path] = None
    # 16..1024: below 16 px an image keeps no detail worth a label (0 or less was a torch traceback); 1024 is far
    # above any ImageNet backbone's native size and bounds the feature-map cache (bytes grow with its square).
    image_size: int = Field(224, ge=16, le=1024)
    num_workers: int = Field(2, ge=0)
    bf16: bool = True
    channels_last: bool = True
    ema_decay: Optional[float] = 0.9997
    checkpoint_dir: Optional[Path] = None
    resume: bool = False
    # finetune resume: the run to continue (None: the latest unfinished finetune run)
    resume_run: Optional[int] = None
    # adapt mode (labelfix.learn.adapt): blocks cached (None: the backbone's default), map augmentation
    cut: Optional[int] = None
    adapt_augment: dict[str, Any] = Field(default_factory=dict)
    # processes that cache the maps (one per GPU when there are GPUs; `labelfix train --mode adapt --nproc N`)
    cache_nproc: int = Field(default=1, ge=1)
    # adapt mode: the epoch whose model scores the train cells (labelfix.learn.adapt.select), and
    # the share of observed positives hidden as a probe by val_hidden / train_probe
    adapt_select: Literal["val_map", "val_hidden", "train_probe"] = "val_map"
    probe_share: float = Field(default=0.2, gt=0.0, lt=1.0)
    # CLS co-training (seed 001)
    cls_tau_h: float = 0.01
    cls_tau_l: float = 0.06
    cls_e_k: int = 10
    # cross-fitting (K models, each scoring the fold it did not see); 1 = in-sample
    folds: int = Field(1, ge=1)

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> "TrainConfig":
        """Load a TOML file (keys as the fields above), then apply non-None ``overrides``."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise InputError(f"cannot read the config ({error})", file=path, fix="write valid TOML") from error
        given = {key: value for key, value in overrides.items() if value is not None}
        try:
            return cls(**{**data, **given})
        except ValidationError as error:
            # One line per problem, naming the file's key (or the flag that set it); no pydantic URL.
            names = {key: f"{TRAIN_OPTIONS.get(key, key)} (the flag)" for key in given}
            lines = settings_problems(error, names=names, known=cls.model_fields)
            raise InputError("invalid settings:\n    " + "\n    ".join(lines), file=path,
                             fix="correct those keys (`labelfix train --help` lists the flags; the keys are "
                                 "TrainConfig's fields)") from error

    def resolved_mode(self) -> Literal["head", "adapt", "finetune"]:
        if self.mode is not None:
            return self.mode
        return "finetune" if torch.cuda.is_available() else "head"

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        return "cuda" if torch.cuda.is_available() else "cpu"


# Method defaults, in one place. Why (/work/shared/METHODS.md, closing warning): a head that fits its
# training labels closely scores the hidden positives among the unknown cells low, which is exactly
# what labelfix must not do. Measured on the demo set (1500 train / 300 val / 500 test mosaics,
# MobileNetV2 embeddings, 40% of positives hidden; AP of ranking the train split's unknown cells by
# p against the hidden truth): decoupled weight decay 2.0 beat 0.05 and 1e-4 for AN, EM, Hill, SPLC,
# GR and CLS (e.g. AN 0.49 -> 0.51, Hill 0.49 -> 0.51, SPLC 0.42 -> 0.45); early stopping on val mAP
# (patience 5) does the rest. EM and EM+APL did better with lr 3e-4 than 1e-3 (0.27 -> 0.31). COMIC's
# cosine classifiers saturate with the scale 16 of ref. [33] (RLC then corrects almost every unknown
# cell; 0.14), so scale 4 (0.33); they are scale-invariant in their weights, so strong decay is not
# used there. Loss parameters are the papers' (METHODS.md); EM+APL's warm-up (5 of 10 epochs in the
# paper) is scaled to our epoch count. A user's config or CLI flag always wins over this table (only
# fields the user left unset are filled in).
_COMMON: dict[str, Any] = {"lr": 1e-3, "weight_decay": 2.0, "epochs": 30, "early_stopping_patience": 5}
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "an": {},
    "wan": {},
    "focal": {"loss_params": {"gamma": 2.0}},
    "asl": {"loss_params": {"gamma_neg": 4.0, "gamma_pos": 0.0, "clip": 0.05}},
    "hill": {},                                                  # lambda 1.5, margin 1, gamma 2
    "focal_margin": {},
    # SPLC: tau 0.7, not the paper's 0.6 (METHODS.md), after epoch 1. `bench --tune` chose 0.7 on val in head mode
    # (demo_hide40_tuned) and in adapt mode (adapt224_tuned: at 0.5 / 0.6 so many unknown cells pass tau after
    # epoch 1 that val mAP collapses to 0.31 and the best epoch is the first; at 0.7 it is 0.53).
    "splc": {"loss_params": {"tau": 0.7, "start_epoch": 1}},
    "em": {"lr": 3e-4, "loss_params": {"alpha": 0.1}},           # COCO/NUS alpha
    "em_apl": {"lr": 3e-4, "loss_params": {"alpha": 0.1, "beta": 0.9, "theta": 0.9, "warmup_epochs": 10}},
    "gr": {},                                                    # paper schedules (COCO: w 0->10, b -2->-8)
    "comic": {"weight_decay": 0.05, "loss_params": {"tau": 0.7, "scale": 4.0}},
    "cls": {"cls_e_k": 10, "cls_tau_h": 0.01, "cls_tau_l": 0.06},
    "oracle": {},
}
TRAIN_METHODS: tuple[str, ...] = LOSS_NAMES + ("cls",)


def resolve_config(config: TrainConfig) -> TrainConfig:
    """``config`` with the method's defaults filled in where the user did not set a field."""
    if config.method not in METHOD_DEFAULTS:
        raise LabelfixError(f"unknown method {config.method!r}", fix=f"use one of: {', '.join(TRAIN_METHODS)}")
    defaults = {**_COMMON, **METHOD_DEFAULTS[config.method]}
    update = {key: value for key, value in defaults.items()
              if key != "loss_params" and key not in config.model_fields_set}
    update["loss_params"] = {**defaults.get("loss_params", {}), **config.loss_params}
    return config.model_copy(update=update)


# Finetune mode keeps head mode's method defaults except these two, when the user left them unset.
FINETUNE_WEIGHT_DECAY = 1e-4
FINETUNE_LR = 1e-4


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


# COMIC's loss_params that configure the head-tail balancer (HTB_KEYS) and its cosine classifiers
# (CLASSIFIER_KEYS) rather than each branch's ComicLoss; both regimes split loss_params with them.
HTB_KEYS: tuple[str, ...] = ("num_groups", "scale", "energy", "momentum", "alpha", "lambda_htb", "detach_teachers")
CLASSIFIER_KEYS: tuple[str, ...] = ("num_groups", "scale", "energy")


@dataclass
class TrainResult:
    """What a training run produced (also stored in the run's tables).

    ``probs[split]`` is float32 [n_split, C] with rows ``image_ids[split]`` and columns
    ``category_ids``; ``history`` holds the per-epoch metrics; ``model`` the trained scheme (best
    epoch's weights; the last fold's model when cross-fitting).
    """

    run_id: int
    best_epoch: int
    metrics: dict[str, Any]
    probs: dict[str, np.ndarray]
    image_ids: dict[str, np.ndarray]
    category_ids: np.ndarray
    history: list[dict[str, Any]] = field(default_factory=list)
    model: Optional[nn.Module] = None


__all__ = ["CLASSIFIER_KEYS", "FINETUNE_LR", "FINETUNE_WEIGHT_DECAY", "HTB_KEYS", "METHOD_DEFAULTS", "TRAIN_METHODS",
           "TrainConfig", "TrainResult", "resolve_config", "resolve_finetune_config"]
