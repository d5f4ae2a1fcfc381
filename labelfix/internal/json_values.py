"""Values made JSON-ready: JSON has no NaN or infinity, so those become ``None`` (null)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import numpy as np


def finite_or_none(value: Any) -> Optional[float]:
    """``float(value)``, or ``None`` when it is ``None``, NaN or infinite.

    Examples
    --------
    >>> finite_or_none(np.float32(0.5)), finite_or_none(float("nan")), finite_or_none(None)
    (0.5, None, None)
    """
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def finite_floats(values: Any) -> list[Optional[float]]:
    """:func:`finite_or_none` of every element of a 1-D array-like."""
    return [finite_or_none(v) for v in np.asarray(values, dtype=np.float64)]


def jsonable(value: Any) -> Any:
    """Nested dicts / lists / tuples with numpy scalars and paths turned into plain JSON values.

    Examples
    --------
    >>> jsonable({"a": (np.int64(2), float("inf")), 3: Path("x")})
    {'a': [2, None], '3': 'x'}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return finite_or_none(value)
    if isinstance(value, Path):
        return str(value)
    return value


def safe_ratio(numerator: float, denominator: float) -> Optional[float]:
    """``numerator / denominator`` as a float, ``None`` when the denominator is zero."""
    return float(numerator) / float(denominator) if denominator else None


__all__ = ["finite_floats", "finite_or_none", "jsonable", "safe_ratio"]
