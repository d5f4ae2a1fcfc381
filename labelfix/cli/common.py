"""Options and output shared by the CLI commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional, cast

import typer
from rich.console import Console

if TYPE_CHECKING:
    from labelfix.io.coco import CheckImages

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

DbOption = Annotated[Optional[Path], typer.Option(
    "--db", help="Store file (default: $LABELFIX_DB, else ./labelfix.duckdb).", show_default=False)]
CheckImagesOption = Annotated[str, typer.Option(
    "--check-images", help="full: decode every image; header: read headers only; none: paths only.")]
SplitOption = Annotated[str, typer.Option("--split", help="Split of images that do not name one.")]


def check_images_value(value: str) -> CheckImages:
    if value not in ("full", "header", "none"):
        raise typer.BadParameter("use full, header or none", param_hint="--check-images")
    return cast("CheckImages", value)
