"""COMIC in head mode (seed 000, Zhang et al., ICCV 2023): RLC + MFM + HTB.

With HTB (default) the model is :class:`labelfix.learn.losses.HeadTailBalancer`: head, tail and
balanced cosine classifiers over the shared embedding, each trained with its own
:class:`~labelfix.learn.losses.ComicLoss` (RLC correction with a running class mean + MFM focal
exponents), plus the head-tail distillation loss. The gradient moving average e_t is updated after
every ``backward()`` (before the optimizer step), and predictions come from the balanced branch.

``loss_params={"htb": False}`` trains the balanced branch alone (same cosine classifier, same
RLC + MFM loss, no head / tail branches, no e_t): the benchmark's "without HTB" row, so the
difference measures HTB and nothing else. The authors' released code has HTB commented out
(METHODS.md); this follows the paper.

Other ``loss_params``: HTB's ``num_groups``, ``scale``, ``energy``, ``momentum``, ``alpha``,
``lambda_htb``, ``detach_teachers``; everything else goes to ``ComicLoss`` (``tau``,
``gamma_neg_pn``, ...). The RLC corrections of the balanced branch are recorded as
``treated_as = +1``.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
from torch import Tensor

from labelfix.learn.config import CLASSIFIER_KEYS, HTB_KEYS, TrainConfig
from labelfix.learn.schemes.base import SchemeData, TrainingScheme, build_seeded
from labelfix.learn.losses import ComicLoss, HeadTailBalancer
from labelfix.learn.losses.comic import CosineClassifier
from labelfix.states import POSITIVE


class ComicScheme(TrainingScheme):
    """RLC + MFM (+ HTB) training of cosine classifiers.

    Parameters
    ----------
    balancer : HeadTailBalancer, optional
        The three-branch model (HTB on).
    classifier, loss : CosineClassifier, ComicLoss, optional
        The single branch and its loss (HTB off).
    """

    def __init__(self, *, balancer: Optional[HeadTailBalancer] = None, classifier: Optional[CosineClassifier] = None,
                 loss: Optional[ComicLoss] = None) -> None:
        super().__init__()
        if (balancer is None) == (classifier is None or loss is None):
            raise ValueError("pass either balancer= or both classifier= and loss=")
        self.balancer = balancer
        self.classifier = classifier
        self.loss = loss
        self._parts: dict[str, float] = {}
        self._batches = 0

    @property
    def use_htb(self) -> bool:
        return self.balancer is not None

    def set_epoch(self, epoch: int, num_epochs: int) -> None:
        if self.balancer is not None:
            self.balancer.set_epoch(epoch, num_epochs)
        else:
            assert self.loss is not None  # __init__: no balancer means classifier and loss
            self.loss.set_epoch(epoch, num_epochs)
        self._parts, self._batches = {}, 0

    def training_loss(self, features: Tensor, states: Tensor, *, index: Tensor) -> Tensor:
        if self.balancer is None:
            assert self.classifier is not None and self.loss is not None
            logits = self.classifier(features)
            loss = self.loss(logits, states, index=index)
            self.last_corrections = self.loss.last_corrections
            self.last_correction_probs = torch.sigmoid(logits.detach())
            return loss
        outputs = self.balancer(features)
        loss = self.balancer.loss(outputs, states, index=index)
        self.last_corrections = self.balancer.last_corrections
        self.last_correction_probs = torch.sigmoid(outputs[2].detach())
        for name, value in self.balancer.last_parts.items():
            self._parts[name] = self._parts.get(name, 0.0) + float(value)
        self._batches += 1
        return loss

    def after_backward(self) -> None:
        # e_t (eq. 7) from this step's gradients; the next forward shifts the head / tail logits by it.
        if self.balancer is not None:
            self.balancer.update_moving_gradient()

    def probabilities(self, features: Tensor) -> Tensor:
        if self.balancer is not None:
            return torch.sigmoid(self.balancer.predict(features).double())
        assert self.classifier is not None
        return torch.sigmoid(self.classifier(features).double())

    def branch_probabilities(self, features: Tensor) -> dict[str, Tensor]:
        """Probabilities of each branch (HTB on), e.g. to compare head / tail / balanced."""
        if self.balancer is None:
            return {"balanced": self.probabilities(features)}
        z_head, z_tail, z_balanced = self.balancer(features)
        return {"head": torch.sigmoid(z_head), "tail": torch.sigmoid(z_tail), "balanced": torch.sigmoid(z_balanced)}

    def epoch_metrics(self) -> dict[str, Any]:
        if not self._batches:
            return {}
        return {f"loss_{name}": value / self._batches for name, value in self._parts.items()}


def build_comic_scheme(data: SchemeData, config: TrainConfig, train_rows: np.ndarray, seed: int) -> ComicScheme:
    """COMIC over the embeddings; ``config.loss_params["htb"]`` (default True) picks the variant."""
    params = dict(config.loss_params)
    use_htb = bool(params.pop("htb", True))
    # The cosine classifier splits the feature vector into groups; an odd size cannot take two.
    params.setdefault("num_groups", 2 if data.dim % 2 == 0 else 1)
    class_counts = (data.states[train_rows] == POSITIVE).sum(axis=0).tolist()
    if use_htb:
        balancer = build_seeded(seed, lambda: HeadTailBalancer(data.dim, data.num_classes, class_counts=class_counts,
                                                          **params))
        return ComicScheme(balancer=balancer)
    classifier_params = {key: params.pop(key) for key in CLASSIFIER_KEYS if key in params}
    classifier_params.setdefault("scale", 16.0)
    classifier_params.setdefault("energy", 1.0 / 32.0)
    for key in HTB_KEYS:  # HTB-only settings have no meaning without the branches
        params.pop(key, None)
    classifier = build_seeded(seed, lambda: CosineClassifier(data.dim, data.num_classes, **classifier_params))
    return ComicScheme(classifier=classifier, loss=ComicLoss(class_counts=class_counts, **params))


__all__ = ["ComicScheme", "build_comic_scheme"]
