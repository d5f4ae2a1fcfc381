"""``labelfix suggest`` and ``labelfix revert-auto``."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from labelfix.cli.common import DbOption, console, err_console
from labelfix.internal.words import counted
from labelfix.store import open_store


def suggest_command(
    run: Annotated[Optional[list[int]], typer.Option(
        "--run", min=1, help="Run to score; repeat to combine runs (default: the latest finished run).")] = None,
    combine: Annotated[str, typer.Option("--combine", help="How several runs combine: mean, max or rank_mean.")]
    = "mean",
    target_precision: Annotated[float, typer.Option(
        "--target-precision", help="Precision each class threshold should reach on validation.")] = 0.9,
    max_per_class: Annotated[Optional[int], typer.Option(
        "--max-per-class", help="Keep at most N suggestions of each kind per class.")] = None,
    auto_accept_above: Annotated[Optional[float], typer.Option(
        "--auto-accept-above", help="Opt-in: turn missing suggestions scoring above P into labels (origin auto); "
                                     "cells whose auto-accept revert-auto undid are left to reviewers.")]
    = None,
    auto_accept_estimated: Annotated[bool, typer.Option(
        "--auto-accept-estimated", help="With --auto-accept-above: also auto-accept classes whose threshold is a PU "
                                        "estimate (Elkan & Noto), not measured on validation. Off by default: PU "
                                        "estimates are often optimistic, above all on a weak model or "
                                        "single-positive data.")] = False,
    spurious: Annotated[Optional[bool], typer.Option(
        "--spurious/--no-spurious", help="Also suggest annotated labels the model strongly disputes (default: yes, "
                                         "unless the val split is too small to vouch for the model).")] = None,
    spurious_max_score: Annotated[float, typer.Option(
        "--spurious-max-score", help="Annotated positives at or below this probability are spurious suggestions.")]
    = 0.05,
    val_hide_fraction: Annotated[float, typer.Option(
        "--val-hide-fraction", help="Share of val positives hidden to estimate the thresholds.")] = 0.4,
    expected_missing_rate: Annotated[str, typer.Option(
        "--expected-missing-rate", metavar="RATE|auto",
        help="Share of val's true positives annotators missed, in [0, 1) (corrects the precision estimate; 0: "
             "none, a lower bound). auto: estimate it from val's unknown cells that score like its hidden "
             "positives (opt-in: can overstate precision on a weak model; such suggestions are marked ESTIMATED).")
    ] = "0",
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the validation hiding.")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of a table.")] = False,
    db: DbOption = None,
) -> None:
    """Write per-class thresholded missing-label (and spurious-label) suggestions to the store."""
    import json

    from pydantic import ValidationError

    from labelfix.errors import LabelfixError
    from labelfix.internal.settings_errors import settings_problems
    from labelfix.suggest.run import SuggestConfig, repeated_runs, suggest

    repeated = repeated_runs(run)
    if repeated:  # click keeps both; a run given twice is a slip, not a wish to weigh it double
        raise LabelfixError(f"--run {', '.join(map(str, repeated))} given more than once",
                            fix=f"give each run once (e.g. `--run {repeated[0]}`); repeat --run only to combine "
                                f"different runs")
    try:
        config = SuggestConfig(run_ids=run or None, combine=combine, target_precision=target_precision,
                               max_per_class=max_per_class, auto_accept_above=auto_accept_above,
                               auto_accept_estimated=auto_accept_estimated, spurious=spurious,
                               spurious_max_score=spurious_max_score, val_hide_fraction=val_hide_fraction,
                               expected_missing_rate=expected_missing_rate, seed=seed)
    except ValidationError as error:
        # Name the flag the user typed, not the Python field behind it.
        names = {field: "--run" if field == "run_ids" else "--" + field.replace("_", "-")
                 for field in SuggestConfig.model_fields}
        problems = "; ".join(settings_problems(error, names=names))
        raise LabelfixError(f"invalid option: {problems}", fix="see `labelfix suggest --help`") from error
    with open_store(db, create=False) as store:
        report = suggest(store, config=config)
    if json_out:  # the JSON has the warnings too; say them on stderr, where a person sees them
        for warning in report.warnings:
            err_console.print("[yellow]warning:[/] ", end="", highlight=False)
            err_console.print(warning, highlight=False, markup=False)
        console.print_json(json.dumps(report.to_dict(), default=str))
    else:
        report.print(console)


def revert_auto_command(
    run: Annotated[Optional[int], typer.Option("--run", min=1, help="Only auto-accepts of this run's suggestions.")] = None,
    db: DbOption = None,
) -> None:
    """Undo auto-accepted labels: cells return to their original state; undo events are recorded."""
    from labelfix.suggest.run import revert_auto

    with open_store(db, create=False) as store:
        count = revert_auto(store, run_id=run)
    console.print(f"reverted {counted(count, 'auto-accepted label')}" + (
        ": a later `labelfix suggest --auto-accept-above` does not auto-accept these cells again; they stay "
        "suggestions for a reviewer" if count else ""), highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``labelfix suggest`` and ``labelfix revert-auto`` to the app."""
    app.command("suggest")(suggest_command)
    app.command("revert-auto")(revert_auto_command)
