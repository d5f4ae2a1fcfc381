"""Small helpers every reader shares: the file hash and integer ids (COCO's, a table's ``image_id``)."""

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


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # the store's ids are BIGINT; negative ids are fine (COCO allows them)


def id_range_error(value: int, *, name: str, file: Path, record: str) -> InputError | None:
    """The message for an integer id the store cannot hold (None when it fits in a signed 64-bit integer).

    Examples
    --------
    >>> id_range_error(2**63, name="image id", file=Path("a.json"), record="images[0]").problem
    'image id 9223372036854775808 is out of range (at most 2^63-1)'
    >>> id_range_error(-5, name="image id", file=Path("a.json"), record="images[0]") is None
    True
    """
    if INT64_MIN <= value <= INT64_MAX:
        return None
    bound = "at most 2^63-1" if value > 0 else "at least -2^63"
    return InputError(f"{name} {value} is out of range ({bound})", file=file, record=record,
                      fix="renumber (ids from 1 up are usual; labelfix stores ids as 64-bit integers)")
