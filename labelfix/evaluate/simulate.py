"""Simulate missing labels: hide image-level positives the way human annotators miss them.

Annotators miss small objects and rare classes more often than large, common ones. ``hide_positives``
models that with a calibrated logistic drop probability per (image, class) cell::

    logit P(drop) = intercept + difficulty_bias * difficulty[i, c] + class_bias * rarity[c]

``difficulty`` is a caller-supplied value in [0, 1] (the demo data uses one minus the relative size of
the largest object of that class in the image); ``rarity`` is 0 for the most frequent class and 1 for
the least frequent one, on a log scale of the class's positive count. The intercept is solved by
bisection so that the expected number of dropped positives equals ``rate`` times the number of
positives; probabilities are clipped to [0, 0.95] so that no cell is certainly dropped; after the
random draw, a seeded fix-up step adds or restores cells (again favouring the likely-missed ones) so
that exactly ``round(rate * n_positives)`` positives are hidden.

Every image keeps at least one positive (in every mode). Real datasets do contain images whose only
object nobody labelled, but such an image looks exactly like a true background image and carries no
observed signal; the partial-label literature (e.g. single-positive multi-label learning) keeps one
label per image too, and results stay comparable with it. Images with no positive in ``truth`` stay
empty.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["HIDE_SEED_TAGS", "feasible_hide_rate", "hide_annotations", "hide_positives", "hide_split_positives",
           "split_hide_seed"]

# No cell is dropped with certainty: even a tiny tail-class object is sometimes labelled.
MAX_DROP_PROBABILITY = 0.95
# Seed-sequence tags of the per-split hiding draws: demo-data and the benchmark both use them, so a
# benchmark seed on the demo's full labels hides exactly what demo-data hid for that seed.
HIDE_SEED_TAGS = {"train": 11, "val": 12}


def split_hide_seed(seed: int, split: str) -> int:
    """The seed :func:`hide_positives` gets for ``split`` under the run's ``seed``.

    Examples
    --------
    >>> split_hide_seed(0, "train") == split_hide_seed(0, "train") != split_hide_seed(0, "val")
    True
    """
    return int(np.random.SeedSequence([seed, HIDE_SEED_TAGS[split]]).generate_state(1)[0])


def feasible_hide_rate(truth: np.ndarray, *, rate: float, split: str) -> float:
    """``rate``, or the largest rate that keeps one label per image if a tiny split cannot reach it.

    Warns (naming ``split``) when it has to lower the rate.

    Examples
    --------
    >>> feasible_hide_rate(np.array([[1, 1], [1, 0]], dtype=bool), rate=0.3, split="train")
    0.3
    """
    n_positive = int(truth.sum())
    max_hideable = int(np.clip(truth.sum(axis=1) - 1, 0, None).sum())
    if round(rate * n_positive) <= max_hideable:
        return rate
    # stacklevel 4: past hide_split_positives, to whoever asked for the split to be hidden.
    warnings.warn(f"{split}: only {max_hideable} of {n_positive} labels can be hidden while keeping "
                  f"one per image; hiding that many instead of rate {rate}", stacklevel=4)
    return max_hideable / n_positive


def hide_split_positives(truth: np.ndarray, *, split: str, seed: int, rate: float, single_positive: bool = False,
                         difficulty: np.ndarray | None = None) -> np.ndarray:
    """Observed labels of one split: :func:`hide_positives` with the split's seed and feasible rate.

    The one place the ``demo-data`` and ``bench`` commands hide a split's labels, so that bench seed
    *s* on the demo's full labels hides exactly what demo-data seed *s* hid.

    Examples
    --------
    >>> truth = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=bool)
    >>> observed = hide_split_positives(truth, split="train", seed=0, rate=0.3)
    >>> int((truth & ~observed).sum()), bool((observed <= truth).all())
    (2, True)
    """
    return hide_positives(truth, rate=feasible_hide_rate(truth, rate=rate, split=split),
                          single_positive=single_positive, seed=split_hide_seed(seed, split), difficulty=difficulty)


def hide_positives(
    truth: np.ndarray,
    *,
    rate: float = 0.4,
    single_positive: bool = False,
    seed: int = 0,
    difficulty: np.ndarray | None = None,
    class_bias: float = 1.0,
    difficulty_bias: float = 2.0,
) -> np.ndarray:
    """Return the observed label matrix: ``truth`` with some positives hidden (set to False).

    Parameters
    ----------
    truth : np.ndarray
        (N, C) boolean (or 0/1) matrix of true image-level labels.
    rate : float
        Fraction of all positives to hide, in [0, 1). Hit exactly (up to rounding to a whole cell).
        Ignored when ``single_positive`` is True. Raises ``ValueError`` if it cannot be reached while
        keeping one positive per image.
    single_positive : bool
        Keep exactly one positive per image (the single-positive protocol). The kept label is drawn
        at random with weight ``exp(-(difficulty_bias * difficulty + class_bias * rarity))``, so
        large objects of common classes are the ones most likely to be kept.
    seed : int
        Seed of the random generator; the result is a deterministic function of all arguments.
    difficulty : np.ndarray or None
        (N, C) values in [0, 1]; higher means easier to miss (e.g. ``1 - relative object size``).
        Only cells where ``truth`` is positive are read. None means every cell is equally hard.
    class_bias : float
        Logit increase of the drop probability from the most frequent to the rarest class.
        0 makes classes equally likely to lose labels.
    difficulty_bias : float
        Logit increase of the drop probability from difficulty 0 to difficulty 1.

    Returns
    -------
    np.ndarray
        (N, C) boolean observed matrix, ``observed <= truth`` cell-wise.

    Examples
    --------
    >>> truth = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 0], [1, 0, 1]], dtype=bool)
    >>> observed = hide_positives(truth, rate=0.25, seed=0)
    >>> int((truth & ~observed).sum()), bool((observed.sum(axis=1) >= 1).all())
    (2, True)
    """
    truth = _as_bool_matrix(truth)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate}")
    for name, value in (("class_bias", class_bias), ("difficulty_bias", difficulty_bias)):
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    difficulty = _checked_difficulty(difficulty, truth)
    rng = np.random.default_rng(seed)

    # Propensity to be missed, before calibration: harder objects and rarer classes score higher.
    propensity = difficulty_bias * difficulty + class_bias * _class_rarity(truth)[None, :]
    if single_positive:
        return _keep_one_positive(truth, propensity, rng)

    n_positive = int(truth.sum())
    target = int(round(rate * n_positive))
    positives_per_image = truth.sum(axis=1)
    max_hideable = int(np.clip(positives_per_image - 1, 0, None).sum())
    if target > max_hideable:
        raise ValueError(
            f"cannot hide {target} of {n_positive} positives (rate {rate}) while keeping one per "
            f"image: at most {max_hideable} ({max_hideable / max(n_positive, 1):.1%}) can be hidden"
        )
    if target == 0:
        return truth.copy()

    # Cells of single-positive images can never be hidden, so only the others share the target.
    hideable = truth & (positives_per_image >= 2)[:, None]
    drop_probability = _calibrated_probabilities(propensity, hideable, target)
    dropped = hideable & (rng.random(truth.shape) < drop_probability)

    # Keep one positive where every positive was drawn; the most noticeable one is most likely kept.
    emptied = truth.any(axis=1) & ~(truth & ~dropped).any(axis=1)
    if emptied.any():
        keep_keys = _selection_keys(1.0 - drop_probability, rng)
        keep_column = np.where(truth, keep_keys, -np.inf).argmax(axis=1)
        rows = np.flatnonzero(emptied)
        dropped[rows, keep_column[rows]] = False

    dropped = _fix_up_count(truth, dropped, drop_probability, target, rng)
    return truth & ~dropped


def hide_annotations(
    coco: dict[str, Any], *, hidden_cells: Iterable[tuple[int, int]]
) -> dict[str, Any]:
    """Return a copy of a COCO dict without the annotations of the given (image, category) cells.

    Hiding an image-level label means the annotator missed the class in that image entirely, so
    every annotation of that class in that image is removed. Other keys are shared, not copied.

    Parameters
    ----------
    coco : dict
        COCO instances dict with an ``annotations`` list.
    hidden_cells : iterable of (int, int)
        ``(image_id, category_id)`` pairs to hide.

    Returns
    -------
    dict
        A new dict whose ``annotations`` list keeps the other annotations in their original order,
        with their original ids.

    Examples
    --------
    >>> coco = {"annotations": [{"id": 1, "image_id": 7, "category_id": 2},
    ...                         {"id": 2, "image_id": 7, "category_id": 3}]}
    >>> [a["id"] for a in hide_annotations(coco, hidden_cells=[(7, 2)])["annotations"]]
    [2]
    """
    hidden = {(int(image_id), int(category_id)) for image_id, category_id in hidden_cells}
    kept = [a for a in coco["annotations"] if (a["image_id"], a["category_id"]) not in hidden]
    return {**coco, "annotations": kept}


def _as_bool_matrix(truth: np.ndarray) -> np.ndarray:
    truth = np.asarray(truth)
    if truth.ndim != 2:
        raise ValueError(f"truth must be a 2-d (images, classes) matrix, got shape {truth.shape}")
    if truth.dtype != bool:
        if not np.isin(truth, (0, 1)).all():
            raise ValueError("truth must be boolean or contain only 0 and 1")
        truth = truth.astype(bool)
    return truth


def _checked_difficulty(difficulty: np.ndarray | None, truth: np.ndarray) -> np.ndarray:
    if difficulty is None:
        return np.zeros(truth.shape)
    difficulty = np.asarray(difficulty, dtype=float)
    if difficulty.shape != truth.shape:
        raise ValueError(f"difficulty shape {difficulty.shape} != truth shape {truth.shape}")
    on_positives = difficulty[truth]
    if not (np.isfinite(on_positives).all() and (on_positives >= 0).all() and (on_positives <= 1).all()):
        raise ValueError("difficulty must lie in [0, 1] on every positive cell")
    # Cells that are not positive are never read; zero them so NaN placeholders are harmless.
    return np.where(truth, difficulty, 0.0)


def _class_rarity(truth: np.ndarray) -> np.ndarray:
    """Per-class rarity in [0, 1]: 0 for the most frequent class, 1 for the least frequent one."""
    counts = truth.sum(axis=0).astype(float)
    present = counts > 0
    if present.sum() < 2 or counts[present].min() == counts.max():
        return np.zeros(truth.shape[1])
    # Log scale: going from 1000 to 100 positives matters as much as from 100 to 10.
    log_counts = np.log(np.where(present, counts, 1.0))
    rarity = (log_counts.max() - log_counts) / (log_counts.max() - log_counts[present].min())
    return np.where(present, rarity, 0.0)


def _calibrated_probabilities(propensity: np.ndarray, hideable: np.ndarray, target: int) -> np.ndarray:
    """Drop probabilities, zero outside ``hideable``, whose sum over ``hideable`` is ``target``."""

    def probabilities(intercept: float) -> np.ndarray:
        with np.errstate(over="ignore"):
            p = 1.0 / (1.0 + np.exp(-(intercept + propensity)))
        return np.where(hideable, np.minimum(p, MAX_DROP_PROBABILITY), 0.0)

    spread = float(np.abs(propensity[hideable]).max(initial=0.0))
    low, high = -spread - 40.0, spread + 40.0
    # 100 halvings of an interval ~100 wide reach float precision; the sum is monotone in intercept.
    for _ in range(100):
        middle = 0.5 * (low + high)
        if probabilities(middle).sum() < target:
            low = middle
        else:
            high = middle
    return probabilities(high)


def _selection_keys(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Efraimidis–Spirakis keys: taking the largest keys samples without replacement ∝ weights."""
    uniform = 1.0 - rng.random(weights.shape)  # in (0, 1], so the log is finite
    return np.log(uniform) / np.maximum(weights, 1e-12)


def _fix_up_count(
    truth: np.ndarray,
    dropped: np.ndarray,
    drop_probability: np.ndarray,
    target: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Add or restore hidden cells until exactly ``target`` are hidden, keeping one per image."""
    dropped = dropped.copy()
    surplus = int(dropped.sum()) - target
    if surplus > 0:
        # Restore the cells an annotator would most likely have noticed; never empties an image.
        keys = np.where(dropped, _selection_keys(1.0 - drop_probability, rng), -np.inf)
        order = np.argsort(-keys, axis=None, kind="stable")[:surplus]
        dropped.flat[order] = False
    elif surplus < 0:
        keys = np.where(truth & ~dropped, _selection_keys(drop_probability, rng), -np.inf)
        kept_per_image = (truth & ~dropped).sum(axis=1)
        missing = -surplus
        for flat_index in np.argsort(-keys, axis=None, kind="stable"):
            if missing == 0 or keys.flat[flat_index] == -np.inf:
                break
            image = flat_index // truth.shape[1]
            if kept_per_image[image] >= 2:
                dropped.flat[flat_index] = True
                kept_per_image[image] -= 1
                missing -= 1
        if missing:  # unreachable after the feasibility check; guards against future edits
            raise RuntimeError(f"could not hide {missing} more positives")
    return dropped


def _keep_one_positive(truth: np.ndarray, propensity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    keys = np.where(truth, _selection_keys(np.exp(-propensity), rng), -np.inf)
    kept_column = keys.argmax(axis=1)
    observed = np.zeros_like(truth)
    rows = np.flatnonzero(truth.any(axis=1))
    observed[rows, kept_column[rows]] = True
    return observed
