"""Training configuration shared by head mode, finetune mode and co-training (a pydantic model)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from labelfix.errors import InputError


class TrainConfig(BaseModel):
    """Everything a training run needs; stored as the run's config.

    ``mode=None`` picks ``finetune`` when a GPU is present and ``head`` otherwise; ``adapt`` (top blocks on
    cached feature maps, :mod:`labelfix.learn.adapt`) is asked for by name.
    ``loss_params`` go to the loss builder (e.g. ``{"alpha": 0.1}`` for EM).
    """

    model_config = ConfigDict(extra="forbid")

    method: str = "gr"  # best missing-label AP in benchmarks/results (demo data)
    mode: Optional[Literal["head", "adapt", "finetune"]] = None
    seed: int = 0
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    early_stopping_patience: int = 5
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
    image_size: int = 224
    num_workers: int = 2
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
    # CLS co-training (seed 001)
    cls_tau_h: float = 0.01
    cls_tau_l: float = 0.06
    cls_e_k: int = 10
    # cross-fitting (K models, each scoring the fold it did not see); 1 = in-sample
    folds: int = 1

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> "TrainConfig":
        """Load a TOML file (keys as the fields above), then apply non-None ``overrides``."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise InputError(f"cannot read the config ({error})", file=path, fix="write valid TOML") from error
        data.update({key: value for key, value in overrides.items() if value is not None})
        try:
            return cls(**data)
        except ValueError as error:
            raise InputError(f"invalid config: {error}", file=path, fix="see `labelfix train --help`") from error

    def resolved_mode(self) -> Literal["head", "adapt", "finetune"]:
        if self.mode is not None:
            return self.mode
        import torch

        return "finetune" if torch.cuda.is_available() else "head"

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
