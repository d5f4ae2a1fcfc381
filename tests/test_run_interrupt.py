"""A command ended by SIGTERM cleans up like Ctrl-C: a training run is marked failed, never left 'running';
an image size the backbone cannot take is one message, exit 2."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labelfix.cli.main import main
from labelfix.ingest import ingest_features
from labelfix.store import open_store
from labelfix.store.runs import list_runs

SLOW_TRAIN = """
import sys, time
import labelfix.learn.head.trainer as trainer
from labelfix.cli.main import main
def slow_run(*args, **kwargs):
    print("SLOW-RUN-STARTED", flush=True)
    time.sleep(120)
trainer._run = slow_run
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def tiny_embedded_store(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    labels = [["cat"], ["dog"], ["cat", "dog"], ["cat"], ["dog"], ["cat"], ["dog"], ["cat"]]
    table = tmp_path / "features.parquet"
    pd.DataFrame({"image_id": list(range(1, 9)), "labels": labels, "split": ["train"] * 6 + ["val"] * 2,
                  "embedding": [rng.standard_normal(4).astype(np.float32) for _ in labels]}).to_parquet(table)
    path = tmp_path / "s.duckdb"
    with open_store(path) as store:
        ingest_features(store, table=table, add_classes=True)
    return path


def test_sigterm_marks_the_training_run_failed(tmp_path: Path, tiny_embedded_store: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text(SLOW_TRAIN)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen([sys.executable, str(script), "--db", str(tiny_embedded_store), "train",
                                "--mode", "head"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    while "SLOW-RUN-STARTED" not in process.stdout.readline():
        assert time.monotonic() < deadline and process.poll() is None, process.stderr.read() if process.stderr else ""
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Traceback" not in err
    with open_store(tiny_embedded_store) as store:
        runs = list_runs(store)
    assert [run["status"] for run in runs] == ["failed"]


@pytest.mark.parametrize("size", ["0", "-5", "7", "15", "4096"])
def test_an_image_size_the_backbone_cannot_take_is_refused(tmp_path: Path, size: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "odd.toml"
    config.write_text(f"image_size = {size}\n")
    store = tmp_path / "s.duckdb"
    code = main(["--db", str(store), "train", "--mode", "adapt", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert "image_size" in err and "Traceback" not in err
