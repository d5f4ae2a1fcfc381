"""Hill, Focal margin and SPLC (seed 002) pinned on hand-computed values and gradient shapes."""

from __future__ import annotations

import math

import pytest
import torch

from labelfix.learn.losses import build_loss
from labelfix.learn.losses.base import focal_margin_positive, focal_positive
from labelfix.learn.losses.robust import FocalMarginLoss, HillLoss, SPLCLoss
from labelfix.states import NEGATIVE, POSITIVE, UNKNOWN


def assert_close(actual: torch.Tensor, expected: torch.Tensor, *, rtol: float = 1e-7, atol: float = 1e-12) -> None:
    # torch.testing.assert_close costs seconds on its first call; allclose is enough here.
    expected = expected.to(actual.dtype)
    assert actual.shape == expected.shape and torch.allclose(actual, expected, rtol=rtol, atol=atol), (actual, expected)


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def focal_margin(z: float, m: float = 1.0, gamma: float = 2.0) -> float:
    p_m = sig(z - m)
    return -((1 - p_m) ** gamma) * math.log(p_m)


def grad_of(loss_fn, logits: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    logits = logits.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_fn(logits, states), logits)
    return grad


def test_hill_values() -> None:
    logits = torch.tensor([[0.5, 1.0, 1.0]], dtype=torch.float64)
    states = torch.tensor([[POSITIVE, UNKNOWN, NEGATIVE]])
    p = sig(1.0)
    # Focal margin positive + Hill unknown + BCE verified negative; summed over classes (N = 1).
    expected = focal_margin(0.5) + (1.5 - p) * p**2 - math.log(1 - p)
    assert HillLoss()(logits, states).item() == pytest.approx(expected, rel=1e-12)
    assert HillLoss(reduction="mean")(logits, states).item() == pytest.approx(expected / 3, rel=1e-12)


def test_hill_gradient_is_a_hill_below_bce() -> None:
    # d/dz (1.5 - p) p^2 = 3 p^2 (1 - p)^2: peaks at p = 0.5, and for p > 0.5 falls while BCE's
    # gradient p keeps rising: likely false negatives are down-weighted.
    z = torch.tensor([[-2.0, 0.0, 0.5, 1.0, 2.0, 3.0]], dtype=torch.float64)
    states = torch.full(z.shape, UNKNOWN)
    grad = grad_of(HillLoss(reduction="sum"), z, states)[0]
    p = torch.sigmoid(z[0])
    assert_close(grad, 3 * p**2 * (1 - p) ** 2)
    assert grad.argmax().item() == 1  # p = 0.5
    assert torch.all(grad[1:].diff() < 0)
    bce_grad = grad_of(build_loss("an", num_classes=6, reduction="sum"), z, states)[0]
    assert_close(bce_grad, p)
    assert torch.all(grad[1:] < bce_grad[1:])


def test_focal_margin_is_focal_at_shifted_logit_and_favours_semi_hard_positives() -> None:
    z = torch.linspace(-4.0, 6.0, 41, dtype=torch.float64)
    assert_close(focal_margin_positive(z, margin=1.0, gamma=2.0), focal_positive(z - 1.0, gamma=2.0))
    assert focal_margin_positive(torch.tensor(0.3, dtype=torch.float64), margin=1.0, gamma=2.0).item() == (
        pytest.approx(focal_margin(0.3), rel=1e-12)
    )
    zg = z.clone().requires_grad_(True)
    (g_margin,) = torch.autograd.grad(focal_margin_positive(zg, margin=1.0, gamma=2.0).sum(), zg)
    (g_focal,) = torch.autograd.grad(focal_positive(zg, gamma=2.0).sum(), zg)
    semi_hard = (z >= -1.0) & (z <= 1.0)  # p between 0.27 and 0.73
    assert torch.all(g_margin[semi_hard].abs() > 1.4 * g_focal[semi_hard].abs())
    # The peak of |gradient| moves up by exactly the margin (4 grid steps of 0.25).
    assert g_margin.abs().argmax().item() - g_focal.abs().argmax().item() == 4


def test_focal_margin_loss_values() -> None:
    logits = torch.tensor([[0.5, 1.0, 1.0]], dtype=torch.float64)
    states = torch.tensor([[POSITIVE, UNKNOWN, NEGATIVE]])
    p = sig(1.0)
    expected = focal_margin(0.5) - p**2 * math.log(1 - p) - math.log(1 - p)
    assert FocalMarginLoss()(logits, states).item() == pytest.approx(expected, rel=1e-12)


# A positive, an unknown above tau (p = 0.88), an unknown below tau (p = 0.27), a verified negative
# above tau, and an unknown just at/below tau = 0.6.
SPLC_LOGITS = torch.tensor([[1.0, 2.0, -1.0, 2.0, math.log(0.6 / 0.4)]], dtype=torch.float64)
SPLC_STATES = torch.tensor([[POSITIVE, UNKNOWN, UNKNOWN, NEGATIVE, UNKNOWN]])


def splc_expected(corrected: bool) -> float:
    p_hi, p_lo, p_tau = sig(2.0), sig(-1.0), 0.6
    unknown_hi = focal_margin(2.0) if corrected else -(p_hi**2) * math.log(1 - p_hi)
    return (
        focal_margin(1.0)
        + unknown_hi
        - p_lo**2 * math.log(1 - p_lo)
        - math.log(1 - p_hi)  # verified negative: BCE, never corrected
        - p_tau**2 * math.log(1 - p_tau)  # p == tau is not > tau: stays negative
    )


def test_splc_corrects_only_from_epoch_one() -> None:
    loss_fn = SPLCLoss()
    loss_fn.set_epoch(0, 10)
    assert loss_fn(SPLC_LOGITS, SPLC_STATES).item() == pytest.approx(splc_expected(False), rel=1e-9)
    assert loss_fn.last_corrections is not None and not loss_fn.last_corrections.any()

    loss_fn.set_epoch(1, 10)
    assert loss_fn(SPLC_LOGITS, SPLC_STATES).item() == pytest.approx(splc_expected(True), rel=1e-9)
    assert loss_fn.last_corrections.tolist() == [[False, True, False, False, False]]
    assert not loss_fn.last_corrections.requires_grad


def test_splc_corrected_cell_gets_positive_gradient_and_tau_is_a_parameter() -> None:
    loss_fn = SPLCLoss()
    loss_fn.set_epoch(3, 10)
    grad = grad_of(loss_fn, SPLC_LOGITS, SPLC_STATES)[0]
    assert grad[1] < 0  # pushed up like a positive
    assert grad[3] > 0  # verified negative with the same logit: pushed down
    strict = SPLCLoss(tau=0.9)
    strict.set_epoch(3, 10)
    strict(SPLC_LOGITS, SPLC_STATES)
    assert not strict.last_corrections.any()


def test_focal_margin_registry_entry_never_corrects() -> None:
    loss_fn = build_loss("focal_margin", num_classes=5)
    loss_fn.set_epoch(5, 10)
    assert loss_fn(SPLC_LOGITS, SPLC_STATES).item() == pytest.approx(splc_expected(False), rel=1e-9)
    assert loss_fn.last_corrections is None


def test_set_epoch_validates() -> None:
    with pytest.raises(ValueError):
        SPLCLoss().set_epoch(10, 10)
