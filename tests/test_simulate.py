"""Tests of the missing-label simulation (labelfix.evaluate.simulate)."""

from __future__ import annotations

import numpy as np
import pytest

from labelfix.evaluate.simulate import hide_annotations, hide_positives


def long_tailed_truth(n_images: int = 4000, n_classes: int = 10, seed: int = 0) -> np.ndarray:
    """Random multi-label truth: 1-5 distinct classes per image, class c drawn with weight 0.65**c.

    The first five rows are empty, as background images are in real data.
    """
    rng = np.random.default_rng(seed)
    n_labels = rng.integers(1, 6, size=(n_images, 1))
    # Gumbel top-k: the k largest of log(weight) + Gumbel noise sample k classes without replacement.
    keys = np.log(0.65) * np.arange(n_classes) + rng.gumbel(size=(n_images, n_classes))
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    truth = rank < n_labels
    truth[:5] = False
    return truth


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.4, 0.5])
def test_hides_exactly_the_requested_fraction(rate: float) -> None:
    truth = long_tailed_truth()
    difficulty = np.random.default_rng(1).random(truth.shape)
    observed = hide_positives(truth, rate=rate, seed=3, difficulty=difficulty)
    assert observed.dtype == bool and observed.shape == truth.shape
    assert not (observed & ~truth).any(), "only positives may change"
    assert (truth & ~observed).sum() == round(rate * truth.sum())


@pytest.mark.parametrize("single_positive", [False, True])
def test_keeps_at_least_one_positive_per_image(single_positive: bool) -> None:
    truth = long_tailed_truth()
    observed = hide_positives(truth, rate=0.5, seed=0, single_positive=single_positive)
    has_positive = truth.any(axis=1)
    assert (observed.sum(axis=1)[has_positive] >= 1).all()
    assert not observed[~has_positive].any(), "empty images stay empty"


def test_single_positive_keeps_exactly_one() -> None:
    truth = long_tailed_truth()
    observed = hide_positives(truth, single_positive=True, seed=5)
    assert (observed.sum(axis=1) == truth.any(axis=1)).all()
    assert not (observed & ~truth).any()


def test_single_positive_prefers_large_objects() -> None:
    truth = long_tailed_truth(n_images=6000)
    difficulty = np.random.default_rng(2).random(truth.shape)
    observed = hide_positives(truth, single_positive=True, seed=1, difficulty=difficulty,
                              class_bias=0.0)
    multi = truth.sum(axis=1) >= 2
    kept_difficulty = difficulty[observed & multi[:, None]].mean()
    mean_difficulty = difficulty[truth & multi[:, None]].mean()
    assert kept_difficulty < mean_difficulty - 0.05


def test_is_deterministic_given_seed() -> None:
    truth = long_tailed_truth(n_images=500)
    difficulty = np.random.default_rng(0).random(truth.shape)
    first = hide_positives(truth, rate=0.4, seed=7, difficulty=difficulty)
    again = hide_positives(truth, rate=0.4, seed=7, difficulty=difficulty)
    other = hide_positives(truth, rate=0.4, seed=8, difficulty=difficulty)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_smaller_objects_are_dropped_more_often() -> None:
    truth = long_tailed_truth()
    difficulty = np.random.default_rng(4).random(truth.shape)
    observed = hide_positives(truth, rate=0.4, seed=0, difficulty=difficulty, class_bias=0.0)
    hidden = truth & ~observed
    hard_rate = hidden[truth & (difficulty > 0.7)].mean()
    easy_rate = hidden[truth & (difficulty < 0.3)].mean()
    assert hard_rate > easy_rate + 0.15, (hard_rate, easy_rate)


def test_rarer_classes_are_dropped_more_often() -> None:
    truth = long_tailed_truth()
    observed = hide_positives(truth, rate=0.4, seed=0)  # uniform difficulty: only rarity acts
    drop_rate = (truth & ~observed).sum(axis=0) / truth.sum(axis=0)
    head, tail = drop_rate[:3].mean(), drop_rate[-3:].mean()
    assert tail > head + 0.1, drop_rate
    # Spearman-like check: drop rate rises with rarity across the classes.
    assert np.corrcoef(np.arange(truth.shape[1]), drop_rate)[0, 1] > 0.8


def test_without_biases_every_class_loses_about_the_same_share() -> None:
    # Every image has two or more positives, so the keep-one rule shields no class in particular.
    truth = long_tailed_truth()
    truth = truth[truth.sum(axis=1) >= 2]
    observed = hide_positives(truth, rate=0.3, seed=0, class_bias=0.0, difficulty_bias=0.0)
    drop_rate = (truth & ~observed).sum(axis=0) / truth.sum(axis=0)
    assert np.ptp(drop_rate[:6]) < 0.06, drop_rate  # the six best-populated classes


def test_rate_zero_returns_truth_and_accepts_integers() -> None:
    truth = long_tailed_truth(n_images=50).astype(np.int64)
    assert np.array_equal(hide_positives(truth, rate=0.0), truth.astype(bool))


def test_impossible_rate_raises() -> None:
    truth = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=bool)  # only one positive is hideable
    with pytest.raises(ValueError, match="keeping one per image"):
        hide_positives(truth, rate=0.5)
    assert (truth & ~hide_positives(truth, rate=0.25)).sum() == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 1.0},
        {"rate": -0.1},
        {"difficulty": np.full((4, 3), 1.5)},
        {"difficulty": np.zeros((3, 3))},
        {"class_bias": float("nan")},
    ],
)
def test_rejects_bad_arguments(kwargs: dict) -> None:
    truth = np.ones((4, 3), dtype=bool)
    with pytest.raises(ValueError):
        hide_positives(truth, **kwargs)


def test_difficulty_outside_positives_is_ignored() -> None:
    truth = np.array([[1, 1, 0], [1, 1, 1]], dtype=bool)
    difficulty = np.where(truth, 0.5, np.nan)
    observed = hide_positives(truth, rate=0.4, difficulty=difficulty)
    assert (truth & ~observed).sum() == 2


def test_hide_annotations_drops_every_instance_of_hidden_cells() -> None:
    coco = {
        "images": [{"id": 1}, {"id": 2}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 3},
            {"id": 11, "image_id": 1, "category_id": 3},
            {"id": 12, "image_id": 1, "category_id": 4},
            {"id": 13, "image_id": 2, "category_id": 3},
        ],
    }
    observed = hide_annotations(coco, hidden_cells=[(1, 3)])
    assert [a["id"] for a in observed["annotations"]] == [12, 13]
    assert observed["images"] is coco["images"]
    assert len(coco["annotations"]) == 4, "the input is not modified"
