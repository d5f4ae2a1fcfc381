"""Tests of the built-in demo dataset generator (labelfix.io.demo_data), at tiny sizes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labelfix.evaluate.simulate import feasible_hide_rate
from labelfix.io import demo_data
from labelfix.io.demo_data import DIGIT_NAMES, HEAD_TO_TAIL_DIGITS, DemoDataset, make_demo_dataset

TINY = {"n_train": 30, "n_val": 10, "n_test": 10, "image_size": 64}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoDataset:
    return make_demo_dataset(out_dir=tmp_path_factory.mktemp("demo"), seed=0, **TINY)


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def categories_per_image(coco: dict) -> dict[int, set[int]]:
    cells: dict[int, set[int]] = {image["id"]: set() for image in coco["images"]}
    for annotation in coco["annotations"]:
        cells[annotation["image_id"]].add(annotation["category_id"])
    return cells


def test_writes_the_promised_files(demo: DemoDataset) -> None:
    assert demo.split_sizes == {"train": 30, "val": 10, "test": 10}
    for path in (demo.full_annotations, demo.observed_annotations, demo.readme):
        assert path.is_file()
    assert "HEAD" not in demo.readme.read_text() and "zero" in demo.readme.read_text()
    assert not list(demo.root.glob("*.tmp")), "no temporary files left behind"
    for split, size in demo.split_sizes.items():
        assert len(list((demo.images_dir / split).glob("*.png"))) == size


def test_full_coco_is_valid(demo: DemoDataset) -> None:
    coco = load(demo.full_annotations)
    assert [c["id"] for c in coco["categories"]] == list(range(1, 11))
    assert [c["name"] for c in coco["categories"]] == list(DIGIT_NAMES)
    assert {c["supercategory"] for c in coco["categories"]} == {"digit"}

    image_ids = [image["id"] for image in coco["images"]]
    assert len(set(image_ids)) == len(image_ids) == 50
    assert len({a["id"] for a in coco["annotations"]}) == len(coco["annotations"])
    images = {image["id"]: image for image in coco["images"]}
    for image in coco["images"]:
        assert image["file_name"].startswith(image["split"] + "/")
        with Image.open(demo.images_dir / image["file_name"]) as pixels:
            assert pixels.mode == "RGB" and pixels.size == (image["width"], image["height"]) == (64, 64)
    for annotation in coco["annotations"]:
        image = images[annotation["image_id"]]
        x, y, w, h = annotation["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0
        assert x + w <= image["width"] and y + h <= image["height"]
        assert annotation["area"] == w * h and annotation["iscrowd"] == 0
        assert 1 <= annotation["category_id"] <= 10
    digits_per_image = np.bincount([a["image_id"] for a in coco["annotations"]], minlength=51)[1:]
    assert digits_per_image.min() >= 1 and digits_per_image.max() <= 5


def test_images_are_varied_and_not_blank(demo: DemoDataset) -> None:
    coco = load(demo.full_annotations)
    arrays = [np.asarray(Image.open(demo.images_dir / image["file_name"]), dtype=float)
              for image in coco["images"][:10]]
    assert all(array.std() > 5 for array in arrays)
    means = np.array([array.mean(axis=(0, 1)) for array in arrays])
    assert means.std(axis=0).min() > 10, "backgrounds should differ in colour"


def test_digit_pixels_match_their_boxes(demo: DemoDataset) -> None:
    # The ink of a digit contrasts with the background: the box differs from its surroundings.
    coco = load(demo.full_annotations)
    image = coco["images"][0]
    pixels = np.asarray(Image.open(demo.images_dir / image["file_name"]), dtype=float)
    annotation = next(a for a in coco["annotations"] if a["image_id"] == image["id"])
    x, y, w, h = annotation["bbox"]
    assert pixels[y: y + h, x: x + w].std() > 10


def test_observed_hides_train_and_val_only(demo: DemoDataset) -> None:
    full, observed = load(demo.full_annotations), load(demo.observed_annotations)
    assert observed["images"] == full["images"] and observed["categories"] == full["categories"]
    full_by_id = {a["id"]: a for a in full["annotations"]}
    assert all(full_by_id[a["id"]] == a for a in observed["annotations"]), "a subset, ids kept"

    split_of = {image["id"]: image["split"] for image in full["images"]}
    full_cells, observed_cells = categories_per_image(full), categories_per_image(observed)
    n_positive = n_hidden = 0
    for split in ("train", "val"):
        ids = [i for i, s in split_of.items() if s == split]
        positives = sum(len(full_cells[i]) for i in ids)
        hidden = sum(len(full_cells[i] - observed_cells[i]) for i in ids)
        assert hidden == round(0.4 * positives), split  # each split hits the rate exactly
        assert all(observed_cells[i] for i in ids), "every image keeps a label"
        n_positive, n_hidden = n_positive + positives, n_hidden + hidden
    assert (demo.n_positive_cells, demo.n_hidden_cells) == (n_positive, n_hidden)

    # A hidden cell loses all of its boxes: the observed file has no half-hidden classes.
    for annotation in full["annotations"]:
        kept = annotation["category_id"] in observed_cells[annotation["image_id"]]
        assert kept == (annotation["id"] in {a["id"] for a in observed["annotations"]})
    test_full = [a for a in full["annotations"] if split_of[a["image_id"]] == "test"]
    test_observed = [a for a in observed["annotations"] if split_of[a["image_id"]] == "test"]
    assert test_full == test_observed


def test_splits_use_disjoint_source_digits(demo: DemoDataset) -> None:
    coco = load(demo.full_annotations)
    split_of = {image["id"]: image["split"] for image in coco["images"]}
    _, mnist_labels = demo_data._load_digit_crops()
    sources: dict[str, set[int]] = {"train": set(), "val": set(), "test": set()}
    for annotation in coco["annotations"]:
        sources[split_of[annotation["image_id"]]].add(annotation["source_index"])
        assert mnist_labels[annotation["source_index"]] == annotation["category_id"] - 1
    assert not sources["train"] & sources["test"]
    assert not sources["val"] & sources["test"]
    assert not sources["train"] & sources["val"]


def test_class_frequencies_are_long_tailed() -> None:
    probabilities = demo_data._instance_class_probabilities()
    assert np.isclose(probabilities.sum(), 1.0)
    assert np.all(np.diff(probabilities[list(HEAD_TO_TAIL_DIGITS)]) < 0), "head first"
    counts = np.arange(1, 6)
    share = lambda p: (demo_data.DIGIT_COUNT_PROBABILITIES * (1 - (1 - p) ** counts)).sum()  # noqa: E731
    ratio = share(probabilities[HEAD_TO_TAIL_DIGITS[0]]) / share(probabilities[HEAD_TO_TAIL_DIGITS[-1]])
    assert ratio == pytest.approx(50.0, rel=1e-3)


def test_same_seed_gives_identical_files(demo: DemoDataset, tmp_path: Path) -> None:
    again = make_demo_dataset(out_dir=tmp_path / "again", seed=0, **TINY)
    assert all_files(again.root) == all_files(demo.root)


def test_different_seed_gives_different_data(demo: DemoDataset, tmp_path: Path) -> None:
    other = make_demo_dataset(out_dir=tmp_path / "other", seed=1, **TINY)
    assert other.full_annotations.read_bytes() != demo.full_annotations.read_bytes()
    first = "train/000001.png"
    assert (other.images_dir / first).read_bytes() != (demo.images_dir / first).read_bytes()


def test_single_positive_keeps_one_label_per_training_image(tmp_path: Path) -> None:
    demo = make_demo_dataset(out_dir=tmp_path, seed=2, single_positive=True, **TINY)
    full, observed = load(demo.full_annotations), load(demo.observed_annotations)
    split_of = {image["id"]: image["split"] for image in full["images"]}
    observed_cells, full_cells = categories_per_image(observed), categories_per_image(full)
    for image_id, split in split_of.items():
        if split == "test":
            assert observed_cells[image_id] == full_cells[image_id]
        else:
            assert len(observed_cells[image_id]) == 1
            assert observed_cells[image_id] <= full_cells[image_id]


@pytest.mark.filterwarnings("ignore:.*can be hidden")  # splits this tiny may not reach the rate
def test_regenerating_smaller_removes_stale_images(tmp_path: Path) -> None:
    make_demo_dataset(out_dir=tmp_path, n_train=6, n_val=2, n_test=2, image_size=32)
    (tmp_path / "images" / "train" / "notes.png").write_bytes(b"user file")
    demo = make_demo_dataset(out_dir=tmp_path, n_train=3, n_val=1, n_test=1, image_size=32)
    names = sorted(p.name for p in (tmp_path / "images" / "train").iterdir())
    assert names == ["000001.png", "000002.png", "000003.png", "notes.png"]
    assert load(demo.full_annotations)["images"][-1]["file_name"] == "test/000005.png"


def test_rejects_tiny_images(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="image_size"):
        make_demo_dataset(out_dir=tmp_path, image_size=16)


def test_unreachable_rate_in_a_tiny_split_warns_and_hides_what_it_can() -> None:
    truth = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=bool)
    with pytest.warns(UserWarning, match="only 1 of 4 labels"):
        assert feasible_hide_rate(truth, rate=0.5, split="val") == 0.25
    assert feasible_hide_rate(truth, rate=0.25, split="val") == 0.25
