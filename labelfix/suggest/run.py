"""Turn a run's scores into per-class thresholded suggestions in the store, with opt-in auto-correction.

Which cells are suggested
-------------------------
Only the **train** split: it is the data being fixed and the one training reads. Validation is
the calibration set (its positives are hidden to set thresholds, below), and test must stay as
annotated for an honest benchmark. ``missing`` suggestions are unknown train cells scoring at or
above their class threshold; ``spurious`` ones are original train positives whose probability is at
most ``spurious_max_score``: lower priority (the mission is missing labels), stored with their raw
probability so a queue sorted by score shows them after the missing ones, ranked lowest first.
Verified negatives (-1) are never unknown, so never suggested; a cell with an accept, reject or
auto-accept still in force (not undone) is never suggested again.

How thresholds are estimated
----------------------------
Validation's observed positives are known positives. We hide ``val_hide_fraction`` of them
(:func:`~labelfix.suggest.thresholds.simulate_validation_hiding`) and, per class, take the lowest
score threshold whose precision among val's unknown-plus-hidden cells reaches the target. Hiding
does not change the model's val scores: val labels are never training targets, so the scores are
what they would have been had those labels really been missing; hiding only decides which val
cells count as candidates and which as positives. Val's genuinely missing labels count as false
positives, so by default the estimate is conservative. ``expected_missing_rate`` corrects for them with a
rate you know, or ``"auto"``, a rate estimated from val's unknown cells that score like the hidden positives
(:mod:`~labelfix.suggest.missing_rate`). That estimate is opt-in: a fresh test found it overstating precision
on weak models and on some demo seeds, so its thresholds are filed as estimates (reasons starting
``ESTIMATED (miss rate estimated, not measured)``), never auto-accepted without ``auto_accept_estimated``.
The hidden share (default 0.4) matches the benchmark's hidden rate; set it near the miss rate you expect.

When hiding is not possible
---------------------------
Hiding keeps one label per image, so single-positive data (one label per image), a one-class dataset
or a small validation split leave little or nothing to hide. Each class then gets the first method
that applies (:mod:`~labelfix.suggest.calibration`): hide-and-measure (own or pooled threshold), the
positive-unlabelled correction of Elkan & Noto 2008 fitted on the labelled val positives
(:mod:`~labelfix.suggest.pu`), or, where no estimate is possible (no val positives, too few), a ranked
list of its ``uncalibrated_top_k`` best unknown train cells, filed with a NULL threshold and a reason
starting ``UNCALIBRATED``. A class whose estimate says nothing reaches the target precision (no threshold
does on validation, or no unknown train cell reaches its threshold) gets a short ranked list too, of at
most ``below_target_top_k`` cells and its expected missing count, filed the same way with a reason
starting ``BELOW TARGET`` (``NO HIT`` where validation reached the target but no train cell reaches the
threshold). So every class the model learned gets suggestions. Ranked-list suggestions are never
auto-accepted and queue after calibrated ones. Suggestions above a PU-estimated threshold have reasons
starting ``ESTIMATED (PU, not measured)``, which the review queue shows as such, and are auto-accepted only
with ``auto_accept_estimated``. The report says per class which method was
used and, in words, why a class got few or none; nothing is a Python warning.

Replacing earlier calls
-----------------------
Suggestions are filed under the scored run (or an ``ensemble`` run row for several runs). A new
call for the same run replaces that run's undecided suggestions: untouched ones are deleted;
ones with review events but no decision in force (skipped, unsure, undone) get ``superseded_at``
and keep their history (migration ``0003_suggest``). Decided suggestions are never touched.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from labelfix.errors import StoreError
from labelfix.internal.json_values import finite_or_none
from labelfix.learn.validation import small_validation_text
from labelfix.states import POSITIVE
from labelfix.store.database import Store
from labelfix.store.labels import load_label_matrix, restore_original, set_labels
from labelfix.store.reviews import auto_accepts_in_force, record_auto_accepts, record_undos, reverted_auto_cells
from labelfix.store.runs import ensemble_run, latest_run_id
from labelfix.store.suggestions import (auto_accept_candidates, file_ranked, finish_call, queue_activity, replace_open,
                                        start_call)
from labelfix.suggest.advice import (auto_accept_note, auto_accept_warning, next_step, other_runs_note, reason_prefix,
                                     small_val_note, train_note)
from labelfix.suggest.arrays import calibrate_validation
from labelfix.suggest.calibration import HIDE, NOT_LEARNED, ClassCalibration
from labelfix.suggest.report import COMPLETE
from labelfix.suggest.report import ClassSummary, SuggestReport, queue_warning
from labelfix.suggest.scoring import DEFAULT_BATCH_ROWS, check_runs, read_split_scores, score_query
from labelfix.suggest.streaming import (BELOW_TARGET, MISSING, SPURIOUS, UNCALIBRATED, UNREACHED, candidate_counts,
                                        ranked_candidates)

__all__ = ["ClassSummary", "SuggestConfig", "SuggestReport", "revert_auto", "suggest"]


class SuggestConfig(BaseModel):
    """What :func:`suggest` scores and how it thresholds.

    Attributes
    ----------
    run_ids : list[int] | None
        Runs to score; ``None``: the latest finished run. Several runs are combined with ``combine``.
    combine : {"mean", "max", "rank_mean"}
        How several runs' probabilities become one score.
    target_precision : float
        Precision each class threshold should reach on validation.
    max_per_class : int | None
        Keep at most this many suggestions of each kind per class (the best ranked).
    val_hide_fraction : float
        Share of val positives hidden to estimate thresholds (see the module notes).
    expected_missing_rate : float or "auto"
        Share of true val positives you expect annotators missed. ``0`` treats every unknown val cell
        as negative, a conservative precision estimate that yields few suggestions when val is
        itself incomplete; with a rate, the estimate counts the missed ones as the positives they
        are (:func:`~labelfix.suggest.thresholds.unseen_positive_ratio_for`). ``"auto"`` (opt-in) estimates
        the rate from val's unknown cells that score like its hidden positives
        (:func:`~labelfix.suggest.missing_rate.estimate_missing_rate`; 0 where too few are hidden).
    min_support : int
        Hidden val labels a class needs for its own threshold (rarer classes use the pooled one), and
        labelled val positives it needs for a PU estimate.
    threshold_fallback : float | None
        Threshold for classes whose target precision is unreachable; ``None``: no suggestions for them.
    uncalibrated_top_k : int
        Ranked-list length for a class no estimate can calibrate (``0``: no suggestions for it).
    below_target_top_k : int
        Cap on the ranked list of a class below the target precision (no threshold reaches it on validation,
        or no train cell reaches the threshold); the list is also at most the class's expected missing
        count where the PU estimate gives one (``0``: no suggestions for such a class).
    seed : int
        Seed of the validation hiding.
    spurious : bool, optional
        Also suggest spurious labels (annotated positives the model strongly disputes). ``None`` (default):
        yes, unless the val split is too small to vouch for the model (``labelfix.learn.validation``), when
        an underfit epoch's low scores would read as "remove this label"; ``True`` writes them anyway.
    spurious_max_score : float
        Original positives with probability at or below this are spurious suggestions.
    auto_accept_above : float | None
        Opt-in: missing suggestions scoring above this become positive labels with origin ``auto``; only those of
        classes whose precision hide-and-measure measured (not a ranked list, not a PU estimate).
    auto_accept_estimated : bool
        Opt-in: also auto-accept the suggestions of classes whose threshold is a PU estimate (precision estimated
        from assumptions, not measured; often optimistic on a weak model), or rests on a miss rate estimated with
        ``expected_missing_rate="auto"``.
    batch_rows : int
        Rows per Arrow batch streamed from DuckDB.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    run_ids: list[int] | None = None
    combine: Literal["mean", "max", "rank_mean"] = "mean"
    target_precision: float = Field(0.9, gt=0.0, le=1.0)
    max_per_class: int | None = Field(None, ge=1)
    val_hide_fraction: float = Field(0.4, gt=0.0, lt=1.0)
    expected_missing_rate: float | Literal["auto"] = 0.0
    min_support: int = Field(5, ge=1)
    threshold_fallback: float | None = None
    uncalibrated_top_k: int = Field(20, ge=0)
    below_target_top_k: int = Field(10, ge=0)
    seed: int = 0
    spurious: bool | None = None
    spurious_max_score: float = Field(0.05, ge=0.0, le=1.0)
    auto_accept_above: float | None = Field(None, ge=0.0, le=1.0)
    auto_accept_estimated: bool = False
    batch_rows: int = Field(DEFAULT_BATCH_ROWS, ge=1)

    @field_validator("expected_missing_rate", mode="before")
    @classmethod
    def _rate_or_auto(cls, value: object) -> object:
        # One message for the two forms (pydantic's union errors name each branch, which reads as noise).
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        try:
            rate = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            rate = math.nan
        if isinstance(value, bool) or not 0.0 <= rate < 1.0:
            raise ValueError("must be 'auto' or a number in [0, 1)")
        return rate

    @field_validator("run_ids")
    @classmethod
    def _each_run_once(cls, run_ids: list[int] | None) -> list[int] | None:
        """A run given twice would weigh double in ``mean`` and silently not in ``max``: more likely a slip."""
        repeated = repeated_runs(run_ids)
        if repeated:
            raise ValueError(f"run {', '.join(map(str, repeated))} given more than once: give each run once")
        return run_ids


def repeated_runs(run_ids: list[int] | None) -> list[int]:
    """The run ids given more than once, sorted (``SuggestConfig`` refuses them; the CLI says so with its flag).

    Examples
    --------
    >>> repeated_runs([3, 1, 3, 2, 1]), repeated_runs(None)
    ([1, 3], [])
    """
    return sorted({r for r in run_ids or [] if (run_ids or []).count(r) > 1})


def suggest(store: Store, *, config: SuggestConfig | None = None) -> SuggestReport:
    """Score the train split's cells, threshold per class, and write suggestions (one transaction).

    Parameters
    ----------
    store : Store
        A store with a finished run's predictions and a val split with positives.
    config : SuggestConfig, optional
        Defaults: the latest finished run, target precision 0.9, spurious suggestions on.

    Returns
    -------
    SuggestReport

    Raises
    ------
    StoreError
        Unknown run, or a run without predictions. A val split without positives is not an error: every
        class then gets an uncalibrated ranked list, and the report says so.

    Examples
    --------
    >>> report = suggest(store, config=SuggestConfig(target_precision=0.9))  # doctest: +SKIP
    >>> report.print()  # doctest: +SKIP
    """
    config = config or SuggestConfig()
    started = time.perf_counter()
    source_runs = check_runs(store, run_ids=config.run_ids if config.run_ids else [latest_run_id(store)])
    sql = score_query(run_ids=source_runs, combine=config.combine)
    calibration, notes, small_val = _val_calibration(store, source_runs=source_runs, config=config)
    spurious = config.spurious if config.spurious is not None else small_val is None
    if small_val is not None:
        notes.insert(0, small_val_note(small_val, min_support=config.min_support,
                                       held_back=config.spurious is None))
    category_ids = store.execute("SELECT category_id FROM categories ORDER BY category_id"
                                 ).fetchnumpy()["category_id"].astype(np.int64)
    spurious_max = config.spurious_max_score if spurious else None
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    config_json = config.model_dump(mode="json") | {"run_ids": source_runs}
    with _candidates(store, score_sql=sql, category_ids=category_ids, calibration=calibration,
                     spurious_max_score=spurious_max, max_per_class=config.max_per_class) as (table, counts, lists):
        estimated = _estimated_classes(calibration, category_ids, ranked=lists)
        # With an estimated miss rate the hide-and-measure classes are estimates too (their own reason prefix).
        rate_estimated = [c for c, method in zip(category_ids.tolist(), calibration.method.tolist())
                          if c in estimated and method == HIDE]
        with store.transaction():
            run_id = source_runs[0] if len(source_runs) == 1 else ensemble_run(
                store, source_runs=source_runs, combine=config.combine)
            call_id = start_call(store, run_id=run_id, source_runs=source_runs, config=config_json, created_at=now)
            activity = queue_activity(store, run_id=run_id, now=now)
            replaced = replace_open(store, run_id=run_id, now=now)
            notes.extend(other_runs_note(store, run_id=run_id))
            file_ranked(store, candidates=table, max_rank=config.max_per_class, run_id=run_id, call_id=call_id,
                        reason_prefix=reason_prefix(store, source_runs=source_runs, combine=config.combine),
                        source_runs=source_runs, created_at=now,
                        estimated=[c for c in estimated if c not in rate_estimated], estimated_rate=rate_estimated)
            auto, held_back = _auto_accept(store, call_id=call_id, above=config.auto_accept_above, now=now,
                                           uncalibrated=list(lists) + ([] if config.auto_accept_estimated
                                                                       else estimated))
            result = _report(store, category_ids=category_ids, counts=counts, calibration=calibration, auto=auto,
                             run_id=run_id, source_runs=source_runs, call_id=call_id, replaced=replaced,
                             config=config_json, notes=notes, lists=lists)
            result.queue_warning = queue_warning(activity, run_id=run_id, replaced=replaced)
            result.n_auto_held_back = held_back
            if config.auto_accept_above is not None:
                result.auto_accept_warning = auto_accept_warning(target=config.target_precision)
                result.auto_accept_note = auto_accept_note(
                    above=config.auto_accept_above, accepted=result.n_auto_accepted, held_back=held_back,
                    target=config.target_precision, measured=len(_measured_classes(calibration, category_ids,
                                                                                  ranked=lists)),
                    estimated=len(estimated), estimated_allowed=config.auto_accept_estimated,
                    suggested=result.n_missing)
            result.seconds = time.perf_counter() - started
            finish_call(store, call_id=call_id, summary=result.to_dict())
    return result


def revert_auto(store: Store, *, run_id: int | None = None) -> int:
    """Undo auto-accepted labels: cells back to their original state, plus compensating ``undo`` events.

    Only auto-accepts still in force are undone. A cell a person changed after the auto-accept (its
    origin is no longer ``auto``) keeps its label; its auto-accept event is still marked undone.

    Parameters
    ----------
    store : Store
    run_id : int, optional
        Only suggestions filed under this run; ``None``: every run.

    Returns
    -------
    int
        The number of auto-accepts undone. A later ``suggest --auto-accept-above`` does not
        auto-accept those cells again (they stay suggestions for review).

    Raises
    ------
    StoreError
        ``run_id`` names no run (the message lists the runs).

    Examples
    --------
    >>> revert_auto(store)  # doctest: +SKIP
    12
    """
    if run_id is not None:
        known = [int(r) for (r,) in store.fetchall("SELECT run_id FROM runs ORDER BY run_id")]
        if int(run_id) not in known:
            with_auto = sorted({int(r) for r in auto_accepts_in_force(store).column("run_id").to_pylist()
                                if r is not None})
            raise StoreError(f"run {run_id} does not exist (runs in the store: "
                             f"{', '.join(map(str, known)) or 'none'}; with auto-accepts in force: "
                             f"{', '.join(map(str, with_auto)) or 'none'})", file=store.path,
                             fix="pass one of those ids with --run, or omit --run to revert every auto-accept")
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    with store.transaction():
        undone = auto_accepts_in_force(store, run_id=run_id)
        record_undos(store, events=undone, reviewer="auto", note="revert-auto", created_at=now)
        # Original positives go back to 'original'; the other cells become unknown again (no row).
        restore_original(store, cells=undone.select(["image_id", "category_id"]), origin="auto", updated_at=now)
    return undone.num_rows


# -- helpers ------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _candidates(store: Store, *, score_sql: str, category_ids: np.ndarray, calibration: ClassCalibration,
                spurious_max_score: float | None, max_per_class: int | None
                ) -> Iterator[tuple[str, dict[tuple[str, int], tuple[int, int]], dict[int, tuple[int, str]]]]:
    """The ranked candidates table, its counts, and the ranked lists ``{category id: (k, list kind)}``.

    Ranked lists: the uncalibrated and below-target classes of ``calibration``; then, found on the train split,
    each calibrated class with a threshold that no unknown train cell reaches (a second scan for those classes
    only, so a run where every class has candidates costs one scan).
    """
    ids = [int(c) for c in category_ids.tolist()]
    cap = max_per_class or max(calibration.top_k, int(calibration.below_target_k.max(initial=0)))
    lists = {c: (min(int(k), cap), BELOW_TARGET if below else UNCALIBRATED) for c, k, below, ranked in
             zip(ids, calibration.list_lengths.tolist(), calibration.below_target.tolist(),
                 calibration.ranked.tolist()) if ranked}
    thresholds = dict(zip(ids, calibration.thresholds.tolist()))
    for attempt in range(2):
        with ranked_candidates(store, score_sql=score_sql, thresholds=thresholds, spurious_max_score=spurious_max_score,
                               uncalibrated_top_k={c: k for c, (k, _) in lists.items()},
                               below_target=[c for c, (_, kind) in lists.items() if kind == BELOW_TARGET],
                               unreached=[c for c, (_, kind) in lists.items() if kind == UNREACHED]) as table:
            counts = candidate_counts(store, table=table, max_per_class=max_per_class)
            unreached = {c: (min(int(k), cap), UNREACHED) for c, k, t in
                         zip(ids, calibration.below_target_k.tolist(), calibration.thresholds.tolist())
                         if c not in lists and k > 0 and math.isfinite(t) and (MISSING, c) not in counts}
            if attempt == 1 or not unreached:
                yield table, counts, lists
                return
        lists |= unreached


def _val_calibration(store: Store, *, source_runs: list[int], config: SuggestConfig
                     ) -> tuple[ClassCalibration, list[str], str | None]:
    """Per-class thresholds from val (module notes), the notes that concern every class, and why the val
    split is too small to vouch for the model (``None`` when it is not)."""
    val = read_split_scores(store, run_ids=source_runs, combine=config.combine, split="val",
                            batch_rows=config.batch_rows)
    labels = load_label_matrix(store, splits=("val",))
    counts = store.fetchall(f"SELECT l.category_id, l.origin = 'original', count(*) FROM labels l JOIN images i "
                            f"USING (image_id) WHERE i.split = 'train' AND l.state = {POSITIVE} GROUP BY ALL")
    original = {int(c): int(n) for c, is_original, n in counts if is_original}
    found = {int(c): int(n) for c, is_original, n in counts if not is_original}
    original_positives = np.array([original.get(int(c), 0) for c in val.category_ids], dtype=np.int64)
    found_positives = np.array([found.get(int(c), 0) for c in val.category_ids], dtype=np.int64)
    train_positives = original_positives + found_positives
    # The same per-class choice as labelfix.find_missing_labels on arrays (one place: suggest.arrays).
    calibration, notes = calibrate_validation(
        states=labels.states, scores=val.scores,
        target_precision=config.target_precision, hide_fraction=config.val_hide_fraction,
        expected_missing_rate=config.expected_missing_rate, min_support=config.min_support,
        fallback=config.threshold_fallback, seed=config.seed, top_k=config.uncalibrated_top_k,
        train_positives=train_positives, below_target_top_k=config.below_target_top_k,
        # The expected missing count: the annotator's positives times val's missed-per-labelled, less the missed
        # labels reviewers found since (so accepting suggestions lowers it, never raises it).
        searched_positives=original_positives, found_positives=found_positives)
    small = small_validation_text(val_positives=int((labels.states == POSITIVE).sum()),
                                  trained_classes=int((train_positives > 0).sum()))
    return calibration, notes, small


def _estimated_classes(calibration: ClassCalibration, category_ids: np.ndarray, *,
                       ranked: dict[int, tuple[int, str]]) -> list[int]:
    """Classes whose threshold is an estimate, not a measurement (PU), other than the ``ranked`` lists: their rows
    are filed as estimated, and kept from auto-accept unless opted in."""
    return [int(c) for c, calibrated, measured in zip(category_ids.tolist(), calibration.calibrated.tolist(),
                                                      calibration.measured.tolist())
            if calibrated and not measured and int(c) not in ranked]


def _measured_classes(calibration: ClassCalibration, category_ids: np.ndarray, *,
                      ranked: dict[int, tuple[int, str]]) -> list[int]:
    """Classes whose threshold hide-and-measure measured at the target precision, other than the ``ranked`` lists:
    the ones auto-accept takes by default."""
    return [int(c) for c, measured in zip(category_ids.tolist(), calibration.measured.tolist())
            if measured and int(c) not in ranked]


def _auto_accept(store: Store, *, call_id: int, above: float | None, now: dt.datetime,
                 uncalibrated: list[int]) -> tuple[dict[int, int], int]:
    """Positive labels (origin ``auto``) and ``auto_accept`` events for this call's missing suggestions > P;
    returns the count per class and how many were held back because an earlier auto-accept of the cell
    was reverted (those stay open suggestions for review).

    A ranked list's suggestions (uncalibrated or below target) are never auto-accepted: nothing estimates
    their precision, or the estimate says it is below the target.
    """
    if above is None:
        return {}, 0
    chosen = auto_accept_candidates(store, call_id=call_id, above=above)
    if uncalibrated:
        chosen = chosen.filter(pc.invert(pc.is_in(chosen.column("category_id"),
                                                  value_set=pa.array(uncalibrated, pa.int64()))))
    # A cell whose auto-accept was reverted stays a suggestion for a person: the revert was a "no" to
    # deciding it automatically, and the same scores would only repeat the same decision.
    reverted = reverted_auto_cells(store)
    held_back = 0
    if reverted.num_rows and chosen.num_rows:
        keys = pc.binary_join_element_wise(pc.cast(chosen.column("image_id"), pa.string()),
                                           pc.cast(chosen.column("category_id"), pa.string()), ":")
        reverted_keys = pc.binary_join_element_wise(pc.cast(reverted.column("image_id"), pa.string()),
                                                    pc.cast(reverted.column("category_id"), pa.string()), ":")
        again = pc.is_in(keys, value_set=reverted_keys)
        held_back = int(pc.sum(again).as_py() or 0)
        chosen = chosen.filter(pc.invert(again))
    record_auto_accepts(store, suggestions=chosen, above=above, created_at=now)
    set_labels(store, cells=chosen.select(["image_id", "category_id"]), state=POSITIVE, origin="auto",
               updated_at=now)
    return dict(Counter(chosen.column("category_id").to_pylist())), held_back


def _report(store: Store, *, category_ids: np.ndarray, counts: dict[tuple[str, int], tuple[int, int]],
            calibration: ClassCalibration, auto: dict[int, int], run_id: int, source_runs: list[int], call_id: int,
            replaced: int, config: dict[str, Any], notes: list[str], lists: dict[int, tuple[int, str]]
            ) -> SuggestReport:
    names = dict(store.fetchall("SELECT category_id, name FROM categories"))
    frequency = dict(store.fetchall(f"SELECT l.category_id, count(*) FROM labels l JOIN images i USING (image_id) "
                                    f"WHERE i.split = 'train' AND l.state = {POSITIVE} GROUP BY ALL"))
    n_train = int(store.scalar("SELECT count(*) FROM images WHERE split = 'train'"))
    known = dict(store.fetchall("SELECT l.category_id, count(*) FROM labels l JOIN images i USING (image_id) "
                                "WHERE i.split = 'train' GROUP BY ALL"))
    val_positives = dict(store.fetchall(f"SELECT l.category_id, count(*) FROM labels l JOIN images i USING "
                                        f"(image_id) WHERE i.split = 'val' AND l.state = {POSITIVE} GROUP BY ALL"))
    head_mode = any(row[0] == "head" for row in store.fetchall(
        f"SELECT mode FROM runs WHERE run_id IN ({', '.join(str(int(r)) for r in source_runs)})"))
    report = calibration.threshold_report()
    classes = []
    for index, category_id in enumerate(category_ids.tolist()):
        flagged, kept = counts.get((MISSING, category_id), (0, 0))
        precision, recall = report.estimated_precision[index], report.estimated_recall[index]
        # A class whose suggestions are a ranked list is not calibrated in the sense its rows are (precision
        # unknown or below target), whatever method estimated its threshold.
        length, kind = lists.get(category_id, (0, None))
        unknown = n_train - int(known.get(category_id, 0))
        complete = unknown <= 0 and calibration.source[index] != NOT_LEARNED
        unreached = kind == UNREACHED and not complete
        calibrated = kind is None and bool(calibration.calibrated[index]) and not complete
        # One expected-missing figure, in the column and the words: among the class's unknown train cells, from
        # the val precision and recall at a calibrated threshold, else the PU estimate a ranked list states.
        among = 0.0 if flagged == 0 else flagged * precision
        estimated = (among / recall if recall > 0 else (0.0 if flagged == 0 else math.nan)) if calibrated else \
            float(calibration.expected_missing[index])
        # Train positives before this call: its own auto-accepts are in their own column, not added here.
        before = int(frequency.get(category_id, 0)) - auto.get(category_id, 0)
        note = train_note(calibration.notes[index], unknown=unknown,
                          flagged=flagged, kept=kept, threshold=float(report.thresholds[index]), top_k=length,
                          unreached=unreached, expected=float(calibration.expected_missing[index]),
                          weak=bool(calibration.weakly_trained[index]))
        if kind is not None and length > 0 and not complete:  # a ranked list: say what would turn it into a calibrated one
            note += next_step(kind=kind, train_positives=before,
                              val_positives=int(val_positives.get(category_id, 0)), head_mode=head_mode,
                              target=float(config["target_precision"]), min_support=int(config["min_support"]))
        classes.append(ClassSummary(
            category_id=category_id, name=str(names.get(category_id, category_id)),
            train_frequency=before,
            threshold=None if complete else finite_or_none(report.thresholds[index]),
            threshold_source=COMPLETE if complete else str(report.source[index]), pooled=bool(report.pooled[index]),
            estimated_precision=finite_or_none(precision), flagged=int(flagged),
            estimated_missing=0.0 if complete else finite_or_none(estimated),
            missing=int(kept), spurious=int(counts.get((SPURIOUS, category_id), (0, 0))[1]),
            auto_accepted=auto.get(category_id, 0), method=str(calibration.method[index]), calibrated=calibrated,
            below_target=kind == BELOW_TARGET and not complete, unreached=unreached,
            estimated_recall=finite_or_none(recall),
            label_frequency=finite_or_none(calibration.pu.label_frequency[index]), note=note))
    return SuggestReport(run_id=run_id, source_runs=source_runs, call_id=call_id, classes=classes,
                         n_missing=sum(c.missing for c in classes), n_spurious=sum(c.spurious for c in classes),
                         n_auto_accepted=sum(auto.values()), n_replaced=replaced, thresholds=report, seconds=0.0,
                         config=config, notes=notes, calibration=calibration)








