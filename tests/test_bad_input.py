"""Every bad input fails with one clear message (file, record, fix), exit code 2, and an unchanged store."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labelfix.cli.main import main
from tests.conftest import make_coco, store_snapshot, write_image


def _coco(tmp_path: Path, mutate) -> Path:
    source = make_coco(tmp_path / "bad", n_images=3)
    data = json.loads(source.read_text())
    mutate(data, tmp_path / "bad")
    source.write_text(json.dumps(data))
    return source


def _set(path_in_data, value):
    def mutate(data, root):
        target = data
        for key in path_in_data[:-1]:
            target = target[key]
        target[path_in_data[-1]] = value
    return mutate


def _corrupt_image(kind):
    def mutate(data, root):
        image = root / "images" / data["images"][0]["file_name"]
        if kind == "empty":
            image.write_bytes(b"")
        elif kind == "truncated":
            image.write_bytes(image.read_bytes()[: len(image.read_bytes()) // 2])
        elif kind == "text":
            image.write_text("this is not an image")
        elif kind == "missing":
            image.unlink()
    return mutate


COCO_CASES = {
    "missing top-level key": (lambda d, r: d.pop("categories"), "missing top-level key"),
    "duplicate image id": (lambda d, r: d["images"].append(dict(d["images"][0])), "duplicate image id"),
    "duplicate category id": (lambda d, r: d["categories"].append({"id": 1, "name": "other"}),
                              "duplicate category id"),
    "duplicate category name": (lambda d, r: d["categories"].append({"id": 9, "name": "cat"}),
                                "duplicate category name"),
    "annotation unknown image": (_set(["annotations", 0, "image_id"], 999), "image_id 999 is not in images"),
    "annotation unknown category": (_set(["annotations", 0, "category_id"], 77), "category_id 77"),
    "string image id": (_set(["images", 0, "id"], "1"), "is not an integer"),
    "float category id": (_set(["categories", 0, "id"], 1.5), "is not an integer"),
    "parent escape": (_set(["images", 0, "file_name"], "../secret.png"), "escapes the images directory"),
    "absolute path": (_set(["images", 0, "file_name"], "/etc/passwd"), "absolute path"),
    "missing image file": (_corrupt_image("missing"), "does not exist"),
    "zero-byte image": (_corrupt_image("empty"), "empty (0 bytes)"),
    "truncated image": (_corrupt_image("truncated"), "cannot be decoded"),
    "non-image file": (_corrupt_image("text"), "cannot be decoded"),
    "images not a list": (_set(["images"], {"a": 1}), "not a list"),
}


@pytest.fixture
def populated_db(tmp_path: Path) -> Path:
    """A store that already holds data, so 'unchanged' is a real claim."""
    db = tmp_path / "store.duckdb"
    good = make_coco(tmp_path / "good", n_images=3)
    assert main(["ingest", "coco", str(good), "--images", str(good.parent / "images"), "--db", str(db)]) == 0
    return db


def _assert_clean_failure(capsys, db: Path, before: dict, argv: list[str], expected: str, file_hint: str):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected in err, err
    assert file_hint in err, err
    assert "fix:" in err, err
    assert store_snapshot(db) == before


@pytest.mark.parametrize("case", sorted(COCO_CASES))
def test_bad_coco_fails_cleanly(case, tmp_path, populated_db, capsys):
    mutate, expected = COCO_CASES[case]
    source = _coco(tmp_path, mutate)
    before = store_snapshot(populated_db)
    argv = ["ingest", "coco", str(source), "--images", str(source.parent / "images"), "--db", str(populated_db)]
    _assert_clean_failure(capsys, populated_db, before, argv, expected, source.name)


def test_invalid_json_names_line_and_column(tmp_path, populated_db, capsys):
    source = tmp_path / "broken.json"
    source.write_text('{"images": [\n  {"id": 1,, }\n]}')
    before = store_snapshot(populated_db)
    argv = ["ingest", "coco", str(source), "--images", str(tmp_path), "--db", str(populated_db)]
    _assert_clean_failure(capsys, populated_db, before, argv, "line 2", "broken.json")


def test_same_image_in_another_split_than_the_store(tmp_path, populated_db, capsys):
    # An image is its file: the same files (same --images folder) in another split contradict the store.
    good = tmp_path / "good"
    data = json.loads((good / "instances.json").read_text())
    for image in data["images"]:
        image["split"] = "val"
    data["annotations"] = data["annotations"][:1]
    source = good / "second_pass.json"
    source.write_text(json.dumps(data))
    before = store_snapshot(populated_db)
    argv = ["ingest", "coco", str(source), "--images", str(good / "images"), "--db", str(populated_db)]
    _assert_clean_failure(capsys, populated_db, before, argv, "is in split 'val' here but 'train' in the store",
                          source.name)


TABLE_CASES = {
    "unknown class": ('file_name,labels\na.png,cat;zebra\n', "unknown class 'zebra'", "line 2"),
    "malformed list": ('file_name,labels\na.png,cat\nb.png,"[""cat"", "\n', "malformed label list", "line 3"),
    "empty class name": ('file_name,labels\na.png,cat;;dog\n', "malformed label list", "line 2"),
    "missing column": ('file_name,classes\na.png,cat\n', "missing column 'labels'", "labels.csv"),
    "escaping file name": ('file_name,labels\n../a.png,cat\n', "escapes", "line 2"),
}


@pytest.mark.parametrize("case", sorted(TABLE_CASES))
def test_bad_table_fails_cleanly(case, tmp_path, populated_db, capsys):
    text, expected, record = TABLE_CASES[case]
    for name in ("a.png", "b.png"):
        write_image(tmp_path / "t" / name)
    table = tmp_path / "labels.csv"
    table.write_text(text)
    before = store_snapshot(populated_db)
    argv = ["ingest", "table", str(table), "--images", str(tmp_path / "t"), "--db", str(populated_db)]
    _assert_clean_failure(capsys, populated_db, before, argv, expected, record)


@pytest.mark.parametrize("case", ["ragged", "nan", "missing embedding column"])
def test_bad_features_table_fails_cleanly(case, tmp_path, populated_db, capsys):
    embeddings = [np.zeros(4, np.float32), np.zeros(4, np.float32)]
    if case == "ragged":
        embeddings[1] = np.zeros(3, np.float32)
    if case == "nan":
        embeddings[1][2] = np.nan
    frame = pd.DataFrame({"image_id": [50, 51], "labels": [["cat"], ["dog"]], "embedding": embeddings})
    if case == "missing embedding column":
        frame = frame.drop(columns=["embedding"])
    path = tmp_path / "features.parquet"
    frame.to_parquet(path)
    expected = {"ragged": "ragged embedding", "nan": "NaN", "missing embedding column": "missing column"}[case]
    before = store_snapshot(populated_db)
    argv = ["ingest", "features", str(path), "--db", str(populated_db)]
    _assert_clean_failure(capsys, populated_db, before, argv, expected, "features.parquet")
