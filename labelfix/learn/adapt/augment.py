"""Label-preserving augmentation of cached feature maps (adapt mode).

The maps are the output of the frozen bottom blocks, so image augmentation has to happen on them:
a horizontal flip of the map, a small shift (zero-filled, never wrapped around: a wrapped object would
appear at the other border), and erasing a small rectangle (Cutout, as the ASL and SPLC authors use
on images). Every operation keeps every label true: nothing is cropped away, and the erased patch is
small next to the map (at most ``erase_max_fraction`` of each side, default 1/4: under 7 % of the
area), so an object is at worst partly hidden, as occlusion does in real images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class MapAugment:
    """Settings; ``MapAugment.from_dict(config.adapt_augment)`` builds it from a TrainConfig field."""

    flip: bool = True
    max_shift: int = 1
    erase_prob: float = 0.5
    erase_max_fraction: float = 0.25

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "MapAugment":
        values = dict(values or {})
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown adapt_augment keys {sorted(unknown)}; use {sorted(cls.__dataclass_fields__)}")
        return cls(**values)

    @property
    def enabled(self) -> bool:
        return self.flip or self.max_shift > 0 or self.erase_prob > 0


def augment_maps(maps: Tensor, settings: MapAugment, *, generator: torch.Generator) -> Tensor:
    """Augment a batch of maps [B, C, H, W] (a new tensor; shape, dtype and device kept).

    Randomness comes from ``generator`` (a CPU generator), so a seeded run is reproducible.
    """
    if not settings.enabled or not len(maps):
        return maps
    batch, _, height, width = maps.shape
    out = maps.clone()
    if settings.flip:
        flip = torch.rand(batch, generator=generator) < 0.5
        if flip.any():
            index = flip.nonzero().squeeze(1).to(maps.device)
            out[index] = out[index].flip(-1)
    if settings.max_shift > 0:
        s = settings.max_shift
        shifts = torch.randint(-s, s + 1, (batch, 2), generator=generator)
        padded = torch.nn.functional.pad(out, (s, s, s, s))
        for b in range(batch):
            dy, dx = int(shifts[b, 0]), int(shifts[b, 1])
            if dy or dx:
                out[b] = padded[b, :, s + dy:s + dy + height, s + dx:s + dx + width]
    if settings.erase_prob > 0:
        erase = torch.rand(batch, generator=generator) < settings.erase_prob
        max_h = max(1, int(height * settings.erase_max_fraction))
        max_w = max(1, int(width * settings.erase_max_fraction))
        for b in erase.nonzero().squeeze(1).tolist():
            h = int(torch.randint(1, max_h + 1, (1,), generator=generator))
            w = int(torch.randint(1, max_w + 1, (1,), generator=generator))
            y = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            x = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            out[b, :, y:y + h, x:x + w] = 0
    return out


__all__ = ["MapAugment", "augment_maps"]
