"""CLS co-label selection (seed 001): the rate schedule and the selection on hand-made batches."""

from __future__ import annotations

import math

import pytest
import torch

from labelfix.learn.losses.cls import assume_negative_cell_loss, cls_rates, co_label_selection, selected_loss
from labelfix.states import NEGATIVE, POSITIVE, UNKNOWN


def test_rates_schedule() -> None:
    assert cls_rates(0, tau_h=0.2, tau_l=0.4) == (1.0, 1.0)  # the first epoch keeps everything
    assert cls_rates(5, tau_h=0.2, tau_l=0.4) == pytest.approx((0.9, 0.8))
    assert cls_rates(10, tau_h=0.2, tau_l=0.4) == pytest.approx((0.8, 0.6))
    assert cls_rates(25, tau_h=0.2, tau_l=0.4) == pytest.approx((0.8, 0.6))  # capped at 1 - tau
    assert cls_rates(2, e_k=4, tau_h=0.012, tau_l=0.06) == pytest.approx((0.994, 0.97))
    with pytest.raises(ValueError):
        cls_rates(-1, tau_h=0.1, tau_l=0.1)


# 2 x 3 batch: one positive, five unknown cells a..e.
STATES = torch.tensor([[POSITIVE, UNKNOWN, UNKNOWN], [UNKNOWN, UNKNOWN, UNKNOWN]])
#                       pos    a     b            c     d     e
LOSS_G = torch.tensor([[9.0, 0.10, 0.90], [0.30, 0.80, 0.20]])
LOSS_F = torch.tensor([[9.0, 0.40, 0.95], [0.05, 0.10, 0.90]])


def test_selection_on_a_hand_made_batch() -> None:
    # Step 1 (R_h = 0.6, keep round(0.6 * 5) = 3 unknowns, ranked by the PEER's loss):
    #   for f, by loss_g: a .10, e .20, c .30 kept; b, d removed.
    #   for g, by loss_f: c .05, d .10, a .40 kept; b, e removed.
    # Step 2 (R_l = 2/3, keep round(2) = 2 of 3 with the largest OWN loss):
    #   f: a .40, e .90 kept, c .05 dropped.   g: c .30, d .80 kept, a .10 dropped.
    mask_f, mask_g, removed_by_both = co_label_selection(
        loss_f=LOSS_F, loss_g=LOSS_G, states=STATES, r_h=0.6, r_l=2 / 3
    )
    assert mask_f.tolist() == [[True, True, False], [False, False, True]]
    assert mask_g.tolist() == [[True, False, False], [True, True, False]]
    assert removed_by_both.tolist() == [[False, False, True], [False, False, False]]  # only b


def test_step_one_ranks_by_the_peer() -> None:
    # Swapping the roles swaps the masks: f's set is chosen by g's loss and vice versa.
    mask_f, mask_g, _ = co_label_selection(loss_f=LOSS_G, loss_g=LOSS_F, states=STATES, r_h=0.6, r_l=1.0)
    # f's set by (new) loss_g = LOSS_F: c, d, a.   g's set by LOSS_G: a, e, c.
    assert mask_f.tolist() == [[True, True, False], [True, True, False]]
    assert mask_g.tolist() == [[True, True, False], [True, False, True]]


def test_full_rates_keep_everything() -> None:
    mask_f, mask_g, removed = co_label_selection(loss_f=LOSS_F, loss_g=LOSS_G, states=STATES, r_h=1.0, r_l=1.0)
    assert mask_f.all() and mask_g.all() and not removed.any()


def test_positives_and_verified_negatives_are_always_kept() -> None:
    states = torch.tensor([[NEGATIVE, UNKNOWN, UNKNOWN, POSITIVE]])
    loss = torch.tensor([[50.0, 1.0, 2.0, 40.0]])  # the trusted cells have the highest losses
    mask_f, mask_g, removed = co_label_selection(loss_f=loss, loss_g=loss, states=states, r_h=0.5, r_l=1.0)
    assert mask_f.tolist() == [[True, True, False, True]] == mask_g.tolist()
    assert removed.tolist() == [[False, False, True, False]]
    with pytest.raises(ValueError):
        co_label_selection(loss_f=loss[:, :2], loss_g=loss, states=states, r_h=0.5, r_l=1.0)


def test_cell_loss_and_selected_loss() -> None:
    logits = torch.tensor([[1.0, -0.5], [2.0, 0.0]], dtype=torch.float64)
    states = torch.tensor([[POSITIVE, UNKNOWN], [NEGATIVE, UNKNOWN]])
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    cells = assume_negative_cell_loss(logits, states)
    expected = [[-math.log(sig(1.0)), -math.log(1 - sig(-0.5))], [-math.log(1 - sig(2.0)), math.log(2.0)]]
    assert cells.tolist() == [pytest.approx(row, rel=1e-12) for row in expected]
    mask = torch.tensor([[True, False], [True, True]])
    assert selected_loss(cells, mask).item() == pytest.approx((expected[0][0] + expected[1][0] + expected[1][1]) / 4)
