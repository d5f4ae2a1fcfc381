"""`labelfix embed`: compute (or reuse) the embedding set of a backbone."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from labelfix.cli.common import DbOption, console


def embed_command(
    db: DbOption = None,
    backbone: Annotated[str, typer.Option(
        "--backbone", help="mobilenet_v2, efficientnet_lite0 (weights installed), or any torchvision model.")
    ] = "mobilenet_v2",
    weights: Annotated[str, typer.Option(
        "--weights", help="'default' (installed/torchvision ImageNet weights), a state dict PATH, or 'random'.")
    ] = "default",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per forward pass.")] = 32,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    image_size: Annotated[Optional[int], typer.Option(
        "--image-size", min=16, help="Crop size (default: the weights' own, e.g. 224).", show_default=False)] = None,
    num_workers: Annotated[Optional[int], typer.Option(
        "--num-workers", min=0, help="Image decoding processes (default: 0 on CPU, 4 on GPU).", show_default=False)
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Embed every image once per backbone and weights; later runs only embed new images."""
    from labelfix.learn.embed import EmbedConfig, compute_embeddings
    from labelfix.store import open_store

    config = EmbedConfig(backbone=backbone, weights=weights, batch_size=batch_size, device=device,
                         image_size=image_size, num_workers=num_workers)
    with open_store(db, create=False) as store:
        result = compute_embeddings(store, config=config, progress=not quiet)
        failed = _failed_files(store, result.failed_ids)
    console.print(f"embedding set [bold]{result.name}[/] (dim {result.dim}): computed {result.computed}, "
                  f"reused {result.reused}, failed {result.failed}", highlight=False)
    if result.computed:
        console.print(f"  {result.images_per_second:.1f} images/s", highlight=False)
    for problem, fix in (("missing", "restore the files in the images folder (or ingest with the right --images), "
                                     "then run `labelfix embed` again"),
                         ("could not decode", "re-export those files as PNG or JPEG (or remove them), then run "
                                              "`labelfix embed` again")):
        names = failed[problem]
        if names:
            more = f" … and {len(names) - 50} more" if len(names) > 50 else ""
            console.print(f"[yellow]{problem} ({len(names)}):[/] {', '.join(names[:50])}{more}", highlight=False)
            console.print(f"  fix: {fix}", highlight=False)
    if result.path is not None:
        console.print(f"  {result.path}", highlight=False)


def _failed_files(store: object, failed_ids: list[int]) -> dict[str, list[str]]:
    """The images that failed, as "file (id N)", split into missing files and files that did not decode."""
    from labelfix.learn.image_data import image_records

    failed: dict[str, list[str]] = {"missing": [], "could not decode": []}
    if not failed_ids:
        return failed
    wanted = set(failed_ids)
    for record in image_records(store):  # type: ignore[arg-type]
        if record.image_id in wanted:
            problem = "could not decode" if record.path.is_file() else "missing"
            failed[problem].append(f"{record.path.name} (id {record.image_id})")
    return failed


def register(app: typer.Typer) -> None:
    """Add ``labelfix embed`` to the app."""
    app.command("embed")(embed_command)
