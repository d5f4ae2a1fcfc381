"""Probabilities near 1 keep their order from the model to the store (issue 12: GR tied at 1.0 in float32)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from labelfix.learn.schemes.base import SingleHeadScheme, predict
from labelfix.store import open_store
from labelfix.store.runs import create_run, read_predictions, write_predictions


def test_scheme_probabilities_separate_logits_above_float32_saturation() -> None:
    head = torch.nn.Linear(1, 1)
    with torch.no_grad():
        head.weight.fill_(1.0)
        head.bias.zero_()
    scheme = SingleHeadScheme(head, torch.nn.Identity())
    logits = torch.tensor([[17.0], [20.0], [30.0]])
    assert torch.sigmoid(logits).unique().tolist() == [1.0]          # float32: one tie
    probs = predict(scheme, logits).numpy().ravel()
    assert probs.dtype == np.float64 and (np.diff(probs) > 0).all() and (probs < 1.0).all()


def test_predictions_are_stored_in_float64(tmp_path: Path) -> None:
    with open_store(tmp_path / "store.duckdb") as store:
        run_id = create_run(store, method="an", mode="head", config={})
        probs = np.array([[1 - 1e-9, 1 - 1e-12], [0.5, 1 - 1e-10]])
        write_predictions(store, run_id=run_id, image_ids=np.array([1, 2]), category_ids=np.array([1, 2]), probs=probs)
        stored = read_predictions(store, run_id=run_id).probs
    assert stored.dtype == np.float64
    np.testing.assert_array_equal(stored, probs)
    assert len(np.unique(stored)) == 4
