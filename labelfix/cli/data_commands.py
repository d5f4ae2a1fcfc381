"""Store, ingest, export and demo commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, cast

import typer
from rich.table import Table

from labelfix.errors import LabelfixError
from labelfix.cli.common import (CheckImagesOption, DbOption, SplitOption, check_images_value, console,
                                 group_options)
from labelfix.internal.paths import input_file, input_folder, output_folder
from labelfix.states import POSITIVE
from labelfix.store import open_store

if TYPE_CHECKING:
    from labelfix.io.coco import CheckImages
    from labelfix.io.demo_data import DemoDataset
    from labelfix.store.catalog import IngestSummary

ReplaceSourceOption = Annotated[bool, typer.Option(
    "--replace-source", help="This file is an edited version of one ingested before (the same path, or the same "
                             "name over the same images): replace it. Original labels only the earlier version "
                             "had are removed; reviewers' decisions are kept.")]

ingest_app = typer.Typer(no_args_is_help=True, help="Add labelled images to the store.")
ingest_app.callback()(group_options)  # `labelfix ingest --db X CMD` works too
export_app = typer.Typer(no_args_is_help=True, help="Write corrected labels out of the store.")
export_app.callback()(group_options)  # `labelfix export --db X CMD` works too


@ingest_app.command("coco")
def ingest_coco_command(
    annotations: Annotated[Path, typer.Argument(help="COCO JSON file (instances or image-level labels).")],
    images: Annotated[Optional[Path], typer.Option("--images", help="Folder the file names are relative to.")] = None,
    db: DbOption = None,
    check_images: CheckImagesOption = "full",
    split: SplitOption = "train",
    replace_source: ReplaceSourceOption = False,
) -> None:
    """Ingest a COCO file: an image's labels are the categories of its annotations."""
    from labelfix.ingest import ingest_coco

    input_file(annotations, what="COCO file")
    if images is not None:
        input_folder(images)
    elif check_images != "none":
        # Without a folder no file could be checked: the images would be missing at embed time instead.
        raise LabelfixError(f"--check-images {check_images} needs --images: the folder the file names of "
                            f"{annotations.name} are relative to",
                            file=annotations, fix="pass --images DIR, or --check-images none to ingest the labels "
                                                  "without image files (e.g. for a features table later)")
    with open_store(db) as store:
        summary = ingest_coco(store, annotations=annotations, images=images,
                              check_images=cast("CheckImages", check_images_value(check_images)), split=split,
                              replace_source=replace_source)
        unlabelled = _unlabelled_text(store, summary)
    console.print(f"{annotations}: {summary.describe()}")
    if unlabelled:
        console.print(unlabelled, highlight=False)
    _say_nothing_replaced(summary, path=annotations, replace_source=replace_source)
    _say_unchecked(summary, images=images, check_images=check_images)


def _unlabelled_text(store: Any, summary: "IngestSummary") -> Optional[str]:
    """How many of the store's images carry no positive label, by split (``None`` when none, or when this
    ingest changed nothing): legitimate for images showing none of the classes, but a broken join of file
    names or ids to labels looks the same, so the count is worth a line."""
    if summary.already_ingested or summary.empty_input:
        return None
    rows = store.fetchall(f"SELECT i.split, count(*) FROM images i WHERE NOT EXISTS (SELECT 1 FROM labels l WHERE "
                          f"l.image_id = i.image_id AND l.state = {POSITIVE}) GROUP BY ALL ORDER BY ALL")
    total = sum(n for _, n in rows)
    if not total:
        return None
    by_split = ", ".join(f"{split} {n}" for split, n in rows)
    has = "image in the store has" if total == 1 else "images in the store have"
    return (f"note: {total} {has} no positive label ({by_split}): right for images that show none of the "
            f"classes; if not, check that the file's image names or ids match its labels")


def _say_nothing_replaced(summary: "IngestSummary", *, path: Path, replace_source: bool) -> None:
    """--replace-source that found no earlier version (a file renamed, e.g. persons_v2.json) says so."""
    if replace_source and not summary.replaced and not summary.empty_input:
        console.print(f"note: --replace-source replaced nothing: no earlier version of {path.name} is in the store "
                      f"(an earlier version has the same path, or the same file name over the same images)")


def _say_unchecked(summary: "IngestSummary", *, images: Path | None, check_images: str) -> None:
    """One line when the image files were not looked at, so a missing folder or file is not a surprise later."""
    if check_images_value(check_images) != "none" or summary.already_ingested or summary.empty_input:
        return
    if images is None:
        console.print("note: no image file was checked (no --images folder): the labels are stored without them")
        return
    console.print(f"note: the image files in {images} were not checked (--check-images none): `labelfix embed` "
                  f"names any that are missing or unreadable; `--check-images header` checks them at ingest")


@ingest_app.command("table")
def ingest_table_command(
    table: Annotated[Path, typer.Argument(help="CSV or Parquet: file_name, labels[, split, image_id].")],
    images: Annotated[Path, typer.Option("--images", help="Folder the file names are relative to.")],
    db: DbOption = None,
    add_classes: Annotated[bool, typer.Option("--add-classes", help="Create classes the store lacks.")] = False,
    check_images: CheckImagesOption = "full",
    split: SplitOption = "train",
    label_separator: Annotated[str, typer.Option(
        "--label-separator", help="What separates the labels in a cell (' ' splits on white space).")] = ";",
    replace_source: ReplaceSourceOption = False,
) -> None:
    """Ingest a label table, one row per image."""
    from labelfix.ingest import ingest_table

    input_file(table, what="label table")
    input_folder(images)
    with open_store(db) as store:
        summary = ingest_table(store, table=table, images=images, add_classes=add_classes,
                               check_images=cast("CheckImages", check_images_value(check_images)), split=split,
                               label_separator=label_separator_value(label_separator), replace_source=replace_source)
        discarded = summary.empty_input and store.discard_if_new()
        unlabelled = None if discarded else _unlabelled_text(store, summary)
    console.print(f"{table}: {summary.describe()}" + (f" (no store was created at {store.path})" if discarded else ""))
    if unlabelled:
        console.print(unlabelled, highlight=False)
    _say_nothing_replaced(summary, path=table, replace_source=replace_source)
    _say_unchecked(summary, images=images, check_images=check_images)


def label_separator_value(value: str) -> str:
    if len(value) != 1 or value in "[]\"":
        raise typer.BadParameter("use one character such as ';', ',', '|' or ' '", param_hint="--label-separator")
    return value


@ingest_app.command("features")
def ingest_features_command(
    table: Annotated[Path, typer.Argument(help="Parquet: image_id, labels, embedding[, split].")],
    db: DbOption = None,
    add_classes: Annotated[bool, typer.Option("--add-classes", help="Create classes the store lacks.")] = False,
    split: SplitOption = "train",
    replace_source: ReplaceSourceOption = False,
) -> None:
    """Ingest a features table (precomputed embeddings; no image files needed)."""
    from labelfix.ingest import ingest_features

    input_file(table, what="features table")
    with open_store(db) as store:
        summary = ingest_features(store, table=table, add_classes=add_classes, split=split,
                                  replace_source=replace_source)
        unlabelled = _unlabelled_text(store, summary)
    console.print(f"{table}: {summary.describe()}")
    if unlabelled:
        console.print(unlabelled, highlight=False)
    _say_nothing_replaced(summary, path=table, replace_source=replace_source)


@export_app.command("coco")
def export_coco_command(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    db: DbOption = None,
    inline: Annotated[bool, typer.Option("--inline", help="Also write the source file plus added labels.")] = False,
) -> None:
    """Write labels.json (COCO image-level labels, attributes.source on each) and optionally the inline file."""
    from labelfix.export import export_coco

    output_folder(out)
    with open_store(db, create=False) as store:
        summary = export_coco(store, out_dir=out, inline=inline)
    for path in summary.paths:
        console.print(f"wrote {path}")
    sources = ", ".join(f"{name} {count}" for name, count in sorted(summary.by_source.items()))
    negatives = f", {summary.n_negatives} verified negatives (negative_labels)" if summary.n_negatives else ""
    console.print(f"{summary.n_images} images, {summary.n_annotations} labels ({sources or 'none'}){negatives}")
    for warning in summary.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


def init_command(db: DbOption = None) -> None:
    """Create (or migrate) the store."""
    with open_store(db) as store:
        console.print(f"store {store.path} at schema version {store.schema_version}")


def status_command(db: DbOption = None) -> None:
    """Show what the store holds."""
    from labelfix.store.labels import label_counts

    with open_store(db, create=False) as store:
        table = Table(title=str(store.path))
        table.add_column("what")
        table.add_column("count", justify="right")
        for name in ("sources", "images", "categories", "annotations", "runs", "suggestions", "review_events",
                     "exports"):
            table.add_row(name, str(store.scalar(f"SELECT count(*) FROM {name}")))
        for name, count in label_counts(store).items():
            table.add_row(f"labels {name}", str(count))
        for split, count in store.fetchall("SELECT split, count(*) FROM images GROUP BY split ORDER BY split"):
            table.add_row(f"images in {split}", str(count))
        console.print(table)


def demo_data_command(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("labelfix_demo/data"),
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
    missing: Annotated[float, typer.Option("--missing", min=0.0, max=1.0,
                                          help="Share of train/val positives to drop.")] = 0.4,
    single_positive: Annotated[bool, typer.Option("--single-positive", help="Keep one positive per image.")] = False,
    n_train: Annotated[int, typer.Option("--n-train", min=0)] = 3000,
    n_val: Annotated[int, typer.Option("--n-val", min=0)] = 500,
    n_test: Annotated[int, typer.Option("--n-test", min=0)] = 1000,
) -> None:
    """Write the built-in demo dataset: multi-label mosaics of real MNIST digits, as COCO."""
    from labelfix.io.demo_data import make_demo_dataset

    output_folder(out)
    dataset = make_demo_dataset(out_dir=out, seed=seed, missing_rate=missing, single_positive=single_positive,
                                n_train=n_train, n_val=n_val, n_test=n_test)
    console.print(demo_summary(dataset), highlight=False)


def demo_summary(dataset: DemoDataset) -> str:
    """What demo-data wrote, for a person: the splits, the two annotation files and the next command."""
    sizes = ", ".join(f"{count} {split}" for split, count in dataset.split_sizes.items())
    present = sum(1 for count in dataset.class_image_counts.values() if count)
    return (f"wrote the demo dataset to {dataset.root}: {sizes} images ({dataset.images_dir}), "
            f"{present} of {len(dataset.class_image_counts)} digit classes in train\n"
            f"  {dataset.observed_annotations}: the labels to fix, {dataset.n_annotations_observed} annotations "
            f"({dataset.n_hidden_cells} of {dataset.n_positive_cells} image labels of train and val hidden, "
            f"{dataset.hidden_positive_fraction:.0%})\n"
            f"  {dataset.full_annotations}: every label, {dataset.n_annotations_full} annotations (to measure "
            f"what was found)\n"
            f"  {dataset.readme}: what the files hold\n"
            f"next: labelfix ingest coco {dataset.observed_annotations} --images {dataset.images_dir}")


def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo data and exports.")] = Path("labelfix_demo"),
    db: DbOption = None,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
    quick: Annotated[bool, typer.Option("--quick", help="A small dataset (for smoke tests).")] = False,
    mode: Annotated[str, typer.Option("--mode", help="adapt (top blocks on cached feature maps) or head (linear "
                                                     "head on embeddings: faster, lower quality).")] = "adapt",
) -> None:
    """Run the whole job on the built-in demo: demo-data, ingest, cache maps / embed, train, suggest, export."""
    from labelfix.flows.demo import DemoConfig, run_demo

    if mode not in ("adapt", "head"):
        raise typer.BadParameter("use adapt or head", param_hint="--mode")
    output_folder(out)
    config = DemoConfig(out_dir=out, db=db, seed=seed, quick=quick, mode=mode)
    run_demo(config, console=console)


def register_data_commands(app: typer.Typer) -> None:
    app.command("init")(init_command)
    app.command("status")(status_command)
    app.command("demo-data")(demo_data_command)
    app.command("demo")(demo_command)
