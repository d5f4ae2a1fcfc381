"""Adapt mode on CPU with the tiny backbone and 24 px images: map cache, augmentation, every loss, cross-fitting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from labelfix.ingest import ingest_coco
from labelfix.learn.adapt import FeatureMapSet, MapAugment, augment_maps, cache_feature_maps, train_adapt
from labelfix.learn.adapt.cache import map_set_name
from labelfix.learn.backbones import build_backbone
from labelfix.learn.config import TrainConfig
from labelfix.learn.config import TRAIN_METHODS
from labelfix.store.database import Store, open_store
from labelfix.store.labels import load_label_matrix
from labelfix.store.runs import read_predictions
from tests.test_finetune import make_split_coco


@pytest.fixture
def store(tmp_path: Path) -> Store:
    coco = make_split_coco(tmp_path / "data")
    store = open_store(tmp_path / "store.duckdb")
    ingest_coco(store, annotations=coco, images=tmp_path / "data" / "images")
    yield store
    store.close()


def adapt_config(**overrides) -> TrainConfig:
    values = dict(method="an", mode="adapt", backbone="tiny", image_size=24, epochs=1, batch_size=8, device="cpu",
                  seed=3, folds=1)
    values.update(overrides)
    return TrainConfig(**values)


def test_cache_is_keyed_and_reused(store: Store) -> None:
    first = cache_feature_maps(store, backbone="tiny", cut=3, image_size=24)
    assert first.computed == 24 and first.reused == 0 and first.failed_ids == []
    assert first.name == map_set_name(build_backbone("tiny", weights=None), cut=3, image_size=24)
    assert first.shape == (16, 12, 12) and first.bytes_per_image == 16 * 12 * 12 * 2
    before = {p.name: p.stat().st_mtime_ns for p in first.folder.iterdir()}
    second = cache_feature_maps(store, backbone="tiny", cut=3, image_size=24)
    assert second.computed == 0 and second.reused == 24
    assert {p.name: p.stat().st_mtime_ns for p in second.folder.iterdir()} == before  # nothing rewritten
    # Another cut or size is another key, never the stale maps.
    other = cache_feature_maps(store, backbone="tiny", cut=3, image_size=32)
    assert other.folder != first.folder and other.computed == 24 and other.shape == (16, 16, 16)


def test_small_shards_give_the_same_maps(store: Store, tmp_path: Path) -> None:
    whole = cache_feature_maps(store, backbone="tiny", cut=3, image_size=24, shard_size=1000)
    maps_whole = FeatureMapSet(whole.folder)
    ids = maps_whole.image_ids.copy()
    reference = maps_whole.read(ids)
    import shutil

    shutil.rmtree(whole.folder)
    sharded = cache_feature_maps(store, backbone="tiny", cut=3, image_size=24, shard_size=5)
    maps = FeatureMapSet(sharded.folder)
    assert maps.num_shards == 5 and len(list(sharded.folder.glob("shard-*.npy"))) == 5
    assert maps.read(ids).dtype == np.float16
    np.testing.assert_array_equal(maps.read(ids), reference)
    np.testing.assert_array_equal(maps.read(ids[::-1]), reference[::-1])


def test_two_processes_cache_the_same_maps_as_one(store: Store) -> None:
    one = cache_feature_maps(store, backbone="tiny", cut=3, image_size=24, shard_size=5)
    maps_one = FeatureMapSet(one.folder)
    ids = maps_one.image_ids.copy()
    reference = maps_one.read(ids)
    import shutil

    shutil.rmtree(one.folder)
    two = cache_feature_maps(store, backbone="tiny", cut=3, image_size=24, shard_size=5, nproc=2)
    assert two.computed == 24 and two.failed_ids == []
    maps_two = FeatureMapSet(two.folder)
    # 12 images per worker in shards of 5: 3 shards each, numbered 0-2 and 3-5, none shared.
    assert sorted(p.name for p in two.folder.glob("shard-*.npy")) == [f"shard-{i:05d}.npy" for i in range(6)]
    np.testing.assert_array_equal(np.sort(maps_two.image_ids), np.sort(ids))
    np.testing.assert_array_equal(maps_two.read(ids), reference)
    again = cache_feature_maps(store, backbone="tiny", cut=3, image_size=24, nproc=2)
    assert again.computed == 0 and again.reused == 24


def test_new_images_are_added_without_recomputing(store: Store, tmp_path: Path) -> None:
    cache_feature_maps(store, backbone="tiny", cut=3, image_size=24, splits=("train",), shard_size=4)
    more = cache_feature_maps(store, backbone="tiny", cut=3, image_size=24, shard_size=4)
    assert more.computed == 10 and more.reused == 14
    assert len(FeatureMapSet(more.folder).image_ids) == 24


def test_whole_image_is_seen(store: Store, tmp_path: Path) -> None:
    """An object in the image corner changes the map: nothing is cropped away."""
    name = store.fetchone("SELECT file_name, images_root FROM images WHERE image_id = 1")
    path = Path(name[1]) / name[0]
    before = cache_feature_maps(store, backbone="tiny", cut=3, image_size=24)
    old = FeatureMapSet(before.folder).read(np.array([1]))[0].astype(np.float32)
    pixels = np.asarray(Image.open(path).convert("RGB")).copy()
    pixels[:3, :3] = 255 - pixels[:3, :3]  # a 3x3 "object" in the top-left corner
    Image.fromarray(pixels).save(path)
    import shutil

    shutil.rmtree(before.folder)
    after = cache_feature_maps(store, backbone="tiny", cut=3, image_size=24)
    new = FeatureMapSet(after.folder).read(np.array([1]))[0].astype(np.float32)
    changed = np.abs(new - old).sum(axis=0) > 1e-3
    assert changed[:2, :2].any()          # the corner of the map saw it
    assert not changed[6:, 6:].any()      # the far corner did not


def test_undecodable_image_is_reported_not_cached(store: Store) -> None:
    name = store.fetchone("SELECT file_name, images_root FROM images WHERE image_id = 5")
    (Path(name[1]) / name[0]).write_bytes(b"not a png")
    result = cache_feature_maps(store, backbone="tiny", cut=3, image_size=24)
    assert result.failed_ids == [5] and result.computed == 23
    assert not FeatureMapSet(result.folder).has(np.array([5]))[0]
    run = train_adapt(store, config=adapt_config())
    assert 5 not in run.image_ids["train"] and run.metrics["missing_feature_maps"] == 1


def test_augmentation_keeps_shapes_and_is_seeded() -> None:
    maps = torch.randn(6, 4, 8, 8).half()
    settings = MapAugment(flip=True, max_shift=1, erase_prob=1.0, erase_max_fraction=0.25)
    out = augment_maps(maps, settings, generator=torch.Generator().manual_seed(0))
    again = augment_maps(maps, settings, generator=torch.Generator().manual_seed(0))
    assert out.shape == maps.shape and out.dtype == maps.dtype
    torch.testing.assert_close(out, again)
    assert not torch.equal(out, maps)
    # Erasing hides at most a quarter of each side: most of each map survives.
    assert ((out == 0).float().mean(dim=(1, 2, 3)) < 0.5).all()
    assert torch.equal(augment_maps(maps, MapAugment(flip=False, max_shift=0, erase_prob=0.0),
                                    generator=torch.Generator()), maps)
    with pytest.raises(ValueError, match="unknown adapt_augment"):
        MapAugment.from_dict({"rotate": 1})


def test_flip_and_shift_move_content_not_labels() -> None:
    maps = torch.zeros(1, 1, 4, 4)
    maps[0, 0, 1, 0] = 1.0
    flipped = augment_maps(maps, MapAugment(flip=True, max_shift=0, erase_prob=0.0),
                           generator=torch.Generator().manual_seed(1))
    assert flipped.sum() == 1.0 and flipped[0, 0, 1].nonzero().item() in (0, 3)


@pytest.mark.parametrize("method", [m for m in TRAIN_METHODS])
def test_every_method_trains_one_epoch_and_writes_predictions(store: Store, method: str) -> None:
    truth = load_label_matrix(store).states if method == "oracle" else None
    result = train_adapt(store, config=adapt_config(method=method), label_states=truth)
    run = store.fetchone("SELECT mode, status, method FROM runs WHERE run_id = ?", [result.run_id])
    assert run == ("adapt", "finished", method)
    predictions = read_predictions(store, run_id=result.run_id)
    assert predictions.probs.shape == (24, 3)
    assert np.isfinite(predictions.probs).all() and ((predictions.probs >= 0) & (predictions.probs <= 1)).all()
    assert json.loads(store.fetchone("SELECT metrics FROM runs WHERE run_id = ?", [result.run_id])[0])["cut"] == 3


def test_oracle_needs_the_truth(store: Store) -> None:
    from labelfix.errors import LabelfixError

    with pytest.raises(LabelfixError, match="hidden true labels"):
        train_adapt(store, config=adapt_config(method="oracle"))


def test_training_is_deterministic(store: Store) -> None:
    first = train_adapt(store, config=adapt_config(epochs=2))
    second = train_adapt(store, config=adapt_config(epochs=2))
    np.testing.assert_array_equal(first.probs["train"], second.probs["train"])


def test_cross_fitted_scores_come_from_models_that_did_not_see_the_image(store: Store, monkeypatch) -> None:
    from labelfix.learn.adapt import train as adapt_train

    fitted: dict[int, set[int]] = {}      # id(model) -> rows it trained on
    scored: list[tuple[int, np.ndarray]] = []
    real_fit, real_predict = adapt_train.fit_adapt, adapt_train.predict_maps

    def fit_spy(scheme, **kwargs):
        fit = real_fit(scheme, **kwargs)
        fitted[id(fit.scheme)] = set(kwargs["train_rows"].tolist())
        return fit

    def predict_spy(scheme, maps, rows, **kwargs):
        if id(scheme) in fitted:
            scored.append((id(scheme), np.asarray(rows)))
        return real_predict(scheme, maps, rows, **kwargs)

    monkeypatch.setattr(adapt_train, "fit_adapt", fit_spy)
    monkeypatch.setattr(adapt_train, "predict_maps", predict_spy)
    result = train_adapt(store, config=adapt_config(folds=2, epochs=1))
    assert len(fitted) == 2
    train_ids = set(result.image_ids["train"].tolist())
    for model, rows in scored:
        assert not fitted[model] & set(rows.tolist())  # never scores an image it trained on
    folds = dict(store.fetchall("SELECT DISTINCT image_id, fold FROM predictions WHERE run_id = ?", [result.run_id]))
    assert {folds[i] for i in train_ids} == {0, 1}
    assert {f for i, f in folds.items() if i not in train_ids} == {-1}
    assert [h["fold"] for h in result.history] == [0, 1]


def test_train_command_accepts_adapt_mode(store: Store) -> None:
    from labelfix.cli.main import main

    path = store.path
    store.close()
    config = path.parent / "adapt.toml"
    config.write_text('backbone = "tiny"\nimage_size = 24\nbatch_size = 8\ndevice = "cpu"\n')
    code = main(["train", "--method", "an", "--mode", "adapt", "--epochs", "1", "--folds", "1", "--config", str(config),
                 "--nproc", "2", "--db", str(path)])
    assert code == 0
    with open_store(path, create=False) as reopened:
        mode, run_config = reopened.fetchone("SELECT mode, config FROM runs")
        assert mode == "adapt" and json.loads(run_config)["cache_nproc"] == 2
    # --nproc in adapt mode caches with two workers: each wrote shards of its own.
    (folder,) = (path.parent / f"{path.name}.cache" / "feature_maps").iterdir()
    assert len(FeatureMapSet(folder).image_ids) == 24 and FeatureMapSet(folder).num_shards >= 2


def test_embed_and_eval_transform_keep_the_whole_image() -> None:
    """Embedding / finetune evaluation resize the whole image: a corner object stays in the picture."""
    backbone = build_backbone("tiny", weights=None)
    pixels = np.zeros((100, 120, 3), np.uint8)
    pixels[:6, :6] = 255        # top-left corner
    pixels[-6:, -6:] = 255      # bottom-right corner
    out = backbone.eval_transform(Image.fromarray(pixels))
    assert out.shape == (3, 64, 64)
    assert out[:, 0, 0].mean() > out[:, 32, 32].mean() + 1.0
    assert out[:, -1, -1].mean() > out[:, 32, 32].mean() + 1.0


def test_suggest_works_on_an_adapt_run(store: Store) -> None:
    """An adapt run is stored like a head run: `labelfix suggest` scores it unchanged."""
    import warnings

    from labelfix.suggest import SuggestConfig, suggest

    run = train_adapt(store, config=adapt_config(epochs=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a 6-image val split may leave thresholds unreachable
        report = suggest(store, config=SuggestConfig(run_ids=[run.run_id], target_precision=0.5))
    assert report.run_id == run.run_id and report.source_runs == [run.run_id]
    assert len(report.classes) == 3
    assert store.scalar("SELECT count(*) FROM suggestions WHERE run_id <> ?", [run.run_id]) == 0
