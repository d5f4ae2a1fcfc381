"""Finetune mode's per-step pieces: the model, the EMA of its weights and one optimisation step.

Kept apart from the loop (:mod:`labelfix.learn.finetune.trainer`) so that
``labelfix/bench/speed/gpu_throughput.py`` times exactly the step finetune mode runs, against a bare torch loop,
without the data pipeline; it imports torch only (the GPU benchmark machine has no store packages).
"""

from __future__ import annotations

import copy
from typing import Any, Optional

import torch
from torch import Tensor, nn

from labelfix.learn.ema import ModelEma


class FinetuneModel(nn.Module):
    """Backbone (pooled features [B, D]) followed by a linear classifier to C logits."""

    def __init__(self, backbone: nn.Module, *, dim: int, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.backbone(images))


class TrainStep:
    """One optimisation step of finetune mode; also what ``labelfix/bench/speed/gpu_throughput.py`` times.

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
