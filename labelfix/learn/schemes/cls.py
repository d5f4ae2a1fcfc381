"""CLS co-training in head mode (seed 001, Lyu et al., AAAI 2025): two heads select each other's negatives.

Both heads see every mini-batch. Their element-wise BCE losses (unknown = negative) go to
:func:`labelfix.learn.losses.co_label_selection` with the reserving rates of
:func:`labelfix.learn.losses.cls_rates` for the current epoch (E_k, tau_h, tau_l from
:class:`TrainConfig`); each head is trained on the cells its peer kept for it. Positives and
verified negatives are always kept. Predictions are the mean of the two heads' probabilities.

The unknown cells removed by both heads (each judged them a likely false negative from the other's
loss) are the method's missing-label suggestions: the trainer
(:func:`labelfix.learn.head.trainer.train_head` with ``method="cls"``) records them as corrections with
``treated_as = +1`` and the first epoch they were removed.

The heads start from different seeds (``seed`` and ``seed + 1``); without that they would stay
identical and co-selection would collapse to self-selection.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from labelfix.learn.config import TrainConfig
from labelfix.learn.schemes.base import SchemeData, TrainingScheme, build_seeded
from labelfix.learn.heads import build_head
from labelfix.learn.losses import assume_negative_cell_loss, cls_rates, co_label_selection, selected_loss
from labelfix.states import POSITIVE


class CoLabelSelection(TrainingScheme):
    """Two heads, f and g, trained with co-label selection.

    Parameters
    ----------
    head_f, head_g : nn.Module
        The two networks (differently initialised).
    e_k : int
        Epoch at which the rates reach their final values (paper: 10).
    tau_h, tau_l : float
        Final fractions of unknown cells removed as likely false negatives (tau_h) and as
        non-informative easy negatives (tau_l).
    """

    def __init__(self, head_f: nn.Module, head_g: nn.Module, *, e_k: int, tau_h: float, tau_l: float) -> None:
        super().__init__()
        self.head_f = head_f
        self.head_g = head_g
        self.e_k = int(e_k)
        self.tau_h = float(tau_h)
        self.tau_l = float(tau_l)
        self.r_h, self.r_l = 1.0, 1.0
        self._removed = 0
        self._kept = 0

    def set_epoch(self, epoch: int, num_epochs: int) -> None:
        self.r_h, self.r_l = cls_rates(epoch, e_k=self.e_k, tau_h=self.tau_h, tau_l=self.tau_l)
        self._removed = self._kept = 0

    def training_loss(self, features: Tensor, states: Tensor, *, index: Tensor) -> Tensor:
        logits_f, logits_g = self.head_f(features), self.head_g(features)
        loss_f = assume_negative_cell_loss(logits_f, states)
        loss_g = assume_negative_cell_loss(logits_g, states)
        mask_f, mask_g, removed = co_label_selection(loss_f=loss_f, loss_g=loss_g, states=states,
                                                     r_h=self.r_h, r_l=self.r_l)
        self.last_corrections = removed
        self.last_correction_probs = 0.5 * (torch.sigmoid(logits_f.detach()) + torch.sigmoid(logits_g.detach()))
        # Counted as tensors-to-int once per batch; cheap next to the two forwards on CPU heads.
        self._removed += int(removed.sum())
        self._kept += int((mask_f & mask_g).sum())
        return selected_loss(loss_f, mask_f) + selected_loss(loss_g, mask_g)

    def probabilities(self, features: Tensor) -> Tensor:
        return 0.5 * (torch.sigmoid(self.head_f(features).double()) + torch.sigmoid(self.head_g(features).double()))

    def head_probabilities(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Each head's probabilities (eval mode is the caller's business)."""
        return torch.sigmoid(self.head_f(features)), torch.sigmoid(self.head_g(features))

    def epoch_metrics(self) -> dict[str, Any]:
        return {"r_h": self.r_h, "r_l": self.r_l, "removed_by_both_in_batches": self._removed}


def build_cls_scheme(data: SchemeData, config: TrainConfig, train_rows: np.ndarray, seed: int) -> CoLabelSelection:
    """Two heads of ``config.head`` kind, seeded ``seed`` and ``seed + 1``."""
    prior = (data.states[train_rows] == POSITIVE).mean(axis=0)

    def make(head_seed: int) -> nn.Module:
        return build_seeded(head_seed, lambda: build_head(
            config.head, in_features=data.dim, num_classes=data.num_classes, hidden_dim=config.hidden_dim,
            dropout=config.dropout, prior=prior))

    return CoLabelSelection(make(seed), make(seed + 1), e_k=config.cls_e_k, tau_h=config.cls_tau_h,
                            tau_l=config.cls_tau_l)


__all__ = ["CoLabelSelection", "build_cls_scheme"]
