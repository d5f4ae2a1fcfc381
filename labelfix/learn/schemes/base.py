"""Training schemes: how a method turns a batch into a loss and features into probabilities.

The head-mode loop (:func:`labelfix.learn.head.trainer.fit_scheme`) and adapt mode's loop (which puts
the backbone's top blocks in front of a scheme) only talk to a :class:`TrainingScheme`; that is why
the schemes live in learn's shared ground, not in a wing. :class:`SingleHeadScheme` is one head with
one partial-label loss; CLS (:mod:`labelfix.learn.schemes.cls`) and COMIC
(:mod:`labelfix.learn.schemes.comic`) define their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional, Protocol, cast

import numpy as np
import torch
from torch import Tensor, nn

from labelfix.learn.config import TrainConfig
from labelfix.learn.heads import build_head
from labelfix.learn.losses import PartialLabelLoss, build_loss
from labelfix.states import POSITIVE

if TYPE_CHECKING:
    from labelfix.learn.losses.entropy import EntropyMaximizationAPLLoss


class SchemeData(Protocol):
    """What a scheme builder reads of its data: head mode's ``HeadData`` or adapt mode's view.

    ``states`` is int8 [N, C] of every row (+1 / 0 / -1); ``dim`` the feature dimension D the heads see.
    """

    @property
    def dim(self) -> int: ...

    @property
    def num_classes(self) -> int: ...

    @property
    def states(self) -> np.ndarray: ...


class TrainingScheme(nn.Module):
    """How one method turns a batch into a loss and features into probabilities.

    After :meth:`training_loss`, ``last_corrections`` may hold a boolean [B, C] mask of unknown cells
    the method treated as ``correction_sign`` (+1 positive, -1 negative) in that batch, with
    ``last_correction_probs`` [B, C] the probabilities it saw.
    """

    correction_sign: int = POSITIVE

    def __init__(self) -> None:
        super().__init__()
        self.last_corrections: Optional[Tensor] = None
        self.last_correction_probs: Optional[Tensor] = None

    def set_epoch(self, epoch: int, num_epochs: int) -> None:
        """Drive the loss schedules; called before every epoch."""

    def start_epoch(self, *, epoch: int, num_epochs: int, features: Tensor,
                    states: Tensor) -> Optional[tuple[Tensor, Tensor]]:
        """Once-per-epoch work on the whole train set; may return ``(new_cells, probs)`` [N, C]."""
        return None

    def training_loss(self, features: Tensor, states: Tensor, *, index: Tensor) -> Tensor:
        raise NotImplementedError

    def after_backward(self) -> None:
        """Hook between ``backward()`` and the optimizer step (COMIC's gradient moving average)."""

    def probabilities(self, features: Tensor) -> Tensor:
        raise NotImplementedError

    def epoch_metrics(self) -> dict[str, Any]:
        return {}


class SingleHeadScheme(TrainingScheme):
    """One head trained with one partial-label loss."""

    def __init__(self, head: nn.Module, loss: PartialLabelLoss) -> None:
        super().__init__()
        self.head = head
        self.loss = loss
        self.correction_sign = -1 if hasattr(loss, "update_pseudo_labels") else POSITIVE

    def set_epoch(self, epoch: int, num_epochs: int) -> None:
        self.loss.set_epoch(epoch, num_epochs)

    def start_epoch(self, *, epoch: int, num_epochs: int, features: Tensor,
                    states: Tensor) -> Optional[tuple[Tensor, Tensor]]:
        if not hasattr(self.loss, "update_pseudo_labels"):
            return None
        # EM+APL: score the whole train set with the current model in eval mode, then pseudo-label.
        loss = cast("EntropyMaximizationAPLLoss", self.loss)  # the loss that pseudo-labels
        probs = predict(self, features)
        before = loss.has_pseudo_label.clone()
        loss.update_pseudo_labels(probs=probs, states=states, epoch=epoch, num_epochs=num_epochs)
        return loss.has_pseudo_label & ~before, probs

    def training_loss(self, features: Tensor, states: Tensor, *, index: Tensor) -> Tensor:
        logits = self.head(features)
        loss = self.loss(logits, states, index=index)
        self.last_corrections = self.loss.last_corrections
        if self.last_corrections is not None:
            self.last_correction_probs = torch.sigmoid(logits.detach())
        return loss

    def probabilities(self, features: Tensor) -> Tensor:
        return torch.sigmoid(self.head(features).double())  # float64: no tie at 1.0 below logit ~36


SchemeBuilder = Callable[[SchemeData, TrainConfig, np.ndarray, int], TrainingScheme]


def build_seeded(seed: int, build: Callable[[], Any]) -> Any:
    """Run ``build`` with torch's global RNG seeded, leaving the caller's RNG state untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def build_single_head_scheme(data: SchemeData, config: TrainConfig, train_rows: np.ndarray,
                             seed: int) -> SingleHeadScheme:
    """The plain scheme: ``config.head`` over the embeddings, ``config.method``'s loss."""
    states = data.states[train_rows]
    params = dict(config.loss_params)
    if config.method == "em_apl":
        params["num_train"] = len(train_rows)
    loss = build_loss(config.method, num_classes=data.num_classes,
                      class_counts=(states == POSITIVE).sum(axis=0).tolist(), **params)
    prior = (states == POSITIVE).mean(axis=0)
    head = build_seeded(seed, lambda: build_head(config.head, in_features=data.dim, num_classes=data.num_classes,
                                            hidden_dim=config.hidden_dim, dropout=config.dropout, prior=prior))
    return SingleHeadScheme(head, loss)


@torch.no_grad()
def predict(scheme: TrainingScheme, features: Tensor, *, batch_size: int = 8192) -> Tensor:
    """Probabilities float64 [N, C] in eval mode (restores the previous mode)."""
    was_training = scheme.training
    scheme.eval()
    try:
        parts = [scheme.probabilities(features[i:i + batch_size]) for i in range(0, len(features), batch_size)]
    finally:
        scheme.train(was_training)
    if not parts:
        return torch.zeros((0, 0), device=features.device)
    return torch.cat(parts).double()


__all__ = ["SchemeBuilder", "SchemeData", "SingleHeadScheme", "TrainingScheme", "build_seeded", "build_single_head_scheme",
           "predict"]
