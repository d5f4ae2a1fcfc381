"""What a ``labelfix suggest`` call wrote, per class and overall, and why (table, notes, JSON)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from labelfix.internal.words import counted
from labelfix.suggest.calibration import ClassCalibration
from labelfix.suggest.thresholds import ThresholdReport


# A class with no unknown train cell: nothing can be missing, so no threshold and no list.
COMPLETE = "complete"
COMPLETE_NOTE = "nothing to suggest: every train cell is labelled"


@dataclass(frozen=True)
class ClassSummary:
    """One class's line of the summary.

    ``method`` is how its threshold was calibrated (``hide-and-measure``, ``pu`` or ``uncalibrated``),
    ``threshold_source`` the finer source (see :class:`~labelfix.suggest.calibration.ClassCalibration`),
    ``calibrated`` False when its suggestions are a ranked list (precision unknown, ``below_target``: the
    estimate says no threshold reaches the target precision, or ``unreached``: the target was reached on
    validation but no unknown train cell scores at the threshold) or there is nothing to suggest
    (``threshold_source`` ``complete``: every train cell is labelled); ``estimated_missing`` the expected
    missing labels among its unknown train cells (the same figure the note states), and ``note`` says in
    words how the class was calibrated and why it got few or no suggestions.
    """

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
    method: str = "hide-and-measure"
    calibrated: bool = True
    estimated_recall: float | None = None
    label_frequency: float | None = None
    note: str = ""
    below_target: bool = False
    unreached: bool = False

    @property
    def needs_note(self) -> bool:
        """Worth a line under the table: not an own hide-and-measure threshold, or few / no suggestions."""
        return (self.threshold_source != "class" or not self.calibrated or self.missing == 0
                or self.missing < self.flagged)


@dataclass
class SuggestReport:
    """What a :func:`~labelfix.suggest.run.suggest` call wrote and why.

    ``thresholds`` holds the thresholds used (``source`` per class as in ``ClassSummary``), ``calibration``
    the per-class method choice with both estimators' numbers, ``notes`` what concerns every class (e.g.
    fewer validation positives could be hidden than asked) -- printed one line each, never as Python warnings.
    """

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
    notes: list[str] = field(default_factory=list)
    calibration: ClassCalibration | None = None
    queue_warning: str | None = None  # the call replaced a queue reviewers were working on (what happened)
    n_auto_held_back: int = 0  # above the auto-accept score, but revert-auto undid their earlier auto-accept
    auto_accept_note: str | None = None  # auto-accept was asked for and accepted nothing: why, in words
    auto_accept_warning: str | None = None  # auto-accept at a low target precision: how many may be wrong
    @property
    def missing_rate_warning(self) -> str | None:
        """The precision rests on an estimated (or a very high) miss rate: :func:`missing_rate_warning_for`."""
        return missing_rate_warning_for(rate=self.missing_rate, estimated=self.missing_rate_estimated)

    @property
    def missing_rate(self) -> float:
        """The miss rate of val's positives the precision was corrected with (0: none), from ``calibration``."""
        return 0.0 if self.calibration is None else self.calibration.missing_rate

    @property
    def missing_rate_estimated(self) -> bool:
        """Whether that rate was estimated from val (``expected_missing_rate="auto"``) rather than given."""
        return self.calibration is not None and self.calibration.missing_rate_estimated

    @property
    def warnings(self) -> list[str]:
        """The lines a person should see as ``warning:`` whatever the output format (the JSON holds them too)."""
        return [w for w in (self.queue_warning, self.auto_accept_warning, self.missing_rate_warning) if w]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (thresholds as :meth:`ThresholdReport.to_dict`)."""
        return {"run_id": self.run_id, "source_runs": self.source_runs, "call_id": self.call_id,
                "n_missing": self.n_missing, "n_spurious": self.n_spurious, "n_auto_accepted": self.n_auto_accepted,
                "n_replaced": self.n_replaced, "seconds": round(self.seconds, 3), "config": self.config,
                "notes": list(self.notes), "classes": [asdict(c) for c in self.classes],
                "thresholds": self.thresholds.to_dict(),
                "calibration": None if self.calibration is None else self._calibration_dict(),
                "queue_warning": self.queue_warning, "n_auto_held_back": self.n_auto_held_back,
                "auto_accept_note": self.auto_accept_note, "auto_accept_warning": self.auto_accept_warning,
                "missing_rate": round(self.missing_rate, 4), "missing_rate_estimated": self.missing_rate_estimated,
                "missing_rate_warning": self.missing_rate_warning}

    def _calibration_dict(self) -> dict[str, Any]:
        """The calibration's JSON with ``calibrated`` as in ``classes`` (what the rows are), the val-only answer
        kept as ``calibrated_on_val``: a class calibrated on val but with nothing on train to flag is not."""
        assert self.calibration is not None
        out = self.calibration.to_dict()
        out["calibrated_on_val"] = out["calibrated"]
        out["calibrated"] = [bool(c.calibrated) for c in self.classes]
        return out

    def table(self) -> Table:
        """The per-class summary (tail classes first) and an overall line, as a rich table."""
        table = Table(title=f"suggestions for run {self.run_id} (call {self.call_id})")
        for column in ("class", "train freq", "est. missing", "missing", "spurious", "auto", "threshold", "method"):
            table.add_column(column, justify="left" if column in ("class", "method") else "right",
                             no_wrap=column == "class")
        for c in sorted(self.classes, key=lambda c: (c.train_frequency, c.category_id)):
            table.add_row(c.name, str(c.train_frequency), _fmt(c.estimated_missing, ".0f"), str(c.missing),
                          str(c.spurious), str(c.auto_accepted), _fmt(c.threshold, ".3f"), _method_label(c))
        known = [c.estimated_missing for c in self.classes
                 if c.estimated_missing is not None and math.isfinite(c.estimated_missing)]
        # The pooled threshold only where some class has a threshold at all (a fully labelled store has none).
        pooled = any(c.threshold is not None for c in self.classes)
        table.add_section()
        table.add_row("all classes", str(sum(c.train_frequency for c in self.classes)),
                      f"{sum(known):.0f}" if known else "-",
                      str(self.n_missing), str(self.n_spurious), str(self.n_auto_accepted),
                      _fmt(self.thresholds.pooled_threshold if pooled else None, ".3f"), "pool" if pooled else "-")
        return table

    def note_lines(self) -> list[str]:
        """The report's notes, then one line per class that needs one (tail classes first).

        Method column: hide = own hide-and-measure threshold, pooled = the pooled one, PU = positive-unlabelled
        estimate, * = fallback threshold, below = below target precision (ranked top-k list), ranked =
        uncalibrated top-k, none = no suggestions.
        """
        lines = [f"note: {n}" for n in self.notes]
        lines.append("method: hide / pooled = hide-and-measure (own / pooled threshold), PU = positive-unlabelled "
                     "estimate, below = target precision not reached: ranked top-k list, NOT calibrated, "
                     "ranked = no estimate possible: top-k list, NOT calibrated, no hit = target reached on val "
                     "but no unknown train cell scores at the threshold: top-k list, NOT calibrated, none = target "
                     "unreachable, no list, untrained = no train positives, no suggestions, complete = every train "
                     "cell labelled, nothing to suggest; train freq = the class's train positives before this call "
                     "(this call's auto-accepts are in the auto column); est. missing = expected missing labels among "
                     "the class's unknown train cells (- where unknown)")
        for c in sorted(self.classes, key=lambda c: (c.train_frequency, c.category_id)):
            if c.needs_note and c.note:
                lines.append(f"{c.name}: {c.note}")
        return lines

    def print(self, console: Console | None = None) -> None:
        console = console or Console()
        for warning in self.warnings:
            console.print("[yellow]warning:[/] ", end="", highlight=False)
            console.print(warning, highlight=False, markup=False, soft_wrap=True)
        console.print(self.table())
        for line in self.note_lines():
            console.print(line, highlight=False, markup=False, soft_wrap=True)
        if self.n_auto_held_back:
            console.print(f"{counted(self.n_auto_held_back, 'suggestion')} above the auto-accept score "
                          f"{_were(self.n_auto_held_back)} not auto-accepted: "
                          f"`labelfix revert-auto` undid an earlier auto-accept of those cells, so they wait for a "
                          f"reviewer (accept them in `labelfix review`)", highlight=False, soft_wrap=True)
        console.print(f"{self.n_missing} missing and {self.n_spurious} spurious suggestions written, "
                      f"{self.n_auto_accepted} auto-accepted, {counted(self.n_replaced, 'earlier open suggestion')} "
                      f"of run {self.run_id} replaced ({self.seconds:.1f} s)", highlight=False, soft_wrap=True)
        if self.auto_accept_note:  # asked for, none accepted: the reason, right under the count it explains
            console.print(self.auto_accept_note, highlight=False, markup=False, soft_wrap=True)


def queue_warning(activity: dict[str, Any], *, run_id: int, replaced: int) -> str | None:
    """In words, what a new ``labelfix suggest`` call did to a review queue people were working on (None when
    nobody held, set aside or decided an item of it): ``activity`` as
    :func:`~labelfix.store.suggestions.queue_activity` read it before the call.

    Examples
    --------
    >>> print(queue_warning({"holders": {"ana": 3}, "pending": 40, "set_aside": 2, "decided": 7}, run_id=1,
    ...                     replaced=40))
    the review queue of run 1 was replaced while reviewers were working on it: ana was holding 3 items (a review server is probably running): those leases were dropped and the next action shows the new queue; 40 open items were replaced by the new suggestions (2 skipped/unsure ones are kept in the history as superseded); 7 decisions already made are kept (those cells are not suggested again)
    """
    holders, set_aside, decided = activity["holders"], activity["set_aside"], activity["decided"]
    if not holders and not set_aside and not decided:
        return None
    parts = []
    if holders:
        who = ", ".join(f"{name} was holding {counted(n, 'item')}" for name, n in holders.items())
        parts.append(f"{who} (a review server is probably running): those leases were dropped and the next "
                     f"action shows the new queue")
    aside = f" ({set_aside} skipped/unsure ones are kept in the history as superseded)" if set_aside else ""
    parts.append(f"{counted(replaced, 'open item')} {_were(replaced)} replaced by the new suggestions{aside}")
    if decided:
        parts.append(f"{counted(decided, 'decision')} already made {'is' if decided == 1 else 'are'} kept (those cells "
                     f"are not suggested again)")
    return (f"the review queue of run {run_id} was replaced while reviewers were working on it: "
            + "; ".join(parts))


def _were(n: int) -> str:
    return "was" if n == 1 else "were"


def _method_label(c: ClassSummary) -> str:
    """Short enough for an 80-column table; the notes under it say the rest in words."""
    if c.threshold_source == "no-train-positives":
        return "untrained"
    if c.threshold_source == COMPLETE:
        return COMPLETE
    if c.unreached:
        return "no hit"
    if c.below_target:
        return "below"
    if not c.calibrated:
        return "ranked"
    return {"class": "hide", "pooled": "pooled", "fallback": "hide*", "unreachable": "none",
            "pu": "PU", "pu-fallback": "PU*", "pu-unreachable": "none", "pu-implausible": "below"}.get(c.threshold_source, c.threshold_source)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


# A given miss rate above this claims most val positives are missing: the precision correction then lets nearly every
# unknown cell through (a fresh test's --expected-missing-rate 0.9 flagged 22,958 cells, 12 % of them true).
HIGH_MISSING_RATE = 0.6


def missing_rate_warning_for(*, rate: float, estimated: bool) -> str | None:
    """A warning when the precision rests on an estimated miss rate, or on a given one above ``HIGH_MISSING_RATE``.

    Examples
    --------
    >>> print(missing_rate_warning_for(rate=0.28, estimated=True))
    the thresholds rest on an estimated miss rate (28% of val's positives, --expected-missing-rate auto): precision may be overstated, by a lot on a weak model; these suggestions are marked ESTIMATED and are not auto-accepted without --auto-accept-estimated
    >>> missing_rate_warning_for(rate=0.3, estimated=False) is None
    True
    """
    if estimated and rate > 0:
        return (f"the thresholds rest on an estimated miss rate ({rate:.0%} of val's positives, --expected-missing-rate "
                "auto): precision may be overstated, by a lot on a weak model; these suggestions are marked ESTIMATED "
                "and are not auto-accepted without --auto-accept-estimated")
    if rate > HIGH_MISSING_RATE:
        return (f"--expected-missing-rate {rate:g} says {rate:.0%} of val's positives are missing: unless that is true, "
                "the precision is overstated and nearly every unknown cell passes its threshold")
    return None
