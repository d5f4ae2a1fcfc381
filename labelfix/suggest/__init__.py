"""Suggestions: score label cells, set per-class thresholds on validation, and file missing/spurious suggestions.

* :mod:`~labelfix.suggest.scoring`: a run's (or an ensemble's) score of every cell, in SQL.
* :mod:`~labelfix.suggest.thresholds`: per-class thresholds reaching a target precision (arrays only).
* :mod:`~labelfix.suggest.pu`: the same without hiding, by the positive-unlabelled correction (arrays only).
* :mod:`~labelfix.suggest.calibration`: which of the two (or an uncalibrated ranked list) each class gets.
* :mod:`~labelfix.suggest.report`: what a call wrote, per class, and why in words.
* :mod:`~labelfix.suggest.streaming`: the candidate scan and the ranked bulk write, inside DuckDB.
* :mod:`~labelfix.suggest.run`: :func:`suggest` (one call: thresholds, suggestions, opt-in auto-accept)
  and :func:`revert_auto`.
"""

from labelfix.suggest.run import SuggestConfig, SuggestReport, revert_auto, suggest

__all__ = ["SuggestConfig", "SuggestReport", "revert_auto", "suggest"]
