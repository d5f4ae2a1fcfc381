"""Benchmark figures (matplotlib, Agg backend): missing-label PR curves and per-class AP vs frequency."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

BASELINE_STYLE = {"oracle": dict(color="black", linestyle="--", linewidth=2.0),
                  "cleanlab": dict(color="grey", linestyle=":", linewidth=2.0),
                  "an": dict(color="tab:red", linewidth=2.0)}


# tab20 without its reds (6, 7) and greys (14, 15): those mark AN, cleanlab and the oracle.
_PALETTE_INDICES = [i for i in range(20) if i not in (6, 7, 14, 15)]


def _colour(plt, index: int):
    return plt.get_cmap("tab20")(_PALETTE_INDICES[index % len(_PALETTE_INDICES)])


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_missing_pr(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, *, title: str,
                    ap_by_method: dict[str, float] | None = None, prevalence: float | None = None) -> Path:
    """Precision vs recall of the missing labels, one line per method (one seed)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 6), dpi=110)
    for index, (name, (precision, recall)) in enumerate(curves.items()):
        base = name.split("@")[0]
        style = dict(BASELINE_STYLE.get(base, dict(color=_colour(plt, index), linewidth=1.2)))
        ap = (ap_by_method or {}).get(name)
        label = f"{name} (AP {ap:.3f})" if ap is not None else name
        axes.plot(recall, precision, label=label, **style)
    if prevalence is not None:
        axes.axhline(prevalence, color="lightgrey", linewidth=1, label=f"random ({prevalence:.3f})")
    axes.set_xlabel("recall of hidden labels")
    axes.set_ylabel("precision")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=7, ncol=2, loc="upper right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def plot_per_class_ap(payload: dict[str, Any], path: Path, *, methods: list[str] | None = None) -> Path:
    """Per-class missing-label AP (left) and test AP (right) vs true train frequency, mean over seeds."""
    plt = _pyplot()
    data = payload["config"]["data"]
    counts = np.asarray(data["train_class_counts"], dtype=float)
    names = data["class_names"]
    sums: dict[str, dict[str, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
    for record in payload["results"]:
        key = record["method"] if record["folds"] == 1 or record["method"] in ("cleanlab", "oracle") \
            else f"{record['method']}@{record['folds']}f"
        for metric, values in (("missing", record["per_class"]["missing_label_ap"]),
                               ("test", record["per_class"]["test_ap"])):
            sums[key][metric].append(np.array([np.nan if v is None else v for v in values], dtype=float))
    keys = methods or list(sums)
    order = np.argsort(counts)
    figure, panels = plt.subplots(1, 2, figsize=(12, 5), dpi=110, sharex=True)
    for index, key in enumerate(keys):
        style = dict(BASELINE_STYLE.get(key, dict(color=_colour(plt, index), linewidth=1.0)))
        for axes, metric in zip(panels, ("missing", "test")):
            with np.errstate(all="ignore"):
                mean = np.nanmean(np.vstack(sums[key][metric]), axis=0) if sums[key][metric] else None
            if mean is None:
                continue
            axes.plot(counts[order], mean[order], marker="o", markersize=3, label=key, **style)
    for axes, title in zip(panels, ("missing-label AP per class (train unknown cells)", "test AP per class")):
        axes.set_xscale("log")
        axes.set_xlabel("true positives of the class in the train split (log)")
        axes.set_ylabel("AP (mean over seeds)")
        axes.set_ylim(0, 1.02)
        axes.grid(alpha=0.3)
        axes.set_title(title, fontsize=10)
        for x, name in zip(counts[order], np.asarray(names)[order]):
            axes.annotate(name, (x, 0.01), fontsize=6, rotation=90, ha="center", va="bottom", color="grey")
    panels[1].legend(fontsize=7, ncol=2, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def write_plots(payload: dict[str, Any], curves: dict[str, tuple[np.ndarray, np.ndarray]], out_dir: Path) -> list[Path]:
    """``pr_missing.png`` (first seed) and ``per_class_ap_vs_frequency.png`` under ``out_dir``."""
    config = payload["config"]
    first_seed = config["seeds"][0]
    ap = {}
    for record in payload["results"]:
        if record["seed"] != first_seed:
            continue
        key = record["method"] if record["folds"] == 1 or record["method"] in ("cleanlab", "oracle") \
            else f"{record['method']}@{record['folds']}f"
        ap[key] = record["missing_label_ap"]
    detail = next((s for s in config["seeds_detail"] if s["seed"] == first_seed), None)
    prevalence = detail["hidden"]["train"] / detail["candidates"] if detail and detail["candidates"] else None
    hiding = "single positive" if config["single_positive"] else f"{config['hide_rate']:.0%} hidden"
    title = f"Missing labels in the train split ({hiding}, seed {first_seed})"
    return [plot_missing_pr(curves, out_dir / "pr_missing.png", title=title, ap_by_method=ap, prevalence=prevalence),
            plot_per_class_ap(payload, out_dir / "per_class_ap_vs_frequency.png", methods=_per_class_methods(payload))]


def _per_class_methods(payload: dict[str, Any], top: int = 3) -> list[str]:
    """AN, the ``top`` other methods by missing-label AP, cleanlab and the oracle (a readable plot)."""
    ranked = sorted((s for s in payload["summary"] if s["method"] not in ("cleanlab", "oracle", "an")
                     and s["missing_label_ap"]["mean"] is not None), key=lambda s: -s["missing_label_ap"]["mean"])
    names = [s["method"] if s["folds"] == 1 else f"{s['method']}@{s['folds']}f" for s in ranked[:top]]
    present = {s["method"] for s in payload["summary"]}
    return [m for m in ["an", *names, "cleanlab", "oracle"] if m.split("@")[0] in present]


__all__ = ["plot_missing_pr", "plot_per_class_ap", "write_plots"]
