"""COMIC with its head-tail balancer (HTB) in finetune mode: backbone + three cosine-classifier branches.

Like CLS in finetune mode, the branches live in one ``nn.Module`` so finetune mode's optimizer, EMA,
checkpoints, ``--resume`` and DDP apply unchanged. In training mode the model returns the three
branches' logits stacked ``[3, B, C]`` (head, tail, balanced); :class:`ComicBalancerLoss` computes each
branch's COMIC loss plus the HTB distillation, and after ``backward()`` updates the moving gradient
e_t (``after_backward``, called by :class:`~labelfix.learn.finetune.step.TrainStep`). In eval mode the
model returns the balanced branch, COMIC's prediction.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn

from labelfix.learn.losses.base import PartialLabelLoss
from labelfix.learn.losses.comic import HeadTailBalancer


class ComicFinetuneModel(nn.Module):
    """A backbone followed by COMIC's head, tail and balanced branches."""

    def __init__(self, backbone: nn.Module, *, dim: int, num_classes: int, class_counts: Sequence[int],
                 params: dict[str, Any]) -> None:
        super().__init__()
        params = dict(params)
        params.setdefault("num_groups", 2 if dim % 2 == 0 else 1)
        self.backbone = backbone
        self.balancer = HeadTailBalancer(dim, num_classes, class_counts=class_counts, **params)

    def forward(self, images: Tensor) -> Tensor:
        features = self.backbone(images).float()
        if self.training:
            return torch.stack(self.balancer(features))
        return self.balancer.predict(features)


class ComicBalancerLoss(PartialLabelLoss):
    """The three branches' COMIC losses plus HTB, over a :class:`ComicFinetuneModel`'s stacked logits."""

    def __init__(self, balancer: HeadTailBalancer) -> None:
        super().__init__()
        # A plain list: the balancer's parameters and buffers belong to (and are saved with) the model.
        self._balancer = [balancer]

    def set_epoch(self, epoch: int, num_epochs: int) -> None:
        self._balancer[0].set_epoch(epoch, num_epochs)

    def forward(self, logits: Tensor, states: Tensor, *, index: Tensor | None = None) -> Tensor:
        if logits.dim() != 3 or logits.shape[0] != 3:
            raise ValueError("COMIC with HTB expects the stacked logits [3, B, C] of a ComicFinetuneModel")
        balancer = self._balancer[0]
        value = balancer.loss((logits[0], logits[1], logits[2]), states, index=index)
        self.last_corrections = balancer.last_corrections
        return value

    def after_backward(self) -> None:
        self._balancer[0].update_moving_gradient()


def uses_balancer(config) -> bool:
    """COMIC runs with HTB unless ``loss_params["htb"]`` is false."""
    return config.method == "comic" and bool(config.loss_params.get("htb", True))


def split_params(loss_params: dict[str, Any]) -> dict[str, Any]:
    """Everything but the ``htb`` switch goes to the balancer (its own keys and each branch's ComicLoss)."""
    return {key: value for key, value in loss_params.items() if key != "htb"}


__all__ = ["ComicBalancerLoss", "ComicFinetuneModel", "split_params", "uses_balancer"]
