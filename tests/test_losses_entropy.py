"""EM and EM+APL (seed 003) pinned on hand-computed values, gradients and pseudo-label rounds."""

from __future__ import annotations

import math

import pytest
import torch

from labelfix.learn.losses.entropy import EntropyMaximizationAPLLoss, EntropyMaximizationLoss
from labelfix.states import NEGATIVE, POSITIVE, UNKNOWN


def assert_close(actual: torch.Tensor, expected: torch.Tensor, *, rtol: float = 1e-7, atol: float = 1e-12) -> None:
    # torch.testing.assert_close costs seconds on its first call; allclose is enough here.
    expected = expected.to(actual.dtype)
    assert actual.shape == expected.shape and torch.allclose(actual, expected, rtol=rtol, atol=atol), (actual, expected)


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def entropy(p: float) -> float:
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def test_em_values() -> None:
    logits = torch.tensor([[1.0, 0.0, -2.0], [0.0, 3.0, 2.0]], dtype=torch.float64)
    states = torch.tensor([[POSITIVE, UNKNOWN, NEGATIVE], [POSITIVE, UNKNOWN, UNKNOWN]])
    alpha = 0.1
    expected = (
        -math.log(sig(1.0))
        - alpha * math.log(2.0)  # H(0.5) = log 2
        - math.log(1 - sig(-2.0))  # verified negative: full BCE
        - math.log(0.5)
        - alpha * entropy(sig(3.0))
        - alpha * entropy(sig(2.0))
    ) / 6
    assert EntropyMaximizationLoss()(logits, states).item() == pytest.approx(expected, rel=1e-12)


def test_em_only_unknowns_gives_a_negative_loss() -> None:
    logits = torch.tensor([[0.3, -1.0, 2.0]])
    states = torch.full(logits.shape, UNKNOWN)
    assert EntropyMaximizationLoss()(logits, states).item() < 0


def test_em_gradient_on_unknown_vanishes_at_both_ends_and_at_one_half() -> None:
    # Eq. 5: d(-alpha H)/dz = alpha z p (1 - p): 0 at p = 0.5, positive above (pulls p back to 0.5),
    # negative below, and -> 0 as p -> 0 or 1.
    z = torch.tensor([[-12.0, -2.0, 0.0, 0.5, 2.0, 12.0]], dtype=torch.float64, requires_grad=True)
    states = torch.full(z.shape, UNKNOWN)
    (grad,) = torch.autograd.grad(EntropyMaximizationLoss(alpha=0.1, reduction="sum")(z, states), z)
    p = torch.sigmoid(z.detach())
    assert_close(grad, 0.1 * z.detach() * p * (1 - p))
    g = grad[0]
    assert g[2].item() == 0.0
    assert g[3] > 0 and g[4] > 0 and g[1] < 0
    assert abs(g[5]) < 1e-3 * g[4] and abs(g[0]) < 1e-3 * abs(g[1])


def test_em_is_finite_for_extreme_logits_in_low_precision() -> None:
    logits = torch.tensor([[1e4, -1e4, 80.0, -80.0]], requires_grad=True)
    states = torch.tensor([[UNKNOWN, UNKNOWN, POSITIVE, NEGATIVE]])
    loss = EntropyMaximizationLoss()(logits.bfloat16(), states)
    (grad,) = torch.autograd.grad(loss, logits)
    assert torch.isfinite(loss) and torch.all(torch.isfinite(grad))


def make_apl() -> tuple[EntropyMaximizationAPLLoss, torch.Tensor, torch.Tensor]:
    # 6 images, 2 classes, theta = 0.8, warm-up 2 of 4 epochs: rounds at epochs 2 and 3.
    loss_fn = EntropyMaximizationAPLLoss(num_train=6, num_classes=2, theta=0.8, warmup_epochs=2, beta=0.5, alpha=0.1)
    states = torch.tensor(
        [
            [UNKNOWN, UNKNOWN],
            [UNKNOWN, POSITIVE],
            [UNKNOWN, UNKNOWN],
            [UNKNOWN, NEGATIVE],
            [POSITIVE, UNKNOWN],
            [UNKNOWN, UNKNOWN],
        ]
    )
    probs = torch.tensor([[0.30, 0.20], [0.10, 0.01], [0.50, 0.05], [0.20, 0.02], [0.01, 0.40], [0.40, 0.30]])
    return loss_fn, states, probs


def test_apl_pseudo_label_rounds() -> None:
    loss_fn, states, probs = make_apl()
    assert loss_fn.update_pseudo_labels(probs=probs, states=states, epoch=1, num_epochs=4) == 0  # warm-up
    assert not loss_fn.has_pseudo_label.any()

    # Round 1 of 2. Class 0: U = 5 unknown cells, round(0.8 * 1/2 * 5) = 2 -> the two lowest p among
    # unknowns (rows 1: 0.10, 3: 0.20); row 4 (0.01) is a positive and is skipped. Class 1: U = 4,
    # round(1.6) = 2 -> rows 2 (0.05) and 0 (0.20); rows 1 and 3 are positive / verified negative.
    assert loss_fn.update_pseudo_labels(probs=probs, states=states, epoch=2, num_epochs=4) == 4
    assert loss_fn.has_pseudo_label.tolist() == [
        [False, True], [True, False], [False, True], [True, False], [False, False], [False, False]
    ]
    assert loss_fn.pseudo_targets[1, 0].item() == pytest.approx(0.10)
    assert loss_fn.pseudo_targets[2, 1].item() == pytest.approx(0.05)
    assert loss_fn.update_pseudo_labels(probs=probs, states=states, epoch=2, num_epochs=4) == 0  # repeat: no-op

    # Round 2: class 0 reaches round(0.8 * 5) = 4 (+2: rows 0 and 5), class 1 round(3.2) = 3 (+1:
    # row 5 at 0.30 < row 4 at 0.40). New probabilities must not move the frozen targets.
    new_probs = probs.clone()
    new_probs[1, 0] = 0.9
    assert loss_fn.update_pseudo_labels(probs=new_probs, states=states, epoch=3, num_epochs=4) == 3
    assert loss_fn.has_pseudo_label.sum(dim=0).tolist() == [4, 3]
    assert loss_fn.pseudo_targets[1, 0].item() == pytest.approx(0.10)
    assert not loss_fn.has_pseudo_label[2, 0] and not loss_fn.has_pseudo_label[4, 1]


def test_apl_forward_uses_index_and_soft_bce() -> None:
    loss_fn, states, probs = make_apl()
    loss_fn.update_pseudo_labels(probs=probs, states=states, epoch=2, num_epochs=4)
    # Rows 3 and 1 of the training set, in that order.
    index = torch.tensor([3, 1])
    logits = torch.tensor([[-1.0, 0.5], [0.0, 2.0]], dtype=torch.float64)
    batch_states = states[index]
    p = sig(-1.0)
    target_30, target_10 = 0.20, 0.10  # row 3 class 0, row 1 class 0
    soft_bce = lambda q, t: -(t * math.log(q) + (1 - t) * math.log(1 - q))  # noqa: E731
    expected = (
        0.5 * soft_bce(p, target_30)  # pseudo-labelled unknown: beta * BCE(p, target), no entropy term
        - math.log(1 - sig(0.5))  # verified negative
        + 0.5 * soft_bce(0.5, target_10)
        - math.log(sig(2.0))  # positive
    ) / 4
    got = loss_fn(logits, batch_states, index=index).item()
    assert got == pytest.approx(expected, rel=1e-6)  # the buffer is float32

    # Without index: an error while training, plain EM in eval mode.
    with pytest.raises(ValueError, match="index"):
        loss_fn(logits, batch_states)
    loss_fn.eval()
    plain = EntropyMaximizationLoss(alpha=0.1)(logits, batch_states).item()
    assert loss_fn(logits, batch_states).item() == pytest.approx(plain, rel=1e-12)


def test_apl_never_pseudo_labels_when_warmup_covers_training() -> None:
    loss_fn, states, probs = make_apl()
    assert loss_fn.update_pseudo_labels(probs=probs, states=states, epoch=1, num_epochs=2) == 0
    with pytest.raises(ValueError):
        loss_fn.update_pseudo_labels(probs=probs[:3], states=states[:3], epoch=3, num_epochs=4)
