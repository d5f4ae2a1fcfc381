"""COMIC, seed 000 (Zhang et al., ICCV 2023): Correction (RLC), Modification (MFM), Balance (HTB).

``ComicLoss`` = lambda_c * L_rlc + lambda_m * L_mfm (eq. 1 without the HTB term):

* MFM (eqs. 5-6): focal losses with per-class exponents ``gamma+(c) = gamma+_pn + w+ gamma_ht(c)``
  and ``gamma-(c) = gamma-_pn + w- gamma_ht(c)``, ``gamma-_pn >= gamma+_pn``. The paper derives
  gamma_ht(c) >= 1 from the max-normalised class frequency ``n_c / n_max`` without giving the map;
  :func:`head_tail_factor` uses the authors' code's ``(1 - log(n_c / n_max))^(1/6)``, which is 1 for
  the most frequent class and grows for tail classes. The paper gives no numbers for
  gamma_pn, w or lambda; the defaults are the authors' code's (gamma+ = 0, gamma- = 3 + gamma_ht, i.e.
  gamma+_pn = 0, w+ = 0, gamma-_pn = 3, w- = 1) and lambda_c = lambda_m = 1. Unlike the authors'
  code, no ASL probability clip (the paper's eq. 6 has none).
* RLC (eqs. 2-3): an unknown cell with ``p > max(tau, P_c)`` (tau = 0.7) becomes a pseudo-positive
  and gets the MFM positive loss, scaled by ``batch_size / #corrected``. P_c is the running mean
  probability of class c over all samples trained so far (a buffer updated after each training
  forward; the threshold uses the mean of the *past* batches). The authors' code uses the current
  batch mean instead. L_rlc covers the corrected cells and L_mfm every other cell, so no cell is
  counted twice. Not implemented: the paper also re-derives gamma_ht for RLC from the "dynamic class
  distribution" D_t including corrected labels; a per-batch loss has no dataset-wide correction
  counts, and with the default w+ = 0 it would not change the corrected cells' loss anyway.

Verified negatives (-1) get the BCE negative loss with weight 1 and are never corrected.
Reduction default ``"sum_classes"`` (eq. 6 sums over the classes); the RLC scaling then makes L_rlc
the mean positive loss per corrected cell.

``HeadTailBalancer`` (Sec. 3.4, eqs. 7-11) is the HTB module for head mode over frozen embeddings.
Where the paper is under-specified it follows the paper's ref. [33] (Tang et al. 2020), which eqs.
9-10 come from: the similarity in eq. 10 is between the *features* and e_t (the printed
``sim(z_x, e_t)`` pairs a C-dim logit vector with a D-dim vector), e_t enters as a unit direction,
and g_t is the gradient of the balanced classifier's weight summed over the classes. Eq. 11's
``L(phi(z_hat) . phi(z_b))`` is read as softmax distillation; see :func:`htb_loss`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from labelfix.learn.losses.base import (
    PartialLabelLoss,
    Reduction,
    assemble,
    bce_negative,
    focal_negative,
    focal_positive,
    split_states,
)


def head_tail_factor(class_counts: Sequence[int] | Tensor, *, power: float = 1.0 / 6.0) -> Tensor:
    """gamma_ht(c) = (1 - log(n_c / n_max))^power: 1 for the largest class, larger for tail ones.

    Classes with zero samples are counted as one, so the factor stays finite.
    """
    counts = torch.as_tensor(class_counts, dtype=torch.float64).clamp(min=1.0)
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError("class_counts must be a non-empty 1-D sequence")
    return (1.0 - torch.log(counts / counts.max())).pow(power).float()


class ComicLoss(PartialLabelLoss):
    """RLC + MFM loss of COMIC.

    Parameters
    ----------
    class_counts : sequence of int
        Positive training samples per class (length C); gives gamma_ht.
    tau : float
        RLC confidence threshold, default 0.7 (the paper's best, Fig. 3).
    gamma_pos_pn, gamma_neg_pn, w_pos, w_neg : float
        MFM exponents, defaults 0, 3, 0, 1. ``gamma_neg_pn >= gamma_pos_pn`` is required.
    ht_power : float
        Exponent of :func:`head_tail_factor`, default 1/6.
    lambda_rlc, lambda_mfm : float
        Weights of eq. 1, default 1.
    running_momentum : float, optional
        None (default): P_c is the cumulative mean over all past samples, as the paper says. A value
        in (0, 1) uses an exponential moving average of the batch means with that momentum.
    start_epoch : int
        First 0-based epoch with corrections, default 0 (the paper corrects from the start).
    reduction : {"mean", "sum_classes", "sum"}
        Default ``"sum_classes"``.

    Attributes
    ----------
    running_class_mean : Tensor
        Buffer [C], P_c. Updated only in training mode.
    last_corrections : Tensor or None
        Boolean [N, C] mask of the unknown cells corrected to positive in the last forward.
    """

    default_reduction: Reduction = "sum_classes"
    # Buffers (register_buffer below), declared so a type checker reads them as tensors.
    gamma_pos: Tensor
    gamma_neg: Tensor
    running_class_mean: Tensor
    num_seen: Tensor

    def __init__(
        self,
        *,
        class_counts: Sequence[int] | Tensor,
        tau: float = 0.7,
        gamma_pos_pn: float = 0.0,
        gamma_neg_pn: float = 3.0,
        w_pos: float = 0.0,
        w_neg: float = 1.0,
        ht_power: float = 1.0 / 6.0,
        lambda_rlc: float = 1.0,
        lambda_mfm: float = 1.0,
        running_momentum: float | None = None,
        start_epoch: int = 0,
        reduction: Reduction | None = None,
    ) -> None:
        super().__init__(reduction=reduction)
        if gamma_neg_pn < gamma_pos_pn:
            raise ValueError("MFM needs gamma_neg_pn >= gamma_pos_pn (paper, Sec. 3.3)")
        if running_momentum is not None and not 0.0 < running_momentum < 1.0:
            raise ValueError(f"running_momentum must be in (0, 1) or None, got {running_momentum}")
        self.tau = float(tau)
        self.lambda_rlc = float(lambda_rlc)
        self.lambda_mfm = float(lambda_mfm)
        self.running_momentum = running_momentum
        self.start_epoch = int(start_epoch)
        ht = head_tail_factor(class_counts, power=ht_power)
        self.register_buffer("gamma_pos", gamma_pos_pn + w_pos * ht)
        self.register_buffer("gamma_neg", gamma_neg_pn + w_neg * ht)
        self.register_buffer("running_class_mean", torch.zeros_like(ht))
        self.register_buffer("num_seen", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def _update_running_mean(self, probs: Tensor) -> None:
        batch_size = probs.shape[0]
        if batch_size == 0:
            return
        batch_mean = probs.float().mean(dim=0).to(self.running_class_mean.device)
        seen = self.num_seen.to(batch_mean.dtype)
        # Cumulative mean: the batch weighs B / (seen + B). The EMA starts from the first batch's
        # mean (weight 1 while nothing was seen). Tensors throughout, so no host-device sync.
        weight = batch_size / (seen + batch_size)
        if self.running_momentum is not None:
            weight = torch.where(seen > 0, torch.full_like(weight, 1.0 - self.running_momentum), weight)
        self.running_class_mean.add_(weight * (batch_mean - self.running_class_mean))
        self.num_seen.add_(batch_size)

    def corrections(self, logits: Tensor, states: Tensor) -> Tensor:
        """Unknown cells with p > max(tau, P_c) (eq. 2), using P_c of the past batches."""
        unknown = split_states(states).unknown
        if self.epoch < self.start_epoch:
            return torch.zeros_like(unknown)
        with torch.no_grad():
            threshold = self.running_class_mean.to(logits.device, logits.dtype).clamp(min=self.tau)
            return unknown & (torch.sigmoid(logits) > threshold)

    def cell_losses(self, logits: Tensor, states: Tensor, *, index: Tensor | None = None) -> Tensor:
        masks = split_states(states)
        corrected = self.corrections(logits, states)
        self.last_corrections = corrected.detach()
        if self.training:
            self._update_running_mean(torch.sigmoid(logits.detach()))
        gamma_pos = self.gamma_pos.to(logits.device, logits.dtype)
        gamma_neg = self.gamma_neg.to(logits.device, logits.dtype)
        positive = focal_positive(logits, gamma=gamma_pos)
        mfm = assemble(
            masks, positive=positive, unknown=focal_negative(logits, gamma=gamma_neg), negative=bce_negative(logits)
        )
        # B_s / N_t of Sec. 3.2: the corrected cells' loss is renormalised by their count (the
        # clamp only matters when nothing is corrected, where the scale is unused).
        num_corrected = corrected.sum().clamp(min=1).to(logits.dtype)
        rlc_scale = self.lambda_rlc * logits.shape[0] / num_corrected
        return torch.where(corrected, rlc_scale * positive, self.lambda_mfm * mfm)


class CosineClassifier(nn.Module):
    """Multi-head normalised linear classifier of eq. 9 (as in ref. [33], Tang et al. 2020).

    ``z_c = rho / G * sum_k w_ck . f_k / ((||w_ck|| + eta) ||f_k||)`` over G channel groups.
    """

    def __init__(self, in_features: int, num_classes: int, *, num_groups: int, scale: float, energy: float) -> None:
        super().__init__()
        if in_features % num_groups:
            raise ValueError(f"in_features={in_features} is not divisible by num_groups={num_groups}")
        self.num_groups = num_groups
        self.scale = float(scale)
        self.energy = float(energy)
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def _groups(self, x: Tensor) -> Tensor:
        return x.reshape(*x.shape[:-1], self.num_groups, x.shape[-1] // self.num_groups)

    def forward(self, features: Tensor) -> Tensor:
        f = self._groups(features.to(self.weight.dtype))  # [N, G, d]
        w = self._groups(self.weight)  # [C, G, d]
        f_unit = f / f.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        w_scaled = w / (w.norm(dim=-1, keepdim=True) + self.energy)
        return self.scale / self.num_groups * torch.einsum("ngd,cgd->nc", f_unit, w_scaled)

    def shift(self, features: Tensor, direction: Tensor) -> Tensor:
        """Eq. 10's term ``rho / G * sum_k cos(f_k, e_k) (w_ck . e_k) / (||w_ck|| + eta)``.

        ``e`` enters as its unit direction per group (as in ref. [33]); the raw gradient sum has
        an arbitrary scale next to these cosine logits. Zero while ``e`` is zero.
        """
        f = self._groups(features.to(self.weight.dtype))
        w = self._groups(self.weight)
        e = self._groups(direction.to(self.weight.dtype))  # [G, d]
        e_unit = e / e.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        cos_fe = torch.einsum("ngd,gd->ng", f / f.norm(dim=-1, keepdim=True).clamp(min=1e-12), e_unit)
        w_along_e = torch.einsum("cgd,gd->cg", w, e_unit) / (w.norm(dim=-1) + self.energy)
        return self.scale / self.num_groups * torch.einsum("ng,cg->nc", cos_fe, w_along_e)


def htb_loss(
    *,
    z_head: Tensor,
    z_tail: Tensor,
    z_balanced: Tensor,
    head_label_loss: Tensor,
    tail_label_loss: Tensor,
    alpha: float = 2.0,
    detach_teachers: bool = False,
) -> Tensor:
    """Head-tail loss of eq. 11: ``kappa_h D(z_head, z_b) + kappa_t D(z_tail, z_b)``.

    ``D(teacher, student)`` is the soft-target cross-entropy ``-sum_c phi(teacher)_c log
    phi(student)_c`` with phi = softmax over classes, averaged over the batch: our reading of the
    paper's ``L(phi(z_hat) . phi(z_b))``, a distillation of the head / tail branches into the
    balanced one. ``kappa_h = L_h^alpha / (L_h^alpha + L_t^alpha)`` and
    ``kappa_t = L_t^alpha / (L_t^alpha + L_h^alpha)`` from the branches' (detached) label losses.
    The paper prints kappa_h with L(z_hat_h) in both denominator terms, a typo: with it kappa_h
    would always be 1/2; we use the symmetric form, so kappa_h + kappa_t = 1.
    """
    loss_h = head_label_loss.detach().float().clamp(min=0.0) ** alpha
    loss_t = tail_label_loss.detach().float().clamp(min=0.0) ** alpha
    total = loss_h + loss_t
    half = torch.full_like(total, 0.5)
    kappa_h = torch.where(total > 0, loss_h / total.clamp(min=1e-30), half)
    kappa_t = 1.0 - kappa_h

    def distill(teacher: Tensor, student: Tensor) -> Tensor:
        target = F.softmax(teacher.float(), dim=1)
        if detach_teachers:
            target = target.detach()
        return -(target * F.log_softmax(student.float(), dim=1)).sum(dim=1).mean()

    return kappa_h * distill(z_head, z_balanced) + kappa_t * distill(z_tail, z_balanced)


class HeadTailBalancer(nn.Module):
    """HTB in head mode: three cosine heads (head / tail / balanced) over one shared feature vector.

    The paper trains three backbones and fuses their features with additive attention (eq. 8);
    over frozen embeddings the three branches share the features, so there is no attention. Each
    branch has its own :class:`ComicLoss` (its own RLC running mean). Predictions come from the
    balanced branch (:meth:`predict`).

    Training step::

        z_head, z_tail, z_balanced = balancer(features)
        loss = balancer.loss((z_head, z_tail, z_balanced), states)
        optimizer.zero_grad(); loss.backward()
        balancer.update_moving_gradient()   # e_t from this step's gradients, used next step
        optimizer.step()

    Parameters
    ----------
    in_features, num_classes : int
        Feature size D (divisible by ``num_groups``) and C.
    class_counts : sequence of int
        Positives per class, for the branches' MFM.
    num_groups, scale, energy : int, float, float
        G, rho and eta of eqs. 9-10; defaults 2, 16, 1/32 from ref. [33] (the paper gives none).
    momentum : float
        mu of eq. 7, default 0.9 (SGD momentum, ref. [32]).
    alpha : float
        kappa's scaling factor, default 2 (the paper's best, Fig. 3).
    lambda_htb : float
        lambda_b of eq. 1, default 1.
    detach_teachers : bool
        False (default): eq. 11 trains all three branches jointly, as in the paper's joint
        training; True stops its gradient into the head / tail branches.
    **comic_params
        Passed to each branch's :class:`ComicLoss`.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        class_counts: Sequence[int] | Tensor,
        num_groups: int = 2,
        scale: float = 16.0,
        energy: float = 1.0 / 32.0,
        momentum: float = 0.9,
        alpha: float = 2.0,
        lambda_htb: float = 1.0,
        detach_teachers: bool = False,
        **comic_params: object,
    ) -> None:
        super().__init__()
        def make_head() -> CosineClassifier:
            return CosineClassifier(in_features, num_classes, num_groups=num_groups, scale=scale, energy=energy)

        self.head, self.tail, self.balanced = make_head(), make_head(), make_head()
        self.head_loss = ComicLoss(class_counts=class_counts, **comic_params)  # type: ignore[arg-type]
        self.tail_loss = ComicLoss(class_counts=class_counts, **comic_params)  # type: ignore[arg-type]
        self.balanced_loss = ComicLoss(class_counts=class_counts, **comic_params)  # type: ignore[arg-type]
        self.momentum = float(momentum)
        self.alpha = float(alpha)
        self.lambda_htb = float(lambda_htb)
        self.detach_teachers = bool(detach_teachers)
        self.moving_gradient: Tensor  # a buffer, declared so a type checker reads it as a tensor
        self.register_buffer("moving_gradient", torch.zeros(in_features))
        self.last_parts: dict[str, Tensor] = {}
        self.last_corrections: Tensor | None = None

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(z_head_hat, z_tail_hat, z_balanced)``: eq. 10 shifts the head down and the tail up."""
        z_head = self.head(features) - self.head.shift(features, self.moving_gradient)
        z_tail = self.tail(features) + self.tail.shift(features, self.moving_gradient)
        return z_head, z_tail, self.balanced(features)

    def predict(self, features: Tensor) -> Tensor:
        """Logits of the balanced branch, the model's predictions."""
        return self.balanced(features)

    @torch.no_grad()
    def update_moving_gradient(self) -> None:
        """Eq. 7, ``e_t = mu e_{t-1} + sum(g_t)``; call after ``backward()``, before ``zero_grad``.

        g_t is the gradient of the balanced classifier's weight [C, D]; summing it over the classes
        gives the D-dim accumulated gradient that eq. 10 projects the class weights on.
        """
        grad = self.balanced.weight.grad
        if grad is None:
            return
        self.moving_gradient.mul_(self.momentum).add_(grad.sum(dim=0).to(self.moving_gradient.dtype))

    def set_epoch(self, epoch: int, num_epochs: int) -> None:
        for loss in (self.head_loss, self.tail_loss, self.balanced_loss):
            loss.set_epoch(epoch, num_epochs)

    def loss(self, outputs: tuple[Tensor, Tensor, Tensor], states: Tensor, *, index: Tensor | None = None) -> Tensor:
        """Each branch's COMIC label loss plus ``lambda_htb * htb_loss`` (eq. 1 for all three)."""
        z_head, z_tail, z_balanced = outputs
        head_label_loss = self.head_loss(z_head, states, index=index)
        tail_label_loss = self.tail_loss(z_tail, states, index=index)
        balanced_label_loss = self.balanced_loss(z_balanced, states, index=index)
        balance = htb_loss(
            z_head=z_head,
            z_tail=z_tail,
            z_balanced=z_balanced,
            head_label_loss=head_label_loss,
            tail_label_loss=tail_label_loss,
            alpha=self.alpha,
            detach_teachers=self.detach_teachers,
        )
        self.last_corrections = self.balanced_loss.last_corrections
        # Detached tensors, not floats: converting here would sync the device every step.
        self.last_parts = {
            "head": head_label_loss.detach(),
            "tail": tail_label_loss.detach(),
            "balanced": balanced_label_loss.detach(),
            "htb": balance.detach(),
        }
        return head_label_loss + tail_label_loss + balanced_label_loss + self.lambda_htb * balance


__all__ = ["ComicLoss", "CosineClassifier", "HeadTailBalancer", "head_tail_factor", "htb_loss"]
