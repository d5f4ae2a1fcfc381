"""labelfix: find and fix missing labels in multi-label image datasets.

The verbs a Python user calls, in the order of the main road (``ingest -> embed -> train -> suggest
-> review -> export``), all on a store opened with :func:`open_store`::

    import labelfix

    with labelfix.open_store("labels.duckdb") as store:
        labelfix.ingest_coco(store, annotations="instances.json", images="images/")
        labelfix.compute_embeddings(store)
        result = labelfix.train(store, config=labelfix.TrainConfig(method="gr", mode="head"))
        report = labelfix.suggest_labels(store, config=labelfix.SuggestConfig(target_precision=0.9))
        labelfix.export_coco(store, out_dir="fixed/")

``suggest_labels`` is :func:`labelfix.suggest.run.suggest` (``labelfix suggest``); it is not called
``labelfix.suggest`` because that is the sub-package's name, which Python rebinds to the module when
the sub-package is first imported.

Without a store, :func:`find_missing_labels` takes label states and predicted probabilities as arrays
(in the style of cleanlab's ``find_label_issues``) and applies the same per-class thresholds.

Every name loads its module on first use, so ``import labelfix`` stays light (no DuckDB, pandas or
FiftyOne until a verb that needs them is called). Deeper modules remain importable by their paths
(``labelfix.learn.losses`` ...); docs/ARCHITECTURE.md shows how the packages fit.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from labelfix._version import __version__

if TYPE_CHECKING:  # what the names below are, for type checkers and IDEs; nothing is imported at run time
    from labelfix.errors import InputError, LabelfixError, StoreError
    from labelfix.export import ExportSummary, export_coco
    from labelfix.flows.learn_flow import train
    from labelfix.ingest import ingest_coco, ingest_features, ingest_table
    from labelfix.learn.config import TrainConfig, TrainResult
    from labelfix.learn.embed import EmbedConfig, EmbedResult, compute_embeddings
    from labelfix.review.service import ReviewService
    from labelfix.store.database import Store, open_store
    from labelfix.suggest.arrays import MISSING_LABEL_DTYPE, find_missing_labels
    from labelfix.suggest.run import SuggestConfig, SuggestReport, revert_auto
    from labelfix.suggest.run import suggest as suggest_labels

# Public name -> the module that defines it (imported on first access by __getattr__).
_WHERE: dict[str, str] = {
    "open_store": "labelfix.store.database",
    "Store": "labelfix.store.database",
    "ingest_coco": "labelfix.ingest",
    "ingest_table": "labelfix.ingest",
    "ingest_features": "labelfix.ingest",
    "compute_embeddings": "labelfix.learn.embed",
    "EmbedConfig": "labelfix.learn.embed",
    "EmbedResult": "labelfix.learn.embed",
    "train": "labelfix.flows.learn_flow",
    "TrainConfig": "labelfix.learn.config",
    "TrainResult": "labelfix.learn.config",
    "suggest_labels": "labelfix.suggest.run",
    "SuggestConfig": "labelfix.suggest.run",
    "SuggestReport": "labelfix.suggest.run",
    "revert_auto": "labelfix.suggest.run",
    "find_missing_labels": "labelfix.suggest.arrays",
    "MISSING_LABEL_DTYPE": "labelfix.suggest.arrays",
    "export_coco": "labelfix.export",
    "ExportSummary": "labelfix.export",
    "ReviewService": "labelfix.review.service",
    "LabelfixError": "labelfix.errors",
    "InputError": "labelfix.errors",
    "StoreError": "labelfix.errors",
}

__all__ = ["__version__", *_WHERE]


# A public name that differs from the name in its module.
_RENAMED: dict[str, str] = {"suggest_labels": "suggest"}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'labelfix' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), _RENAMED.get(name, name))
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
