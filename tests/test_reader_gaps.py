"""The input readers' remaining gaps from the fresh-user test (issue 13; FRESH_REPORT items 6, 11, 12): each
input gets a correct result or one clear message (exit 2, no traceback, no store file left behind).

Kinds: ids out of the store's 64-bit range (and negative ids, which are kept), table encodings and broken
quoting, empty tables, the position of a JSON syntax error, file names that normalise inside the images
folder, and what ``--check-images none`` leaves unchecked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labelfix.cli.main import main
from labelfix.export import export_coco
from labelfix.ingest import ingest_coco, ingest_table
from labelfix.store import open_store
from labelfix.store.labels import load_label_matrix
from tests.conftest import write_image

HUGE = 1180591620717411303424  # 2^70, the fresh user's id


def _run(capsys, argv: list[object]) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _refused(code: int, text: str, *phrases: str) -> None:
    flat = " ".join(text.split())
    assert code == 2, text
    assert "Traceback" not in text
    for phrase in phrases:
        assert phrase in flat, (phrase, flat)


def _no_store(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if ".duckdb" in p.name]


@pytest.fixture
def images(tmp_path: Path) -> Path:
    for i in range(1, 4):
        write_image(tmp_path / "img" / f"{i}.png", seed=i)
    return tmp_path / "img"


def _coco(path: Path, *, images=None, annotations=None, categories=None) -> Path:
    images = images if images is not None else [{"id": 1, "file_name": "1.png"}]
    categories = categories if categories is not None else [{"id": 1, "name": "cat"}]
    annotations = annotations if annotations is not None else [{"id": 1, "image_id": images[0]["id"],
                                                                "category_id": categories[0]["id"]}]
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


# -- ids out of range ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("where, data, says", [
    ("image", {"images": [{"id": HUGE, "file_name": "1.png"}], "annotations": []},
     f"images[0]: image id {HUGE} is out of range (at most 2^63-1)"),
    ("annotation", {"annotations": [{"id": HUGE, "image_id": 1, "category_id": 1}]},
     f"annotations[0]: annotation id {HUGE} is out of range (at most 2^63-1)"),
    ("category", {"categories": [{"id": 2**64, "name": "c"}], "annotations": []},
     f"category id {2**64} is out of range (at most 2^63-1)"),
    ("annotation's category", {"annotations": [{"id": 1, "image_id": 1, "category_id": 2**63}]},
     f"category_id {2**63} is out of range (at most 2^63-1)"),
    ("image, negative", {"images": [{"id": -(2**63) - 1, "file_name": "1.png"}], "annotations": []},
     "is out of range (at least -2^63)"),
])
def test_a_coco_id_past_64_bits_is_refused_naming_the_file_and_record(tmp_path, images, capsys, where, data, says):
    base = {"images": [{"id": 1, "file_name": "1.png"}], "categories": [{"id": 1, "name": "c"}]}
    path = tmp_path / "huge.json"
    path.write_text(json.dumps({**base, **data}))
    code, text = _run(capsys, ["--db", tmp_path / "s.duckdb", "ingest", "coco", path, "--images", images])
    _refused(code, text, str(path), says, "fix: renumber")
    _no_store(tmp_path)


@pytest.mark.parametrize("value", [str(HUGE), str(2**63), str(-(2**63) - 1)])
def test_a_table_image_id_past_64_bits_is_refused(tmp_path, images, capsys, value):
    table = tmp_path / "t.csv"
    table.write_text(f"file_name,labels,image_id\n1.png,cat,{value}\n")
    code, text = _run(capsys, ["--db", tmp_path / "s.duckdb", "ingest", "table", table, "--images", images])
    _refused(code, text, f"{table}: line 2: image_id {value} is out of range")
    _no_store(tmp_path)


def test_a_features_table_uint64_id_past_64_bits_is_refused(tmp_path, capsys):
    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"image_id": pa.array([1, 2**63], pa.uint64()), "labels": [["a"], ["b"]],
                             "embedding": [[0.1, 0.2], [0.3, 0.4]]}), path)
    code, text = _run(capsys, ["--db", tmp_path / "s.duckdb", "ingest", "features", path])
    _refused(code, text, f"{path}: row 1: image_id {2**63} is out of range (at most 2^63-1)")
    _no_store(tmp_path)


def test_a_table_image_id_of_non_ascii_digits_is_not_an_integer(tmp_path, images, capsys):
    table = tmp_path / "t.csv"
    table.write_text("file_name,labels,image_id\n1.png,cat,\u00b2\n", encoding="utf-8")  # "²".isdigit() is True
    code, text = _run(capsys, ["--db", tmp_path / "s.duckdb", "ingest", "table", table, "--images", images])
    _refused(code, text, "line 2: image_id '²' is not an integer")


def test_negative_and_extreme_ids_are_kept_for_the_source_and_its_inline_export(tmp_path, images):
    """Negative ids are valid COCO (nothing forbids them): the store gives the image its own positive id
    and the inline export gives the source's ids back, the 64-bit extremes included."""
    source = {"images": [{"id": -5, "file_name": "1.png"}, {"id": 2**63 - 1, "file_name": "2.png"},
                         {"id": -(2**63), "file_name": "3.png"}],
              "annotations": [{"id": -(2**63), "image_id": -5, "category_id": -1},
                              {"id": 2**63 - 1, "image_id": 2**63 - 1, "category_id": 7}],
              "categories": [{"id": -1, "name": "cat"}, {"id": 7, "name": "dog"}]}
    path = tmp_path / "neg.json"
    path.write_text(json.dumps(source))
    with open_store(tmp_path / "s.duckdb") as store:
        summary = ingest_coco(store, annotations=path, images=images, check_images="none")
        assert (summary.new_images, summary.new_positive_labels) == (3, 2)
        matrix = load_label_matrix(store)
        assert int(matrix.states.sum()) == 2
        export_coco(store, out_dir=tmp_path / "out", inline=True)
    assert json.loads((tmp_path / "out" / "instances_corrected.json").read_text()) == source
    labels = json.loads((tmp_path / "out" / "labels.json").read_text())
    by_file = {image["file_name"]: image for image in labels["images"]}
    assert by_file["1.png"]["source_image_id"] == -5 and by_file["2.png"]["id"] == 2**63 - 1


def test_a_negative_table_image_id_is_kept_as_the_source_id(tmp_path, images):
    table = tmp_path / "t.csv"
    table.write_text("file_name,labels,image_id\n1.png,cat,-5\n2.png,dog,+7\n")
    with open_store(tmp_path / "s.duckdb") as store:
        summary = ingest_table(store, table=table, images=images, check_images="none")
        assert (summary.new_images, summary.new_positive_labels) == (2, 2)
        assert sorted(store.fetchall("SELECT source_image_id FROM source_images")) == [("-5",), ("7",)]


def test_a_table_with_new_classes_after_a_coco_file_with_the_largest_ids(tmp_path, images):
    """The largest 64-bit ids taken by one source leave the next source's new images and classes room."""
    path = _coco(tmp_path / "max.json", images=[{"id": 2**63 - 1, "file_name": "1.png"}],
                 categories=[{"id": 2**63 - 1, "name": "cat"}])
    table = tmp_path / "t.csv"
    table.write_text("file_name,labels,image_id\n2.png,dog,\n3.png,cat;bird,9223372036854775807\n")
    with open_store(tmp_path / "s.duckdb") as store:
        ingest_coco(store, annotations=path, images=images, check_images="none")
        summary = ingest_table(store, table=table, images=images, add_classes=True, check_images="none")
        assert (summary.new_images, summary.new_categories, summary.new_positive_labels) == (2, 2, 3)
        assert sorted(store.fetchall("SELECT image_id FROM images")) == [(1,), (2,), (2**63 - 1,)]
        assert dict(store.fetchall("SELECT name, category_id FROM categories"))["cat"] == 2**63 - 1
