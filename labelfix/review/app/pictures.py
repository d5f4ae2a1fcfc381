"""The app's pictures: rendered once per (file, boxes, size), kept as JPEG bytes, the next ones made ahead.

A key press must not wait for an image: the large picture of the next items on the page, and the
pictures of the items that probably come on the next page, are rendered in a background thread while
the reviewer looks at the current one, and the large picture goes into the page inline (a data URL), so the browser shows it with the rest of the panel instead of fetching it
afterwards. Thumbnails go through ``st.image``: equal bytes keep their URL, so the browser's cache
serves the unchanged ones.
"""

from __future__ import annotations

import base64
import functools
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import streamlit as st

from labelfix.review.app.backend import Filters
from labelfix.review.app.components import encode, render_image
from labelfix.review.app.state import service
from labelfix.review.models import ImageBox, QueueItem
from labelfix.review.service import ReviewService

FOCUS_SIZE = 512
THUMB_SIZE = 160

_ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="labelfix-pictures")
# Decoding, resizing and encoding release the GIL: a page's thumbnails are rendered side by side.
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="labelfix-thumbnails")
_queued: set[tuple] = set()
_queued_lock = threading.Lock()


@functools.lru_cache(maxsize=4096)
def _picture(path: str | None, mtime: float, boxes: tuple, highlight: int | None, size: int) -> bytes:
    image = render_image(Path(path) if path else None, boxes=[ImageBox(*b) for b in boxes], highlight=highlight,
                         size=size)
    return encode(image)


_files: dict[tuple[str, int], tuple[str | None, float]] = {}


def _image_file(service_: ReviewService, image_id: int) -> tuple[str | None, float]:
    # The file of an image does not change in a store; its mtime keys the picture cache.
    key = (str(service_.path), int(image_id))
    found = _files.get(key)
    if found is None:
        path = service_.image_path(image_id=image_id)
        found = (str(path), path.stat().st_mtime) if path else (None, 0.0)
        if len(_files) > 200_000:
            _files.clear()
        _files[key] = found
    return found


def _arguments(item: QueueItem, boxes: Iterable[ImageBox], size: int, service_: ReviewService | None = None) -> tuple:
    path, mtime = _image_file(service_ or service(), item.image_id)
    return path, mtime, tuple((b.category_id, b.name, b.bbox) for b in boxes), item.category_id, size


def picture(item: QueueItem, boxes: Iterable[ImageBox], *, size: int) -> bytes:
    """JPEG bytes of the item's image at ``size`` with its boxes named (the asked class's box thicker)."""
    return _picture(*_arguments(item, boxes, size))


def prepare_thumbnails(items: Iterable[QueueItem], boxes: dict[int, list[ImageBox]]) -> None:
    """Render the thumbnails of ``items`` that are not cached yet, in parallel (a new page's first draw)."""
    jobs = [_arguments(item, boxes.get(item.image_id, []), THUMB_SIZE) for item in items]
    for _ in _pool.map(lambda arguments: _picture(*arguments), jobs):
        pass


def show_thumbnail(item: QueueItem, boxes: Iterable[ImageBox]) -> None:
    st.image(picture(item, boxes, size=THUMB_SIZE), width=THUMB_SIZE)


def show_large(item: QueueItem, boxes: Iterable[ImageBox]) -> None:
    """The large picture, inline, in the keyed container the zoom and pan handlers look for."""
    data = base64.b64encode(picture(item, boxes, size=FOCUS_SIZE)).decode("ascii")
    alt = f"image {item.image_id}"
    st.container(key="focus_image").html(
        f'<img src="data:image/jpeg;base64,{data}" alt="{alt}" style="width:100%;max-width:{FOCUS_SIZE}px;'
        f'display:block;border-radius:6px">')


def render_ahead(items: Iterable[QueueItem], boxes: dict[int, list[ImageBox]]) -> None:
    """Render the large pictures of ``items`` in the background (each once), for the next key presses."""
    jobs = []
    for item in items:
        arguments = _arguments(item, boxes.get(item.image_id, []), FOCUS_SIZE)
        with _queued_lock:
            if len(_queued) > 50_000:
                _queued.clear()
            if arguments in _queued:
                continue
            _queued.add(arguments)
        jobs.append(arguments)
    for arguments in jobs:
        _ahead.submit(_picture, *arguments)


def render_next_page(service_: ReviewService, filters: Filters) -> None:
    """In the background: the pictures of the items that probably come on the next page (the queue after this
    page), so a new page is drawn without rendering first."""
    if not filters.leasing:
        return

    def job() -> None:
        items = service_.items(category_id=filters.category_id, run_id=filters.run_id, head_first=filters.head_first,
                               min_score=filters.min_score, max_score=filters.max_score, kinds=filters.kinds,
                               image_id=filters.image_id, with_label=filters.with_label, statuses=filters.statuses,
                               limit=filters.page_size, offset=filters.page_size)
        boxes = service_.image_boxes(image_ids=[i.image_id for i in items])
        for n, item in enumerate(items):
            _picture(*_arguments(item, boxes.get(item.image_id, []), THUMB_SIZE, service_))
            if n < 2:
                _picture(*_arguments(item, boxes.get(item.image_id, []), FOCUS_SIZE, service_))

    _ahead.submit(job)
