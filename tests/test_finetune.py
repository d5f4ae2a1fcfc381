"""Finetune mode on CPU with the tiny backbone and 24 px images: training, predictions, checkpoints, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from labelfix.ingest import ingest_coco
from labelfix.learn.config import TrainConfig
from labelfix.learn.finetune import trainer as finetune
from labelfix.learn.finetune.step import ModelEma, TrainStep
from labelfix.learn.finetune.trainer import train_finetune
from labelfix.store.database import Store, open_store
from labelfix.store.runs import read_predictions
from tests.conftest import write_image

SPLITS = ["train"] * 14 + ["val"] * 6 + ["test"] * 4


def make_split_coco(root: Path, *, size: int = 24) -> Path:
    """24 tiny images over three splits; each image has one or two of three classes."""
    images, annotations = [], []
    for index, split in enumerate(SPLITS):
        image_id = index + 1
        write_image(root / "images" / f"{image_id}.png", size=(size, size), seed=image_id)
        images.append({"id": image_id, "file_name": f"{image_id}.png", "width": size, "height": size, "split": split})
        for category_id in {1 + index % 3, 1 + (index * 7) % 3}:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category_id,
                                "bbox": [0, 0, 4, 4], "area": 16, "iscrowd": 0})
    categories = [{"id": c, "name": name} for c, name in ((1, "a"), (2, "b"), (3, "c"))]
    path = root / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def tiny_config(tmp_path: Path, **overrides) -> TrainConfig:
    values = dict(method="an", mode="finetune", backbone="tiny", image_size=24, epochs=2, batch_size=8, lr=3e-3,
                  num_workers=0, device="cpu", ema_decay=0.99, early_stopping_patience=5, seed=3,
                  checkpoint_dir=tmp_path / "ckpt")
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    coco = make_split_coco(tmp_path / "data")
    store = open_store(tmp_path / "store.duckdb")
    ingest_coco(store, annotations=coco, images=tmp_path / "data" / "images")
    yield store
    store.close()


def epochs_of(store: Store, run_id: int) -> list[int]:
    return [row[0] for row in store.fetchall("SELECT epoch FROM run_epochs WHERE run_id = ? ORDER BY epoch",
                                             [run_id])]


def test_trains_records_and_predicts_every_cell(store: Store, tmp_path: Path) -> None:
    result = train_finetune(store, config=tiny_config(tmp_path))
    status, mode, checkpoint = store.fetchone("SELECT status, mode, checkpoint_path FROM runs WHERE run_id = ?",
                                              [result.run_id])
    assert (status, mode) == ("finished", "finetune")
    assert epochs_of(store, result.run_id) == [0, 1]
    predictions = read_predictions(store, run_id=result.run_id)
    assert predictions.probs.shape == (24, 3)
    assert np.isfinite(predictions.probs).all() and ((predictions.probs > 0) & (predictions.probs < 1)).all()
    directory = tmp_path / "ckpt" / f"run-{result.run_id}"
    assert Path(checkpoint) == directory / "best.pt"
    last = torch.load(directory / "last.pt", weights_only=False)
    assert last["epoch"] == 2 and last["ema"]["num_updates"] > 0 and len(last["history"]) == 2
    assert {"model", "optimizer", "scheduler", "rng", "best_metric", "config", "loss"} <= set(last)
    assert result.best_epoch in (0, 1)


def test_resume_after_an_interruption_matches_an_uninterrupted_run(store: Store, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    config = tiny_config(tmp_path, method="splc", epochs=3)
    uninterrupted = train_finetune(store, config=config)
    reference = read_predictions(store, run_id=uninterrupted.run_id).probs

    # Interrupt the second run after its first epoch's checkpoint and record.
    original = finetune.record_epoch

    def crash_after_first(store_: Store, *, run_id: int, epoch: int, metrics: dict) -> None:
        original(store_, run_id=run_id, epoch=epoch, metrics=metrics)
        if epoch == 0:
            raise KeyboardInterrupt

    monkeypatch.setattr(finetune, "record_epoch", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        train_finetune(store, config=config)
    monkeypatch.setattr(finetune, "record_epoch", original)
    interrupted = int(store.scalar("SELECT max(run_id) FROM runs"))
    assert store.scalar("SELECT status FROM runs WHERE run_id = ?", [interrupted]) == "failed"
    last = torch.load(tmp_path / "ckpt" / f"run-{interrupted}" / "last.pt", weights_only=False)
    assert last["epoch"] == 1

    resumed = train_finetune(store, config=config.model_copy(update={"resume": True, "resume_run": interrupted}))
    assert resumed.run_id == interrupted
    assert store.scalar("SELECT status FROM runs WHERE run_id = ?", [interrupted]) == "finished"
    assert epochs_of(store, interrupted) == [0, 1, 2]
    np.testing.assert_allclose(read_predictions(store, run_id=interrupted).probs, reference, atol=1e-6)
    metrics = [json.loads(m) for (m,) in store.fetchall(
        "SELECT metrics FROM run_epochs WHERE run_id IN (?, ?) ORDER BY run_id, epoch", [uninterrupted.run_id,
                                                                                         interrupted])]
    assert [m["train_loss"] for m in metrics[:3]] == pytest.approx([m["train_loss"] for m in metrics[3:]], abs=1e-6)


def test_resume_of_a_finished_run_is_refused(store: Store, tmp_path: Path) -> None:
    from labelfix.errors import StoreError

    result = train_finetune(store, config=tiny_config(tmp_path, epochs=1))
    with pytest.raises(StoreError, match="finished"):
        train_finetune(store, config=tiny_config(tmp_path, epochs=1, resume=True, resume_run=result.run_id))


def test_loader_workers_and_em_apl_pseudo_labels(store: Store, tmp_path: Path) -> None:
    config = tiny_config(tmp_path, method="em_apl", epochs=2, num_workers=2, loss_params={"warmup_epochs": 1})
    result = train_finetune(store, config=config)
    negatives = store.scalar("SELECT count(*) FROM corrections WHERE run_id = ? AND treated_as = -1", [result.run_id])
    assert negatives > 0


def test_step_updates_the_ema_towards_the_model() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 2))
    ema = ModelEma(model, decay=0.5)
    before = [p.clone() for p in ema.module.parameters()]
    loss = torch.nn.BCEWithLogitsLoss()
    step = TrainStep(model=model, loss=lambda logits, states, index=None: loss(logits, states.float().clamp(min=0)),
                     optimizer=torch.optim.SGD(model.parameters(), lr=0.1), device=torch.device("cpu"),
                     bf16=True, channels_last=True, ema=ema)
    value = step(torch.randn(4, 3, 8, 8), torch.tensor([[1, 0], [0, 1], [1, -1], [0, 0]]))
    assert value.ndim == 0 and torch.isfinite(value)
    assert ema.num_updates == 1
    # decay ramps up: after one update it is min(0.5, 1/10), so the EMA moves 90 % of the way.
    for old, new, current in zip(before, ema.module.parameters(), model.parameters()):
        torch.testing.assert_close(new, old + 0.9 * (current.detach() - old))


def test_cls_trains_two_whole_models_in_finetune_mode(store: Store, tmp_path: Path) -> None:
    import torch.nn.functional as F

    from labelfix.learn.finetune.cls import CoLabelSelectionLoss, CoTrainingPair

    result = train_finetune(store, config=tiny_config(tmp_path, method="cls", epochs=2, cls_tau_h=0.2,
                                                      cls_tau_l=0.2, cls_e_k=1))
    pair = result.model
    assert isinstance(pair, CoTrainingPair)
    last = torch.load(tmp_path / "ckpt" / f"run-{result.run_id}" / "last.pt", weights_only=False)
    # both networks are in the checkpoint, and they differ (different heads, own selections)
    heads = sorted(key for key in last["model"] if key.endswith(".weight") and key.split(".")[0] in ("f", "g"))
    assert any(k.startswith("f.") for k in heads) and any(k.startswith("g.") for k in heads)
    f_head = [v for k, v in last["model"].items() if k.startswith("f.") and k.endswith("weight")][-1]
    g_head = [v for k, v in last["model"].items() if k.startswith("g.") and k.endswith("weight")][-1]
    assert not torch.equal(f_head, g_head)
    predictions = read_predictions(store, run_id=result.run_id)
    assert predictions.probs.shape == (24, 3) and np.isfinite(predictions.probs).all()
    # the loss keeps positives for both networks and sums two selected BCE terms
    loss = CoLabelSelectionLoss(e_k=1, tau_h=0.5, tau_l=0.0)
    loss.set_epoch(1, 2)
    logits = torch.tensor([[[2.0, -1.0, 0.5, -3.0]], [[1.0, 0.0, -0.5, -2.0]]])
    states = torch.tensor([[1, 0, 0, 0]])
    value = loss(logits, states)
    assert value.item() > 0 and loss.last_corrections.shape == (1, 4) and not loss.last_corrections[0, 0]
    plain = (F.binary_cross_entropy_with_logits(logits[0], states.clamp(min=0).float(), reduction="sum")
             + F.binary_cross_entropy_with_logits(logits[1], states.clamp(min=0).float(), reduction="sum")) / 4
    assert value.item() < plain.item()  # half of the unknown cells were removed from each network's loss
    pair.eval()
    assert pair(torch.zeros(1, 3, 24, 24)).shape == (1, 3)  # eval: one prediction, the mean of the two


def test_comic_trains_its_three_htb_branches_in_finetune_mode(store: Store, tmp_path: Path) -> None:
    result = train_finetune(store, config=tiny_config(tmp_path, method="comic", epochs=2,
                                                      loss_params={"tau": 0.7, "scale": 4.0}))
    last = torch.load(tmp_path / "ckpt" / f"run-{result.run_id}" / "last.pt", weights_only=False)
    branches = {key.split(".")[1] for key in last["model"] if key.startswith("balancer.")}
    assert {"head", "tail", "balanced"} <= branches
    # e_t (the moving gradient) was updated after backward, so it is no longer zero
    assert last["model"]["balancer.moving_gradient"].abs().sum() > 0
    predictions = read_predictions(store, run_id=result.run_id)
    assert predictions.probs.shape == (24, 3) and np.isfinite(predictions.probs).all()
    # without HTB the plain backbone + linear layer trains with the RLC + MFM loss
    plain = train_finetune(store, config=tiny_config(tmp_path / "plain", method="comic", epochs=1,
                                                     loss_params={"htb": False}))
    state = torch.load(tmp_path / "plain" / "ckpt" / f"run-{plain.run_id}" / "last.pt", weights_only=False)
    assert not any(key.startswith("balancer.") for key in state["model"])
