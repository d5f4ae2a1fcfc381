"""``--db`` naming something that is not a labelfix store is refused untouched; a failed command on a new
path leaves no file behind (issue 13, item 2)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from labelfix.cli.main import main
from labelfix.errors import InputError, StoreError
from labelfix.store import open_store
from labelfix.store.database import DUCKDB_MAGIC, DUCKDB_MAGIC_OFFSET, Store


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ingest(coco: Path, db: Path | str) -> list[str]:
    return ["ingest", "coco", str(coco), "--images", str(coco.parent / "images"), "--db", str(db)]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".duckdb" in p.name or p.suffix == ".wal")


def _foreign_files(tmp_path: Path) -> dict[str, Path]:
    """Existing files a user might pass as --db by mistake."""
    csv = tmp_path / "labels.csv"
    csv.write_text("file_name,labels\nimg_1.png,cat\n")
    parquet = tmp_path / "features.parquet"
    pd.DataFrame({"image_id": [1], "labels": ["cat"]}).to_parquet(parquet)
    empty = tmp_path / "empty.duckdb"
    empty.write_bytes(b"")
    text = tmp_path / "notes.duckdb"
    text.write_text("not a database, but named like one\n")
    other = tmp_path / "other.duckdb"
    connection = duckdb.connect(str(other))
    connection.execute("CREATE TABLE t AS SELECT 1 AS x")
    connection.close()
    return {"csv": csv, "parquet": parquet, "empty": empty, "text named .duckdb": text, "other DuckDB": other}


def test_ingest_with_db_naming_the_annotations_is_refused_untouched(tiny_coco, capsys):
    before = _sha(tiny_coco)
    code = main(_ingest(tiny_coco, tiny_coco))
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{tiny_coco}: is not a labelfix store" in err and "fix:" in err
    assert "added" not in err and "Traceback" not in err
    assert _sha(tiny_coco) == before
    assert _leftovers(tiny_coco.parent) == []


@pytest.mark.parametrize("kind", ["csv", "parquet", "empty", "text named .duckdb", "other DuckDB"])
@pytest.mark.parametrize("command", ["ingest", "status", "init", "export"])
def test_a_file_that_is_not_a_store_is_refused_untouched(tmp_path, tiny_coco, capsys, kind, command):
    target = _foreign_files(tmp_path)[kind]
    before = _sha(target)
    argv = {"ingest": _ingest(tiny_coco, target), "status": ["status", "--db", str(target)],
            "init": ["init", "--db", str(target)],
            "export": ["export", "coco", "--out", str(tmp_path / "out"), "--db", str(target)]}[command]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured.out + captured.err
    assert f"{target}: is " in captured.err and "not a labelfix store" in captured.err
    assert "left untouched" in captured.err and "fix:" in captured.err
    assert "Traceback" not in captured.out + captured.err and "CatalogException" not in captured.err
    assert _sha(target) == before
    assert not Path(f"{target}.wal").exists()
    assert not (tmp_path / "out").exists()


def test_the_duckdb_magic_header_is_where_we_look(tmp_path):
    # DuckDB's main header: an 8-byte checksum, then "DUCK"; if a DuckDB upgrade moved it, this says so.
    path = tmp_path / "probe.duckdb"
    duckdb.connect(str(path)).close()
    header = path.read_bytes()[:DUCKDB_MAGIC_OFFSET + len(DUCKDB_MAGIC)]
    assert header[DUCKDB_MAGIC_OFFSET:] == DUCKDB_MAGIC


def test_a_folder_as_db_is_refused(tmp_path, capsys):
    assert main(["init", "--db", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is a folder, not a store file" in err and f"--db {tmp_path / 'labelfix.duckdb'}" in err
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("command", [["init"], ["status"], ["suggest"], ["export", "coco", "--out", "o"],
                                     ["reviewers", "list"], ["train"]])
def test_labelfix_db_naming_a_folder_is_one_message_with_the_fix(tmp_path, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LABELFIX_DB", str(tmp_path))
    assert main(command) == 2
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert "is a folder, not a store file ($LABELFIX_DB names it)" in err
    assert f"export LABELFIX_DB={tmp_path / 'labelfix.duckdb'}" in err and "Traceback" not in captured.out + err
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["new.json", "labels.CSV", "x.parquet"])
def test_a_new_store_named_like_a_data_file_is_refused(tmp_path, tiny_coco, capsys, name):
    code = main(_ingest(tiny_coco, tmp_path / name))
    err = capsys.readouterr().err
    assert code == 2 and "fix: pass --db a name such as" in err
    assert not (tmp_path / name).exists()


def test_a_failed_first_command_leaves_no_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    db = tmp_path / "new" / "deeper" / "store.duckdb"
    code = main(["ingest", "coco", str(bad), "--images", str(tmp_path), "--db", str(db)])
    assert code == 2, capsys.readouterr().err
    assert not db.exists() and not Path(f"{db}.wal").exists()
    assert not (tmp_path / "new").exists()  # the folders made for the store are gone too


def test_a_failed_command_on_an_existing_store_keeps_it(tmp_path, tiny_coco, capsys):
    db = tmp_path / "store.duckdb"
    assert main(_ingest(tiny_coco, db)) == 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    assert main(["ingest", "coco", str(bad), "--images", str(tmp_path), "--db", str(db)]) == 2
    capsys.readouterr()
    assert main(["status", "--db", str(db)]) == 0
    assert "images in train" in capsys.readouterr().out


def test_a_read_command_on_a_missing_store_creates_nothing(tmp_path, capsys):
    for argv in (["status"], ["runs"], ["export", "coco", "--out", str(tmp_path / "out")]):
        assert main([*argv, "--db", str(tmp_path / "missing.duckdb")]) == 2
        assert "no labelfix store here" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_open_store_removes_a_new_store_when_the_first_block_fails(tmp_path):
    db = tmp_path / "sub" / "store.duckdb"
    with pytest.raises(InputError):
        with open_store(db) as store:
            store.cache_dir.mkdir()
            (store.cache_dir / "vectors.npy").write_bytes(b"x")
            raise InputError("bad input")
    assert list(tmp_path.iterdir()) == []
    with open_store(db) as store:
        pass
    assert db.is_file()
    with pytest.raises(InputError):
        with open_store(db) as store:
            raise InputError("bad input")
    assert db.is_file()  # not new any more: kept


def test_open_store_keeps_a_cache_folder_that_was_there_before(tmp_path):
    db = tmp_path / "store.duckdb"
    cache = tmp_path / "store.duckdb.cache"
    cache.mkdir()
    (cache / "keep.npy").write_bytes(b"x")
    with pytest.raises(InputError):
        with open_store(db):
            raise InputError("bad input")
    assert not db.exists() and (cache / "keep.npy").exists()


def test_a_failed_migration_leaves_no_new_file(tmp_path, monkeypatch):
    def broken(self):
        raise StoreError("migration failed")

    monkeypatch.setattr(Store, "migrate", broken)
    with pytest.raises(StoreError):
        open_store(tmp_path / "store.duckdb")
    assert list(tmp_path.iterdir()) == []


def test_a_store_is_still_a_store(tmp_path):
    db = tmp_path / "store.duckdb"
    open_store(db).close()
    before = _sha(db)
    with open_store(db) as store:
        assert store.schema_version > 0
    with open_store(db, read_only=True) as store:
        assert store.schema_version > 0
    assert _sha(db) == before


def test_every_store_connection_has_duckdbs_progress_bar_off(tmp_path):
    """A slow query would draw DuckDB's progress bar on the terminal and break `labelfix suggest --json`."""
    from labelfix.store.access import SharedStoreFile

    with open_store(tmp_path / "s.duckdb") as store:
        assert store.scalar("SELECT current_setting('enable_progress_bar')") is False
        assert store.cursor().scalar("SELECT current_setting('enable_progress_bar')") is False
    shared = SharedStoreFile(tmp_path / "s.duckdb")
    with shared.connect() as store:
        assert store.scalar("SELECT current_setting('enable_progress_bar')") is False
    shared.close()
