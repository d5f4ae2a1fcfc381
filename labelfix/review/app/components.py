"""Rendering helpers of the review app: images with named boxes, label chips. UI only, no store access."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from labelfix.review.models import ImageBox, ImageLabel

PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#0f8a9d", "#f032e6", "#6b8e23", "#469990",
           "#9a6324"]


def color_of(category_id: int) -> str:
    return PALETTE[int(category_id) % len(PALETTE)]


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError, ValueError):  # a Pillow built without FreeType: the small bitmap font
        return ImageFont.load_default()


def render_image(path: Path | None, *, boxes: Sequence[ImageBox] = (), highlight: int | None = None,
                 size: int = 256) -> Image.Image:
    """The image fitted into ``size`` x ``size`` (small images are enlarged), with its source boxes and names.

    Each box is outlined in its class colour and carries its class name on a filled tag, large enough to
    read at the shown size. The box of ``highlight`` (the class a suggestion asks about) is drawn thicker.
    A grey placeholder stands in when the store has no readable file for the image.
    """
    from labelfix.io.images import load_rgb

    try:
        image = load_rgb(path) if path is not None else None
    except Exception:  # noqa: BLE001 - any unreadable file becomes the placeholder
        image = None
    if image is None:
        placeholder = Image.new("RGB", (size, size * 3 // 4), (220, 220, 220))
        ImageDraw.Draw(placeholder).text((8, 8), "no image file", fill=(90, 90, 90), font=_font(max(12, size // 20)))
        return placeholder
    scale = min(size / image.width, size / image.height)
    shown = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                         Image.Resampling.NEAREST if scale > 2 else Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(shown)
    font = _font(max(11, min(22, size // 24)))
    for box in boxes:
        x, y, w, h = (value * scale for value in box.bbox)
        color = color_of(box.category_id)
        width = max(2, size // 170) + (2 if box.category_id == highlight else 0)
        draw.rectangle([x, y, x + w, y + h], outline=color, width=width)
        left, top, right, bottom = draw.textbbox((0, 0), box.name, font=font)
        tag_w, tag_h = right - left + 6, bottom - top + 4
        tag_x = min(max(0.0, x), shown.width - tag_w)
        tag_y = y - tag_h if y - tag_h >= 0 else min(y + h, shown.height - tag_h)
        draw.rectangle([tag_x, tag_y, tag_x + tag_w, tag_y + tag_h], fill=color)
        draw.text((tag_x + 3 - left, tag_y + 2 - top), box.name, fill="white", font=font)
    return shown


def encode(image: Image.Image, *, quality: int = 88) -> bytes:
    """JPEG bytes of ``image``: small and quick to encode; Streamlit serves equal bytes from one URL."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _escape(text: str) -> str:
    return "".join("\\" + ch if ch in "[]*_`~:\\" else ch for ch in str(text))


def label_chips(labels: Sequence[ImageLabel], *, suggested: int | None = None) -> str:
    """Markdown badges of an image's current labels: positives (accepted ones marked), verified negatives struck.

    Examples
    --------
    >>> label_chips([ImageLabel(1, "cat", 1, "original")])
    ':green-badge[cat]'
    >>> label_chips([ImageLabel(1, "cat", -1, "manual")])
    ':gray-badge[not cat]'
    """
    chips = []
    for label in labels:
        name = _escape(label.name)
        if label.state > 0:
            color = "blue" if label.origin in ("accepted", "auto") else "green"
            mark = " ✓" if label.origin in ("accepted", "auto") else ""
            chips.append(f":{color}-badge[{name}{mark}]")
        else:
            chips.append(f":gray-badge[not {name}]")
    if not chips:
        return ":gray-badge[no labels]"
    return " ".join(chips)
