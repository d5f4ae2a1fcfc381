"""The README's main job, end to end on a small demo: data -> ingest -> cache maps -> train -> suggest -> export."""

import json

import pytest

from labelfix.cli.main import main
from labelfix.store import open_store

pytestmark = pytest.mark.slow


def test_quick_demo_runs_every_step_and_is_rerunnable(tmp_path, capsys):
    out, db = tmp_path / "demo", tmp_path / "demo.duckdb"
    assert main(["demo", "--quick", "--out", str(out), "--db", str(db)]) == 0
    printed = capsys.readouterr().out
    with open_store(db) as store:
        assert store.scalar("SELECT count(*) FROM images") == 200
        # adapt mode by default: feature maps cached beside the store, no embedding set needed
        assert store.scalar("SELECT count(*) FROM embedding_sets") == 0
        assert store.scalar("SELECT count(*) FROM runs WHERE status = 'finished' AND mode = 'adapt'") == 1
        # every (image, class) cell of every split is predicted
        assert store.scalar("SELECT count(*) FROM predictions") == 200 * 10
        assert store.scalar("SELECT count(*) FROM suggestions") >= 0
        n_exports = store.scalar("SELECT count(*) FROM exports")
        # suggest runs as a user runs it: not told the rate at which the demo hid labels
        suggest_config = json.loads(store.scalar("SELECT config FROM suggest_calls"))
        assert suggest_config["expected_missing_rate"] == 0.0
    labels = json.loads((out / "export" / "labels.json").read_text())
    assert len(labels["images"]) == 200 and len(labels["categories"]) == 10
    assert "cache feature maps" in printed
    assert "suggest is not told that rate" in printed
    # a second run reuses the data, the ingest and the feature maps
    assert main(["demo", "--quick", "--out", str(out), "--db", str(db)]) == 0
    printed = capsys.readouterr().out
    assert "already in" in printed and "nothing changed" in printed and "0 computed" in printed
    with open_store(db) as store:
        assert store.scalar("SELECT count(*) FROM images") == 200
        assert store.scalar("SELECT count(*) FROM exports") == 2 * n_exports
