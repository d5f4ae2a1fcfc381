"""CLS co-label selection, seed 001 (Lyu et al., AAAI 2025). No public code exists.

Two networks f and g see every mini-batch. Over all unknown cells of the batch (one joint ranking,
not per class or per image; the paper ranks "within all labels contained in a mini-batch"):

1. Eqs. 1-2: the set f trains on, Y_N^f, is the R_h fraction of the unknown cells with the
   smallest loss under the *peer's* predictions (``loss_g``), and symmetrically for g with
   ``loss_f``. Each network thus removes, for its peer, the high-loss cells it considers likely false
   negatives; ranking by the peer avoids confirmation bias.
2. Eqs. 3-4: each network keeps the R_l fraction of its set with the *largest* loss under its own
   predictions (``loss_f`` for f), i.e. drops the lowest-loss (1 - R_l) fraction: non-informative
   easy negatives.
3. Eqs. 5-6: positives are always kept; labelfix's verified negatives (-1) are always kept too.

A cell removed in step 1 by both networks is a missing-label suggestion (``removed_by_both``).
Counts are ``round(R * n)``; ties are broken by position (stable sort), so results are
deterministic.

Schedule (Algorithm 1, step 12): ``R(e) = 1 - min(e / E_k * tau, tau)``, updated at the end of epoch
e (1-based), so 1-based epoch e trains with R(e - 1): pass the 0-based epoch index to
:func:`cls_rates` and the first epoch keeps everything. Paper values: E_k = 10, tau_l = 0.02 (VOC) /
0.06 (COCO, NUS), tau_h between 0.002 and 0.02 by dataset and missing rate.

The loss is BCE with unknown = negative on the selected cells (the paper's choice),
:func:`assume_negative_cell_loss` and :func:`selected_loss`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from labelfix.learn.losses.base import split_states, working_precision


def cls_rates(epoch: int, *, e_k: int = 10, tau_h: float, tau_l: float) -> tuple[float, float]:
    """Reserving rates ``(R_h, R_l)`` for the 0-based ``epoch``.

    ``R(e) = 1 - min(e / E_k * tau, tau)``: 1 at epoch 0, falling linearly to ``1 - tau`` at E_k.
    """
    if epoch < 0 or e_k <= 0:
        raise ValueError(f"need epoch >= 0 and e_k > 0, got epoch={epoch}, e_k={e_k}")
    for name, tau in (("tau_h", tau_h), ("tau_l", tau_l)):
        if not 0.0 <= tau <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {tau}")
    progress = epoch / e_k
    return 1.0 - min(progress * tau_h, tau_h), 1.0 - min(progress * tau_l, tau_l)


def _smallest(values: Tensor, candidates: Tensor, count: int) -> Tensor:
    """Mask of the ``count`` candidate cells with the smallest values (stable in position)."""
    flat = torch.where(candidates, values, torch.full_like(values, float("inf"))).flatten()
    order = torch.argsort(flat, stable=True)[:count]
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[order] = True
    return mask.view_as(candidates) & candidates


def _keep_smallest_fraction(values: Tensor, candidates: Tensor, rate: float) -> Tensor:
    count = round(rate * int(candidates.sum().item()))
    return _smallest(values, candidates, count)


def _keep_largest_fraction(values: Tensor, candidates: Tensor, rate: float) -> Tensor:
    count = round(rate * int(candidates.sum().item()))
    # The largest ``count`` values are the smallest of the negated ones.
    return _smallest(-values, candidates, count)


@torch.no_grad()
def co_label_selection(
    *,
    loss_f: Tensor,
    loss_g: Tensor,
    states: Tensor,
    r_h: float,
    r_l: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """Select the cells each network trains on (eqs. 1-6).

    Parameters
    ----------
    loss_f, loss_g : Tensor
        [N, C] element-wise losses of networks f and g on the batch, with unknown cells scored as
        negatives (e.g. :func:`assume_negative_cell_loss`). Only their order matters; they are not
        differentiated.
    states : Tensor
        [N, C] label states.
    r_h, r_l : float
        Reserving rates from :func:`cls_rates`.

    Returns
    -------
    mask_for_f, mask_for_g : Tensor
        Boolean [N, C]: the cells whose loss trains f (resp. g).
    removed_by_both : Tensor
        Boolean [N, C]: unknown cells both networks removed as likely false negatives (step 1).
    """
    if loss_f.shape != states.shape or loss_g.shape != states.shape:
        raise ValueError("loss_f, loss_g and states must have the same [N, C] shape")
    masks = split_states(states)
    unknown = masks.unknown
    loss_f = loss_f.detach().float()
    loss_g = loss_g.detach().float()
    # Step 1: the peer's loss picks the likely true negatives each network is allowed to learn from.
    kept_for_f = _keep_smallest_fraction(loss_g, unknown, r_h)
    kept_for_g = _keep_smallest_fraction(loss_f, unknown, r_h)
    # Step 2: each network keeps its own most informative (highest-loss) negatives.
    informative_f = _keep_largest_fraction(loss_f, kept_for_f, r_l)
    informative_g = _keep_largest_fraction(loss_g, kept_for_g, r_l)
    always = masks.positive | masks.negative
    removed_by_both = unknown & ~kept_for_f & ~kept_for_g
    return always | informative_f, always | informative_g, removed_by_both


def assume_negative_cell_loss(logits: Tensor, states: Tensor) -> Tensor:
    """Element-wise BCE with unknown = negative, [N, C] (float32 or float64)."""
    logits = working_precision(logits)
    targets = (split_states(states).positive).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none")


def selected_loss(cell_loss: Tensor, mask: Tensor) -> Tensor:
    """Sum of the selected cells' losses over N * C (eqs. 7-8 with BCE averaged over labels).

    Dividing by all N * C cells rather than by the number selected means that removing a cell
    removes its loss instead of up-weighting the cells that remain.
    """
    zero = torch.zeros((), dtype=cell_loss.dtype, device=cell_loss.device)
    return torch.where(mask, cell_loss, zero).sum() / max(cell_loss.numel(), 1)


__all__ = ["assume_negative_cell_loss", "cls_rates", "co_label_selection", "selected_loss"]
