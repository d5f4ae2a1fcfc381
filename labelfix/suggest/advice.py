"""The words ``labelfix suggest`` adds to its report and reasons: advice, notes and run names (text only).

Pure helpers of :mod:`labelfix.suggest.run`, kept apart so the run module holds the flow: what a ranked list's
class needs to become calibrated (:func:`next_step`), what the train split did with a class's validation note
(:func:`train_note`), what a small val split costs (:func:`small_val_note`), which other runs' open suggestions a
call leaves (:func:`other_runs_note`), and the run named in each reason (:func:`reason_prefix`).
"""

from __future__ import annotations

import json
import math
from typing import Any

from labelfix.internal.words import counted
from labelfix.learn.validation import MIN_VAL_POSITIVES_PER_CLASS
from labelfix.store.database import Store
from labelfix.store.reviews import DECIDED_SUGGESTIONS_SQL
from labelfix.suggest.calibration import FEW_TRAIN_POSITIVES, unreached_note
from labelfix.suggest.report import COMPLETE_NOTE
from labelfix.suggest.streaming import BELOW_TARGET, UNCALIBRATED, UNREACHED

__all__ = ["FEW_TRAIN_POSITIVES", "SAFE_AUTO_ACCEPT_PRECISION", "auto_accept_note", "auto_accept_warning",
           "epoch_words", "next_step", "other_runs_note", "reason_prefix", "small_val_note", "train_note"]


def reason_prefix(store: Store, *, source_runs: list[int], combine: str) -> str:
    """e.g. ``splc run 3, epoch 10`` or ``mean of an run 2, epoch 10 + splc run 3, epoch 10``.

    The epoch is the one whose scores the run stored (its best epoch), counted from 1 as ``labelfix train``
    and ``labelfix runs`` count; a cross-fitted run names the median of its folds' best epochs.
    """
    parts = []
    for run_id in source_runs:
        row = store.fetchone("SELECT method, metrics FROM runs WHERE run_id = ?", [run_id])
        method, metrics = row if row is not None else ("unknown", None)  # check_runs made sure the run exists
        parts.append(f"{method} run {run_id}{epoch_words(metrics)}")
    return parts[0] if len(parts) == 1 else f"{combine} of " + " + ".join(parts)


def epoch_words(metrics: Any) -> str:
    """``", epoch 7"`` from a run's stored metrics (``best_epoch`` counts from 0), or ``""`` without one.

    Examples
    --------
    >>> epoch_words('{"best_epoch": 6}'), epoch_words('{"best_epoch": 4, "best_epochs": [3, 4, 6]}')
    (', epoch 7', ', epoch 5 (median of 3 folds)')
    >>> epoch_words(None), epoch_words('{}')
    ('', '')
    """
    values = json.loads(metrics) if isinstance(metrics, str) else (metrics or {})
    best = values.get("best_epoch")
    if not isinstance(best, int) or best < 0:
        return ""
    folds = values.get("best_epochs")
    return f", epoch {best + 1}" + (f" (median of {len(folds)} folds)" if isinstance(folds, list) else "")


def other_runs_note(store: Store, *, run_id: int) -> list[str]:
    """Open suggestions of other runs, which this call leaves as they are (it replaces only ``run_id``'s), and
    which of the runs the review queue shows (the newest run with current suggestions), in words."""
    others = store.fetchall(f"SELECT run_id, count(*) FROM suggestions WHERE run_id <> ? AND superseded_at IS NULL "
                            f"AND suggestion_id NOT IN ({DECIDED_SUGGESTIONS_SQL}) GROUP BY run_id ORDER BY run_id",
                            [run_id])
    if not others:
        return []
    listed = ", ".join(f"run {r} has {n}" for r, n in others)
    newer = [r for r, _ in others if r > run_id]
    shown = (f"the review queue shows the newest run's (run {max(newer)}), not these" if newer else
             f"the review queue shows the newest run's, these (run {run_id}); the older ones stay in the store, "
             f"undecided, and are not shown")
    return [f"earlier open suggestions of other runs are left as they are ({listed}): {shown}"]


def small_val_note(small_val: str, *, min_support: int, held_back: bool) -> str:
    """What a val split too small to vouch for the model costs this call, and the fix, in whole sentences.

    Examples
    --------
    >>> print(small_val_note("the validation split has only 3 labelled positives for 2 trained classes",
    ...                      min_support=5, held_back=True))
    the validation split has only 3 labelled positives for 2 trained classes. So the epoch training chose is uncertain, and classes with fewer than 5 val positives get ranked lists marked NOT calibrated. This call also holds back its "remove this label" (spurious) suggestions (--spurious writes them anyway). Fix: label the classes on more val images (at least 5 positives per class) and train again
    """
    held = (" This call also holds back its \"remove this label\" (spurious) suggestions (--spurious writes them "
            "anyway)." if held_back else "")
    return (f"{small_val}. So the epoch training chose is uncertain, and classes with fewer than {min_support} val "
            f"positives get ranked lists marked NOT calibrated.{held} Fix: label the classes on more val images "
            f"(at least {MIN_VAL_POSITIVES_PER_CLASS} positives per class) and train again")


def next_step(*, kind: str, train_positives: int, val_positives: int, head_mode: bool, target: float,
              min_support: int) -> str:
    """What would make a class's ranked (uncalibrated, below-target or no-hit) list a calibrated one, in words.

    Examples
    --------
    >>> next_step(kind="uncalibrated", train_positives=1, val_positives=7, head_mode=True, target=0.9,
    ...           min_support=5).startswith(". To do: only 1 train positive, too few")
    True
    """
    # A class gets a train list's advice only once: the first cause that applies, most basic first.
    if train_positives < FEW_TRAIN_POSITIVES:
        return (f". To do: only {counted(train_positives, 'train positive')}, too few to learn the class from: "
                f"label it on more train images and train again")
    if kind == UNCALIBRATED and val_positives < min_support:
        return (f". To do: label this class on val images (it has {counted(val_positives, 'labelled val positive')}; "
                f"calibration needs {min_support}) and run suggest again")
    stronger = ", or train a stronger model (`labelfix train --mode adapt`)" if head_mode else ""
    if kind in (BELOW_TARGET, UNREACHED):
        return (f". To do: review the ranked list as is, or lower --target-precision (now {target:g}){stronger}, "
                f"or label more train images of this class")
    # val positives enough but scored too low for an estimate: the class is not learned well enough
    return f". To do: label more train images of this class{stronger}"


def train_note(val_note: str, *, unknown: int, flagged: int, kept: int, threshold: float, top_k: int,
               unreached: bool, expected: float, weak: bool = False) -> str:
    """The validation note plus what the train split did with it, in words."""
    if unknown <= 0:
        return COMPLETE_NOTE  # (the val estimate says nothing here: no train cell can be missing)
    if unreached:  # a calibrated threshold no train cell reaches: a ranked list took over; not "below target"
        return unreached_note(val_note, unknown=unknown, threshold=threshold, k=top_k, weak=weak)
    if top_k == 0 and math.isfinite(threshold) and flagged == 0:
        return (f"{val_note}; no undecided unknown train cell (of {unknown} unknown) scores at or above the "
                f"threshold {threshold:.3f}")
    if kept < flagged:
        return f"{val_note}; kept the top {kept} of {flagged} flagged (max per class)"
    if top_k > 0 and flagged == 0:
        return f"{val_note}; no undecided unknown train cell left to rank"
    return val_note


# Auto-accepting at a lower target precision than this gets a warning: at 0.8, one auto-accepted label in five may
# already be wrong, and each one is a label training will read as truth until someone reverts it.
SAFE_AUTO_ACCEPT_PRECISION = 0.8


def auto_accept_warning(*, target: float) -> str | None:
    """A warning when auto-accept runs at a low target precision (``None`` at or above
    ``SAFE_AUTO_ACCEPT_PRECISION``).

    Examples
    --------
    >>> print(auto_accept_warning(target=0.3))
    auto-accepting at target precision 0.3: up to 70% of the auto-accepted labels may be wrong (their classes' thresholds are set to reach precision 0.3 on validation, no more); raise --target-precision (default 0.9) to auto-accept safely; `labelfix revert-auto` undoes these
    >>> auto_accept_warning(target=0.9) is None
    True
    """
    if target >= SAFE_AUTO_ACCEPT_PRECISION:
        return None
    return (f"auto-accepting at target precision {target:g}: up to {1 - target:.0%} of the auto-accepted labels may "
            f"be wrong (their classes' thresholds are set to reach precision {target:g} on validation, no more); raise "
            f"--target-precision (default 0.9) to auto-accept safely; `labelfix revert-auto` undoes these")


def auto_accept_note(*, above: float, accepted: int, held_back: int, target: float, measured: int, estimated: int,
                     estimated_allowed: bool, suggested: int = 1) -> str | None:
    """Why auto-accept, asked for, accepted nothing, in words (``None`` when it accepted some).

    Parameters
    ----------
    above : float
        The auto-accept score (``--auto-accept-above``).
    accepted, held_back : int
        Labels auto-accepted; suggestions above ``above`` held back because ``revert-auto`` undid them before.
    target : float
        The target precision.
    measured, estimated : int
        Classes whose threshold reaches ``target`` as measured by hide-and-measure / as a PU estimate (not
        counting ranked lists).
    estimated_allowed : bool
        ``--auto-accept-estimated`` was given.
    suggested : int
        Missing suggestions the call wrote (0: nothing to accept, e.g. every train cell is labelled).

    Examples
    --------
    >>> print(auto_accept_note(above=0.3, accepted=0, held_back=0, target=0.9, measured=0, estimated=2,
    ...                        estimated_allowed=False))
    auto-accept: 0, because only estimated classes (PU or an estimated miss rate: 2) reached target precision 0.9, and their precision is an estimate, not measured; pass --auto-accept-estimated to auto-accept them too
    """
    if accepted:
        return None
    eligible = measured + (estimated if estimated_allowed else 0)
    if not suggested:
        why = "this call wrote no missing suggestion to accept"
    elif held_back:
        why = (f"the {counted(held_back, 'suggestion')} above {above:g} {'waits' if held_back == 1 else 'wait'} for a "
               f"reviewer: `labelfix revert-auto` undid an earlier auto-accept of those cells")
    elif eligible:
        why = (f"no missing suggestion of the {counted(eligible, 'class', 'classes')} that reached target precision "
               f"{target:g} scored above {above:g}")
    elif estimated:
        why = (f"only estimated classes (PU or an estimated miss rate: {estimated}) reached target precision "
               f"{target:g}, and their precision is an estimate, not measured; pass --auto-accept-estimated to "
               "auto-accept them too")
    else:
        why = (f"no class reached target precision {target:g} on validation, and ranked lists (NOT calibrated) are "
               f"never auto-accepted")
    return f"auto-accept: 0, because {why}"

