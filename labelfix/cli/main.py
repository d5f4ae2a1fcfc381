"""Entry point: builds the typer app from the command modules and turns errors into clear exits."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from labelfix import __version__
from labelfix.cli import bench_commands, embed_commands, learn_commands, review_commands, suggest_commands
from labelfix.cli.common import console, err_console
from labelfix.cli.data_commands import export_app, ingest_app, register_data_commands
from labelfix.errors import LabelfixError

app = typer.Typer(name="labelfix", no_args_is_help=True, add_completion=False,
                  help="Find and fix missing labels in multi-label image datasets.")
app.add_typer(ingest_app, name="ingest")
app.add_typer(export_app, name="export")
register_data_commands(app)
# The order here is the order of `labelfix --help`: the main road first, the benchmark last.
for _commands in (embed_commands, learn_commands, suggest_commands, review_commands, bench_commands):
    _commands.register(app)


@app.command()
def version() -> None:
    """Print the labelfix version."""
    console.print(__version__)


def main(argv: Optional[list[str]] = None) -> int:
    """Run the CLI; a :class:`LabelfixError` becomes one clear message and exit code 2."""
    try:
        app(args=argv, standalone_mode=False)
    except LabelfixError as error:
        err_console.print(f"[bold red]error:[/] {error.message}", highlight=False, soft_wrap=True)
        return 2
    except typer.Exit as exit_:
        return exit_.exit_code
    except typer.Abort:
        err_console.print("aborted")
        return 1
    except Exception as error:  # click usage errors carry their own exit code
        import click

        if isinstance(error, click.ClickException):
            error.show()
            return error.exit_code
        raise
    return 0


def entry_point() -> None:
    sys.exit(main())
