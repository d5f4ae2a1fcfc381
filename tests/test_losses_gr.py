"""GR loss (seed 004): schedules, k(p) limits, hand-computed value and the detached k / v gradient."""

from __future__ import annotations

import math

import pytest
import torch

from labelfix.learn.losses.gr import GRLoss, gr_bias_from_prior
from labelfix.states import NEGATIVE, POSITIVE, UNKNOWN


def assert_close(actual: torch.Tensor, expected: torch.Tensor, *, rtol: float = 1e-7, atol: float = 1e-12) -> None:
    # torch.testing.assert_close costs seconds on its first call; allclose is enough here.
    expected = expected.to(actual.dtype)
    assert actual.shape == expected.shape and torch.allclose(actual, expected, rtol=rtol, atol=atol), (actual, expected)


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_schedule_is_linear_from_start_to_end() -> None:
    loss_fn = GRLoss()
    loss_fn.set_epoch(0, 5)
    assert loss_fn.schedule() == (0.0, -2.0, 0.5, 2.0)
    loss_fn.set_epoch(2, 5)
    assert loss_fn.schedule() == pytest.approx((5.0, -5.0, 0.65, 1.25))
    loss_fn.set_epoch(4, 5)  # the last epoch trains with the paper's end values
    assert loss_fn.schedule() == pytest.approx((10.0, -8.0, 0.8, 0.5))


def test_k_is_constant_at_start_and_a_threshold_like_curve_at_end() -> None:
    probs = torch.tensor([0.0, 0.3, 0.8, 1.0], dtype=torch.float64)
    loss_fn = GRLoss(b_start=gr_bias_from_prior(0.05))
    loss_fn.set_epoch(0, 8)
    # Assumption 1: k is the constant hidden-positive rate, whatever p.
    assert_close(loss_fn.pseudo_label(probs), torch.full_like(probs, 0.05))
    loss_fn.set_epoch(7, 8)
    k = loss_fn.pseudo_label(probs)
    assert k[0].item() == pytest.approx(sig(-8.0)) and k[0] < 1e-3
    assert k[2].item() == pytest.approx(0.5)  # b / w = -0.8: the threshold sits at p = 0.8
    assert k[3].item() == pytest.approx(sig(2.0)) and k[3] > 0.5  # a missing label can become "more likely positive"
    assert torch.all(k.diff() > 0)


def test_v_is_flat_at_start_and_peaked_at_end() -> None:
    probs = torch.tensor([0.0, 0.5, 0.8, 1.0], dtype=torch.float64)
    loss_fn = GRLoss()
    loss_fn.set_epoch(0, 4)
    v = loss_fn.weight(probs)
    assert v.min().item() == pytest.approx(math.exp(-0.25 / 8)) and v.max().item() == 1.0
    loss_fn.set_epoch(3, 4)
    v = loss_fn.weight(probs)
    assert v[2].item() == 1.0 and v[0].item() == pytest.approx(math.exp(-0.64 / 0.5))


def test_gr_value_at_the_end_of_the_schedule() -> None:
    logits = torch.tensor([[1.0, 0.0, 2.0]], dtype=torch.float64)
    states = torch.tensor([[POSITIVE, UNKNOWN, NEGATIVE]])
    loss_fn = GRLoss()
    loss_fn.set_epoch(9, 10)
    q = 0.01
    l1 = (1 - sig(1.0) ** q) / q
    v = math.exp(-((0.5 - 0.8) ** 2) / (2 * 0.5**2))
    k = sig(10 * 0.5 - 8)
    l2 = (1 - 0.5**q) / q
    l3 = (1 - (1 - 0.5) ** 1.0) / 1.0
    expected = l1 + v * (k * l2 + (1 - k) * l3) - math.log(1 - sig(2.0))  # summed over classes, N = 1
    assert loss_fn(logits, states).item() == pytest.approx(expected, rel=1e-12)
    assert GRLoss(reduction="mean", w_start=10, b_start=-8, mu_start=0.8, sigma_start=0.5)(logits, states).item() == (
        pytest.approx(expected / 3, rel=1e-12)
    )


def test_gr_unknown_gradient_is_eq_18_with_k_and_v_detached() -> None:
    z = torch.tensor([[-3.0, -0.5, 0.0, 1.0, 3.0]], dtype=torch.float64, requires_grad=True)
    states = torch.full(z.shape, UNKNOWN)
    loss_fn = GRLoss(reduction="sum")
    loss_fn.set_epoch(5, 10)
    (grad,) = torch.autograd.grad(loss_fn(z, states), z)
    p = torch.sigmoid(z.detach())
    k, v = loss_fn.pseudo_label(p), loss_fn.weight(p)
    # g(p) = (1 - k)(1 - p)^q3 p - k p^q2 (1 - p), times v.
    assert_close(grad, v * ((1 - k) * (1 - p) * p - k * p**0.01 * (1 - p)))
    # Early on (small constant k) a low-p unknown is pushed up (the gradient is negative), as the
    # paper's beta^(0) curve: confidence of every sample rises before the pseudo-labels sharpen.
    loss_fn.set_epoch(0, 10)
    (grad0,) = torch.autograd.grad(loss_fn(z, states), z)
    assert grad0[0, 0] < 0


def test_gr_verified_negative_gets_bce() -> None:
    logits = torch.tensor([[1.5]], dtype=torch.float64)
    got = GRLoss()(logits, torch.tensor([[NEGATIVE]])).item()
    assert got == pytest.approx(-math.log(1 - sig(1.5)), rel=1e-12)


def test_gr_bias_from_prior_validates() -> None:
    assert sig(gr_bias_from_prior(0.2)) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        gr_bias_from_prior(0.0)
