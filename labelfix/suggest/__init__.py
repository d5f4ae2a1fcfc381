"""Suggestions: score label cells, set per-class thresholds on validation, and file missing/spurious suggestions.

* :mod:`~labelfix.suggest.scoring`: a run's (or an ensemble's) score of every cell, in SQL.
* :mod:`~labelfix.suggest.thresholds`: per-class thresholds reaching a target precision (arrays only).
* :mod:`~labelfix.suggest.arrays`: :func:`find_missing_labels` and :func:`validation_thresholds`,
  the same thresholds from arrays alone (numpy only, no store).
* :mod:`~labelfix.suggest.pu`: the same without hiding, by the positive-unlabelled correction (arrays only).
* :mod:`~labelfix.suggest.calibration`: which of the two (or an uncalibrated ranked list) each class gets.
* :mod:`~labelfix.suggest.report`: what a call wrote, per class, and why in words.
* :mod:`~labelfix.suggest.streaming`: the candidate scan and the ranked bulk write, inside DuckDB.
* :mod:`~labelfix.suggest.run`: :func:`suggest` (one call: thresholds, suggestions, opt-in auto-accept)
  and :func:`revert_auto`.

The names below load on first use, so ``labelfix.suggest.arrays`` imports without DuckDB.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labelfix.suggest.arrays import find_missing_labels
    from labelfix.suggest.run import SuggestConfig, SuggestReport, revert_auto, suggest

_WHERE = {"SuggestConfig": "run", "SuggestReport": "run", "revert_auto": "run", "suggest": "run",
          "find_missing_labels": "arrays"}

__all__ = ["SuggestConfig", "SuggestReport", "find_missing_labels", "revert_auto", "suggest"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
