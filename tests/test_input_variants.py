"""More inputs of each fault kind of issue 13, beyond its examples: each gets a correct result or one clear
message (exit 2, no traceback, nothing half-written, the input untouched).

Kinds: (1) command-line slips, (2) ``--db`` that is not a store / a store that cannot be used, (3) duplicate
ids and names in other shapes, (4) files that are not what they claim (encodings, separators, truncated or
empty files, images that are not images).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labelfix.cli.main import main
from tests.conftest import make_coco, store_snapshot, write_image


def _run(capsys, argv: list[str]) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _clear(code: int, text: str, *expected: str) -> None:
    """Exit 2, no traceback, and every expected phrase in the (whitespace-normalised) output."""
    flat = " ".join(text.split())
    assert code == 2, text
    assert "Traceback" not in text and "Error:" not in flat.replace("error:", "")
    for phrase in expected:
        assert phrase in flat, (phrase, flat)


def _no_store(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if ".duckdb" in p.name]


def _coco(path: Path, images, annotations=None, categories=({"id": 1, "name": "cat"},), **extra) -> Path:
    if annotations is None:
        annotations = [{"id": i + 1, "image_id": image["id"], "category_id": 1} for i, image in enumerate(images)]
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": list(categories),
                                **extra}))
    return path


# -- (1) command-line slips, other values ------------------------------------------------------------------
@pytest.mark.parametrize("argv, says", [
    (["train", "--epochs", "-3"], "Invalid value for '--epochs'"),
    (["train", "--epochs", "1e3"], "Invalid value for '--epochs'"),
    (["review", "--port", "0"], "Invalid value for '--port'"),
    (["review", "--port", "70000"], "Invalid value for '--port'"),
    # The flag the user typed, not the Python field (fresh-user report, item 14).
    (["suggest", "--target-precision", "nan"], "'--target-precision': nan is not a number"),
    (["suggest", "--target-precision", "1.5"], "--target-precision: must be at most 1 (given 1.5)"),
    (["suggest", "--max-per-class", "0"], "--max-per-class: must be at least 1 (given 0)"),
    (["ingest", "coco", "a.json", "b.json"], "Got unexpected extra argument"),
    (["ingest", "table"], "Missing argument"),
    (["export", "coco"], "Missing option '--out'"),
    (["--db"], "Option '--db' requires an argument"),
    (["status", "--db"], "Option '--db' requires an argument"),
    (["ingest", "--db", "x.duckdb"], "Missing command"),  # --db is taken after a group; the command is not
])
def test_more_bad_arguments_are_usage_errors(tmp_path, capsys, monkeypatch, argv, says):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LABELFIX_DB", raising=False)
    code, text = _run(capsys, argv)
    _clear(code, text, says)
    _no_store(tmp_path)


# -- (2) --db that cannot be a store -----------------------------------------------------------------------
@pytest.mark.parametrize("content", [b"", b"SQLite format 3\x00" + bytes(100), b"PK\x03\x04zip", "é,ü\n".encode("latin-1")])
def test_db_naming_a_file_that_is_not_a_store_is_refused_untouched(tmp_path, capsys, content):
    target = tmp_path / "notes.duckdb"
    target.write_bytes(content)
    code, text = _run(capsys, ["status", "--db", target])
    _clear(code, text, "is not a labelfix store")
    assert target.read_bytes() == content


def test_a_store_in_a_read_only_folder_is_one_message(tmp_path, capsys, tiny_coco):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        code, text = _run(capsys, ["ingest", "coco", tiny_coco, "--images", tiny_coco.parent / "images",
                                   "--db", folder / "s.duckdb"])
        _clear(code, text)
    finally:
        folder.chmod(0o700)


def test_an_export_into_a_read_only_folder_is_one_message_and_writes_nothing(tmp_path, capsys, tiny_coco):
    db = tmp_path / "s.duckdb"
    assert _run(capsys, ["ingest", "coco", tiny_coco, "--images", tiny_coco.parent / "images", "--db", db])[0] == 0
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o500)
    try:
        if os.access(out, os.W_OK):
            pytest.skip("this user writes into read-only folders (root)")
        code, text = _run(capsys, ["export", "coco", "--out", out, "--db", db])
        _clear(code, text, str(out))
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o700)


def test_a_store_held_by_another_process_is_one_message_after_the_wait(tmp_path, capsys, tiny_coco, monkeypatch):
    db = tmp_path / "s.duckdb"
    assert _run(capsys, ["ingest", "coco", tiny_coco, "--images", tiny_coco.parent / "images", "--db", db])[0] == 0
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(60)", str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setenv("LABELFIX_LOCK_TIMEOUT", "0.5")
        code, text = _run(capsys, ["export", "coco", "--out", tmp_path / "out", "--db", db])
        _clear(code, text, str(db))
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "out" / "labels.json").exists()
    assert store_snapshot(db)["images"]  # the store is whole and readable again


# -- (3) duplicate ids and names, other shapes -------------------------------------------------------------
@pytest.mark.parametrize("names", [["a.jpg", "./a.jpg"], ["d/a.jpg", "d\\a.jpg"], ["d//a.jpg", "d/a.jpg"]])
def test_one_file_under_two_spellings_is_one_file_twice(tmp_path, capsys, names):
    source = _coco(tmp_path / "ann.json", [{"id": 1, "file_name": names[0]}, {"id": 2, "file_name": names[1]}])
    code, text = _run(capsys, ["ingest", "coco", source, "--check-images", "none", "--db", tmp_path / "s.duckdb"])
    _clear(code, text, "appears twice (image ids 1 and 2)", "ann.json")
    _no_store(tmp_path)


@pytest.mark.parametrize("case, says", [
    ("annotation", "duplicate annotation id"),
    ("category_id", "duplicate category id"),
    ("category_name", "duplicate category name 'cat'"),
    ("image_id", "duplicate image id"),
    ("string_id", "image id '1' is not an integer"),
    ("bool_id", "image id True is not an integer"),
])
def test_duplicate_and_odd_ids_in_other_shapes(tmp_path, capsys, case, says):
    images = [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}]
    annotations = [{"id": 1, "image_id": 1, "category_id": 1}, {"id": 2, "image_id": 2, "category_id": 1}]
    categories = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
    if case == "annotation":
        annotations[1]["id"] = 1
    elif case == "category_id":
        categories[1]["id"] = 1
    elif case == "category_name":
        categories[1]["name"] = "cat"
    elif case == "image_id":
        images[1]["id"] = 1
    elif case == "string_id":
        images[0]["id"] = "1"
    else:
        images[0]["id"] = True
    source = _coco(tmp_path / "ann.json", images, annotations, categories)
    code, text = _run(capsys, ["ingest", "coco", source, "--check-images", "none", "--db", tmp_path / "s.duckdb"])
    _clear(code, text, says)
    _no_store(tmp_path)


def test_two_split_files_numbered_from_one_and_a_third_pass_over_one_of_them(tmp_path, capsys):
    """instances_train / instances_val each number from 1; a second annotation pass names the val files."""
    train = _coco(tmp_path / "instances_train.json", [{"id": 1, "file_name": "t1.jpg"}, {"id": 2, "file_name": "t2.jpg"}])
    val = _coco(tmp_path / "instances_val.json", [{"id": 1, "file_name": "v1.jpg", "split": "val"}])
    extra = _coco(tmp_path / "dogs.json", [{"id": 7, "file_name": "v1.jpg", "split": "val"}],
                  categories=[{"id": 1, "name": "dog"}])
    db = tmp_path / "s.duckdb"
    for source in (train, val, extra):
        assert _run(capsys, ["ingest", "coco", source, "--check-images", "none", "--db", db])[0] == 0
    assert _run(capsys, ["export", "coco", "--out", tmp_path / "out", "--inline", "--db", db])[0] == 0
    for source in (train, val, extra):
        written = json.loads((tmp_path / "out" / f"{source.stem}_corrected.json").read_text())
        assert written == json.loads(source.read_text())  # each its source, nothing review added
    labels = json.loads((tmp_path / "out" / "labels.json").read_text())
    assert len(labels["images"]) == 3 and len(labels["annotations"]) == 4  # v1 has cat and dog


# -- (4) files that are not what they claim ----------------------------------------------------------------
@pytest.mark.parametrize("text, says", [
    ('{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [', "invalid JSON"),
    ('{"images": [], "annotations": [], "categories": []', "invalid JSON"),
    ('{"images": [], "annotations": [], "categories": [], }', "invalid JSON"),
    ("", "the file is empty"),
    ("   \n", "the file is empty"),
    ("[]", "top level is not a JSON object"),
    ('{"images": {}, "annotations": [], "categories": []}', "'images' is dict, not a list"),
    ('{"annotations": [], "categories": []}', "missing top-level key(s): images"),
])
def test_truncated_empty_and_misshapen_json(tmp_path, capsys, text, says):
    source = tmp_path / "ann.json"
    source.write_text(text)
    code, out = _run(capsys, ["ingest", "coco", source, "--check-images", "none", "--db", tmp_path / "s.duckdb"])
    _clear(code, out, says, "ann.json")
    _no_store(tmp_path)
    assert source.read_text() == text


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_coco_file_in_another_unicode_encoding_is_one_message(tmp_path, capsys, encoding):
    source = tmp_path / "ann.json"
    source.write_text(json.dumps({"images": [], "annotations": [], "categories": []}), encoding=encoding)
    code, text = _run(capsys, ["ingest", "coco", source, "--check-images", "none", "--db", tmp_path / "s.duckdb"])
    _clear(code, text, "ann.json", "UTF-8")
    _no_store(tmp_path)


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + bytes(20)])
def test_an_image_that_is_not_an_image_is_named(tmp_path, capsys, content):
    make_coco(tmp_path)
    (tmp_path / "images" / "img_2.png").write_bytes(content)
    db = tmp_path / "s.duckdb"
    code, text = _run(capsys, ["ingest", "coco", tmp_path / "instances.json", "--images", tmp_path / "images",
                               "--db", db])
    _clear(code, text, "img_2.png")
    _no_store(tmp_path)


@pytest.mark.parametrize("table, says", [
    ("", "empty"),
    ("file_name,labels\n", None),
    ("file_name|labels\na.png|cat\n", "separated by commas (or semicolons or tabs)"),
])
def test_empty_and_odd_tables(tmp_path, capsys, table, says):
    write_image(tmp_path / "images" / "a.png")
    source = tmp_path / "labels.csv"
    source.write_text(table)
    code, text = _run(capsys, ["ingest", "table", source, "--images", tmp_path / "images", "--db",
                               tmp_path / "s.duckdb", "--add-classes"])
    if says is None:  # a header and no rows: a valid, empty table; nothing added, said plainly, no empty store
        assert code == 0 and "has a header and no rows: nothing was ingested" in text and "Traceback" not in text
        _no_store(tmp_path)
        return
    _clear(code, text, says, "labels.csv")
    _no_store(tmp_path)


def test_a_utf16_table_is_read_or_refused_in_one_message(tmp_path, capsys):
    write_image(tmp_path / "images" / "a.png")
    source = tmp_path / "labels.csv"
    source.write_text("file_name,labels\na.png,chat\n", encoding="utf-16")
    code, text = _run(capsys, ["ingest", "table", source, "--images", tmp_path / "images", "--db",
                               tmp_path / "s.duckdb", "--add-classes"])
    assert code == 0 and "chat" in text and "Traceback" not in text
