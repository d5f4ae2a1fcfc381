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
positives, so the estimate is conservative. The default 0.4 matches the benchmark's hidden rate;
set it to the miss rate you expect of your annotators (precision depends on that base rate).
Pass ``expected_missing_rate`` to correct the estimate for val's own missing labels. The estimate is
:func:`~labelfix.suggest.arrays.validation_thresholds`, which :func:`labelfix.find_missing_labels`
(the store-less array API) uses too.

Replacing earlier calls
-----------------------
Suggestions are filed under the scored run (or an ``ensemble`` run row for several runs). A new
call for the same run replaces that run's undecided suggestions: untouched ones are deleted;
ones with review events but no decision in force (skipped, unsure, undone) get ``superseded_at``
and keep their history (migration ``0003_suggest``). Decided suggestions are never touched.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.table import Table

from labelfix.errors import StoreError
from labelfix.internal.json_values import finite_or_none
from labelfix.states import POSITIVE
from labelfix.store.database import Store
from labelfix.store.labels import load_label_matrix, restore_original, set_labels
from labelfix.store.reviews import auto_accepts_in_force, record_auto_accepts, record_undos
from labelfix.store.runs import ensemble_run, latest_run_id
from labelfix.store.suggestions import auto_accept_candidates, file_ranked, finish_call, replace_open, start_call
from labelfix.suggest.scoring import DEFAULT_BATCH_ROWS, check_runs, read_split_scores, score_query
from labelfix.suggest.streaming import MISSING, SPURIOUS, candidate_counts, ranked_candidates
from labelfix.suggest.arrays import validation_thresholds
from labelfix.suggest.thresholds import ThresholdReport


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
    expected_missing_rate : float
        Share of true val positives you expect annotators missed. ``0`` treats every unknown val cell
        as negative, a conservative precision estimate that yields few suggestions when val is
        itself incomplete; with a rate, the estimate counts the missed ones as the positives they
        are (:func:`~labelfix.suggest.thresholds.unseen_positive_ratio_for`).
    min_support : int
        Hidden val labels a class needs for its own threshold; rarer classes use the pooled one.
    threshold_fallback : float | None
        Threshold for classes whose target precision is unreachable; ``None``: no suggestions for them.
    seed : int
        Seed of the validation hiding.
    spurious : bool
        Also suggest spurious labels (annotated positives the model strongly disputes).
    spurious_max_score : float
        Original positives with probability at or below this are spurious suggestions.
    auto_accept_above : float | None
        Opt-in: missing suggestions scoring above this become positive labels with origin ``auto``.
    batch_rows : int
        Rows per Arrow batch streamed from DuckDB.
    """

    model_config = ConfigDict(extra="forbid")

    run_ids: list[int] | None = None
    combine: Literal["mean", "max", "rank_mean"] = "mean"
    target_precision: float = Field(0.9, gt=0.0, le=1.0)
    max_per_class: int | None = Field(None, ge=1)
    val_hide_fraction: float = Field(0.4, gt=0.0, lt=1.0)
    expected_missing_rate: float = Field(0.0, ge=0.0, lt=1.0)
    min_support: int = Field(5, ge=1)
    threshold_fallback: float | None = None
    seed: int = 0
    spurious: bool = True
    spurious_max_score: float = Field(0.05, ge=0.0, le=1.0)
    auto_accept_above: float | None = Field(None, ge=0.0, le=1.0)
    batch_rows: int = Field(DEFAULT_BATCH_ROWS, ge=1)


@dataclass(frozen=True)
class ClassSummary:
    """One class's line of the summary."""

    category_id: int
    name: str
    train_frequency: int
    threshold: float | None
    threshold_source: str
    pooled: bool
    estimated_precision: float | None
    flagged: int
    estimated_missing: float | None
    missing: int
    spurious: int
    auto_accepted: int


@dataclass
class SuggestReport:
    """What a :func:`suggest` call wrote and why."""

    run_id: int
    source_runs: list[int]
    call_id: int
    classes: list[ClassSummary]
    n_missing: int
    n_spurious: int
    n_auto_accepted: int
    n_replaced: int
    thresholds: ThresholdReport
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (thresholds as :meth:`ThresholdReport.to_dict`)."""
        return {"run_id": self.run_id, "source_runs": self.source_runs, "call_id": self.call_id,
                "n_missing": self.n_missing, "n_spurious": self.n_spurious, "n_auto_accepted": self.n_auto_accepted,
                "n_replaced": self.n_replaced, "seconds": round(self.seconds, 3), "config": self.config,
                "classes": [asdict(c) for c in self.classes], "thresholds": self.thresholds.to_dict()}

    def table(self) -> Table:
        """The per-class summary (tail classes first) and an overall line, as a rich table."""
        table = Table(title=f"suggestions for run {self.run_id} (call {self.call_id})")
        for column in ("class", "train freq", "est. missing", "missing", "spurious", "auto", "threshold", "pooled"):
            table.add_column(column, justify="left" if column == "class" else "right", no_wrap=column == "class")
        for c in sorted(self.classes, key=lambda c: (c.train_frequency, c.category_id)):
            table.add_row(c.name, str(c.train_frequency), _fmt(c.estimated_missing, ".0f"), str(c.missing),
                          str(c.spurious), str(c.auto_accepted), _fmt(c.threshold, ".3f"),
                          "yes" if c.pooled else "no" if c.threshold_source == "class" else c.threshold_source)
        total_missing = sum(c.estimated_missing or 0.0 for c in self.classes)
        table.add_section()
        table.add_row("all classes", str(sum(c.train_frequency for c in self.classes)), f"{total_missing:.0f}",
                      str(self.n_missing), str(self.n_spurious), str(self.n_auto_accepted),
                      _fmt(self.thresholds.pooled_threshold, ".3f"), "pool")
        return table

    def print(self, console: Console | None = None) -> None:
        console = console or Console()
        console.print(self.table())
        console.print(f"{self.n_missing} missing and {self.n_spurious} spurious suggestions written, "
                      f"{self.n_auto_accepted} auto-accepted, {self.n_replaced} earlier open suggestions replaced "
                      f"({self.seconds:.1f} s)")


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
        Unknown run, a run without predictions, or no val positives to estimate thresholds.

    Examples
    --------
    >>> report = suggest(store, config=SuggestConfig(target_precision=0.9))  # doctest: +SKIP
    >>> report.print()  # doctest: +SKIP
    """
    config = config or SuggestConfig()
    started = time.perf_counter()
    source_runs = check_runs(store, run_ids=config.run_ids if config.run_ids else [latest_run_id(store)])
    sql = score_query(run_ids=source_runs, combine=config.combine)
    report = _val_thresholds(store, source_runs=source_runs, config=config)
    category_ids = store.execute("SELECT category_id FROM categories ORDER BY category_id"
                                 ).fetchnumpy()["category_id"].astype(np.int64)
    thresholds = {int(c): float(t) for c, t in zip(category_ids.tolist(), report.thresholds.tolist())}
    spurious_max = config.spurious_max_score if config.spurious else None
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    config_json = config.model_dump(mode="json") | {"run_ids": source_runs}
    with ranked_candidates(store, score_sql=sql, thresholds=thresholds, spurious_max_score=spurious_max) as table:
        counts = candidate_counts(store, table=table, max_per_class=config.max_per_class)
        with store.transaction():
            run_id = source_runs[0] if len(source_runs) == 1 else ensemble_run(
                store, source_runs=source_runs, combine=config.combine)
            call_id = start_call(store, run_id=run_id, source_runs=source_runs, config=config_json, created_at=now)
            replaced = replace_open(store, run_id=run_id, now=now)
            file_ranked(store, candidates=table, max_rank=config.max_per_class, run_id=run_id, call_id=call_id,
                        reason_prefix=_reason_prefix(store, source_runs=source_runs, combine=config.combine),
                        source_runs=source_runs, created_at=now)
            auto = _auto_accept(store, call_id=call_id, above=config.auto_accept_above, now=now)
            result = _report(store, category_ids=category_ids, counts=counts, report=report, auto=auto,
                             run_id=run_id, source_runs=source_runs, call_id=call_id, replaced=replaced,
                             config=config_json)
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
        The number of auto-accepts undone.

    Examples
    --------
    >>> revert_auto(store)  # doctest: +SKIP
    12
    """
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    with store.transaction():
        undone = auto_accepts_in_force(store, run_id=run_id)
        record_undos(store, events=undone, reviewer="auto", note="revert-auto", created_at=now)
        # Original positives go back to 'original'; the other cells become unknown again (no row).
        restore_original(store, cells=undone.select(["image_id", "category_id"]), origin="auto", updated_at=now)
    return undone.num_rows


# -- helpers ------------------------------------------------------------------------------------------------
def _val_thresholds(store: Store, *, source_runs: list[int], config: SuggestConfig) -> ThresholdReport:
    """Per-class thresholds from val with a known fraction of its positives hidden (module notes)."""
    val = read_split_scores(store, run_ids=source_runs, combine=config.combine, split="val",
                            batch_rows=config.batch_rows)
    labels = load_label_matrix(store, splits=("val",))
    if not (labels.states == POSITIVE).any():
        raise StoreError("thresholds are estimated on the val split, which has no positive labels",
                         file=store.path, fix="ingest labelled images with --split val")
    # The same function find_missing_labels calibrates with, so the array API and the store agree.
    return validation_thresholds(states=labels.states, scores=val.scores, target_precision=config.target_precision,
                                 hide_fraction=config.val_hide_fraction,
                                 expected_missing_rate=config.expected_missing_rate, min_support=config.min_support,
                                 fallback=config.threshold_fallback, seed=config.seed)


def _auto_accept(store: Store, *, call_id: int, above: float | None, now: dt.datetime) -> dict[int, int]:
    """Positive labels (origin ``auto``) and ``auto_accept`` events for this call's missing suggestions > P."""
    if above is None:
        return {}
    chosen = auto_accept_candidates(store, call_id=call_id, above=above)
    record_auto_accepts(store, suggestions=chosen, above=above, created_at=now)
    set_labels(store, cells=chosen.select(["image_id", "category_id"]), state=POSITIVE, origin="auto",
               updated_at=now)
    return dict(Counter(chosen.column("category_id").to_pylist()))


def _reason_prefix(store: Store, *, source_runs: list[int], combine: str) -> str:
    """e.g. ``splc run 3, epoch 10`` or ``mean of an run 2, epoch 10 + splc run 3, epoch 10``."""
    parts = []
    for run_id in source_runs:
        row = store.fetchone("SELECT r.method, (SELECT max(epoch) FROM run_epochs e WHERE e.run_id = r.run_id)"
                             " FROM runs r WHERE r.run_id = ?", [run_id])
        assert row is not None, f"run {run_id} was checked to exist before scoring"
        method, epoch = row
        parts.append(f"{method} run {run_id}" + ("" if epoch is None else f", epoch {epoch}"))
    return parts[0] if len(parts) == 1 else f"{combine} of " + " + ".join(parts)


def _report(store: Store, *, category_ids: np.ndarray, counts: dict[tuple[str, int], tuple[int, int]],
            report: ThresholdReport, auto: dict[int, int], run_id: int, source_runs: list[int], call_id: int,
            replaced: int, config: dict[str, Any]) -> SuggestReport:
    names = dict(store.fetchall("SELECT category_id, name FROM categories"))
    frequency = dict(store.fetchall(f"SELECT l.category_id, count(*) FROM labels l JOIN images i USING (image_id) "
                                    f"WHERE i.split = 'train' AND l.state = {POSITIVE} GROUP BY ALL"))
    flagged = [counts.get((MISSING, c), (0, 0))[0] for c in category_ids.tolist()]
    n_missing = [counts.get((MISSING, c), (0, 0))[1] for c in category_ids.tolist()]
    n_spurious = [counts.get((SPURIOUS, c), (0, 0))[1] for c in category_ids.tolist()]
    classes = []
    for index, category_id in enumerate(category_ids.tolist()):
        precision, recall = report.estimated_precision[index], report.estimated_recall[index]
        among = 0.0 if flagged[index] == 0 else flagged[index] * precision
        estimated = among / recall if recall > 0 else (0.0 if flagged[index] == 0 else math.nan)
        classes.append(ClassSummary(
            category_id=category_id, name=str(names.get(category_id, category_id)),
            train_frequency=int(frequency.get(category_id, 0)), threshold=finite_or_none(report.thresholds[index]),
            threshold_source=str(report.source[index]), pooled=bool(report.pooled[index]),
            estimated_precision=finite_or_none(precision), flagged=int(flagged[index]), estimated_missing=finite_or_none(estimated),
            missing=int(n_missing[index]), spurious=int(n_spurious[index]),
            auto_accepted=auto.get(category_id, 0)))
    return SuggestReport(run_id=run_id, source_runs=source_runs, call_id=call_id, classes=classes,
                         n_missing=sum(c.missing for c in classes), n_spurious=sum(c.spurious for c in classes),
                         n_auto_accepted=sum(auto.values()), n_replaced=replaced, thresholds=report, seconds=0.0,
                         config=config)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)
