"""Images of the store as a torch Dataset: safe paths, any image mode, decode failures reported by id."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from torch.utils.data import Dataset

from labelfix.errors import LabelfixError, StoreError
from labelfix.io.images import load_rgb, safe_image_path
from labelfix.store.database import Store


@dataclass(frozen=True)
class ImageRecord:
    image_id: int
    path: Path


def image_records(store: Store, *, splits: Optional[tuple[str, ...]] = None) -> list[ImageRecord]:
    """Every image of the store (or of some splits) with its resolved path, sorted by image id."""
    where, parameters = "", []
    if splits:
        where = f"WHERE split IN ({', '.join('?' for _ in splits)})"
        parameters = list(splits)
    rows = store.fetchall(f"SELECT image_id, file_name, images_root FROM images {where} ORDER BY image_id",
                          parameters)
    records = []
    for image_id, file_name, root in rows:
        if file_name is None or root is None:
            raise StoreError(f"image {image_id} has no image file (ingested from a features table)",
                             file=store.path, fix="use head mode with the features embedding set")
        records.append(ImageRecord(int(image_id), safe_image_path(root=root, file_name=file_name,
                                                                  record=f"image id {image_id}")))
    return records


class StoreImageDataset(Dataset):
    """Yields ``(image_tensor, position, ok)``; an image that fails to decode gives a zero tensor and ok=False.

    Failing softly keeps a batch alive; callers report the failed ids instead of crashing.
    """

    def __init__(self, records: list[ImageRecord], *, transform: Callable, image_size: int) -> None:
        self.records = records
        self.transform = transform
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, position: int) -> tuple[torch.Tensor, int, bool]:
        record = self.records[position]
        try:
            image = load_rgb(record.path)
        except (OSError, ValueError, LabelfixError):
            return torch.zeros(3, self.image_size, self.image_size), position, False
        return self.transform(image), position, True
