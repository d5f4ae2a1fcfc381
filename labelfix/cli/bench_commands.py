"""`labelfix bench`: the missing-label benchmark (hide known labels, train, measure, report)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from labelfix.cli.common import console


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise typer.BadParameter("use comma-separated integers, e.g. 0,1,2", param_hint=option) from error
    if not values:
        raise typer.BadParameter("give at least one value", param_hint=option)
    return values


def bench_command(
    coco: Annotated[Optional[Path], typer.Option(
        "--coco", help="Fully labelled COCO file (with --images); its image records' 'split' key gives the "
                       "splits.")] = None,
    images: Annotated[Optional[Path], typer.Option("--images", help="Image folder of --coco.")] = None,
    features: Annotated[Optional[Path], typer.Option(
        "--features", help="Fully labelled features table (Parquet: image_id, labels, embedding[, split]) "
                           "instead of --coco.")] = None,
    hide: Annotated[float, typer.Option("--hide", help="Share of train/val positives to hide.")] = 0.4,
    single_positive: Annotated[bool, typer.Option(
        "--single-positive", help="Keep one positive per train/val image instead.")] = False,
    seeds: Annotated[Optional[str], typer.Option(
        "--seeds", help="Hiding (and training) seeds, comma-separated [default: 0,1,2; 0 with --quick].",
        show_default=False)] = None,
    methods: Annotated[str, typer.Option(
        "--methods", help="Comma-separated methods, or 'all' (every trainer method, comic_nohtb, gr_voc, splc_tau07, "
                          "cleanlab, oracle).")] = "all",
    baselines: Annotated[bool, typer.Option(
        "--baselines/--no-baselines", help="Add cleanlab and the oracle when --methods does not name them.")] = True,
    out: Annotated[Path, typer.Option("--out", help="Output folder for results.json, results.md and plots.")
                   ] = Path("bench_results"),
    epochs: Annotated[Optional[int], typer.Option(
        "--epochs", min=1, help="Epoch cap for every method (default: each method's own).", show_default=False)
    ] = None,
    folds: Annotated[str, typer.Option(
        "--folds", help="Trainer fold counts to report, comma-separated: 1 = in-sample, K > 1 = cross-fitted "
                        "(e.g. 1,5 for both).")] = "1",
    baseline_folds: Annotated[int, typer.Option(
        "--baseline-folds", min=2, help="K of the out-of-fold cleanlab and oracle predictions.")] = 5,
    baseline_model: Annotated[str, typer.Option(
        "--baseline-model", help="head (labelfix's linear head, as the methods) or logreg (scikit-learn "
                                 "logistic regression, C chosen on val; slower).")
    ] = "head",
    backbone: Annotated[str, typer.Option("--backbone", help="Backbone for --coco embeddings.")] = "mobilenet_v2",
    mode: Annotated[str, typer.Option(
        "--mode", help="head (linear head on embeddings) or adapt (top blocks on cached feature maps; --coco "
                       "only).")] = "head",
    image_size: Annotated[Optional[int], typer.Option(
        "--image-size", min=32, help="Adapt mode: side of the square each whole image is resized to before its "
                                     "feature maps are cached (default: adapt's 224).", show_default=False)] = None,
    select: Annotated[Optional[str], typer.Option(
        "--select", help="Adapt mode: the epoch that scores the train cells: val_map (default), val_hidden or "
                         "train_probe (labelfix.learn.adapt.select).")] = None,
    cache: Annotated[Optional[Path], typer.Option(
        "--cache", help="Embedding cache folder (default: labelfix-bench-cache beside the COCO file).",
        show_default=False)] = None,
    work: Annotated[Optional[Path], typer.Option(
        "--work", help="Keep the per-seed stores here (default: a temporary folder, removed).",
        show_default=False)] = None,
    tune: Annotated[bool, typer.Option(
        "--tune", help="Pick each method's weight decay and main loss setting by val mAP on the first seed "
                       "(observed val labels only), then use it for every seed.")] = False,
    quick: Annotated[bool, typer.Option(
        "--quick", help="Smoke run: seed 0 only (unless --seeds is given), at most 5 epochs, one C.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    review_rounds: Annotated[int, typer.Option(
        "--review-rounds", min=0, help="Instead of the method table: simulate this many review rounds (a reviewer "
                                "who knows the hidden truth answers the top suggestions; the next round "
                                "retrains with the decisions).")] = 0,
    review_budget: Annotated[float, typer.Option(
        "--review-budget", min=0.0, help="Reviews per round: a share of the unknown train cells (< 1) or a count.")] = 0.05,
) -> None:
    """Benchmark missing-label detection: hide labels of a fully labelled set, train every method,
    report test mAP and how well each ranks the hidden labels, against cleanlab and the full-label oracle."""
    from labelfix.bench.harness import BenchSettings, load_coco_bench_data, load_features_bench_data, parse_methods
    from labelfix.bench.plots import write_plots
    from labelfix.bench.report import check_payload, markdown_table, write_json, write_markdown

    if (coco is None) == (features is None):
        raise typer.BadParameter("give either --coco FILE --images DIR or --features FILE.parquet", param_hint="--coco")
    if coco is not None and images is None:
        raise typer.BadParameter("--coco needs --images DIR", param_hint="--images")
    from labelfix.internal.paths import input_file, input_folder, output_folder

    if coco is not None:
        input_file(coco, what="COCO file")
    if images is not None:
        input_folder(images)
    if features is not None:
        input_file(features, what="features table")
    for folder, option in ((out, "--out"), (cache, "--cache"), (work, "--work")):
        if folder is not None:
            output_folder(folder, option=option)
    if not 0.0 <= hide < 1.0:
        raise typer.BadParameter("use a share in [0, 1)", param_hint="--hide")
    if baseline_model not in ("logreg", "head"):
        raise typer.BadParameter("use logreg or head", param_hint="--baseline-model")
    if mode not in ("head", "adapt") or (mode == "adapt" and features is not None):
        from labelfix.errors import LabelfixError

        raise LabelfixError(f"--mode {mode} cannot run here: adapt mode trains on images, a features table has none",
                            fix="use --mode head with --features, or --mode adapt with --coco FILE --images DIR")
    if select is not None and (mode != "adapt" or select not in ("val_map", "val_hidden", "train_probe")):
        raise typer.BadParameter("use val_map, val_hidden or train_probe, with --mode adapt", param_hint="--select")
    seed_list = _int_list(seeds if seeds is not None else ("0" if quick else "0,1,2"), "--seeds")
    fold_list = _int_list(folds, "--folds")
    if any(k < 1 for k in fold_list):
        raise typer.BadParameter("fold counts are at least 1", param_hint="--folds")
    settings = BenchSettings(methods=parse_methods(methods, baselines=baselines), seeds=seed_list, hide_rate=hide,
                             single_positive=single_positive, epochs=epochs, folds=fold_list,
                             baseline_folds=baseline_folds, baseline_model=baseline_model,  # type: ignore[arg-type]
                             backbone=backbone, quick=quick, tune=tune, mode=mode,  # type: ignore[arg-type]
                             image_size=image_size, adapt_select=select)
    if coco is not None:
        assert images is not None  # checked above
        adapt_size = None
        if mode == "adapt":
            from labelfix.learn.adapt import ADAPT_DEFAULTS

            adapt_size = image_size if image_size is not None else int(ADAPT_DEFAULTS["image_size"])
        console.print(f"loading {coco} and {'caching feature maps' if adapt_size else 'embedding'} of its images with "
                      f"{backbone} (cached)", highlight=False)
        data = load_coco_bench_data(coco, images=images, cache_dir=cache, backbone=backbone, progress=not quiet,
                                    adapt_image_size=adapt_size)
    else:
        assert features is not None  # checked above: exactly one of --coco / --features
        data = load_features_bench_data(features)
    sizes = ", ".join(f"{split} {int((data.splits == split).sum())}" for split in ("train", "val", "test"))
    console.print(f"{len(data.image_ids)} images ({sizes}), {data.num_classes} classes; "
                  f"{len(settings.methods)} methods x {len(seed_list)} seeds", highlight=False)
    from labelfix.bench.harness import run_benchmark

    if review_rounds > 0:
        _run_review_rounds(data, settings, rounds=review_rounds, budget=review_budget, work=work, out=out,
                           quiet=quiet)
        return
    run = run_benchmark(data, settings, work_dir=work, keep_work=work is not None, progress=not quiet)
    problems = check_payload(run.payload)
    if problems:  # a bug, not a user error: say so loudly but still write what we have
        console.print(f"[red]results.json does not match its schema:[/] {problems[:5]}")
    out.mkdir(parents=True, exist_ok=True)
    command = ("labelfix bench " + " ".join(shlex.quote(arg) for arg in sys.argv[2:])
               if len(sys.argv) > 1 and sys.argv[1] == "bench" else None)
    write_json(run.payload, out / "results.json")
    write_markdown(run.payload, out / "results.md", command=command)
    write_plots(run.payload, run.curves, out)
    console.print(markdown_table(run.payload), highlight=False, markup=False)
    console.print(f"wrote {out / 'results.json'}, results.md, pr_missing.png, per_class_ap_vs_frequency.png "
                  f"({run.payload['environment']['total_seconds']:.0f} s)", highlight=False)


def _run_review_rounds(data, settings, *, rounds: int, budget: float, work: Optional[Path], out: Path,
                       quiet: bool) -> None:
    """``--review-rounds``: every method through simulated review rounds, per seed, in fresh stores."""
    import tempfile

    from labelfix.bench.review_rounds import plot_rounds, rounds_markdown, run_review_rounds
    from labelfix.internal.atomic import write_text_atomic
    from labelfix.io.coco_writer import write_json_atomic

    if len(settings.folds) != 1:
        raise typer.BadParameter("review rounds take one fold count", param_hint="--folds")
    with tempfile.TemporaryDirectory(prefix="labelfix-rounds-") as scratch:
        payload = run_review_rounds(data, settings, rounds=rounds, budget=budget, folds=settings.folds[0],
                                    work_dir=work or Path(scratch), progress=not quiet)
    command = ("labelfix bench " + " ".join(shlex.quote(arg) for arg in sys.argv[2:])
               if len(sys.argv) > 1 and sys.argv[1] == "bench" else None)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(payload, out / "review_rounds.json")
    write_text_atomic(out / "review_rounds.md", rounds_markdown(payload, command=command))
    plot_rounds(payload, out / "review_rounds.png")
    console.print(rounds_markdown(payload), highlight=False, markup=False)
    console.print(f"wrote {out / 'review_rounds.json'}, review_rounds.md, review_rounds.png", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``labelfix bench`` to the app."""
    app.command("bench")(bench_command)
