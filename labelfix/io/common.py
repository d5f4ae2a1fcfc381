"""Small helpers every reader shares: the file hash and COCO's integer ids."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, TypeGuard


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_int_id(value: Any) -> TypeGuard[int]:
    """COCO ids are integers; bools and numeric strings are refused."""
    return isinstance(value, int) and not isinstance(value, bool)
