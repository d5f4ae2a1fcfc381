"""Options and output shared by the CLI commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def _db_given_before_the_command(ctx: typer.Context, value: Optional[Path]) -> Optional[Path]:
    """``labelfix --db X CMD`` and ``labelfix GROUP --db X CMD`` work like ``labelfix CMD --db X``
    (``main`` refuses ``--db`` given twice, so at most one of them is set)."""
    parent = ctx.parent
    while value is None and parent is not None:
        value = parent.params.get("db")
        parent = parent.parent
    return value


DbOption = Annotated[Optional[Path], typer.Option(
    "--db", help="Store file (default: $LABELFIX_DB, else ./labelfix.duckdb).", show_default=False,
    callback=_db_given_before_the_command)]

# The --db of `labelfix` and of a command group (`labelfix ingest --db X coco ...`).
GroupDbOption = Annotated[Optional[Path], typer.Option(
    "--db", help="Store file for the command (as the command's own --db).", show_default=False)]


def refuse_db_for_a_command_without_store(ctx: typer.Context, db: Optional[Path]) -> None:
    """A ``--db`` before a command that opens no store (``labelfix --db X demo-data``) is a slip: say so."""
    if db is None or ctx.invoked_subcommand is None:
        return
    command = ctx.command.get_command(ctx, ctx.invoked_subcommand)  # type: ignore[attr-defined]
    if command is None:
        return  # click reports the unknown command itself
    leaves = list(getattr(command, "commands", {}).values()) or [command]
    if not any(param.name == "db" for leaf in leaves for param in leaf.params):
        raise typer.BadParameter(f"`{ctx.command_path} {ctx.invoked_subcommand}` does not use a store",
                                 param_hint="--db")


def group_options(ctx: typer.Context, db: GroupDbOption = None) -> None:
    """Options of a command group, given before its command: ``--db`` works here too."""
    refuse_db_for_a_command_without_store(ctx, db)


def db_given_twice(argv: list[str]) -> Optional[str]:
    """The values of ``--db`` when a command line gives it more than once, else ``None``.

    Click keeps the last value silently; a second ``--db`` is far more likely a slip than a wish.

    Examples
    --------
    >>> db_given_twice(["--db", "a.duckdb", "--db=b.duckdb", "status"])
    'a.duckdb, b.duckdb'
    >>> db_given_twice(["status", "--db", "a.duckdb"]) is None
    True
    """
    values = []
    for index, token in enumerate(argv):
        if token == "--":
            break
        if token == "--db":
            values.append(argv[index + 1] if index + 1 < len(argv) else "")
        elif token.startswith("--db="):
            values.append(token[len("--db="):])
    return ", ".join(values) if len(values) > 1 else None


def check_images_value(value: str) -> str:
    if value not in ("full", "header", "none"):
        raise typer.BadParameter("use full, header or none", param_hint="--check-images")
    return value


# Checked while the command line is parsed, so a bad value stops the command before it opens anything.
CheckImagesOption = Annotated[str, typer.Option(
    "--check-images", help="full: decode every image; header: read headers only; none: paths only.",
    callback=check_images_value)]


def split_value(value: str) -> str:
    from labelfix.ingest_contract import SPLITS

    if value not in SPLITS:
        raise typer.BadParameter(f"use {', '.join(SPLITS[:-1])} or {SPLITS[-1]}", param_hint="--split")
    return value


SplitOption = Annotated[str, typer.Option("--split", help="Split of images that do not name one.",
                                          callback=split_value)]


def json_asked(argv: list[str]) -> bool:
    """Whether a command line asks for ``--json`` output (options after a ``--`` are arguments, not options).

    Examples
    --------
    >>> json_asked(["suggest", "--json"]), json_asked(["suggest", "--", "--json"]), json_asked(["status"])
    (True, False, False)
    """
    return "--json" in (argv[:argv.index("--")] if "--" in argv else argv)


def print_json_error(*, error: str, fix: str | None, file: str | None = None, record: str | None = None) -> None:
    """A failed ``--json`` command's one JSON object on stdout, so a script reading stdout always gets JSON:
    ``{"error": ..., "fix": ...}`` (plus ``file`` and ``record`` where the error names them). The message for a
    person still goes to stderr; the exit code stays what it is (2 for bad input)."""
    import json

    body: dict[str, str | None] = {"error": error, "fix": fix}
    body |= {key: value for key, value in (("file", file), ("record", record)) if value is not None}
    console.print(json.dumps(body), highlight=False, markup=False, soft_wrap=True)
