"""Rendering helpers of the review app: images with boxes, label chips. UI only, no store access."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from labelfix.review.models import ImageBox, ImageLabel

PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#469990",
           "#9a6324"]


def color_of(category_id: int) -> str:
    return PALETTE[int(category_id) % len(PALETTE)]


def render_image(path: Path | None, *, boxes: Sequence[ImageBox] = (), highlight: int | None = None,
                 size: int = 256) -> Image.Image:
    """The image fitted into ``size`` x ``size`` (small images are enlarged), with its source boxes drawn.

    A grey placeholder stands in when the store has no readable file for the image.
    """
    from labelfix.io.images import load_rgb

    try:
        image = load_rgb(path) if path is not None else None
    except Exception:  # noqa: BLE001 - any unreadable file becomes the placeholder
        image = None
    if image is None:
        placeholder = Image.new("RGB", (size, size * 3 // 4), (220, 220, 220))
        ImageDraw.Draw(placeholder).text((8, 8), "no image file", fill=(90, 90, 90))
        return placeholder
    scale = min(size / image.width, size / image.height)
    shown = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                         Image.Resampling.NEAREST if scale > 2 else Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(shown)
    for box in boxes:
        x, y, w, h = (value * scale for value in box.bbox)
        width = max(1, round(scale / 2)) + (2 if box.category_id == highlight else 0)
        draw.rectangle([x, y, x + w, y + h], outline=color_of(box.category_id), width=width)
        draw.text((x + 2, y + 1), box.name, fill=color_of(box.category_id))
    return shown


def _escape(text: str) -> str:
    return "".join("\\" + ch if ch in "[]*_`~:\\" else ch for ch in str(text))


def label_chips(labels: Sequence[ImageLabel], *, suggested: int | None = None) -> str:
    """Markdown badges of an image's current labels: positives (accepted ones marked), verified negatives struck.

    Examples
    --------
    >>> label_chips([ImageLabel(1, "cat", 1, "original")])
    ':green-badge[cat]'
    """
    chips = []
    for label in labels:
        name = _escape(label.name)
        if label.state > 0:
            color = "blue" if label.origin in ("accepted", "auto") else "green"
            mark = " ✓" if label.origin in ("accepted", "auto") else ""
            chips.append(f":{color}-badge[{name}{mark}]")
        else:
            chips.append(f":red-badge[not {name}]")
    if not chips:
        return ":gray-badge[no labels]"
    return " ".join(chips)
