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
CheckImagesOption = Annotated[str, typer.Option(
    "--check-images", help="full: decode every image; header: read headers only; none: paths only.")]
SplitOption = Annotated[str, typer.Option("--split", help="Split of images that do not name one.")]


def check_images_value(value: str) -> str:
    if value not in ("full", "header", "none"):
        raise typer.BadParameter("use full, header or none", param_hint="--check-images")
    return value
