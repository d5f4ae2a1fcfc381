"""Head-mode trainer: every method trains and stores its predictions, runs are reproducible and recorded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labelfix.learn.config import TrainConfig, resolve_config
from labelfix.learn.head.data import load_head_data
from labelfix.learn.schemes.base import build_single_head_scheme
from labelfix.learn.head.trainer import train_head
from labelfix.learn.losses import LOSS_NAMES
from labelfix.states import NEGATIVE, POSITIVE, UNKNOWN
from labelfix.store.embeddings import read_embedding_set, write_embedding_set
from labelfix.store.labels import load_label_matrix, set_label
from labelfix.store.runs import list_runs, read_predictions
from learn_store import make_learn_store

FAST = {"epochs": 4, "batch_size": 16}


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    synthetic = make_learn_store(tmp_path_factory.mktemp("trainer"))
    yield synthetic
    synthetic.store.close()


def _config(method: str, **overrides) -> TrainConfig:
    return TrainConfig(method=method, **{**FAST, **overrides})


@pytest.mark.parametrize("method", [name for name in LOSS_NAMES if name != "oracle"])
def test_every_method_trains_and_predicts_every_cell(shared, method):
    result = train_head(shared.store, config=_config(method))
    stored = read_predictions(shared.store, run_id=result.run_id)
    matrix = load_label_matrix(shared.store)
    assert stored.probs.shape == matrix.states.shape == (100, 4)
    np.testing.assert_array_equal(stored.image_ids, matrix.image_ids)
    assert np.isfinite(stored.probs).all() and ((stored.probs >= 0) & (stored.probs <= 1)).all()
    assert {split: len(p) for split, p in result.probs.items()} == {"train": 60, "val": 20, "test": 20}
    np.testing.assert_allclose(stored.probs[matrix.rows("val")], result.probs["val"], rtol=1e-6)
    run = next(r for r in list_runs(shared.store) if r["run_id"] == result.run_id)
    assert run["status"] == "finished" and run["mode"] == "head" and run["method"] == method


def test_oracle_needs_the_truth_and_trains_on_it(shared):
    from labelfix.errors import LabelfixError

    with pytest.raises(LabelfixError, match="hidden true labels"):
        train_head(shared.store, config=_config("oracle"))
    truth_states = np.where(shared.truth, POSITIVE, NEGATIVE).astype(np.int8)
    result = train_head(shared.store, config=_config("oracle"), label_states=truth_states)
    assert result.probs["test"].shape == (20, 4)


def test_same_seed_same_probabilities(shared):
    first = train_head(shared.store, config=_config("splc", seed=3))
    second = train_head(shared.store, config=_config("splc", seed=3))
    other = train_head(shared.store, config=_config("splc", seed=4))
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(first.probs[split], second.probs[split])
    assert not np.array_equal(first.probs["train"], other.probs["train"])


def test_early_stopping_keeps_the_best_val_epoch(shared):
    result = train_head(shared.store, config=_config("an", epochs=40, lr=0.05, early_stopping_patience=2))
    scores = [record["val_map"] for record in result.history]
    assert result.best_epoch == int(np.argmax(scores))
    assert len(scores) < 40 and len(scores) - 1 - result.best_epoch == 2  # stopped `patience` epochs later
    # The stored predictions come from the restored best epoch, not the last one.
    assert result.metrics["val_map"] == pytest.approx(scores[result.best_epoch], abs=1e-9)
    epochs = shared.store.fetchall("SELECT epoch, metrics FROM run_epochs WHERE run_id = ? ORDER BY epoch",
                                   [result.run_id])
    assert [json.loads(m)["val_map"] for _, m in epochs] == pytest.approx(scores)


def test_run_row_has_config_metrics_code_version_and_checkpoint(shared):
    result = train_head(shared.store, config=_config("em", lr=2e-3))
    config, metrics, code_version, checkpoint, status = shared.store.fetchone(
        "SELECT config, metrics, code_version, checkpoint_path, status FROM runs WHERE run_id = ?", [result.run_id])
    config, metrics = json.loads(config), json.loads(metrics)
    assert status == "finished" and code_version
    assert config["method"] == "em" and config["lr"] == 2e-3          # the user's value wins
    assert config["weight_decay"] == resolve_config(TrainConfig(method="em")).weight_decay  # the default fills in
    assert config["loss_params"]["alpha"] == 0.1 and config["embedding_set"].startswith("features-")
    assert metrics["best_epoch"] == result.best_epoch and 0 <= metrics["val_map"] <= 1
    assert Path(checkpoint).exists()


def test_failed_run_is_marked_failed(shared):
    def broken(*args):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        train_head(shared.store, config=_config("an"), scheme_builder=broken)
    status, metrics = shared.store.fetchone("SELECT status, metrics FROM runs ORDER BY run_id DESC LIMIT 1")
    assert status == "failed" and "boom" in json.loads(metrics)["error"]


def test_splc_and_apl_record_their_corrections(shared):
    splc = train_head(shared.store, config=_config("splc", epochs=6, lr=0.05, loss_params={"tau": 0.5}))
    rows = shared.store.fetchall("SELECT image_id, category_id, epoch, treated_as, prob FROM corrections "
                                 "WHERE run_id = ?", [splc.run_id])
    assert rows and all(treated == 1 and epoch >= 1 and prob > 0.5 for _, _, epoch, treated, prob in rows)
    matrix = load_label_matrix(shared.store)
    for image_id, category_id, *_ in rows:  # only unknown training cells are ever corrected
        row = int(np.searchsorted(matrix.image_ids, image_id))
        column = int(np.searchsorted(matrix.category_ids, category_id))
        assert matrix.states[row, column] == UNKNOWN and matrix.splits[row] == "train"
    apl = train_head(shared.store, config=_config("em_apl", epochs=4, loss_params={"warmup_epochs": 2}))
    treated = shared.store.fetchall("SELECT DISTINCT treated_as, epoch FROM corrections WHERE run_id = ? "
                                    "ORDER BY epoch", [apl.run_id])
    assert treated == [(-1, 2), (-1, 3)]


def test_reviewer_decisions_change_what_the_loss_sees(tmp_path, monkeypatch):
    synthetic = make_learn_store(tmp_path)
    store = synthetic.store
    # EM, not AN: AN treats an unknown cell exactly like a verified negative.
    config = _config("em", epochs=3)
    before = train_head(store, config=config)
    # Round two: a reviewer rejects three unknown training cells.
    matrix = load_label_matrix(store)
    train_rows = matrix.rows("train")
    rows, columns = np.nonzero(matrix.states[train_rows] == UNKNOWN)
    picked = [(int(train_rows[r]), int(c)) for r, c in zip(rows[:3], columns[:3])]
    for row, column in picked:
        set_label(store, image_id=int(matrix.image_ids[row]), category_id=int(matrix.category_ids[column]),
                  state=NEGATIVE, origin="manual")
    seen: list[np.ndarray] = []

    def spying_builder(data, cfg, fit_rows, seed):
        scheme = build_single_head_scheme(data, cfg, fit_rows, seed)
        original = scheme.loss.cell_losses

        def cell_losses(logits, states, *, index=None):
            full = np.zeros((len(fit_rows), data.num_classes), np.int8)
            full[index.numpy()] = states.numpy()
            seen.append(full)
            return original(logits, states, index=index)

        monkeypatch.setattr(scheme.loss, "cell_losses", cell_losses)
        return scheme

    after = train_head(store, config=config, scheme_builder=spying_builder)
    states_seen = seen[0]   # one batch only covers some rows: combine the first epoch's batches
    for batch in seen[1:4]:
        states_seen = np.where(batch != 0, batch, states_seen)
    for row, column in picked:
        assert states_seen[row, column] == NEGATIVE
    assert not np.allclose(before.probs["train"], after.probs["train"])
    store.close()


def test_images_without_embedding_are_reported_and_left_out(tmp_path):
    synthetic = make_learn_store(tmp_path)
    store = synthetic.store
    name = store.fetchone("SELECT name FROM embedding_sets")[0]
    ids, vectors = read_embedding_set(store, name)
    write_embedding_set(store, name="partial", backbone="test", weights_hash="x", image_ids=ids[5:],
                        embeddings=vectors[5:])
    data = load_head_data(store, embedding_set="partial")
    np.testing.assert_array_equal(data.missing_image_ids, ids[:5])
    # Standardisation is fitted on train rows only.
    train_raw = vectors[5:][data.splits == "train"]
    np.testing.assert_allclose(data.mean, train_raw.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(data.features[data.splits == "train"].mean(axis=0), 0, atol=1e-5)
    result = train_head(store, config=_config("an", embedding_set="partial"))
    assert result.metrics["missing_embeddings"] == 5
    assert len(read_predictions(store, run_id=result.run_id).image_ids) == 95
    store.close()


def test_method_defaults_do_not_override_user_values():
    assert resolve_config(TrainConfig(method="splc")).loss_params["tau"] == 0.7
    assert resolve_config(TrainConfig(method="splc", loss_params={"tau": 0.6})).loss_params["tau"] == 0.6
    assert resolve_config(TrainConfig(method="em", epochs=3)).epochs == 3


def test_cross_fitting_scores_train_images_out_of_fold(shared):
    result = train_head(shared.store, config=_config("an", epochs=2, folds=3))
    stored = read_predictions(shared.store, run_id=result.run_id)
    matrix = load_label_matrix(shared.store)
    train_folds = stored.folds[matrix.rows("train")]
    assert sorted(set(train_folds.tolist())) == [0, 1, 2] and (stored.folds[matrix.rows("val")] == -1).all()


def test_cli_train_and_runs(tmp_path, capsys):
    from labelfix.cli.main import main

    synthetic = make_learn_store(tmp_path)
    synthetic.store.close()
    db = str(tmp_path / "store.duckdb")
    config = tmp_path / "train.toml"
    config.write_text('method = "hill"\nepochs = 5\nbatch_size = 16\n')
    assert main(["train", "--config", str(config), "--epochs", "2", "--db", db]) == 0
    assert main(["train", "--method", "cls", "--epochs", "2", "--mode", "head", "--db", db]) == 0
    assert main(["runs", "--db", db]) == 0
    output = capsys.readouterr().out
    assert "epoch   2/2" in output and "val mAP" in output and "hill" in output and "cls" in output
    assert "epoch   3/" not in output    # --epochs overrides the file
    assert main(["train", "--method", "nope", "--db", db]) != 0
