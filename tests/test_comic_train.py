"""COMIC in head mode: RLC + MFM with and without the head-tail balancer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labelfix.learn.config import TrainConfig
from labelfix.learn.schemes.comic import ComicScheme
from labelfix.learn.head.data import load_head_data
from labelfix.learn.head.trainer import train_head
from labelfix.store.runs import read_predictions
from learn_store import make_learn_store


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    synthetic = make_learn_store(tmp_path_factory.mktemp("comic"))
    yield synthetic
    synthetic.store.close()


CONFIG = TrainConfig(method="comic", epochs=4, batch_size=16, lr=0.01, loss_params={"tau": 0.6})


def htb(config: TrainConfig, use_htb: bool) -> TrainConfig:
    """COMIC with or without its head-tail balancer (``loss_params["htb"]``)."""
    return config.model_copy(update={"loss_params": {**config.loss_params, "htb": use_htb}})


def test_comic_with_htb_trains_three_branches_and_predicts_the_balanced_one(synthetic):
    result = train_head(synthetic.store, config=htb(CONFIG, True))
    model = result.model
    assert isinstance(model, ComicScheme) and model.use_htb
    # e_t was updated after backward: the head / tail logits are shifted apart.
    assert model.balancer.moving_gradient.abs().sum() > 0
    data = load_head_data(synthetic.store)
    features = torch.from_numpy(data.features)
    model.eval()
    with torch.no_grad():
        branches = model.branch_probabilities(features)
    assert set(branches) == {"head", "tail", "balanced"}
    assert not torch.allclose(branches["head"], branches["tail"])
    stored = read_predictions(synthetic.store, run_id=result.run_id)
    np.testing.assert_allclose(stored.probs, branches["balanced"].numpy(), rtol=1e-5, atol=1e-6)
    assert {"loss_head", "loss_tail", "loss_balanced", "loss_htb"} <= set(result.history[0])
    config = synthetic.store.fetchone("SELECT config FROM runs WHERE run_id = ?", [result.run_id])[0]
    assert '"htb": true' in config


def test_comic_without_htb_and_rlc_corrections_recorded(synthetic):
    plain = train_head(synthetic.store, config=htb(CONFIG, False))
    assert plain.model.balancer is None and plain.model.classifier is not None
    assert "loss_htb" not in plain.history[0]
    treated = synthetic.store.fetchall("SELECT DISTINCT treated_as FROM corrections WHERE run_id = ?",
                                       [plain.run_id])
    assert treated in ([], [(1,)])
    full = train_head(synthetic.store, config=htb(CONFIG.model_copy(update={"loss_params": {"tau": 0.3}}), True))
    rows = synthetic.store.fetchall("SELECT treated_as, prob FROM corrections WHERE run_id = ?", [full.run_id])
    assert rows and all(treated == 1 and prob > 0.3 for treated, prob in rows)
    assert not np.allclose(plain.probs["val"], full.probs["val"])
