"""Classifier heads over frozen embeddings: a linear layer or a small MLP (torchvision-style builders)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


def _init_bias_from_prior(layer: nn.Linear, prior: Sequence[float] | np.ndarray | None) -> None:
    """Start each class at the logit of its positive rate instead of 0.5.

    With few positives per class a zero bias spends the first epochs only pushing every score down;
    starting at the prior makes early stopping compare models that already learned something.
    """
    if prior is None:
        return
    rate = torch.as_tensor(np.asarray(prior, dtype=np.float64)).clamp(1e-4, 1 - 1e-4)
    with torch.no_grad():
        layer.bias.copy_(torch.log(rate / (1 - rate)).to(layer.bias.dtype))


def linear_head(
    in_features: int,
    num_classes: int,
    *,
    dropout: float = 0.0,
    prior: Sequence[float] | np.ndarray | None = None,
) -> nn.Module:
    """A dropout + linear layer: one logistic regression per class.

    Parameters
    ----------
    in_features, num_classes : int
        Embedding size D and number of classes C.
    dropout : float
        Dropout on the input features (0 = none).
    prior : array-like, optional
        Positive rate per class; the bias starts at its logit.
    """
    layer = nn.Linear(in_features, num_classes)
    _init_bias_from_prior(layer, prior)
    return nn.Sequential(nn.Dropout(dropout), layer) if dropout > 0 else nn.Sequential(layer)


def mlp_head(
    in_features: int,
    num_classes: int,
    *,
    hidden_dim: int = 256,
    dropout: float = 0.0,
    prior: Sequence[float] | np.ndarray | None = None,
) -> nn.Module:
    """Linear -> ReLU -> dropout -> linear.

    Parameters
    ----------
    in_features, num_classes : int
        Embedding size D and number of classes C.
    hidden_dim : int
        Width of the hidden layer.
    dropout : float
        Dropout after the hidden activation.
    prior : array-like, optional
        Positive rate per class; the output bias starts at its logit.
    """
    output = nn.Linear(hidden_dim, num_classes)
    _init_bias_from_prior(output, prior)
    return nn.Sequential(nn.Linear(in_features, hidden_dim), nn.ReLU(inplace=True), nn.Dropout(dropout), output)


def build_head(
    kind: str,
    *,
    in_features: int,
    num_classes: int,
    hidden_dim: int = 256,
    dropout: float = 0.0,
    prior: Sequence[float] | np.ndarray | None = None,
) -> nn.Module:
    """Build a head by name: ``"linear"`` or ``"mlp"``."""
    if kind == "linear":
        return linear_head(in_features, num_classes, dropout=dropout, prior=prior)
    if kind == "mlp":
        return mlp_head(in_features, num_classes, hidden_dim=hidden_dim, dropout=dropout, prior=prior)
    raise ValueError(f"unknown head {kind!r}; use 'linear' or 'mlp'")


__all__ = ["build_head", "linear_head", "mlp_head"]
