"""`labelfix train` and `labelfix runs`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from labelfix.cli.common import DbOption, console
from labelfix.errors import LabelfixError
from labelfix.states import NEGATIVE, POSITIVE
from labelfix.store import open_store


def build_train_config(*, method: Optional[str], mode: Optional[str], epochs: Optional[int],
                       config_file: Optional[Path], embedding_set: Optional[str], seed: Optional[int],
                       lr: Optional[float], folds: Optional[int] = None, resume: Optional[bool] = None,
                       resume_run: Optional[int] = None, image_size: Optional[int] = None,
                       select: Optional[str] = None):
    """A TrainConfig from the optional TOML file, with the CLI flags that were given on top."""
    from pydantic import ValidationError

    from labelfix.errors import InputError
    from labelfix.internal.settings_errors import settings_problems
    from labelfix.learn.config import TRAIN_OPTIONS, TrainConfig

    overrides: dict[str, Any] = {"method": method, "mode": mode, "epochs": epochs, "embedding_set": embedding_set,
                                 "seed": seed, "lr": lr, "folds": folds, "resume": resume or None,
                                 "resume_run": resume_run, "image_size": image_size, "adapt_select": select}
    if config_file is not None:
        return TrainConfig.from_file(config_file, **overrides)
    try:
        # Only the flags given count as "set", so the method's defaults fill the rest.
        return TrainConfig(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as error:
        lines = settings_problems(error, names=TRAIN_OPTIONS)
        raise InputError("invalid option: " + "; ".join(lines), fix="see `labelfix train --help`") from error


def train_command(
    method: Annotated[Optional[str], typer.Option("--method", help="an, wan, focal, asl, hill, focal_margin, splc, "
                                                  "em, em_apl, gr, comic, cls (default: gr).")] = None,
    mode: Annotated[Optional[str], typer.Option("--mode", help="head (embeddings), adapt (top blocks on cached "
                                                "feature maps) or finetune (default: finetune with a GPU, else head).")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Maximum number of epochs.")] = None,
    config_file: Annotated[Optional[Path], typer.Option("--config", help="TOML file with TrainConfig keys; "
                                                        "flags override it.")] = None,
    embedding_set: Annotated[Optional[str], typer.Option("--embedding-set", help="Embedding set (head mode; "
                                                         "default: the most recent).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", min=0, help="Random seed.")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", min=0.0, help="Learning rate.")] = None,
    folds: Annotated[Optional[int], typer.Option("--folds", min=1, help="Cross-fit K models, each scoring the train images "
                                                 "it did not see (1 = in-sample).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Finetune: continue an unfinished run from its last "
                                         "checkpoint.")] = False,
    run: Annotated[Optional[int], typer.Option("--run", min=1, help="With --resume: the run to continue "
                                               "(default: the latest unfinished finetune run).")] = None,
    image_size: Annotated[Optional[int], typer.Option("--image-size", help="Adapt and finetune: images are resized "
                                                      "whole to this square side in pixels, 16..1024 (default 224, "
                                                      "as the demo uses).")] = None,
    select: Annotated[Optional[str], typer.Option("--select", help="Adapt: the epoch whose scores are kept: val_map "
                                                  "(default), val_hidden or train_probe (see the README).")] = None,
    nproc: Annotated[int, typer.Option("--nproc", min=1, help="Finetune: DistributedDataParallel on this many "
                                       "processes (GPUs, or CPU with gloo). Adapt: cache the feature maps with this "
                                       "many processes (one per GPU).")] = 1,
    db: DbOption = None,
) -> None:
    """Train a partial-label model, store its predictions and the cells it corrected."""
    if mode is not None and mode not in ("head", "adapt", "finetune"):
        raise LabelfixError(f"unknown mode {mode!r}", fix="use --mode head, adapt or finetune")
    if config_file is not None:
        from labelfix.internal.paths import input_file

        input_file(config_file, what="config file")
    config = build_train_config(method=method, mode=mode, epochs=epochs, config_file=config_file,
                                embedding_set=embedding_set, seed=seed, lr=lr, folds=folds, resume=resume,
                                resume_run=run, image_size=image_size, select=select)
    from labelfix.learn.config import TRAIN_METHODS

    if config.method not in TRAIN_METHODS:
        raise LabelfixError(f"unknown method {config.method!r}", fix=f"use one of: {', '.join(TRAIN_METHODS)}")
    resolved_mode = config.resolved_mode()
    with open_store(db, create=False) as store:
        _require_positive_labels(store)
        without_validation = _validation_problem(store)
        reviewed = _reviewed_cells_text(store)
    if without_validation:
        _warn(without_validation)
    if reviewed:
        console.print(reviewed, highlight=False)
    console.print(f"training [bold]{config.method}[/] in {resolved_mode} mode", highlight=False)
    if nproc > 1 and resolved_mode == "adapt":
        config = config.model_copy(update={"cache_nproc": nproc})
    elif nproc > 1:
        if resolved_mode != "finetune":
            raise LabelfixError("--nproc is for finetune and adapt modes",
                                fix="add --mode finetune or --mode adapt, or drop --nproc")
        from labelfix.learn.finetune.distributed import launch_distributed
        from labelfix.store import resolve_db_path

        # Rank 0 of the launched processes opens the store; this process must not hold it.
        outcome = launch_distributed(db=resolve_db_path(db), config=config, nproc=nproc)
        console.print(f"run {outcome['run_id']}: trained on {nproc} processes "
                      f"({_val_text(outcome['metrics'].get('val_map'))})", highlight=False)
        return
    from labelfix.flows.learn_flow import train

    with open_store(db, create=False) as store:
        result = train(store, config=config, console=console)
    console.print(f"run {result.run_id}: predictions of every image and class stored "
                  f"({_val_text(result.metrics.get('val_map'))}); `labelfix runs` lists the runs", highlight=False)


def _require_positive_labels(store: Any) -> None:
    """Refuse up front a store that gives the model nothing to learn (it would train epochs of "val mAP nan")."""
    from labelfix.store.labels import count_positives

    if count_positives(store, split="train"):
        return
    images = store.scalar("SELECT count(*) FROM images WHERE split = 'train'")
    what = "has no images in the train split" if not images else \
        f"has no positive label on its {images} train images"
    raise LabelfixError(f"{store.path}: the store {what}: there is nothing to train on",
                        fix="ingest annotated images (`labelfix status` shows what the store holds; images "
                            "without a split key go to --split, default train)")


def _reviewed_cells_text(store: Any) -> Optional[str]:
    """What review (or an imported labels.json) added to the train split, which this training uses (``None``
    when nothing): a user sees that accepted labels train as positives and verified-absent cells as negatives."""
    rows = dict(store.fetchall(
        f"SELECT CASE WHEN l.state = {NEGATIVE} THEN 'negative' ELSE l.origin END, count(*) FROM labels l "
        f"JOIN images i USING (image_id) WHERE i.split = 'train' AND (l.state = {NEGATIVE} OR "
        f"(l.state = {POSITIVE} AND l.origin <> 'original')) GROUP BY ALL"))
    if not rows:
        return None
    positives = [f"{rows[origin]} {words}" for origin, words in (("accepted", "accepted in review"),
                                                                 ("auto", "auto-accepted"),
                                                                 ("manual", "added by hand")) if rows.get(origin)]
    parts = ([f"{sum(rows.get(o, 0) for o in ('accepted', 'auto', 'manual'))} positive cells not in the original "
              f"annotations ({', '.join(positives)})"] if positives else [])
    if rows.get("negative"):
        parts.append(f"{rows['negative']} verified negatives (cells marked absent: rejected suggestions, removed "
                     f"labels or imported negative_labels; trained as absent, never suggested again)")
    return "train split: uses " + " and ".join(parts)


# Training without validation goes on (it is how a store made from one annotation file starts, and the
# model's scores still rank the missing labels), but the user hears once, up front, what it costs and
# how to add a val split; refusing would block the main use for want of data the user may not have.
_NO_VALIDATION_COST = (
    "training runs all its epochs (--epochs sets how many) and keeps the last: no early stopping and no choice "
    "of the best epoch; `labelfix suggest` cannot calibrate thresholds, so every class gets an uncalibrated "
    "ranked list and nothing is auto-accepted")
_HOW_TO_ADD_VALIDATION = (
    "add a val split: `labelfix ingest coco val.json --images DIR --split val` (a held-out annotation file), "
    "or a \"split\": \"val\" key on image records of the COCO file, or a split column in a table "
    "(`labelfix ingest table`); about 10-20% of the images, labelled as carefully as the rest")


# A val split with a few positives trains without a word otherwise, and its "best epoch" is noise.
_SMALL_VALIDATION_COST = (
    "val mAP on so few positives is noise, so the epoch it chooses (and early stopping) can keep an underfit "
    "model; `labelfix suggest` calibrates no class that has fewer than 5 val positives (those get uncalibrated "
    "ranked lists) and holds back its \"remove this label\" suggestions")
_HOW_TO_LABEL_VALIDATION = (
    "label the classes on the val images (every class present on an image, as carefully as the rest), or add "
    "val images: about 10-20% of the images, at least 5 positives of each class")


def _validation_problem(store: Any) -> Optional[tuple[str, str]]:
    """What is wrong with the val split for training and how to fix it, in words; ``None`` when nothing is."""
    from labelfix.learn.validation import small_validation_text
    from labelfix.store.labels import count_positives

    positives = count_positives(store, split="val")
    if positives:
        trained = int(store.scalar(f"SELECT count(DISTINCT l.category_id) FROM labels l JOIN images i "
                                   f"USING (image_id) WHERE i.split = 'train' AND l.state = {POSITIVE}"))
        small = small_validation_text(val_positives=positives, trained_classes=trained)
        return None if small is None else (f"{small}: {_SMALL_VALIDATION_COST}", _HOW_TO_LABEL_VALIDATION)
    images = int(store.scalar("SELECT count(*) FROM images WHERE split = 'val'"))
    if not images:
        return (f"this store has no validation split (no image in 'val'): {_NO_VALIDATION_COST}",
                _HOW_TO_ADD_VALIDATION)
    # The split is there; it lacks labels, so "add a val split" would be the wrong advice.
    return (f"the validation split has {images} images but no positive label on them: {_NO_VALIDATION_COST}",
            _HOW_TO_LABEL_VALIDATION)


def _warn(problem: tuple[str, str]) -> None:
    console.print(f"[yellow]warning:[/] {problem[0]}", highlight=False)
    console.print(f"  {problem[1]}", highlight=False, markup=False)


def _val_text(value: Any) -> str:
    return "no val mAP: no val positives" if value is None or not math.isfinite(value) else f"val mAP {value:.4f}"


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def runs_command(db: DbOption = None) -> None:
    """List training runs: method, mode, status, best epoch and val mAP."""
    from labelfix.store.runs import list_runs

    with open_store(db, create=False) as store:
        runs = list_runs(store)
    if not runs:
        console.print("no runs yet: `labelfix train --method gr`")
        return
    table = Table("run")
    table.add_column("created", no_wrap=True)
    for name in ("method", "mode", "status", "best epoch", "val mAP", "treated"):
        table.add_column(name)
    for run in runs:
        metrics = run["metrics"]
        best = metrics.get("best_epoch")
        table.add_row(str(run["run_id"]), str(run["created_at"])[:16], run["method"], run["mode"], run["status"],
                      "-" if best is None else str(best + 1), _fmt(metrics.get("val_map")),
                      _fmt(metrics.get("num_treated")))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("runs")(runs_command)
