"""Adapt mode's model: the backbone's top blocks (trainable) in front of any head-mode training scheme.

Learn's shared schemes (:mod:`labelfix.learn.schemes`, also head mode's: one head + one loss; CLS's two heads; COMIC's
head / tail / balanced branches with HTB) take pooled features ``[B, D]``. :class:`TrunkScheme` puts
``features[cut:]`` + global average pooling in front of such a scheme, so every method's loss, its
corrections and its schedules are the same code in both modes. CLS gets two whole models: each of its
two heads gets its own copy of the top blocks (the paper trains two networks).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from torch import Tensor, nn

from labelfix.learn.config import TrainConfig
from labelfix.learn.schemes.base import TrainingScheme, build_single_head_scheme


class TopBlocks(nn.Module):
    """``features[cut:]`` of a backbone, global average pooling and flatten: maps [B, C, H, W] -> [B, D]."""

    def __init__(self, blocks: nn.Sequential) -> None:
        super().__init__()
        self.blocks = blocks
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, maps: Tensor) -> Tensor:
        return torch.flatten(self.pool(self.blocks(maps)), 1)


def top_blocks(blocks: nn.Sequential, *, cut: int, map_shape: tuple[int, int, int]) -> tuple[TopBlocks, int]:
    """A trainable copy of ``blocks[cut:]`` and its output dimension D."""
    top = TopBlocks(copy.deepcopy(blocks[cut:])).train()
    with torch.no_grad():
        was = top.training
        top.eval()
        dim = int(top(torch.zeros(1, *map_shape)).shape[1])
        top.train(was)
    return top, dim


class TrunkScheme(TrainingScheme):
    """``trunk`` (top blocks) followed by a head-mode ``inner`` scheme; forwards every hook to it.

    ``autocast`` runs the trunk in bf16 on CUDA; the heads and losses always see float32 features.
    """

    def __init__(self, trunk: nn.Module, inner: TrainingScheme, *, autocast_device: Optional[str] = None) -> None:
        super().__init__()
        self.trunk = trunk
        self.inner = inner
        self.correction_sign = inner.correction_sign
        self.autocast_device = autocast_device

    def features(self, maps: Tensor) -> Tensor:
        enabled = self.autocast_device == "cuda"
        with torch.autocast(device_type="cuda" if enabled else "cpu", dtype=torch.bfloat16, enabled=enabled):
            return self.trunk(maps.float()).float()

    def set_epoch(self, epoch: int, num_epochs: int) -> None:
        self.inner.set_epoch(epoch, num_epochs)

    @property
    def has_epoch_work(self) -> bool:
        """Whether :meth:`start_epoch` does anything (EM+APL): else the caller need not gather the maps."""
        return type(self.inner).start_epoch is not TrainingScheme.start_epoch and (
            not hasattr(self.inner, "loss") or hasattr(self.inner.loss, "update_pseudo_labels"))

    def start_epoch(self, *, epoch: int, num_epochs: int, features: Tensor,
                    states: Tensor) -> Optional[tuple[Tensor, Tensor]]:
        if not self.has_epoch_work:
            return None
        pooled = pooled_features(self, features)
        return self.inner.start_epoch(epoch=epoch, num_epochs=num_epochs, features=pooled, states=states)

    def training_loss(self, features: Tensor, states: Tensor, *, index: Tensor) -> Tensor:
        loss = self.inner.training_loss(self.features(features), states, index=index)
        self.last_corrections = self.inner.last_corrections
        self.last_correction_probs = self.inner.last_correction_probs
        return loss

    def after_backward(self) -> None:
        self.inner.after_backward()

    def probabilities(self, features: Tensor) -> Tensor:
        return self.inner.probabilities(self.features(features))

    def epoch_metrics(self) -> dict[str, Any]:
        return self.inner.epoch_metrics()


@torch.no_grad()
def pooled_features(scheme: TrunkScheme, maps: Tensor, *, batch_size: int = 256) -> Tensor:
    """Trunk output [N, D] of ``maps`` in eval mode (EM+APL scores the whole train set with it)."""
    was = scheme.training
    scheme.eval()
    try:
        device = next(scheme.parameters()).device
        parts = [scheme.features(maps[i:i + batch_size].to(device)) for i in range(0, len(maps), batch_size)]
    finally:
        scheme.train(was)
    return torch.cat(parts) if parts else torch.zeros(0, 0)


def build_trunk_scheme(*, top: TopBlocks, dim: int, config: TrainConfig, states: np.ndarray, train_rows: np.ndarray,
                       seed: int, device: str) -> TrunkScheme:
    """The method's head-mode scheme (built by the head-mode builders) behind the top blocks.

    ``states`` is int8 [N, C] of every row; ``train_rows`` the rows this model trains on.
    """
    view = _SchemeView(dim=dim, num_classes=int(states.shape[1]), states=states)
    if config.method == "cls":
        from labelfix.learn.schemes.cls import build_cls_scheme

        pair = build_cls_scheme(view, config, train_rows, seed)
        # Two whole models: a copy of the top blocks per head.
        pair.head_f = nn.Sequential(copy.deepcopy(top), pair.head_f)
        pair.head_g = nn.Sequential(copy.deepcopy(top), pair.head_g)
        return TrunkScheme(_Identity(), pair, autocast_device=device)
    if config.method == "comic":
        from labelfix.learn.schemes.comic import build_comic_scheme

        inner: TrainingScheme = build_comic_scheme(view, config, train_rows, seed)
    else:
        inner = build_single_head_scheme(view, config, train_rows, seed)
    return TrunkScheme(top, inner, autocast_device=device)


@dataclass(frozen=True)
class _SchemeView:
    """What the scheme builders read (:class:`labelfix.learn.schemes.base.SchemeData`)."""

    dim: int
    num_classes: int
    states: np.ndarray


class _Identity(nn.Module):
    def forward(self, maps: Tensor) -> Tensor:
        return maps


__all__ = ["TopBlocks", "TrunkScheme", "build_trunk_scheme", "pooled_features", "top_blocks"]
