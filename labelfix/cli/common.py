"""Options and output shared by the CLI commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def _db_given_before_the_command(ctx: typer.Context, value: Optional[Path]) -> Optional[Path]:
    """``labelfix --db X CMD`` works like ``labelfix CMD --db X``; the command's own ``--db`` wins."""
    if value is not None:
        return value
    return ctx.find_root().params.get("db")


DbOption = Annotated[Optional[Path], typer.Option(
    "--db", help="Store file (default: $LABELFIX_DB, else ./labelfix.duckdb).", show_default=False,
    callback=_db_given_before_the_command)]


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
