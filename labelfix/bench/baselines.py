"""The benchmark's two reference points: cleanlab (the production peer) and the full-label oracle.

Both score the train split **out of fold** (K folds): every train image is scored by a model that
did not see it, the way cleanlab asks for its ``pred_probs``; val and test are scored by one model
fitted on the whole train split.

* ``cleanlab``: a model trained on the *observed* labels (unknown = negative, i.e. AN), then
  ``cleanlab.multilabel_classification.filter.find_multilabel_issues_per_class`` (confident
  learning, one-vs-rest per class). Its missing-label score for an unknown cell is
  1 - self-confidence of the given label 0, i.e. the out-of-fold probability p, plus 1 when
  cleanlab flags the cell: cleanlab's flagged cells come first, ranked by self-confidence, then
  the rest in the same order. The flagged set alone is cleanlab's operating point (reported in
  ``extra``).
* ``oracle``: the same model trained on the hidden **true** labels. It knows nothing a labelfix method
  could not also see except the labels themselves, so its ranking of the hidden cells is the limit of
  what this backbone's embeddings can find.

The model (``BenchSettings.baseline_model``):

* ``head`` (default): labelfix's own linear head, ``train_head`` with ``an`` (cleanlab) or ``oracle``
  and ``folds=K``: the same model, optimiser, early stopping on val and embeddings as every method,
  so the only difference from AN is where the labels come from. Seconds per seed.
* ``logreg``: scikit-learn ``LogisticRegression`` per class on the standardised embeddings (mean /
  std of the train split), C picked from ``logreg_cs`` by val mAP (observed val labels for cleanlab,
  true val labels for the oracle; never test). Independent of labelfix's trainer, so a trainer bug
  cannot move the reference; ~80 fits per baseline and seed (minutes on 2 cores).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from labelfix.bench.methods import MethodOutcome, run_trainer_method
from labelfix.evaluate.metrics import mean_average_precision
from labelfix.bench.seeds import SeedContext
from labelfix.bench.settings import BenchSettings


def cleanlab_baseline(ctx: SeedContext, settings: BenchSettings) -> MethodOutcome:
    """Out-of-fold AN predictions + cleanlab's per-class confident learning (see module docstring)."""
    outcome = _out_of_fold(ctx, settings, targets=ctx.observed, method="cleanlab")
    rows = ctx.train_rows
    flags = cleanlab_flags(observed=ctx.observed[rows], pred_probs=outcome.probs[rows])
    unknown = ~ctx.observed[rows]
    missing_scores = outcome.probs.astype(np.float64)
    missing_scores[rows] += (flags & unknown).astype(np.float64)
    outcome.missing_scores = missing_scores
    flagged = flags & unknown
    hits = int((flagged & ctx.hidden[rows]).sum())
    outcome.extra.update({
        "cleanlab_filter_by": "prune_by_noise_rate",
        "flagged_missing": int(flagged.sum()),
        "flagged_missing_precision": hits / int(flagged.sum()) if flagged.any() else None,
        "flagged_missing_recall": hits / int(ctx.hidden[rows].sum()) if ctx.hidden[rows].any() else None,
        "flagged_spurious": int((flags & ctx.observed[rows]).sum()),
    })
    return outcome


def cleanlab_flags(*, observed: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """bool [N, C]: the cells cleanlab calls label issues (per class, confident learning)."""
    # Imported here: cleanlab is slow to import and only this baseline needs it.
    from cleanlab.multilabel_classification.filter import find_multilabel_issues_per_class

    labels = [np.flatnonzero(row).tolist() for row in observed]
    pred_probs = np.clip(np.asarray(pred_probs, dtype=np.float64), 1e-6, 1 - 1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab warns about classes with few examples
        flags = find_multilabel_issues_per_class(labels=labels, pred_probs=pred_probs,
                                                 return_indices_ranked_by=None, filter_by="prune_by_noise_rate",
                                                 n_jobs=1)
    return np.asarray(flags, dtype=bool)


def oracle_baseline(ctx: SeedContext, settings: BenchSettings) -> MethodOutcome:
    """Out-of-fold predictions of a model trained on the hidden true labels (the upper bound)."""
    return _out_of_fold(ctx, settings, targets=ctx.data.truth, method="oracle")


def _out_of_fold(ctx: SeedContext, settings: BenchSettings, *, targets: np.ndarray,
                 method: str) -> MethodOutcome:
    folds = settings.baseline_folds
    if settings.baseline_model == "head":
        base = "an" if method == "cleanlab" else "oracle"
        label_states = ctx.truth_states() if method == "oracle" else None
        outcome = run_trainer_method(ctx, base, settings, folds=folds, label_states=label_states)
        outcome.method, outcome.scoring = method, "out-of-fold"
        outcome.hyperparameters["model"] = f"labelfix head ({base})"
        return outcome
    data = ctx.data
    features = _standardized(data.embeddings, data.rows("train"))
    probs, info = logreg_out_of_fold(features, targets, train_rows=data.rows("train"), val_rows=data.rows("val"),
                                     cs=_grid(settings), folds=folds, seed=ctx.seed)
    return MethodOutcome(method=method, probs=probs, folds=folds, scoring="out-of-fold",
                         val_map=info["val_map"], hyperparameters={"model": "sklearn LogisticRegression per class",
                                                                   "C": info["C"], "folds": folds},
                         extra={"val_map_by_C": info["val_map_by_C"],
                                "val_labels": "true" if method == "oracle" else "observed"})


def _grid(settings: BenchSettings) -> tuple[float, ...]:
    """The C values tried on val; ``--quick`` tries only the middle one."""
    cs = tuple(settings.logreg_cs)
    return (cs[len(cs) // 2],) if settings.quick else cs


def _standardized(embeddings: np.ndarray, train_rows: np.ndarray) -> np.ndarray:
    mean = embeddings[train_rows].mean(axis=0)
    std = np.maximum(embeddings[train_rows].std(axis=0), 1e-6)
    return ((embeddings - mean) / std).astype(np.float32)


def logreg_out_of_fold(features: np.ndarray, targets: np.ndarray, *, train_rows: np.ndarray, val_rows: np.ndarray,
                       cs: tuple[float, ...], folds: int, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-class logistic regression: C by val mAP, then K-fold out-of-fold scores of the train rows.

    Returns float32 [N, C] probabilities (train rows out of fold; every other row from the model
    fitted on all train rows) and ``{"C", "val_map", "val_map_by_C"}``.
    """
    targets = np.asarray(targets, dtype=bool)
    x_train, y_train = features[train_rows], targets[train_rows]
    by_c: dict[str, float | None] = {}
    best_c, best_map, best_full = cs[0], -math.inf, None
    for c in cs:
        models = _fit_per_class(x_train, y_train, c)
        val_probs = _predict_per_class(models, features[val_rows])
        val_map = mean_average_precision(probs=val_probs, truth=targets[val_rows]).mean_ap
        by_c[f"{c:g}"] = None if math.isnan(val_map) else float(val_map)
        if not math.isnan(val_map) and val_map > best_map:
            best_c, best_map, best_full = c, val_map, models
    if best_full is None:  # no val positive at all: keep the first C
        best_full = _fit_per_class(x_train, y_train, best_c)
    probs = _predict_per_class(best_full, features)
    assignment = np.random.default_rng(seed).permutation(len(train_rows)) % folds
    for fold in range(folds):
        fit, held = assignment != fold, assignment == fold
        models = _fit_per_class(x_train[fit], y_train[fit], best_c)
        probs[train_rows[held]] = _predict_per_class(models, x_train[held])
    return probs.astype(np.float32), {"C": best_c, "val_map": None if best_map == -math.inf else float(best_map),
                                      "val_map_by_C": by_c}


def _fit_per_class(x: np.ndarray, y: np.ndarray, c: float) -> list[Any]:
    """One scikit-learn logistic regression per class; a constant class gets its rate."""
    # Imported here: scikit-learn is slow to import and only the logreg baseline model needs it.
    from sklearn.linear_model import LogisticRegression

    models: list[Any] = []
    for column in range(y.shape[1]):
        target = y[:, column]
        if target.all() or not target.any():
            models.append(float(target.mean()))
            continue
        models.append(LogisticRegression(C=c, max_iter=1000).fit(x, target))
    return models


def _predict_per_class(models: list[Any], x: np.ndarray) -> np.ndarray:
    out = np.empty((len(x), len(models)), dtype=np.float32)
    for column, model in enumerate(models):
        out[:, column] = model if isinstance(model, float) else model.predict_proba(x)[:, 1]
    return out


__all__ = ["cleanlab_baseline", "cleanlab_flags", "logreg_out_of_fold", "oracle_baseline"]
