"""Exponential moving average of a model's parameters, shared by the finetune and adapt regimes.

Imports torch only: the GPU benchmark (``labelfix/bench/speed/gpu_throughput.py``) runs it on a
machine without the store's packages.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


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


__all__ = ["ModelEma"]
