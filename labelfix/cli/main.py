"""Entry point: builds the typer app from the command modules and turns errors into clear exits.

Exit codes: 0 done; 2 a usage error or bad input (one message, no traceback; bare ``labelfix`` prints the
help and exits 2, as click does for a group called without a command); 1 aborted; 130 interrupted.
"""

from __future__ import annotations

import errno
import math
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Annotated, Any, Optional, TextIO

import typer
from typer._click import exceptions as click_exceptions

from typer.core import TyperOption

from labelfix import __version__
from labelfix.cli import (
    bench_commands,
    embed_commands,
    learn_commands,
    review_commands,
    reviewer_commands,
    suggest_commands,
)
from labelfix.cli.common import (GroupDbOption, console, db_given_twice, err_console, json_asked, print_json_error,
                                 refuse_db_for_a_command_without_store)
from labelfix.cli.data_commands import export_app, ingest_app, register_data_commands
from labelfix.errors import LabelfixError
from labelfix.internal.paths import os_error_as_labelfix_error

def _flag_type(self: TyperOption, ctx: Any) -> str | None:
    """A flag takes no value: its help row shows no ``<bool>`` placeholder (the pinned typer prints one)."""
    return None if self.is_flag else _typer_display_type(self, ctx)


_typer_display_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]


def _finite_numbers_only(self: TyperOption, ctx: Any, value: Any) -> Any:
    """A float option refuses nan and inf: typer accepts them, and nan passes every min/max check
    (each comparison with nan is false), so ``--target-precision nan`` would reach the code."""
    try:
        coerced = _typer_process_value(self, ctx, value)
    except click_exceptions.BadParameter:
        # typer's range check words nan as "should be less than ..."; say what is wrong instead.
        if _non_finite(value):
            raise click_exceptions.BadParameter(f"{_non_finite(value)} is not a number: give a finite number",
                                                ctx=ctx, param=self) from None
        raise
    if any(isinstance(number, float) for number in _items(coerced)) and _non_finite(value):
        raise click_exceptions.BadParameter(f"{_non_finite(value)} is not a number: give a finite number",
                                            ctx=ctx, param=self)
    return coerced


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _non_finite(value: Any) -> str | None:
    """The first of the given texts that reads as nan or +-inf, else None."""
    for text in _items(value):
        try:
            if isinstance(text, str) and not math.isfinite(float(text)):
                return text
        except ValueError:
            continue
    return None


_typer_process_value = TyperOption.process_value
TyperOption.process_value = _finite_numbers_only  # type: ignore[method-assign, assignment]

# Tracebacks are for bugs: typer's Rich traceback hook stays off, usage errors are printed by `main`.
app = typer.Typer(name="labelfix", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Find and fix missing labels in multi-label image datasets.")
app.add_typer(ingest_app, name="ingest")
app.add_typer(export_app, name="export")
register_data_commands(app)
# The order here is the order of `labelfix --help`: the main road first, the benchmark last.
for _commands in (embed_commands, learn_commands, suggest_commands, review_commands, reviewer_commands,
                  bench_commands):
    _commands.register(app)


def _print_version(value: bool) -> None:
    if value:
        console.print(__version__, highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    show_version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                               help="Print the labelfix version and exit.")] = False,
    db: GroupDbOption = None,
) -> None:
    """Options given before the command; the commands read ``--db`` from here when they are not given it."""
    refuse_db_for_a_command_without_store(ctx, db)


@app.command()
def version() -> None:
    """Print the labelfix version."""
    console.print(__version__, highlight=False)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Optional[TextIO] = None, line: Optional[str] = None) -> None:
    """Python warnings as one labelfix line each, without the source line they were raised at."""
    err_console.print("[yellow]warning:[/] ", end="", highlight=False)
    err_console.print(" ".join(str(message).split()), highlight=False, markup=False)


def _usage_error(error: click_exceptions.ClickException, *, as_json: bool = False) -> int:
    """Print a click usage error as labelfix does its own (usage line, error, fix); return the exit code.
    ``as_json``: the command line asked for ``--json``, so stdout also gets the error as one JSON object."""
    if isinstance(error, click_exceptions.NoArgsIsHelpError):
        # typer's Rich help was already printed while the error was built; plain click puts it in the message.
        if error.format_message().strip():
            console.print(error.format_message(), highlight=False, markup=False)
        return 2
    ctx = getattr(error, "ctx", None)
    if ctx is not None:
        err_console.print(ctx.get_usage(), highlight=False, markup=False)
    err_console.print("[bold red]error:[/] ", end="", highlight=False)
    err_console.print(error.format_message(), highlight=False, markup=False)
    command = ctx.command_path if ctx is not None else "labelfix"
    err_console.print(f"  fix: see `{command} --help`", highlight=False, markup=False)
    if as_json:
        print_json_error(error=error.format_message(), fix=f"see `{command} --help`")
    return 2


def _report(error: LabelfixError, *, as_json: bool = False) -> int:
    err_console.print("[bold red]error:[/] ", end="", highlight=False)
    err_console.print(error.message, highlight=False, markup=False)
    if as_json:
        print_json_error(error=error.problem, fix=error.fix, file=error.file, record=error.record)
    return 2


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM / SIGHUP (a `timeout`, a closed terminal, a job scheduler) end a command like Ctrl-C does, so its
    # clean-up runs: a training run is marked failed instead of staying 'running', temp files go.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Optional[list[str]] = None) -> int:
    """Run the CLI and return its exit code; a usage error or bad input is one message and exit code 2."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        return _main(argv)
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return _main(argv)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _main(argv: Optional[list[str]]) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    as_json = json_asked(args)  # then every failure is also one JSON object on stdout (print_json_error)
    twice = db_given_twice(args)
    if twice is not None:
        return _report(LabelfixError(f"--db given twice ({twice}): a command opens one store",
                                     fix="give --db once, before or after the command"), as_json=as_json)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            result: Any = typer.main.get_command(app).main(args=argv, prog_name="labelfix", standalone_mode=False)
        except LabelfixError as error:
            return _report(error, as_json=as_json)
        except click_exceptions.ClickException as error:
            return _usage_error(error, as_json=as_json)
        except typer.Exit as exit_:
            return exit_.exit_code
        except typer.Abort:
            err_console.print("aborted")
            if as_json:
                print_json_error(error="aborted", fix=None)
            return 1
        except KeyboardInterrupt:
            err_console.print("interrupted")
            if as_json:
                print_json_error(error="interrupted", fix="run the command again")
            return 130
        except OSError as error:
            if error.errno == errno.EPIPE:  # output piped into e.g. `head`, which stopped reading
                return 1
            return _report(os_error_as_labelfix_error(error), as_json=as_json)
    # Without standalone mode click returns what the command returned, or the code of a typer.Exit.
    return result if isinstance(result, int) else 0


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
