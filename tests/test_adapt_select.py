"""Adapt mode's memorisation control: probe positives hidden and the epoch chosen by their AP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labelfix.learn.adapt import train_adapt
from labelfix.learn.adapt.select import Probe, hide_probe, probe_cells
from labelfix.states import POSITIVE, UNKNOWN
from labelfix.store.database import Store
from tests.test_adapt import adapt_config, store  # noqa: F401  (fixture)


def test_probe_takes_the_share_per_class_and_keeps_one_positive() -> None:
    states = np.zeros((10, 3), np.int8)
    states[:, 0] = POSITIVE          # 10 positives -> 3 probed at share 0.3
    states[:2, 1] = POSITIVE         # 2 positives -> 0 (int(0.6) = 0)
    states[0, 2] = POSITIVE          # 1 positive -> never probed
    probe = probe_cells(states, share=0.3, seed=1)
    assert probe.sum(axis=0).tolist() == [3, 0, 0]
    assert (states[probe] == POSITIVE).all()
    np.testing.assert_array_equal(probe, probe_cells(states, share=0.3, seed=1))
    with pytest.raises(ValueError):
        probe_cells(states, share=1.0, seed=1)


def test_hide_probe_turns_probes_unknown_and_scores_them_among_unknown_cells() -> None:
    states = np.array([[1, 0], [1, 1], [1, 0], [1, 1], [0, 1]], np.int8)
    rows = np.array([0, 1, 2, 3])
    hidden, probe = hide_probe(states, rows, share=0.5, seed=0)
    assert states[rows][probe.mask].tolist() == [1] * int(probe.mask.sum())   # the input is not modified
    assert (hidden[rows][probe.mask] == UNKNOWN).all() and (hidden[4] == states[4]).all()
    assert (probe.candidate == (hidden[rows] == UNKNOWN)).all()
    # A ranking that puts the probes first has AP 1; the reverse ranking less.
    assert probe.score(probe.mask.astype(float)) == 1.0
    assert probe.score(1.0 - probe.mask.astype(float)) < 1.0


def test_probe_ap_is_nan_without_probes() -> None:
    probe = Probe(rows=np.arange(2), mask=np.zeros((2, 2), bool), candidate=np.ones((2, 2), bool))
    assert np.isnan(probe.score(np.ones((2, 2))))


@pytest.mark.parametrize("select", ["val_hidden", "train_probe"])
def test_adapt_selects_the_epoch_by_probe_ap(store: Store, select: str) -> None:  # noqa: F811
    result = train_adapt(store, config=adapt_config(epochs=2, adapt_select=select, probe_share=0.5))
    assert all("probe_ap" in record for record in result.history)
    chosen = result.history[result.best_epoch]["probe_ap"]
    finite = [r["probe_ap"] for r in result.history if np.isfinite(r["probe_ap"])]
    assert chosen == max(finite)
    metrics = json.loads(store.fetchone("SELECT metrics FROM runs WHERE run_id = ?", [result.run_id])[0])
    assert metrics["selection"] == f"best {select} probe AP"
