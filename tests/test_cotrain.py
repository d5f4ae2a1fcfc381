"""CLS co-training in head mode: two differently initialised heads, removed-by-both cells recorded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labelfix.learn.config import TrainConfig
from labelfix.learn.schemes.cls import CoLabelSelection
from labelfix.learn.head.data import load_head_data
from labelfix.learn.schemes.base import predict
from labelfix.learn.head.trainer import train_head
from labelfix.states import UNKNOWN
from labelfix.store.labels import load_label_matrix
from labelfix.store.runs import read_predictions
from learn_store import make_learn_store


@pytest.fixture(scope="module")
def cls_run(tmp_path_factory):
    synthetic = make_learn_store(tmp_path_factory.mktemp("cls"))
    # Large tau_h and a short E_k so that a few epochs already remove a visible share of unknowns.
    config = TrainConfig(method="cls", epochs=6, batch_size=16, lr=0.05, cls_e_k=2, cls_tau_h=0.3, cls_tau_l=0.1,
                         early_stopping_patience=0)
    result = train_head(synthetic.store, config=config)
    yield synthetic, result
    synthetic.store.close()


def test_cls_records_cells_removed_by_both(cls_run):
    synthetic, result = cls_run
    rows = synthetic.store.fetchall("SELECT image_id, category_id, epoch, treated_as FROM corrections "
                                    "WHERE run_id = ?", [result.run_id])
    assert rows and {treated for *_, treated in rows} == {1}
    assert min(epoch for _, _, epoch, _ in rows) >= 1     # R_h = 1 at epoch 0: nothing removed yet
    matrix = load_label_matrix(synthetic.store)
    for image_id, category_id, _, _ in rows:
        row = int(np.searchsorted(matrix.image_ids, image_id))
        column = int(np.searchsorted(matrix.category_ids, category_id))
        assert matrix.states[row, column] == UNKNOWN and matrix.splits[row] == "train"
    # Removed cells are the high-loss unknowns, i.e. mostly the hidden positives.
    removed = np.zeros_like(synthetic.truth)
    for image_id, category_id, _, _ in rows:
        removed[int(np.searchsorted(matrix.image_ids, image_id)),
                int(np.searchsorted(matrix.category_ids, category_id))] = True
    unknown_train = (matrix.states == UNKNOWN) & (matrix.splits == "train")[:, None]
    hidden_rate = synthetic.truth[unknown_train].mean()
    assert synthetic.truth[removed].mean() > hidden_rate
    assert result.history[-1]["r_h"] == pytest.approx(0.7)


def test_cls_heads_differ_and_predictions_are_their_mean(cls_run):
    synthetic, result = cls_run
    model = result.model
    assert isinstance(model, CoLabelSelection)
    weights_f = [p.detach() for p in model.head_f.parameters()]
    weights_g = [p.detach() for p in model.head_g.parameters()]
    assert not all(torch.equal(a, b) for a, b in zip(weights_f, weights_g))
    data = load_head_data(synthetic.store)
    features = torch.from_numpy(data.features)
    model.eval()
    with torch.no_grad():
        prob_f, prob_g = model.head_probabilities(features)
    assert not torch.allclose(prob_f, prob_g)
    stored = read_predictions(synthetic.store, run_id=result.run_id)
    np.testing.assert_allclose(stored.probs, (0.5 * (prob_f + prob_g)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(predict(model, features).numpy(), stored.probs, rtol=1e-5, atol=1e-6)
