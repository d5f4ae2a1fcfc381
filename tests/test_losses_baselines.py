"""AN, WAN, Focal, ASL and the oracle pinned on hand-computed values; the registry's contract."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from labelfix.learn.losses import LOSS_NAMES, build_loss
from labelfix.learn.losses.baselines import AssumeNegativeLoss, AsymmetricLoss, FocalLoss, WeakAssumeNegativeLoss
from labelfix.states import NEGATIVE, POSITIVE, UNKNOWN


def assert_close(actual: torch.Tensor, expected: torch.Tensor, *, rtol: float = 1e-7, atol: float = 1e-12) -> None:
    # torch.testing.assert_close costs seconds on its first call; allclose is enough here.
    expected = expected.to(actual.dtype)
    assert actual.shape == expected.shape and torch.allclose(actual, expected, rtol=rtol, atol=atol), (actual, expected)


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# One image, three classes: a positive, an unknown and a verified negative.
LOGITS = torch.tensor([[2.0, -1.0, 0.5]], dtype=torch.float64)
STATES = torch.tensor([[POSITIVE, UNKNOWN, NEGATIVE]])


def test_an_is_bce_with_unknown_as_negative() -> None:
    expected = (-math.log(sig(2.0)) - math.log(1 - sig(-1.0)) - math.log(1 - sig(0.5))) / 3
    assert AssumeNegativeLoss()(LOGITS, STATES).item() == pytest.approx(expected, rel=1e-12)


def test_wan_down_weights_only_unknown_cells() -> None:
    # C = 3, so the unknown cell's weight is 1 / (C - 1) = 0.5; the verified negative keeps 1.
    expected = (-math.log(sig(2.0)) + 0.5 * -math.log(1 - sig(-1.0)) - math.log(1 - sig(0.5))) / 3
    assert WeakAssumeNegativeLoss(num_classes=3)(LOGITS, STATES).item() == pytest.approx(expected, rel=1e-12)
    # Same logits, the unknown cell verified negative: full BCE weight.
    verified = torch.tensor([[POSITIVE, NEGATIVE, NEGATIVE]])
    an = AssumeNegativeLoss()(LOGITS, verified).item()
    assert WeakAssumeNegativeLoss(num_classes=3)(LOGITS, verified).item() == pytest.approx(an, rel=1e-12)


def test_wan_gradient_on_unknown_is_a_fraction_of_an() -> None:
    logits = torch.tensor([[0.3, 1.2, -0.7, 2.0, 0.0]], dtype=torch.float64, requires_grad=True)
    states = torch.tensor([[POSITIVE, UNKNOWN, UNKNOWN, NEGATIVE, UNKNOWN]])
    (grad_wan,) = torch.autograd.grad(WeakAssumeNegativeLoss(num_classes=5)(logits, states), logits)
    (grad_an,) = torch.autograd.grad(AssumeNegativeLoss()(logits, states), logits)
    unknown = states == UNKNOWN
    assert_close(grad_wan[unknown], grad_an[unknown] / 4)
    assert_close(grad_wan[~unknown], grad_an[~unknown])


def test_focal_values() -> None:
    p_pos, p_unk = sig(2.0), sig(-1.0)
    expected = (
        -((1 - p_pos) ** 2) * math.log(p_pos)  # positive, gamma = 2
        - p_unk**2 * math.log(1 - p_unk)  # unknown as focal negative
        - math.log(1 - sig(0.5))  # verified negative: plain BCE
    ) / 3
    assert FocalLoss()(LOGITS, STATES).item() == pytest.approx(expected, rel=1e-12)


def test_asl_values_and_clip() -> None:
    p_unk = sig(-1.0)
    shifted = p_unk - 0.05
    expected = (-math.log(sig(2.0)) - shifted**4 * math.log(1 - shifted) - math.log(1 - sig(0.5))) / 3
    assert AsymmetricLoss()(LOGITS, STATES).item() == pytest.approx(expected, rel=1e-12)
    # p = sigmoid(-4) = 0.018 < clip: an unknown cell is discarded (zero loss, zero gradient),
    # a verified negative with the same logit still gets its full BCE loss.
    logits = torch.tensor([[-4.0, -4.0]], dtype=torch.float64, requires_grad=True)
    states = torch.tensor([[UNKNOWN, NEGATIVE]])
    loss = AsymmetricLoss()(logits, states)
    assert loss.item() == pytest.approx(-math.log(1 - sig(-4.0)) / 2, rel=1e-12)
    (grad,) = torch.autograd.grad(loss, logits)
    assert grad[0, 0].item() == 0.0
    assert grad[0, 1].item() == pytest.approx(sig(-4.0) / 2, rel=1e-12)


def test_oracle_is_bce_on_full_truth() -> None:
    logits = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    truth = torch.tensor([[1, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1], [1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    states = torch.where(truth.bool(), POSITIVE, NEGATIVE)
    expected = F.binary_cross_entropy_with_logits(logits, truth.double())
    assert build_loss("oracle", num_classes=6)(logits, states).item() == pytest.approx(expected.item(), rel=1e-12)


def test_reductions() -> None:
    mean = FocalLoss()(LOGITS, STATES).item()
    assert FocalLoss(reduction="sum_classes")(LOGITS, STATES).item() == pytest.approx(3 * mean, rel=1e-12)
    assert FocalLoss(reduction="sum")(LOGITS.repeat(2, 1), STATES.repeat(2, 1)).item() == pytest.approx(6 * mean)
    with pytest.raises(ValueError):
        FocalLoss(reduction="median")  # type: ignore[arg-type]


def test_shape_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError):
        AssumeNegativeLoss()(LOGITS, STATES[:, :2])


def test_registry_builds_every_name_and_runs_in_bfloat16() -> None:
    logits = torch.tensor([[3.0, -2.0, 0.2, 40.0], [-30.0, 1.0, 0.0, -0.5]])
    states = torch.tensor([[POSITIVE, UNKNOWN, NEGATIVE, UNKNOWN], [UNKNOWN, POSITIVE, UNKNOWN, NEGATIVE]])
    for name in LOSS_NAMES:
        extra = {"num_train": 2} if name == "em_apl" else {}
        loss_fn = build_loss(name, num_classes=4, class_counts=[50, 20, 5, 1], **extra)
        loss_fn.set_epoch(1, 3)
        full = loss_fn(logits, states)
        half = loss_fn(logits.bfloat16(), states)
        assert half.dtype == torch.float32, name
        assert torch.isfinite(full) and torch.isfinite(half), name
        assert half.item() == pytest.approx(full.item(), rel=0.05, abs=0.02), name


def test_registry_errors() -> None:
    with pytest.raises(ValueError, match="valid names: an, wan"):
        build_loss("bce", num_classes=3)
    with pytest.raises(ValueError, match="class_counts"):
        build_loss("comic", num_classes=3)
    with pytest.raises(ValueError, match="class_counts"):
        build_loss("comic", num_classes=3, class_counts=[1, 2])
    assert set(LOSS_NAMES) == {
        "an", "wan", "focal", "asl", "hill", "focal_margin", "splc", "em", "em_apl", "gr", "comic", "oracle"
    }
