"""``results.json`` (schema ``schemas/bench_results.schema.json``) and ``results.md`` of a benchmark.

Summary statistics are over seeds: mean and sample standard deviation (ddof = 1; null with one
seed). Ratios (``fraction_of_oracle``, ``ratio_to_an``, ``ratio_to_cleanlab``) are computed per
seed, against the reference method of the same seed, then averaged.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import numpy as np

from labelfix.internal.atomic import write_text_atomic

SCHEMA_VERSION = 1
SCHEMA_FILE = "bench_results.schema.json"
# Reference methods for the ratios; absent references give null ratios.
REFERENCES = {"fraction_of_oracle": "oracle", "ratio_to_an": "an", "ratio_to_cleanlab": "cleanlab"}
BASELINE_NAMES = ("cleanlab", "oracle")


def build_payload(*, settings: dict[str, Any], data: dict[str, Any], seeds: list[dict[str, Any]],
                  records: list[dict[str, Any]], environment: dict[str, Any],
                  tuning: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The full ``results.json`` object (``tuning`` only with ``--tune``)."""
    summary = summarize(records)
    payload = {"schema_version": SCHEMA_VERSION, "config": {**settings, "data": data, "seeds_detail": seeds},
               "environment": environment, "results": records, "summary": summary, "headline": headline(summary)}
    if tuning:
        payload["tuning"] = tuning
    return payload


def _key(record: dict[str, Any]) -> tuple[str, int]:
    return record["method"], int(record["folds"])


def _stat(values: list[Optional[float]]) -> dict[str, Any]:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return {"mean": None, "std": None, "n": 0}
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else None
    return {"mean": float(np.mean(finite)), "std": std, "n": len(finite)}


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std over seeds per (method, folds), with the ratios to oracle / AN / cleanlab."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[_key(record)].append(record)
    # Reference AP per seed: the in-sample (folds 1) run of AN; the baselines have one folds value each.
    reference_ap: dict[str, dict[int, float]] = defaultdict(dict)
    for record in records:
        if record["method"] in REFERENCES.values() and (record["method"] in BASELINE_NAMES or record["folds"] == 1):
            if record["missing_label_ap"] is not None:
                reference_ap[record["method"]][record["seed"]] = record["missing_label_ap"]
    reference_map: dict[int, float] = {r["seed"]: r["test_map"] for r in records
                                       if r["method"] == "an" and r["folds"] == 1 and r["test_map"] is not None}
    summary = []
    for (method, folds), group in groups.items():
        fractions = sorted({f for r in group for f in r["precision_at"]}, key=float)
        entry: dict[str, Any] = {
            "method": method, "folds": folds, "scoring": group[0]["scoring"], "seeds": [r["seed"] for r in group],
            "missing_label_ap": _stat([r["missing_label_ap"] for r in group]),
            "missing_label_macro_ap": _stat([r.get("missing_label_macro_ap") for r in group]),
            "precision_at": {f: _stat([r["precision_at"].get(f) for r in group]) for f in fractions},
            "recall_at_precision_0_9": _stat([r["recall_at_precision_0_9"] for r in group]),
            "test_map": _stat([r["test_map"] for r in group]),
            "test_map_shots": {s: _stat([r["test_map_shots"].get(s) for r in group])
                               for s in ("many", "medium", "few")},
            "val_map": _stat([r.get("val_map") for r in group]),
            "seconds": _stat([r["seconds"] for r in group]),
            "peak_memory_mb": _stat([r.get("peak_memory_mb") for r in group]),
        }
        for name, reference in REFERENCES.items():
            ratios = []
            for r in group:
                base = reference_ap[reference].get(r["seed"])
                if base and r["missing_label_ap"] is not None:
                    ratios.append(r["missing_label_ap"] / base)
            entry[name] = _stat(ratios)
        entry["test_map_minus_an"] = _stat([r["test_map"] - reference_map[r["seed"]] for r in group
                                            if r["test_map"] is not None and r["seed"] in reference_map])
        summary.append(entry)
    return summary


def headline(summary: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's bar: the best labelfix method (by mean missing-label AP) against AN and cleanlab."""
    methods = [s for s in summary if s["method"] not in BASELINE_NAMES and s["missing_label_ap"]["mean"] is not None]
    if not methods:
        return {"best_method": None}
    best = max(methods, key=lambda s: s["missing_label_ap"]["mean"])
    by_name = {(s["method"], s["folds"]): s for s in summary}
    an = by_name.get(("an", 1))
    cleanlab = next((s for s in summary if s["method"] == "cleanlab"), None)

    def mean(entry: Optional[dict[str, Any]], key: str) -> Optional[float]:
        return None if entry is None else entry[key]["mean"]

    best_ap: float = best["missing_label_ap"]["mean"]  # not None: methods without it were left out above
    an_ap, cl_ap = mean(an, "missing_label_ap"), mean(cleanlab, "missing_label_ap")
    best_map, an_map = mean(best, "test_map"), mean(an, "test_map")
    return {
        "best_method": best["method"], "best_folds": best["folds"], "missing_label_ap": best_ap,
        "an_missing_label_ap": an_ap, "cleanlab_missing_label_ap": cl_ap,
        "ratio_to_an": best_ap / an_ap if an_ap else None,
        "ratio_to_cleanlab": best_ap / cl_ap if cl_ap else None,
        "fraction_of_oracle": best["fraction_of_oracle"]["mean"],
        "test_map": best_map, "an_test_map": an_map,
        "beats_an_missing_label_ap": None if an_ap is None else best_ap > an_ap,
        "beats_cleanlab_missing_label_ap": None if cl_ap is None else best_ap > cl_ap,
        "beats_an_test_map": None if an_map is None or best_map is None else best_map > an_map,
    }


# ---------------------------------------------------------------------------------------------
# Files


def write_json(payload: dict[str, Any], path: Path) -> Path:
    """Write ``results.json`` (NaN is never written: metrics use null)."""
    write_text_atomic(Path(path), json.dumps(payload, indent=1, allow_nan=False) + "\n")
    return Path(path)


def load_schema() -> dict[str, Any]:
    """The JSON schema shipped with labelfix (``schemas/bench_results.schema.json``)."""
    return json.loads((resources.files("labelfix.schemas") / SCHEMA_FILE).read_text(encoding="utf-8"))


def _fmt(stat: dict[str, Any], digits: int = 3) -> str:
    if stat["mean"] is None:
        return "–"
    if stat["std"] is None:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def _label(entry: dict[str, Any]) -> str:
    if entry["method"] in BASELINE_NAMES:
        return f"{entry['method']} (out-of-fold, K={entry['folds']})"
    return entry["method"] if entry["folds"] == 1 else f"{entry['method']} (cross-fitted, K={entry['folds']})"


def markdown_table(payload: dict[str, Any]) -> str:
    """The summary as a Markdown table, best missing-label AP first, baselines last."""
    summary = payload["summary"]
    ordered = sorted((s for s in summary if s["method"] not in BASELINE_NAMES),
                     key=lambda s: -(s["missing_label_ap"]["mean"] or -1.0))
    ordered += [s for name in BASELINE_NAMES for s in summary if s["method"] == name]
    fractions = sorted({f for s in summary for f in s["precision_at"]}, key=float)
    header = (["method", "missing-label AP", "macro AP", "× oracle", "× AN", "× cleanlab"]
              + [f"P@{float(f):.0%}" for f in fractions]
              + ["R@P0.9", "test mAP", "many / medium / few", "val mAP", "s", "peak MB"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in ordered:
        shots = " / ".join("–" if s["test_map_shots"][g]["mean"] is None else f"{s['test_map_shots'][g]['mean']:.3f}"
                           for g in ("many", "medium", "few"))
        row = ([_label(s), _fmt(s["missing_label_ap"]), _fmt(s["missing_label_macro_ap"]),
                _fmt(s["fraction_of_oracle"], 2), _fmt(s["ratio_to_an"], 2), _fmt(s["ratio_to_cleanlab"], 2)]
               + [_fmt(s["precision_at"][f]) for f in fractions]
               + [_fmt(s["recall_at_precision_0_9"]), _fmt(s["test_map"]), shots, _fmt(s["val_map"]),
                  _fmt(s["seconds"], 1), _fmt(s["peak_memory_mb"], 0)])
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def markdown_report(payload: dict[str, Any], *, command: Optional[str] = None) -> str:
    """``results.md``: settings, the table, the headline and the definitions."""
    config = payload["config"]
    data = config["data"]
    hiding = "single positive per image" if config["single_positive"] else f"{config['hide_rate']:.0%} of positives"
    seeds = config["seeds_detail"]
    hidden = ", ".join(f"seed {s['seed']}: {s['hidden']['train']} train / {s['hidden']['val']} val" for s in seeds)
    lines = ["# labelfix missing-label benchmark", ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += [
        f"Data: {data['kind']} `{Path(data['path']).name}` ({data['num_images']} images: "
        + ", ".join(f"{k} {v}" for k, v in data["split_sizes"].items())
        + f"; {len(data['class_names'])} classes; splits from {data['split_source']}).",
        f"Hidden in train and val: {hiding} ({hidden} labels hidden). Test fully labelled.",
        f"Seeds {', '.join(map(str, config['seeds']))}; epochs: "
        f"{config['epochs'] if config['epochs'] is not None else 'method defaults'}; baselines: "
        f"{config['baseline_model']}, K = {config['baseline_folds']} folds. Mean ± std over seeds.", "",
        markdown_table(payload),
    ]
    head = payload.get("headline") or {}
    if head.get("best_method"):
        def ratio(value: Optional[float]) -> str:
            return "–" if value is None else f"{value:.2f}×"

        lines += [
            f"Best labelfix method by missing-label AP: **{head['best_method']}** "
            f"({head['missing_label_ap']:.3f}; {ratio(head['ratio_to_an'])} AN's, "
            f"{ratio(head['ratio_to_cleanlab'])} cleanlab's, {ratio(head['fraction_of_oracle'])} the oracle's); "
            f"test mAP {_num(head['test_map'])} vs AN {_num(head['an_test_map'])}.", ""]
    if payload.get("tuning"):
        lines += ["Settings tried on val (`--tune`, seed "
                  f"{next(iter(payload['tuning'].values()))['seed']}; val mAP on the val split's observed labels; "
                  "**bold** = chosen and used for every seed):", "",
                  "| method | tried (val mAP) |", "|---|---|"]
        for method, tune in payload["tuning"].items():
            tried = []
            for trial in tune["trials"]:
                text = f"{_params_text(trial['params'])}: {_num(trial['val_map'])}"
                tried.append(f"**{text}**" if trial["params"] == tune["chosen"] else text)
            lines.append(f"| {method} | {'; '.join(tried)} |")
        lines.append("")
    lines += [
        "Definitions: *missing-label AP* ranks every unknown (image, class) cell of the train split; the "
        "positives are the hidden labels (pooled over classes); macro AP: its mean over the classes with a "
        "hidden label. P@k: precision among the top k = 10 / 25 / 50 % of the hidden "
        "count. R@P0.9: the largest recall at precision ≥ 0.9. × oracle / × AN / × cleanlab: per-seed "
        "ratio of missing-label AP to that method's. Test mAP on the fully labelled test split; "
        "many / medium / few: classes with > 100, 20–100, < 20 true train positives. val mAP: on the "
        "val split's observed labels (what early stopping sees; the oracle's on true labels). "
        "s: wall time of training + scoring; peak MB: peak RSS increase while the method ran. "
        "Methods score the train cells in-sample unless marked cross-fitted; cleanlab and the oracle "
        "out of fold.", ""]
    return "\n".join(lines)


def _params_text(params: dict[str, Any]) -> str:
    flat = {**{k: v for k, v in params.items() if k != "loss_params"}, **params.get("loss_params", {})}
    short = {"weight_decay": "wd"}
    return ", ".join(f"{short.get(k, k)}={v:g}" if isinstance(v, float) else f"{short.get(k, k)}={v}"
                     for k, v in flat.items())


def _num(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.3f}"


def write_markdown(payload: dict[str, Any], path: Path, *, command: Optional[str] = None) -> Path:
    write_text_atomic(Path(path), markdown_report(payload, command=command))
    return Path(path)


def check_payload(payload: dict[str, Any], schema: Optional[dict[str, Any]] = None) -> list[str]:
    """Problems of ``payload`` against the schema (empty list: valid).

    Uses ``jsonschema`` when installed; otherwise checks the required keys and types of the top level,
    the records and the summary by hand.
    """
    schema = schema or load_schema()
    try:
        import jsonschema
    except ImportError:
        return _hand_check(payload, schema, root=schema)
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(payload)]


_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict, "array": list, "string": str, "integer": int, "number": (int, float), "boolean": bool,
    "null": type(None)}


def _hand_check(value: Any, schema: dict[str, Any], path: str = "", *, root: dict[str, Any]) -> list[str]:
    """Required keys, types, ``const`` / ``enum`` and local ``#/$defs/...`` references."""
    problems: list[str] = []
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return _hand_check(value, target, path, root=root)
    if "const" in schema and value != schema["const"]:
        return [f"{path or '/'}: expected {schema['const']!r}, got {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path or '/'}: {value!r} is not one of {schema['enum']}"]
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        ok = any(isinstance(value, _TYPES[k]) and not (k in ("integer", "number") and isinstance(value, bool))
                 for k in kinds)
        if not ok:
            return [f"{path or '/'}: expected {kinds}, got {type(value).__name__}"]
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                problems.append(f"{path}/{key}: missing")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                problems += _hand_check(value[key], sub, f"{path}/{key}", root=root)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in set(value) - set(schema.get("properties", {})):
                problems += _hand_check(value[key], extra, f"{path}/{key}", root=root)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            problems += _hand_check(item, schema["items"], f"{path}/{index}", root=root)
    return problems


__all__ = ["SCHEMA_VERSION", "build_payload", "check_payload", "headline", "load_schema", "markdown_report",
           "markdown_table", "summarize", "write_json", "write_markdown"]
