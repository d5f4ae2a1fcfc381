"""CLS co-training (seed 001) in finetune mode: two whole models trained side by side.

The pair is one ``nn.Module`` so that finetune mode's optimizer, EMA, checkpoints, ``--resume`` and
DDP apply to both networks unchanged. In training mode it returns both networks' logits stacked
``[2, B, C]``; :class:`CoLabelSelectionLoss` ranks the batch's unknown cells by each network's
loss, keeps for each network the cells its peer selected (``co_label_selection``) and sums the two
selected losses. AdamW is per-parameter, so one optimizer over both networks is the same as two
with equal settings; each network's parameters only receive gradient from its own loss because the
selection masks come from detached losses. In eval mode the pair returns the logit of the mean of
the two probabilities, the prediction the head-mode CLS also stores.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from labelfix.learn.losses.base import PartialLabelLoss
from labelfix.learn.losses.cls import assume_negative_cell_loss, cls_rates, co_label_selection, selected_loss


class CoTrainingPair(nn.Module):
    """Two networks ``f`` and ``g`` (different initial heads) seeing every batch."""

    def __init__(self, f: nn.Module, g: nn.Module) -> None:
        super().__init__()
        self.f, self.g = f, g

    def forward(self, images: Tensor) -> Tensor:
        logits_f, logits_g = self.f(images), self.g(images)
        if self.training:
            return torch.stack([logits_f, logits_g])
        mean = (torch.sigmoid(logits_f.float()) + torch.sigmoid(logits_g.float())) / 2
        return torch.logit(mean.clamp(1e-6, 1 - 1e-6))


class CoLabelSelectionLoss(PartialLabelLoss):
    """Sum of each network's BCE over the cells its peer kept, with the R_h / R_l schedules of seed 001.

    ``last_corrections`` marks the unknown cells both networks removed as likely false negatives
    (the natural missing-label suggestions), recorded by the trainer as treated positive.
    """

    def __init__(self, *, e_k: int = 10, tau_h: float = 0.01, tau_l: float = 0.06) -> None:
        super().__init__()
        self.e_k, self.tau_h, self.tau_l = e_k, tau_h, tau_l
        self.r_h, self.r_l = 1.0, 1.0

    def set_epoch(self, epoch: int, num_epochs: int) -> None:
        self.r_h, self.r_l = cls_rates(epoch, e_k=self.e_k, tau_h=self.tau_h, tau_l=self.tau_l)

    def forward(self, logits: Tensor, states: Tensor, *, index: Tensor | None = None) -> Tensor:
        if logits.dim() != 3 or logits.shape[0] != 2:
            raise ValueError("CLS co-training expects the stacked logits [2, B, C] of a CoTrainingPair")
        cell_f = assume_negative_cell_loss(logits[0], states)
        cell_g = assume_negative_cell_loss(logits[1], states)
        mask_f, mask_g, removed_by_both = co_label_selection(
            loss_f=cell_f.detach(), loss_g=cell_g.detach(), states=states, r_h=self.r_h, r_l=self.r_l)
        self.last_corrections = removed_by_both.detach()
        return selected_loss(cell_f, mask_f) + selected_loss(cell_g, mask_g)
