from pathlib import Path

import numpy as np
import pytest

from labelfix.errors import StoreError
from labelfix.store import open_store, resolve_db_path
from labelfix.store.database import latest_schema_version
from labelfix.store.labels import load_label_matrix, set_label


def test_new_store_is_migrated_to_latest(db_path: Path):
    with open_store(db_path) as store:
        assert store.schema_version == latest_schema_version() >= 1
        assert store.migrate() == []  # idempotent
        tables = {r[0] for r in store.fetchall("SELECT table_name FROM information_schema.tables")}
    assert {"images", "categories", "labels", "runs", "predictions", "suggestions", "review_events", "exports"} <= tables


def test_db_path_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("LABELFIX_DB", raising=False)
    assert resolve_db_path(None) == Path("labelfix.duckdb")
    monkeypatch.setenv("LABELFIX_DB", str(tmp_path / "env.duckdb"))
    assert resolve_db_path(None) == tmp_path / "env.duckdb"
    assert resolve_db_path(tmp_path / "x.duckdb") == tmp_path / "x.duckdb"


def test_missing_store_without_create_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="labelfix init"):
        open_store(tmp_path / "nope.duckdb", create=False)


def test_transaction_rolls_back_everything(db_path):
    with open_store(db_path) as store:
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.execute("INSERT INTO categories VALUES (1, 'cat', NULL, '{}')")
                with store.transaction():  # nested joins the outer one
                    store.execute("INSERT INTO categories VALUES (2, 'dog', NULL, '{}')")
                raise RuntimeError("boom")
        assert store.scalar("SELECT count(*) FROM categories") == 0


def test_newer_schema_is_refused(db_path):
    with open_store(db_path) as store:
        store.execute("INSERT INTO schema_migrations (version, name) VALUES (99, 'future')")
    with pytest.raises(StoreError, match="newer"):
        open_store(db_path)


def test_label_matrix_and_set_label(db_path, tiny_coco):
    from labelfix.ingest import ingest_coco

    with open_store(db_path) as store:
        ingest_coco(store, annotations=tiny_coco, images=tiny_coco.parent / "images")
        matrix = load_label_matrix(store)
        assert matrix.states.shape == (4, 3)
        assert list(matrix.category_ids) == [1, 2, 5]
        # image 1: cat + car; image 2: dog; image 4: none
        assert matrix.states[0].tolist() == [1, 0, 1]
        assert matrix.states[1].tolist() == [0, 1, 0]
        assert matrix.states[3].tolist() == [0, 0, 0]
        set_label(store, image_id=4, category_id=2, state=-1, origin="manual")
        set_label(store, image_id=4, category_id=1, state=1, origin="accepted")
        assert load_label_matrix(store).states[3].tolist() == [1, -1, 0]
        set_label(store, image_id=4, category_id=1, state=0, origin="manual")
        assert load_label_matrix(store).states[3].tolist() == [0, -1, 0]


def test_run_metrics_are_stored_as_strict_json(db_path):
    import json
    import math

    import numpy as np

    from labelfix.store.runs import create_run, finish_run, record_epoch

    with open_store(db_path) as store:
        run_id = create_run(store, method="an", mode="finetune", config={})
        record_epoch(store, run_id=run_id, epoch=0, metrics={"val_map": math.nan, "train_loss": np.float32(0.5)})
        finish_run(store, run_id=run_id, metrics={"val_map": math.inf, "best_epoch": np.int64(2), "seconds": 1.5})
        (epoch_json,) = store.fetchone("SELECT metrics FROM run_epochs WHERE run_id = ?", [run_id])
        (run_json,) = store.fetchone("SELECT metrics FROM runs WHERE run_id = ?", [run_id])
    assert json.loads(epoch_json) == {"val_map": None, "train_loss": 0.5}
    assert json.loads(run_json) == {"val_map": None, "best_epoch": 2, "seconds": 1.5}
    assert "NaN" not in epoch_json and "Infinity" not in run_json


def test_suggestion_scores_keep_float64_through_the_store(db_path):
    """Two scores float32 would round to one 1.0 stay two scores (migration 0009), so rank order and shown
    score agree."""
    import pyarrow as pa

    from labelfix.store.suggestions import add_suggestions

    scores = [1 - 1e-9, 1 - 3e-9]
    assert np.float32(scores[0]) == np.float32(scores[1]) == 1.0  # what the float32 column stored
    cells = pa.table({"image_id": [1, 2], "category_id": [5, 5], "score": scores, "rank_in_class": [1, 2]})
    with open_store(db_path) as store:
        add_suggestions(store, run_id=1, cells=cells, kind="missing", reason="test")
        assert store.fetchall("SELECT score FROM suggestions ORDER BY rank_in_class") == [(s,) for s in scores]
        types = dict(store.fetchall("SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                                    "WHERE column_name IN ('score', 'threshold', 'prob')"))
    assert {types[k] for k in ("suggestions.score", "suggestions.threshold", "corrections.prob",
                               "predictions.prob")} == {"DOUBLE"}


def test_a_version_8_store_keeps_its_float32_suggestion_scores_when_migrated(tmp_path):
    from store_helpers import old_store

    db = tmp_path / "v8.duckdb"
    connection = old_store(db, through_version=8)
    connection.execute("INSERT INTO suggestions (run_id, image_id, category_id, kind, score, rank_in_class, threshold) "
                       "VALUES (1, 7, 3, 'missing', 0.25, 1, 0.5)")
    connection.close()
    with open_store(db) as store:
        assert store.schema_version == latest_schema_version() >= 9
        assert store.fetchall("SELECT score, threshold FROM suggestions") == [(0.25, 0.5)]
        assert store.scalar("SELECT typeof(score) FROM suggestions") == "DOUBLE"
