"""JSON-safe values: NaN and infinities become null, numpy scalars and paths plain JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from labelfix.internal.json_values import finite_floats, finite_or_none, jsonable, safe_ratio


def test_non_finite_values_become_none() -> None:
    assert finite_or_none(np.float32(0.25)) == 0.25
    assert [finite_or_none(v) for v in (None, math.nan, math.inf, -math.inf)] == [None] * 4
    assert finite_floats(np.array([1.0, np.nan, np.inf])) == [1.0, None, None]


def test_jsonable_output_is_strict_json() -> None:
    value = jsonable({"a": (np.int64(2), np.float64(-np.inf)), 3: [Path("x/y"), {"b": np.float32(1.5)}]})
    assert value == {"a": [2, None], "3": ["x/y", {"b": 1.5}]}
    json.dumps(value, allow_nan=False)  # raises on NaN / Infinity


def test_safe_ratio_of_zero_denominator_is_none() -> None:
    assert safe_ratio(1, 4) == 0.25
    assert safe_ratio(3, 0) is None
