"""Issue 12 item 2: what the whole-image preprocessing changed against the old centre crop.

labelfix now resizes the *whole* image to the backbone's square input (``Backbone.eval_transform``);
before, embedding used torchvision's evaluation recipe, Resize(256, short side) + CenterCrop(224),
which cuts a border of 1/16 of the side off each edge -- and with it parts (or all) of the objects
there, whose labels stay positive. This script measures the difference on a fully labelled COCO
folder (the demo data):

1. **Crop geometry**: the share of annotation boxes partly / entirely outside the centre crop, and
   the (image, class) labels whose every box is cut entirely (a false positive after the crop).
2. **Embeddings**: every image embedded twice with labelfix's MobileNetV2 (packaged weights) and
   labelfix's own embedding loop (:func:`labelfix.learn.embed._embed_records`); only the transform
   differs. Each is written as a fully labelled features table (``image_id, labels, embedding, split``).
3. **Head-mode benchmark** on both tables (``labelfix bench --features``, run as a subprocess with the
   same flags): 40 % hidden with AN, GR, WAN and the oracle, and single positive with AN and GR.
4. **Adapt mode** (stage ``adapt``): AN and the oracle, seed 0, on feature maps cached from each
   transform (see :func:`cache_crop_maps` for how the cropped maps are made without changing labelfix).
5. ``results.md`` / ``results.json`` in ``--out``: mean ± std over seeds per variant.

Run from the repository root::

    python benchmarks/crop_effect.py --data /tmp/benchdemo/data --out benchmarks/results/crop_effect

Embeddings and features tables are cached in ``--work`` (default: a folder in the system temp dir);
a second run reuses them. ``--stages`` runs a subset (``geometry,embed,bench,bench_demo,adapt,report``; ``bench_demo``
repeats the head-mode runs with the demo's own size-dependent hiding).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

VARIANTS = ("whole", "crop")
HEAD_RUNS = {  # name -> bench flags (besides --features/--out)
    "hide40": ["--hide", "0.4", "--methods", "an,gr,wan,oracle"],
    "single": ["--single-positive", "--methods", "an,gr"],
}
METRICS = ("missing_label_ap", "missing_label_macro_ap", "recall_at_precision_0_9", "test_map")
BANDS = ("many", "medium", "few")


# -- 1. crop geometry ------------------------------------------------------------------------------------

def centre_crop_window(width: int, height: int, *, resize: int = 256, crop: int = 224) -> tuple[float, float, float, float]:
    """The part of a ``width × height`` image that Resize(resize, short side) + CenterCrop(crop) keeps.

    Returns ``(x0, y0, x1, y1)`` in original pixels, with torchvision's rounding (long side
    ``int(resize * long / short)``, crop offsets ``round((size - crop) / 2)``).
    """
    short, long = min(width, height), max(width, height)
    scale = resize / short
    new_long = int(resize * long / short)
    new_w, new_h = (resize, new_long) if width <= height else (new_long, resize)
    left, top = int(round((new_w - crop) / 2.0)), int(round((new_h - crop) / 2.0))
    return left / scale, top / scale, (left + crop) / scale, (top + crop) / scale


def crop_geometry(document: dict[str, Any]) -> dict[str, Any]:
    """How much of each annotation box the old centre crop cuts; labels lost entirely."""
    images = {int(i["id"]): i for i in document["images"]}
    visible: list[float] = []
    # (image, category) -> the largest visible share of any of its boxes
    best: dict[tuple[int, int], float] = {}
    for annotation in document["annotations"]:
        image = images[int(annotation["image_id"])]
        x, y, w, h = (float(v) for v in annotation["bbox"])
        x0, y0, x1, y1 = centre_crop_window(int(image["width"]), int(image["height"]))
        inter = max(0.0, min(x + w, x1) - max(x, x0)) * max(0.0, min(y + h, y1) - max(y, y0))
        share = inter / (w * h) if w * h > 0 else 1.0
        visible.append(share)
        key = (int(annotation["image_id"]), int(annotation["category_id"]))
        best[key] = max(best.get(key, 0.0), share)
    shares = np.asarray(visible)
    label_best = np.asarray(list(best.values()))
    images_cut = {int(a["image_id"]) for a, s in zip(document["annotations"], visible) if s < 1.0}
    width, height = (int(v) for v in (document["images"][0]["width"], document["images"][0]["height"]))
    return {
        "crop_window_first_image": [round(v, 2) for v in centre_crop_window(width, height)],
        "image_size_first_image": [width, height],
        "kept_area_share_first_image": round(float(np.prod(np.subtract(centre_crop_window(width, height)[2:],
                                                                         centre_crop_window(width, height)[:2]))
                                                   / (width * height)), 4),
        "annotations": int(len(shares)),
        "boxes_fully_inside": float((shares >= 1.0).mean()),
        "boxes_partly_outside": float(((shares > 0.0) & (shares < 1.0)).mean()),
        "boxes_entirely_outside": float((shares <= 0.0).mean()),
        "boxes_under_half_visible": float((shares < 0.5).mean()),
        "mean_visible_share_of_cut_boxes": float(shares[shares < 1.0].mean()) if (shares < 1.0).any() else None,
        "labels": int(len(label_best)),
        "labels_with_every_box_cut": float((label_best < 1.0).mean()),
        "labels_entirely_outside": float((label_best <= 0.0).mean()),
        "labels_under_half_visible": float((label_best < 0.5).mean()),
        "images_with_a_cut_box": float(len(images_cut) / len(images)),
    }


# -- 2. embeddings ---------------------------------------------------------------------------------------

def crop_transform(backbone: Any) -> Callable[[Any], Any]:
    """labelfix's eval transform before issue 12: Resize(resize_size) + CenterCrop(crop_size) (git 1aaf4b1^)."""
    import torch
    from torchvision.transforms import v2 as T

    p = backbone.preprocessing
    return T.Compose([T.ToImage(), T.Resize(p.resize_size, interpolation=p.interpolation, antialias=True),
                      T.CenterCrop(p.crop_size), T.ToDtype(torch.float32, scale=True), T.Normalize(p.mean, p.std)])


def image_records_from_coco(document: dict[str, Any], images_root: Path) -> list[Any]:
    from labelfix.io.images import safe_image_path
    from labelfix.learn.image_data import ImageRecord

    return [ImageRecord(int(i["id"]), safe_image_path(root=str(images_root), file_name=i["file_name"],
                                                      record=f"image id {i['id']}"))
            for i in sorted(document["images"], key=lambda i: int(i["id"]))]


def embed_variants(*, coco: Path, images: Path, work: Path, threads: int, batch_size: int) -> dict[str, Any]:
    """Both features tables (cached in ``work``); returns the embedding seconds and paths."""
    import torch

    from labelfix.bench.data import read_coco_truth
    from labelfix.bench.seeds import write_features_table
    from labelfix.io.coco import load_json
    from labelfix.learn.backbones import build_backbone
    from labelfix.learn.embed import EmbedConfig, _embed_records

    truth = read_coco_truth(coco)
    document = load_json(coco)
    records = image_records_from_coco(document, images)
    assert [r.image_id for r in records] == truth.image_ids.tolist(), "COCO ids and truth rows disagree"
    backbone = build_backbone("mobilenet_v2", weights="default")
    info: dict[str, Any] = {"backbone": backbone.name, "weights_hash": backbone.weights_hash,
                            "coco_sha256": truth.source["sha256"], "threads": threads, "variants": {}}
    for variant in VARIANTS:
        table = work / f"features_{variant}.parquet"
        meta = work / f"features_{variant}.json"
        if table.exists() and meta.exists() and json.loads(meta.read_text())["coco_sha256"] == truth.source["sha256"]:
            info["variants"][variant] = json.loads(meta.read_text())
            print(f"[crop_effect] reuse {table}", flush=True)
            continue
        chosen = copy.copy(backbone)  # same model and weights; only the transform differs
        if variant == "crop":
            chosen.eval_transform = crop_transform(backbone)
        started = time.perf_counter()
        ids, embeddings, failed = _embed_records(records, backbone=chosen, config=EmbedConfig(num_threads=threads,
                                                 batch_size=batch_size), device=torch.device("cpu"), progress=True)
        seconds = time.perf_counter() - started
        if failed:
            raise SystemExit(f"{len(failed)} images failed to decode (e.g. {failed[:5]}) in {images}")
        assert ids.tolist() == truth.image_ids.tolist()
        data = copy.copy(truth)
        data.embeddings = embeddings
        write_features_table(data, truth.truth, table)
        entry = {"coco_sha256": truth.source["sha256"], "table": str(table), "seconds": round(seconds, 1),
                 "images": int(len(ids)), "transform": repr(chosen.eval_transform)}
        meta.write_text(json.dumps(entry, indent=1))
        info["variants"][variant] = entry
        print(f"[crop_effect] {variant}: {len(ids)} images in {seconds:.0f} s -> {table}", flush=True)
    return info


def embedding_agreement(work: Path) -> dict[str, float]:
    """Mean cosine similarity of the two embeddings of the same image (how much the crop changes them)."""
    import pyarrow.parquet as pq

    vectors = {}
    for variant in VARIANTS:
        column = pq.read_table(work / f"features_{variant}.parquet", columns=["embedding"]).column("embedding")
        flat = column.combine_chunks().flatten().to_numpy().astype(np.float64)
        vectors[variant] = flat.reshape(len(column), -1)
    a, b = vectors["whole"], vectors["crop"]
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    return {"mean_cosine": float(cosine.mean()), "min_cosine": float(cosine.min())}


# -- 3. head-mode benchmark ------------------------------------------------------------------------------

def run_head_bench(*, work: Path, out: Path, seeds: str, baseline_folds: int) -> list[list[str]]:
    """``labelfix bench --features`` on each table; returns the commands run."""
    commands = []
    for variant in VARIANTS:
        for name, flags in HEAD_RUNS.items():
            target = out / f"{variant}_{name}"
            command = [sys.executable, "-m", "labelfix.cli.main", "bench", "--features",
                       str(work / f"features_{variant}.parquet"), *flags, "--seeds", seeds,
                       "--baseline-folds", str(baseline_folds), "--no-baselines", "--out", str(target), "--quiet"]
            print("[crop_effect] " + " ".join(command[1:]), flush=True)
            subprocess.run(command, check=True)
            for png in target.glob("*.png"):  # plots are not needed for a two-variant comparison
                png.unlink()
            commands.append(command)
    return commands


def run_head_bench_demo_hiding(*, coco: Path, work: Path, out: Path, seeds: str, baseline_folds: int) -> None:
    """The same head-mode runs with the demo's own hiding (small digits missed more often, as
    ``labelfix bench --coco`` on the demo hides them), in process: the COCO file's truth, splits and
    difficulty with each variant's embeddings. Folders ``{variant}_{run}demo``."""
    import pyarrow.parquet as pq

    from labelfix.bench.data import read_coco_truth
    from labelfix.bench.harness import BenchSettings, parse_methods, run_benchmark
    from labelfix.bench.report import write_json, write_markdown

    for variant in VARIANTS:
        table = pq.read_table(work / f"features_{variant}.parquet", columns=["image_id", "embedding"])
        ids = table.column("image_id").to_numpy()
        column = table.column("embedding").combine_chunks()
        vectors = column.flatten().to_numpy().astype(np.float32).reshape(len(ids), -1)
        for name, flags in HEAD_RUNS.items():
            data = read_coco_truth(coco)
            position = {int(i): k for k, i in enumerate(ids)}
            data.embeddings = vectors[[position[int(i)] for i in data.image_ids]]
            methods = flags[flags.index("--methods") + 1]
            settings = BenchSettings(methods=parse_methods(methods, baselines=False),
                                     seeds=[int(x) for x in seeds.split(",")], hide_rate=0.4,
                                     single_positive="--single-positive" in flags, baseline_folds=baseline_folds)
            target = out / f"{variant}_{name}demo"
            print(f"[crop_effect] {variant} {name} with the demo's hiding -> {target}", flush=True)
            run = run_benchmark(data, settings, progress=False)
            target.mkdir(parents=True, exist_ok=True)
            write_json(run.payload, target / "results.json")
            write_markdown(run.payload, target / "results.md",
                           command=f"benchmarks/crop_effect.py --stages bench_demo (variant {variant}, {name}: "
                                   f"{' '.join(flags)} --seeds {seeds} --baseline-folds {baseline_folds})")


# -- 4. adapt mode ---------------------------------------------------------------------------------------

def cache_crop_maps(*, coco: Path, images: Path, cache: Path, image_size: int) -> None:
    """Put **centre-cropped** feature maps where ``labelfix bench --mode adapt --cache CACHE`` looks for maps.

    The adapt cache has no transform option (it always resizes the whole image), so this fills a scratch
    cache folder's map set -- under the name adapt mode looks up -- with maps of the cropped image
    (Resize(image_size * 256/224) + CenterCrop(image_size)), computed with labelfix's own
    :func:`labelfix.learn.adapt.cache.cache_feature_maps` and a swapped transform. The scratch cache is
    used by this benchmark only; nothing in labelfix changes.
    """
    from unittest import mock

    from labelfix.bench.data import read_coco_truth
    from labelfix.ingest import ingest_coco
    from labelfix.learn.adapt import cache as adapt_cache
    from labelfix.learn.backbones import build_backbone
    from labelfix.store.database import open_store

    sha = read_coco_truth(coco).source["sha256"]
    backbone = build_backbone("mobilenet_v2", weights="default", image_size=image_size)
    cropped = crop_transform(backbone)
    with open_store(cache / f"embed-{sha[:12]}.duckdb") as store:
        ingest_coco(store, annotations=coco, images=images, check_images="header", progress=False)
        with mock.patch.object(adapt_cache, "whole_image_transform", lambda built, size: cropped):
            result = adapt_cache.cache_feature_maps(store, backbone=backbone, image_size=image_size, progress=True)
        meta = result.folder / "meta.json"
        data = json.loads(meta.read_text())
        data["resize"] = f"CROPPED by benchmarks/crop_effect.py: {cropped!r}"
        meta.write_text(json.dumps(data, indent=1))
    print(f"[crop_effect] cropped maps: {result.computed} computed, {result.reused} reused ({result.seconds:.0f} s)",
          flush=True)


def seed_whole_maps(*, coco: Path, images: Path, cache: Path, source: Path) -> None:
    """Copy an existing whole-image map set (``--whole-maps-from``) into the scratch cache, to save the
    few CPU minutes of computing it again; its meta.json must say it is a whole-image set."""
    import shutil

    from labelfix.bench.data import read_coco_truth
    from labelfix.ingest import ingest_coco
    from labelfix.store.database import open_store

    meta = json.loads((source / "meta.json").read_text())
    if "no crop" not in str(meta.get("resize", "")):
        raise SystemExit(f"{source} is not a whole-image map set (meta.json resize: {meta.get('resize')!r})")
    sha = read_coco_truth(coco).source["sha256"]
    with open_store(cache / f"embed-{sha[:12]}.duckdb") as store:
        ingest_coco(store, annotations=coco, images=images, check_images="header", progress=False)
        target = store.cache_dir / "feature_maps" / source.name
        if not (target / "index.parquet").exists():
            shutil.copytree(source, target, dirs_exist_ok=True)
            print(f"[crop_effect] copied whole-image maps {source} -> {target}", flush=True)


def run_adapt_bench(*, coco: Path, images: Path, work: Path, out: Path, image_size: int, epochs: int,
                    baseline_folds: int, whole_maps_from: Path | None = None,
                    variants: tuple[str, ...] = VARIANTS) -> list[list[str]]:
    commands = []
    for variant in variants:
        cache = work / f"adapt_cache_{variant}"
        if variant == "crop":
            cache_crop_maps(coco=coco, images=images, cache=cache, image_size=image_size)
        elif whole_maps_from is not None:
            seed_whole_maps(coco=coco, images=images, cache=cache, source=whole_maps_from)
        target = out / f"{variant}_adapt{image_size}_hide40"
        command = [sys.executable, "-m", "labelfix.cli.main", "bench", "--coco", str(coco), "--images", str(images),
                   "--mode", "adapt", "--image-size", str(image_size), "--epochs", str(epochs),
                   "--baseline-folds", str(baseline_folds), "--no-baselines", "--cache", str(cache),
                   "--hide", "0.4", "--seeds", "0", "--methods", "an,oracle", "--out", str(target), "--quiet"]
        print("[crop_effect] " + " ".join(command[1:]), flush=True)
        subprocess.run(command, check=True)
        for png in target.glob("*.png"):
            png.unlink()
        commands.append(command)
    return commands


# -- 5. report -------------------------------------------------------------------------------------------

def _stat(summary: dict[str, Any], key: str, band: str | None = None) -> tuple[float | None, float | None]:
    value = summary[key][band] if band else summary[key]
    return value["mean"], value["std"]


def collect(out: Path, *, extra: dict[str, Path] | None = None) -> list[dict[str, Any]]:
    """One row per (run, variant, method) from the bench results under ``out``.

    ``extra``: ``{"<variant>_<run>": folder}`` of results made elsewhere with the same settings (e.g. the
    whole-image adapt run already in ``benchmarks/results``); their rows name the folder in ``source``.
    """
    rows = []
    folders = [(p.name, p, False) for p in sorted(out.iterdir()) if (p / "results.json").exists()]
    folders += [(label, folder, True) for label, folder in sorted((extra or {}).items())]
    for label, folder, borrowed in folders:
        variant, _, run = label.partition("_")
        payload = json.loads((folder / "results.json").read_text())
        for summary in payload["summary"]:
            if borrowed and summary["method"] not in ("an", "oracle"):  # the methods this script runs
                continue
            row: dict[str, Any] = {"run": run, "variant": variant, "method": summary["method"],
                                   "seeds": summary["seeds"], "source": folder.as_posix()}
            for metric in METRICS:
                row[metric] = dict(zip(("mean", "std"), _stat(summary, metric)))
            for band in BANDS:
                row[f"test_map_{band}"] = dict(zip(("mean", "std"), _stat(summary, "test_map_shots", band)))
            rows.append(row)
    return rows


def paired_differences(out: Path) -> list[dict[str, Any]]:
    """Per (run, method): whole minus crop on the same hiding seed, mean ± std over the seeds both have."""
    results: dict[tuple[str, str], dict[tuple[str, int], dict[str, Any]]] = {}
    for folder in sorted(p for p in out.iterdir() if (p / "results.json").exists()):
        variant, _, run = folder.name.partition("_")
        for record in json.loads((folder / "results.json").read_text())["results"]:
            results.setdefault((run, variant), {})[(record["method"], int(record["seed"]))] = record
    rows = []
    for run in sorted({run for run, _ in results}):
        whole, crop = results.get((run, "whole"), {}), results.get((run, "crop"), {})
        for method in sorted({m for m, _ in whole}):
            seeds = sorted(seed for m, seed in whole if m == method and (m, seed) in crop)
            if not seeds:
                continue
            row: dict[str, Any] = {"run": run, "method": method, "seeds": seeds}
            for metric in ("missing_label_ap", "test_map"):
                delta = np.array([whole[(method, s)][metric] - crop[(method, s)][metric] for s in seeds])
                row[metric] = {"mean": float(delta.mean()), "std": float(delta.std(ddof=1)) if len(delta) > 1 else None}
            rows.append(row)
    return rows


def _fmt(value: dict[str, Any]) -> str:
    if value["mean"] is None:
        return "–"
    std = value["std"]
    return f"{value['mean']:.3f}" + (f" ± {std:.3f}" if std is not None else "")


def write_report(out: Path, *, rows: list[dict[str, Any]], geometry: dict[str, Any] | None,
                 embed_info: dict[str, Any] | None, agreement: dict[str, float] | None,
                 argv: list[str], load: str) -> None:
    payload = {"command": " ".join(argv), "load_average_at_start": load, "geometry": geometry,
               "embedding": embed_info, "embedding_agreement": agreement, "rows": rows}
    (out / "results.json").write_text(json.dumps(payload, indent=1))
    lines = ["# Whole image vs centre crop (issue 12 item 2)", "", "```", "python " + " ".join(argv), "```", ""]
    if geometry:
        g = geometry
        lines += [f"Centre crop (Resize 256 + CenterCrop 224) keeps the window {g['crop_window_first_image']} of a "
                  f"{g['image_size_first_image'][0]}×{g['image_size_first_image'][1]} image "
                  f"({g['kept_area_share_first_image']:.1%} of its area). Of {g['annotations']} boxes: "
                  f"{g['boxes_partly_outside']:.1%} partly outside, {g['boxes_entirely_outside']:.1%} entirely "
                  f"outside, {g['boxes_under_half_visible']:.1%} less than half visible. Of {g['labels']} "
                  f"(image, class) labels: {g['labels_with_every_box_cut']:.1%} have every box cut, "
                  f"{g['labels_under_half_visible']:.1%} have no box at least half visible, "
                  f"{g['labels_entirely_outside']:.1%} are entirely outside (a false positive after the crop). "
                  f"{g['images_with_a_cut_box']:.1%} of images have a cut box.", ""]
    if agreement:
        lines += [f"Cosine similarity of an image's two embeddings: mean {agreement['mean_cosine']:.3f}, "
                  f"min {agreement['min_cosine']:.3f}.", ""]
    if embed_info:
        seconds = ", ".join(f"{v} {e['seconds']} s" for v, e in embed_info["variants"].items())
        lines += [f"Embedding wall time ({embed_info['threads']} thread(s), niced, on a shared machine, so the two "
                  f"are not comparable: the transforms cost the same): {seconds}.", ""]
    lines += ["| run | method | variant | missing-label AP | macro AP | R@P0.9 | test mAP | many | medium | few |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    order = {v: i for i, v in enumerate(VARIANTS)}
    for row in sorted(rows, key=lambda r: (r["run"], r["method"], order.get(r["variant"], 9))):
        lines.append(f"| {row['run']} | {row['method']} | {row['variant']} | "
                     + " | ".join(_fmt(row[m]) for m in METRICS) + " | "
                     + " | ".join(_fmt(row[f"test_map_{b}"]) for b in BANDS) + " |")
    lines += ["", "Mean ± std over seeds. whole: labelfix's transform (whole image resized to 224×224); crop: "
              "Resize(256) + CenterCrop(224). Runs hide40 / single: `labelfix bench --features` on each table, which "
              "hides positives uniformly at random (a features table carries no object sizes); hide40demo / "
              "singledemo: the same in process with the demo's own hiding (small digits missed more often, as "
              "`labelfix bench --coco` on the demo). Head mode; adapt rows: seed 0 only (no std)."]
    differences = paired_differences(out)
    if differences:
        lines += ["", "Paired difference, whole minus crop, on the same hiding seed (mean ± std over seeds; "
                  "positive: the whole image is better):", "",
                  "| run | method | Δ missing-label AP | Δ test mAP |", "|---|---|---|---|"]
        lines += [f"| {d['run']} | {d['method']} | {d['missing_label_ap']['mean']:+.3f}"
                  + (f" ± {d['missing_label_ap']['std']:.3f}" if d['missing_label_ap']['std'] is not None else "")
                  + f" | {d['test_map']['mean']:+.3f}"
                  + (f" ± {d['test_map']['std']:.3f}" if d['test_map']['std'] is not None else "") + " |"
                  for d in differences]
        payload["paired_differences"] = differences
        (out / "results.json").write_text(json.dumps(payload, indent=1))
    borrowed = sorted({r["source"] for r in rows if not Path(r["source"]).resolve().is_relative_to(out.resolve())})
    if borrowed:
        lines += ["", "Rows taken from results made earlier with the same settings (not re-run here): "
                  + ", ".join(f"`{b}`" for b in borrowed) + "."]
    (out / "results.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with instances_full.json and images/")
    parser.add_argument("--out", type=Path, required=True, help="results folder (results.md, results.json)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "labelfix-crop-effect",
                        help="cache of embeddings, features tables and adapt maps")
    parser.add_argument("--stages", default="geometry,embed,bench,report",
                        help="comma-separated subset of geometry,embed,bench,bench_demo,adapt,report")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--baseline-folds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for embedding")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--adapt-image-size", type=int, default=224)
    parser.add_argument("--adapt-epochs", type=int, default=8)
    parser.add_argument("--adapt-variants", default="whole,crop",
                        help="adapt: which variants to run (whole, crop or both)")
    parser.add_argument("--adapt-whole-from", type=Path, default=None,
                        help="report: take the whole-image adapt rows (AN, oracle) from this bench results folder, "
                             "run with the same settings, instead of running them again")
    parser.add_argument("--whole-maps-from", type=Path, default=None,
                        help="adapt: copy this existing whole-image map set folder instead of computing it")
    args = parser.parse_args(argv)
    stages = {s.strip() for s in args.stages.split(",") if s.strip()}
    coco, images = args.data / "instances_full.json", args.data / "images"
    for path in (coco, images):
        if not path.exists():
            parser.error(f"{path} does not exist (--data must hold instances_full.json and images/)")
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    geometry = embed_info = agreement = None
    if "geometry" in stages or "report" in stages:
        geometry = crop_geometry(json.loads(coco.read_text()))
    if "embed" in stages:
        embed_info = embed_variants(coco=coco, images=images, work=args.work, threads=args.threads,
                                    batch_size=args.batch_size)
    elif (args.work / "features_whole.json").exists():
        embed_info = {"threads": args.threads, "variants": {v: json.loads((args.work / f"features_{v}.json").read_text())
                                                            for v in VARIANTS}}
    if all((args.work / f"features_{v}.parquet").exists() for v in VARIANTS):
        agreement = embedding_agreement(args.work)
    if "bench" in stages:
        run_head_bench(work=args.work, out=args.out, seeds=args.seeds, baseline_folds=args.baseline_folds)
    if "bench_demo" in stages:
        run_head_bench_demo_hiding(coco=coco, work=args.work, out=args.out, seeds=args.seeds,
                                   baseline_folds=args.baseline_folds)
    if "adapt" in stages:
        run_adapt_bench(coco=coco, images=images, work=args.work, out=args.out, image_size=args.adapt_image_size,
                        epochs=args.adapt_epochs, baseline_folds=args.baseline_folds,
                        whole_maps_from=args.whole_maps_from,
                        variants=tuple(v for v in args.adapt_variants.split(",") if v))
    if "report" in stages:
        extra = {f"whole_adapt{args.adapt_image_size}_hide40": args.adapt_whole_from} if args.adapt_whole_from else None
        write_report(args.out, rows=collect(args.out, extra=extra), geometry=geometry, embed_info=embed_info,
                     agreement=agreement, argv=[Path(sys.argv[0]).as_posix(), *(argv or sys.argv[1:])], load=load)
        print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
