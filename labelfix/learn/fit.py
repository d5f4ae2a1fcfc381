"""Pieces every training loop over a :class:`~labelfix.learn.schemes.base.TrainingScheme` shares.

Head mode (:mod:`labelfix.learn.head.trainer`) and adapt mode (:mod:`labelfix.learn.adapt.train`)
share them: the optimiser with decay only on weight matrices, the record of a trained
scheme (:class:`Fit`) and the first-correction bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from torch import Tensor, nn

from labelfix.learn.config import TrainConfig
from labelfix.learn.schemes.base import TrainingScheme


def make_optimizer(scheme: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over ``scheme``'s trainable parameters with ``config.lr`` and ``config.weight_decay``."""
    # Biases and other 1-d parameters are not decayed: shrinking a bias only pulls scores to 0.5.
    decay = [p for p in scheme.parameters() if p.requires_grad and p.dim() > 1]
    no_decay = [p for p in scheme.parameters() if p.requires_grad and p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr)


@dataclass
class Fit:
    """One trained scheme: its chosen epoch, epoch records, and when each train cell was first corrected."""

    scheme: TrainingScheme
    best_epoch: int
    history: list[dict[str, Any]]
    first_epoch: np.ndarray     # int32 [n_train, C], -1 = never treated
    first_prob: np.ndarray      # float32 [n_train, C]
    selection: str


def note_corrections(fit_arrays: tuple[np.ndarray, np.ndarray], mask: Tensor, probs: Optional[Tensor],
                      rows: np.ndarray, epoch: int) -> None:
    """Record ``epoch`` and the probability for cells of ``mask`` [B, C] (rows ``rows`` of the fit) seen first now."""
    first_epoch, first_prob = fit_arrays
    cells = mask.detach().cpu().numpy()
    r, c = np.nonzero(cells & (first_epoch[rows] < 0))
    if not len(r):
        return
    first_epoch[rows[r], c] = epoch
    if probs is not None:
        first_prob[rows[r], c] = probs.detach().cpu().numpy()[r, c]


__all__ = ["Fit", "make_optimizer", "note_corrections"]
