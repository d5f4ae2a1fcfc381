"""Backbones, cached embedding sets and `labelfix embed` on a tiny store."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_coco
from labelfix.errors import LabelfixError
from labelfix.ingest import ingest_coco
from labelfix.learn.backbones import build_backbone, packaged_weights_path
from labelfix.learn.embed import EmbedConfig, compute_embeddings
from labelfix.store import open_store
from labelfix.store.embeddings import embedding_sets, read_embedding_set


def _store(root: Path, *, n_images: int = 3) -> Path:
    coco = make_coco(root, n_images=n_images)
    db = root / "store.duckdb"
    with open_store(db) as store:
        ingest_coco(store, annotations=coco, images=root / "images", check_images="none")
    return db


def test_mobilenet_v2_packaged_weights_cached_per_image(tmp_path):
    db = _store(tmp_path)
    expected_hash = hashlib.sha256(packaged_weights_path("mobilenet_v2").read_bytes()).hexdigest()[:12]
    config = EmbedConfig(backbone="mobilenet_v2", batch_size=2)
    with open_store(db) as store:
        first = compute_embeddings(store, config=config, progress=False)
        assert (first.dim, first.weights_hash, first.name) == (1280, expected_hash, f"mobilenet_v2-{expected_hash}-whole")
        assert (first.computed, first.reused, first.failed_ids) == (3, 0, [])
        ids, embeddings = read_embedding_set(store, first.name)
        assert sorted(ids.tolist()) == [1, 2, 3] and embeddings.shape == (3, 1280)
        assert np.isfinite(embeddings).all() and (embeddings >= 0).all()  # pooled ReLU6 features
        assert embeddings.std(axis=0).max() > 0  # different images, different features

        second = compute_embeddings(store, config=config, progress=False)
        assert (second.computed, second.reused) == (0, 3)

        # A newly ingested image is the only one computed; the stored rows are kept unchanged.
        more = make_coco(tmp_path, n_images=1, name="more.json", id_offset=10)
        ingest_coco(store, annotations=more, images=tmp_path / "images", check_images="none")
        third = compute_embeddings(store, config=config, progress=False)
        assert (third.computed, third.reused) == (1, 3)
        ids_after, embeddings_after = read_embedding_set(store, first.name)
        assert sorted(ids_after.tolist()) == [1, 2, 3, 11]
        order = np.argsort(ids_after)[:3]
        np.testing.assert_array_equal(embeddings_after[order], embeddings[np.argsort(ids)])
        assert [s["name"] for s in embedding_sets(store)].count(first.name) == 1


def test_corrupt_image_is_reported_and_not_stored(tmp_path, capsys):
    from labelfix.cli.main import main

    db = _store(tmp_path, n_images=4)
    (tmp_path / "images" / "img_2.png").write_bytes(b"\x89PNG not really an image")
    with open_store(db) as store:
        result = compute_embeddings(store, config=EmbedConfig(backbone="tiny", batch_size=3), progress=False)
        assert (result.computed, result.failed_ids, result.dim) == (3, [2], 32)
        ids, embeddings = read_embedding_set(store, result.name)
        assert sorted(ids.tolist()) == [1, 3, 4] and embeddings.shape == (3, 32)

    assert main(["embed", "--db", str(db), "--backbone", "tiny", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "tiny-random" in out and "computed 0" in out and "reused 3" in out
    assert "could not decode (1): img_2.png (id 2)" in " ".join(out.split())
    assert "missing" not in out


def test_missing_image_file_is_called_missing(tmp_path, capsys):
    from labelfix.cli.main import main

    db = _store(tmp_path, n_images=4)
    (tmp_path / "images" / "img_2.png").unlink()
    (tmp_path / "images" / "img_4.png").unlink()
    assert main(["embed", "--db", str(db), "--backbone", "tiny", "--quiet"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "missing (2): img_2.png (id 2), img_4.png (id 4)" in out
    assert "could not decode" not in out and "restore the files" in out


def test_bad_weights_are_clear_errors(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(LabelfixError, match="cannot read weights"):
        build_backbone("mobilenet_v2", weights=garbage)
    with pytest.raises(LabelfixError, match="does not exist"):
        build_backbone("mobilenet_v2", weights=tmp_path / "missing.pth")

    wrong = tmp_path / "tiny.pth"
    torch.save(build_backbone("tiny", weights=None).model.state_dict(), wrong)
    with pytest.raises(LabelfixError, match="do not fit a mobilenet_v2") as caught:
        build_backbone("mobilenet_v2", weights=wrong)
    assert caught.value.file == str(wrong) and "missing" in caught.value.problem

    db = _store(tmp_path)
    from labelfix.cli.main import main

    assert main(["embed", "--db", str(db), "--weights", str(garbage)]) == 2


def test_weights_file_for_a_torchvision_architecture(tmp_path):
    import torchvision

    # A finetuned file may carry another classifier size: the classifier is dropped anyway.
    net = torchvision.models.mobilenet_v2(weights=None, num_classes=7)
    path = tmp_path / "mine.pth"
    torch.save({"state_dict": net.state_dict()}, path)
    backbone = build_backbone("mobilenet_v2", weights=path, image_size=96)
    assert backbone.weights_hash == hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert (backbone.image_size, backbone.native_image_size) == (96, 224)
    features = backbone.model(backbone.eval_transform(Image.new("RGB", (120, 100))).unsqueeze(0))
    assert features.shape == (1, 1280)
    torch.testing.assert_close(backbone.model.net.features[0][0].weight, net.features[0][0].weight)


def test_default_weights_without_network_say_to_pass_a_file(monkeypatch, tmp_path):
    import torchvision.models._api as api

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    with pytest.raises(LabelfixError, match="without a network") as caught:
        build_backbone("resnet18")
    assert "--weights PATH" in caught.value.fix
    with pytest.raises(LabelfixError, match="did you mean"):
        build_backbone("mobilenet_v9")


def test_tiny_backbone_is_fast_and_reproducible():
    first, second = build_backbone("tiny", weights=None), build_backbone("tiny", weights="random")
    assert first.dim == 32 and first.weights_hash == "random"
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8))
    batch = torch.stack([first.eval_transform(image), first.eval_transform(image.rotate(90, expand=True))])
    assert batch.shape == (2, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(first.model(batch), second.model(batch))
    assert first.train_transform(48)(image).shape == (3, 48, 48)


def test_finetune_augmentation_keeps_the_whole_image():
    # Multi-label images: a crop could cut an object out while its label stays positive (issue 12 item 2).
    from torchvision.transforms import v2 as T

    backbone = build_backbone("tiny", weights=None)
    steps = backbone.train_transform(48).transforms
    assert not any(isinstance(step, (T.RandomResizedCrop, T.RandomCrop, T.CenterCrop)) for step in steps)
    resize = next(step for step in steps if isinstance(step, T.Resize))
    assert list(resize.size) == [48, 48]  # the whole image, squashed to a square
    assert any(isinstance(step, T.RandAugment) for step in steps) and any(isinstance(step, T.RandomErasing) for step in steps)
    wide = Image.fromarray(np.random.default_rng(1).integers(0, 255, (30, 90, 3), dtype=np.uint8))
    torch.manual_seed(0)
    assert all(backbone.train_transform(48)(wide).shape == (3, 48, 48) for _ in range(10))
