"""Small helpers every reader shares: the file hash and COCO's integer ids."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, TypeGuard

from labelfix.errors import InputError


def file_sha256(path: Path) -> str:
    """The file's SHA-256, read in 1 MiB blocks."""
    if not Path(path).is_file():
        raise InputError(f"file {path} does not exist", file=path, fix="check the path")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_int_id(value: Any) -> TypeGuard[int]:
    """COCO ids are integers; bools and numeric strings are refused."""
    return isinstance(value, int) and not isinstance(value, bool)
