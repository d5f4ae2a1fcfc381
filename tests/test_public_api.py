"""The package face: ``labelfix.<verb>`` names load lazily, so ``import labelfix`` stays light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import labelfix

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("duckdb", "pandas", "pyarrow", "torch", "sklearn", "fiftyone", "streamlit", "pydantic", "typer")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_import_labelfix_loads_no_heavy_package():
    completed = _python(f"import json, sys, labelfix; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == []


def test_find_missing_labels_runs_without_the_store_packages():
    # As on a bare machine: DuckDB, pandas, pyarrow ... cannot be imported at all.
    code = ("import sys\n"
            f"for name in {HEAVY!r}: sys.modules[name] = None\n"
            "import numpy as np, labelfix\n"
            "val_states = np.tile([1, 1, 0], (10, 1))\n"
            "val_probs = np.where(val_states == 1, 0.8, 0.2)\n"
            "rows = labelfix.find_missing_labels(np.array([[0, 1, 0], [1, 1, 1]]),\n"
            "                                    np.array([[0.9, 0.9, 0.1], [0.0, 0.0, 0.0]]),\n"
            "                                    val_label_states=val_states, val_pred_probs=val_probs, min_support=1)\n"
            "print(rows.tolist())\n")
    completed = _python(code)
    assert completed.returncode == 0, completed.stderr[-2000:]
    # Class 2 has no val positive: an uncalibrated ranked list, after the calibrated row (as labelfix suggest does);
    # the second image gives every class a train positive (a class without one gets no rows).
    assert completed.stdout.strip() == "[(0, 0, 0.9, True), (0, 2, 0.1, False)]"


def test_every_public_name_resolves_and_is_listed():
    assert set(labelfix.__all__) <= set(dir(labelfix))
    for name in labelfix.__all__:
        assert getattr(labelfix, name) is not None, name
    assert labelfix.LabelfixError.__module__ == "labelfix.errors"
    assert issubclass(labelfix.InputError, labelfix.LabelfixError)
    assert issubclass(labelfix.StoreError, labelfix.LabelfixError)
    with pytest.raises(AttributeError, match="has no attribute 'no_such_verb'"):
        labelfix.no_such_verb  # noqa: B018


def test_the_verbs_are_the_ones_the_cli_calls():
    from labelfix.export import export_coco
    from labelfix.flows.learn_flow import train
    from labelfix.ingest import ingest_coco, ingest_features, ingest_table
    from labelfix.learn.embed import compute_embeddings
    from labelfix.review.service import ReviewService
    from labelfix.store.database import open_store
    from labelfix.suggest.run import SuggestConfig, suggest

    assert (labelfix.open_store, labelfix.ingest_coco, labelfix.ingest_table, labelfix.ingest_features) == (
        open_store, ingest_coco, ingest_table, ingest_features)
    assert (labelfix.compute_embeddings, labelfix.train, labelfix.suggest_labels, labelfix.SuggestConfig) == (
        compute_embeddings, train, suggest, SuggestConfig)
    assert (labelfix.export_coco, labelfix.ReviewService) == (export_coco, ReviewService)


def test_suggest_labels_stays_the_function_when_the_suggest_package_is_imported():
    # Importing labelfix.suggest binds the sub-package to labelfix.suggest; the verb has its own name.
    import labelfix.suggest.thresholds  # noqa: F401

    assert callable(labelfix.suggest_labels) and labelfix.suggest_labels.__name__ == "suggest"


def test_help_on_find_missing_labels_shows_shapes_and_an_example():
    completed = _python("import labelfix; help(labelfix.find_missing_labels)")
    assert completed.returncode == 0, completed.stderr
    assert "label_states : np.ndarray" in completed.stdout and ">>> rows = labelfix.find_missing_labels(" in completed.stdout
