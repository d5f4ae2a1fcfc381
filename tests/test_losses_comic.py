"""COMIC (seed 000): MFM exponents, RLC with a running class mean, and the head-tail balancer."""

from __future__ import annotations

import math

import pytest
import torch

from labelfix.learn.losses.comic import ComicLoss, HeadTailBalancer, head_tail_factor, htb_loss
from labelfix.states import NEGATIVE, POSITIVE, UNKNOWN


def assert_close(actual: torch.Tensor, expected: torch.Tensor, *, rtol: float = 1e-7, atol: float = 1e-12) -> None:
    # torch.testing.assert_close costs seconds on its first call; allclose is enough here.
    expected = expected.to(actual.dtype)
    assert actual.shape == expected.shape and torch.allclose(actual, expected, rtol=rtol, atol=atol), (actual, expected)


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


HT_TAIL = (1 + math.log(10)) ** (1 / 6)  # gamma_ht of a class 10x rarer than the largest


def test_head_tail_factor() -> None:
    factor = head_tail_factor([100, 10, 1, 0])
    expected = [1.0, HT_TAIL, (1 + math.log(100)) ** (1 / 6), (1 + math.log(100)) ** (1 / 6)]
    assert factor.tolist() == pytest.approx(expected, rel=1e-6)


def test_mfm_values_without_corrections() -> None:
    loss_fn = ComicLoss(class_counts=[100, 10])
    logits = torch.tensor([[0.5, -1.0], [-2.0, 0.3]], dtype=torch.float64)
    states = torch.tensor([[POSITIVE, UNKNOWN], [NEGATIVE, UNKNOWN]])
    gamma_neg_tail = 3 + HT_TAIL  # gamma-_pn + w- * gamma_ht(c)
    expected = (
        -math.log(sig(0.5))  # gamma+ = 0
        - sig(-1.0) ** gamma_neg_tail * math.log(1 - sig(-1.0))
        - math.log(1 - sig(-2.0))  # verified negative: BCE
        - sig(0.3) ** gamma_neg_tail * math.log(1 - sig(0.3))
    ) / 2  # summed over classes, averaged over the 2 images
    assert loss_fn(logits, states).item() == pytest.approx(expected, rel=1e-6)
    assert not loss_fn.last_corrections.any()


def test_mfm_focuses_less_on_tail_negatives() -> None:
    loss_fn = ComicLoss(class_counts=[1000, 3], reduction="sum")
    loss_fn.eval()
    logits = torch.tensor([[0.2, 0.2]], dtype=torch.float64)
    states = torch.full(logits.shape, UNKNOWN)
    cells = loss_fn.cell_losses(logits, states)
    assert cells[0, 1] < cells[0, 0]  # larger gamma- for the tail class
    with pytest.raises(ValueError):
        ComicLoss(class_counts=[1, 2], gamma_pos_pn=4.0, gamma_neg_pn=3.0)


def test_rlc_correction_is_scaled_by_batch_over_corrected() -> None:
    loss_fn = ComicLoss(class_counts=[100, 10])
    logits = torch.tensor([[2.0, -1.0], [0.5, 3.0]], dtype=torch.float64)
    states = torch.tensor([[UNKNOWN, UNKNOWN], [POSITIVE, NEGATIVE]])
    expected = (
        (2 / 1) * -math.log(sig(2.0))  # p = 0.88 > max(0.7, P_c = 0): pseudo-positive, B / N_t = 2
        - sig(-1.0) ** (3 + HT_TAIL) * math.log(1 - sig(-1.0))
        - math.log(sig(0.5))
        - math.log(1 - sig(3.0))  # verified negative at p = 0.95: never corrected
    ) / 2
    assert loss_fn(logits, states).item() == pytest.approx(expected, rel=1e-6)
    assert loss_fn.last_corrections.tolist() == [[True, False], [False, False]]


def test_rlc_threshold_uses_the_running_mean_not_the_batch_mean() -> None:
    loss_fn = ComicLoss(class_counts=[10, 10])
    unknown = lambda n: torch.full((n, 2), UNKNOWN)  # noqa: E731
    loss_fn(torch.full((4, 2), -3.0), unknown(4))  # P_c = sigmoid(-3) = 0.047
    assert loss_fn.running_class_mean.tolist() == pytest.approx([sig(-3.0)] * 2, rel=1e-5)

    # This batch's own mean for class 0 is 0.95, so a batch-mean rule (the authors' code) would
    # correct nothing; the running mean of the past (0.047) lets tau = 0.7 decide.
    loss_fn(torch.tensor([[3.0, -3.0], [3.0, -3.0]]), unknown(2))
    assert loss_fn.last_corrections[:, 0].all() and not loss_fn.last_corrections[:, 1].any()
    cumulative = (4 * sig(-3.0) + 2 * sig(3.0)) / 6
    assert loss_fn.running_class_mean[0].item() == pytest.approx(cumulative, rel=1e-5)

    # After many confident batches P_0 = 0.84 > tau: a p = 0.73 cell is no longer corrected.
    loss_fn(torch.full((20, 2), 4.0), unknown(20))
    assert loss_fn.running_class_mean[0].item() > sig(1.0)
    loss_fn(torch.tensor([[1.0, 1.0]]), unknown(1))
    assert not loss_fn.last_corrections.any()


def test_running_mean_frozen_in_eval_and_ema_variant() -> None:
    loss_fn = ComicLoss(class_counts=[10, 10])
    loss_fn.eval()
    loss_fn(torch.full((3, 2), 2.0), torch.full((3, 2), UNKNOWN))
    assert loss_fn.running_class_mean.tolist() == [0.0, 0.0] and loss_fn.num_seen.item() == 0

    ema = ComicLoss(class_counts=[10, 10], running_momentum=0.5)
    ema(torch.zeros(2, 2), torch.full((2, 2), UNKNOWN))  # first batch: mean 0.5
    ema(torch.full((2, 2), 100.0), torch.full((2, 2), UNKNOWN))  # then 0.5 * 0.5 + 0.5 * 1
    assert ema.running_class_mean.tolist() == pytest.approx([0.75, 0.75], rel=1e-6)


def test_htb_loss_adaptive_kappa() -> None:
    z_head = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    z_tail = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    z_balanced = torch.tensor([[0.5, -0.5]], dtype=torch.float64)
    log_b = [-math.log(1 + math.exp(-1.0)), -math.log(1 + math.exp(1.0))]  # log_softmax([0.5, -0.5])
    t_head = [math.e / (math.e + 1), 1 / (math.e + 1)]  # softmax([1, 0])
    distill_head = -(t_head[0] * log_b[0] + t_head[1] * log_b[1])
    distill_tail = -(t_head[1] * log_b[0] + t_head[0] * log_b[1])
    # kappa_h = 2^2 / (2^2 + 1^2) = 0.8, kappa_t = 0.2 (symmetric form of the paper's kappa).
    got = htb_loss(
        z_head=z_head,
        z_tail=z_tail,
        z_balanced=z_balanced,
        head_label_loss=torch.tensor(2.0),
        tail_label_loss=torch.tensor(1.0),
        alpha=2.0,
    )
    assert got.item() == pytest.approx(0.8 * distill_head + 0.2 * distill_tail, rel=1e-6)
    equal = htb_loss(
        z_head=z_head, z_tail=z_tail, z_balanced=z_balanced,
        head_label_loss=torch.tensor(1.5), tail_label_loss=torch.tensor(1.5),
    )
    assert equal.item() == pytest.approx(0.5 * (distill_head + distill_tail), rel=1e-6)


def tiny_balancer() -> HeadTailBalancer:
    balancer = HeadTailBalancer(2, 1, class_counts=[5], num_groups=1, scale=1.0, energy=0.0)
    with torch.no_grad():
        balancer.head.weight.copy_(torch.tensor([[2.0, 0.0]]))
        balancer.tail.weight.copy_(torch.tensor([[2.0, 0.0]]))
        balancer.balanced.weight.copy_(torch.tensor([[0.0, 3.0]]))
    return balancer


def test_htb_head_and_tail_logits_move_against_the_moving_gradient() -> None:
    balancer = tiny_balancer()
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z_head, z_tail, z_balanced = balancer(features)
    # e = 0: no shift; z = cos(f, w) * ||w|| / (||w|| + 0) = cos(f, w).
    assert z_head.flatten().tolist() == [1.0, 0.0] and z_tail.flatten().tolist() == [1.0, 0.0]
    assert z_balanced.flatten().tolist() == [0.0, 1.0]
    balancer.moving_gradient.copy_(torch.tensor([5.0, 0.0]))
    z_head, z_tail, _ = balancer(features)
    # Row 1: cos(f, e) = 1, w . e_unit / ||w|| = 1 -> head 1 - 1 = 0, tail 1 + 1 = 2.
    # Row 2: f is orthogonal to e -> no shift.
    assert z_head.flatten().tolist() == pytest.approx([0.0, 0.0])
    assert z_tail.flatten().tolist() == pytest.approx([2.0, 0.0])
    assert_close(balancer.predict(features), balancer.balanced(features))


def test_htb_moving_gradient_update_and_joint_loss() -> None:
    torch.manual_seed(0)
    balancer = HeadTailBalancer(8, 3, class_counts=[40, 8, 2])
    features = torch.randn(5, 8)
    states = torch.tensor([[1, 0, 0], [0, 1, -1], [0, 0, 1], [1, 1, 0], [0, 0, 0]])

    outputs = balancer(features)
    loss = balancer.loss(outputs, states)
    parts = balancer.last_parts
    expected = parts["head"] + parts["tail"] + parts["balanced"] + parts["htb"]
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    for branch in (balancer.head, balancer.tail, balancer.balanced):
        assert branch.weight.grad is not None and branch.weight.grad.abs().sum() > 0
    first = balancer.balanced.weight.grad.sum(dim=0).clone()
    balancer.update_moving_gradient()
    assert_close(balancer.moving_gradient, first)

    balancer.zero_grad()
    balancer.loss(balancer(features), states).backward()
    second = balancer.balanced.weight.grad.sum(dim=0).clone()
    balancer.update_moving_gradient()
    assert_close(balancer.moving_gradient, 0.9 * first + second)
    assert balancer.last_corrections is balancer.balanced_loss.last_corrections
