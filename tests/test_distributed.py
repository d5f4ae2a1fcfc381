"""DDP finetune mode: gloo, two processes on CPU, the tiny backbone (rank 0 alone writes the store)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labelfix.ingest import ingest_coco
from labelfix.learn.config import TrainConfig
from labelfix.learn.finetune.distributed import launch_distributed
from labelfix.store.database import open_store
from labelfix.store.runs import read_predictions
from tests.test_finetune import make_split_coco

pytestmark = pytest.mark.slow


def test_two_gloo_processes_train_and_record_one_run(tmp_path: Path) -> None:
    coco = make_split_coco(tmp_path / "data")
    db = tmp_path / "store.duckdb"
    with open_store(db) as store:
        ingest_coco(store, annotations=coco, images=tmp_path / "data" / "images")
    config = TrainConfig(method="splc", mode="finetune", backbone="tiny", image_size=24, epochs=2, batch_size=8,
                         num_workers=0, device="cpu", ema_decay=0.99, seed=1, checkpoint_dir=tmp_path / "ckpt")
    result = launch_distributed(db=db, config=config, nproc=2, extra_env={"OMP_NUM_THREADS": "1"})

    run_id = result["run_id"]
    with open_store(db, read_only=True) as store:
        status, mode = store.fetchone("SELECT status, mode FROM runs WHERE run_id = ?", [run_id])
        epochs = [e for (e,) in store.fetchall("SELECT epoch FROM run_epochs WHERE run_id = ? ORDER BY epoch",
                                                [run_id])]
        predictions = read_predictions(store, run_id=run_id)
    assert (status, mode) == ("finished", "finetune")
    assert epochs == [0, 1]
    assert predictions.probs.shape == (24, 3) and np.isfinite(predictions.probs).all()
    assert (tmp_path / "ckpt" / f"run-{run_id}" / "last.pt").is_file()
    assert result["metrics"]["epochs_trained"] == 2
