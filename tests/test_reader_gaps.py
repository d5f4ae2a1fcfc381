"""The input readers' remaining gaps from the fresh-user test (issue 13; FRESH_REPORT items 6, 11, 12): each
input gets a correct result or one clear message (exit 2, no traceback, no store file left behind).

Kinds: ids out of the store's 64-bit range (and negative ids, which are kept), table encodings and broken
quoting, empty tables, the position of a JSON syntax error, file names that normalise inside the images
folder, and what ``--check-images none`` leaves unchecked.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labelfix.cli.main import main
from labelfix.errors import LabelfixWarning
from labelfix.export import export_coco
from labelfix.ingest import ingest_coco, ingest_table
from labelfix.store import open_store
from labelfix.store.labels import load_label_matrix
from tests.conftest import store_snapshot, write_image

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


# -- tables: encodings, quoting, no rows ----------------------------------------------------------------------
@pytest.mark.parametrize("encoding, bom", [("utf-16", b""), ("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"),
                                           ("utf-16-le", b""), ("utf-16-be", b""), ("utf-32", b"")],
                         ids=["utf16-native-bom", "utf16le-bom", "utf16be-bom", "utf16le-no-bom", "utf16be-no-bom",
                              "utf32"])
@pytest.mark.parametrize("separator", [",", "\t"], ids=["comma", "tab"])
def test_a_utf16_table_is_read_as_the_same_table(tmp_path, images, encoding, bom, separator):
    """Excel's "Unicode Text" is UTF-16 LE with a byte-order mark, separated by tabs."""
    rows = [["file_name", "labels"], ["1.png", "café;dog"], ["2.png", "dog"]]
    table = tmp_path / "t.csv"
    table.write_bytes(bom + ("\n".join(separator.join(row) for row in rows) + "\n").encode(encoding))
    with open_store(tmp_path / "s.duckdb") as store:
        summary = ingest_table(store, table=table, images=images, check_images="none")
        assert (summary.new_images, summary.new_positive_labels) == (2, 3)
        assert sorted(store.fetchall("SELECT name FROM categories")) == [("café",), ("dog",)]


def test_a_utf16_table_without_the_columns_names_its_encoding(tmp_path, images, capsys):
    table = tmp_path / "t.csv"
    table.write_bytes(b"\xff\xfe" + "fi".encode("utf-16-le"))  # the fresh user's truncated c_utf16.csv
    code, text = _run(capsys, ["--db", tmp_path / "s.duckdb", "ingest", "table", table, "--images", images])
    _refused(code, text, f"{table}: missing columns 'file_name', 'labels' (found: fi, read as UTF-16-LE text)")
    _no_store(tmp_path)


@pytest.mark.parametrize("content, says", [
    (b"file_name,labels\n\x00\x01\x02garbage\x00\n", "holds NUL bytes (the first at offset 17): not a text table"),
    (b"\xff\xfe" + "file_name,labels\n".encode("utf-16-le") + b"\x00\xd8", "starts as UTF-16-LE text but is not valid"),
])
def test_a_binary_or_broken_utf16_table_is_one_message(tmp_path, images, capsys, content, says):
    table = tmp_path / "t.csv"
    table.write_bytes(content)
    code, text = _run(capsys, ["--db", tmp_path / "s.duckdb", "ingest", "table", table, "--images", images])
    _refused(code, text, str(table), says, "CSV UTF-8")
    _no_store(tmp_path)


@pytest.mark.parametrize("text, line, says", [
    ('file_name,labels\n1.png,"cat\n', 2, "a quote opens a cell and is not closed on its line: '1.png,\"cat'"),
    # In the middle of a file: pyarrow would take every following row into the open cell.
    ('file_name,labels\n1.png,cat\n2.png,"dog\n3.png,cat\n4.png,"x"\n', 3, "is not closed on its line"),
    ('file_name,labels\n"1.png,cat\n', 2, "is not closed on its line"),
    ('file_name,labels\n1.png,"cat"dog\n', 2, "a quoted cell is followed by other text before the next comma"),
    ('file_name;labels\n1.png;"cat"dog\n', 2, "before the next semicolon"),
])
def test_a_broken_quote_is_refused_with_its_line(tmp_path, images, capsys, text, line, says):
    table = tmp_path / "t.csv"
    table.write_text(text)
    code, out = _run(capsys, ["--db", tmp_path / "s.duckdb", "ingest", "table", table, "--images", images,
                              "--add-classes"])
    _refused(code, out, f"{table}: line {line}: ", says, 'fix: close the quote')
    _no_store(tmp_path)


def test_quoted_cells_that_are_well_formed_still_read(tmp_path, images):
    table = tmp_path / "t.csv"
    table.write_text('file_name,labels\n"1.png","[""cat"", ""dog""]"\n2.png,"say ""hi"""\n3.png,\n')
    with open_store(tmp_path / "s.duckdb") as store:
        summary = ingest_table(store, table=table, images=images, add_classes=True, check_images="none")
        assert (summary.new_images, summary.new_positive_labels) == (3, 3)
        assert sorted(store.fetchall("SELECT name FROM categories")) == [("cat",), ("dog",), ('say "hi"',)]


@pytest.mark.parametrize("content", ["file_name,labels\n", "file_name,labels\r\n\r\n", "file_name;labels;split\n"])
def test_a_table_with_no_rows_warns_and_leaves_no_new_store(tmp_path, images, capsys, content):
    table = tmp_path / "t.csv"
    table.write_text(content)
    db = tmp_path / "sub" / "s.duckdb"
    code, text = _run(capsys, ["--db", db, "ingest", "table", table, "--images", images])
    assert code == 0 and "Traceback" not in text
    assert "warning: t.csv has a header and no rows: nothing was ingested" in text
    assert "no store was created" in " ".join(text.split())
    assert not (tmp_path / "sub").exists()


def test_a_table_with_no_rows_changes_nothing_in_an_existing_store(tmp_path, images, capsys):
    db = tmp_path / "s.duckdb"
    full = tmp_path / "full.csv"
    full.write_text("file_name,labels\n1.png,cat\n")
    assert main(["--db", str(db), "ingest", "table", str(full), "--images", str(images), "--add-classes"]) == 0
    before = store_snapshot(db)
    empty = tmp_path / "empty.csv"
    empty.write_text("file_name,labels\n")
    code, text = _run(capsys, ["--db", db, "ingest", "table", empty, "--images", images])
    assert code == 0 and "has a header and no rows" in text and "no store was created" not in text
    assert store_snapshot(db) == before  # not even a source row: the same file with rows later is ingested
    empty.write_text("file_name,labels\n2.png,cat\n")
    code, text = _run(capsys, ["--db", db, "ingest", "table", empty, "--images", images])
    assert code == 0 and "added 1 images" in text


# -- tables: separators and encodings already handled (re-verified) -----------------------------------------
@pytest.mark.parametrize("encoding", ["cp1252", "utf-8", "utf-8-sig"])
@pytest.mark.parametrize("separator, suffix", [(",", ".csv"), (";", ".csv"), ("\t", ".tsv"), ("\t", ".txt")])
def test_separators_and_encodings_give_the_same_labels(tmp_path, images, encoding, separator, suffix):
    cell = "crème;dog" if separator != ";" else '"crème;dog"'
    table = tmp_path / f"t{suffix}"
    table.write_bytes(f"file_name{separator}labels\n1.png{separator}{cell}\n2.png{separator}dog\n".encode(encoding))
    warned = pytest.warns(LabelfixWarning, match="read as Windows-1252") if encoding == "cp1252" else nullcontext()
    with open_store(tmp_path / "s.duckdb") as store, warned:
        summary = ingest_table(store, table=table, images=images, check_images="none")
        assert (summary.new_images, summary.new_positive_labels) == (2, 3)
        assert sorted(store.fetchall("SELECT name FROM categories")) == [("crème",), ("dog",)]


def test_a_tsv_names_lines_not_rows(tmp_path, images, capsys):
    table = tmp_path / "t.tsv"
    table.write_text("file_name\tlabels\n1.png\tcat\n1.png\tdog\n")
    code, text = _run(capsys, ["--db", tmp_path / "s.duckdb", "ingest", "table", table, "--images", images,
                               "--add-classes"])
    _refused(code, text, f"{table}: line 3: file_name '1.png' appears twice (also line 2)")


# -- COCO: where a syntax error is, file names, unchecked images ----------------------------------------------
def test_a_truncated_coco_file_reports_jsons_own_line_and_column(tmp_path, images, capsys):
    """The fresh user's file: json says "line 1 column 254 (char 253)"; labelfix said column 1, then 242."""
    text = json.dumps({"images": [{"id": i, "file_name": f"{i}.png", "width": 40, "height": 20} for i in range(1, 5)],
                       "annotations": [], "categories": []})
    path = tmp_path / "trunc.json"
    path.write_text(text[:text.index('"annotations"') + 3])
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(path.read_text())
    code, out = _run(capsys, ["--db", tmp_path / "s.duckdb", "ingest", "coco", path, "--images", images])
    _refused(code, out, f"{path}: line 1, column {expected.value.colno}: invalid JSON: Unterminated string")
    assert expected.value.colno == 254
    _no_store(tmp_path)


@pytest.mark.parametrize("window", [7, 64, 1 << 20])
@pytest.mark.parametrize("indent", [None, 2])
def test_every_truncation_point_reports_the_position_json_reports(tmp_path, monkeypatch, window, indent):
    """Cut a COCO text after every character: the streaming reader names json's line and column, also when
    the error is windows away from the file's start (its window drops the text before)."""
    import labelfix.io.json_stream as json_stream
    from labelfix.errors import InputError
    from labelfix.io.coco import read_coco

    monkeypatch.setattr(json_stream, "WINDOW", window)
    data = {"info": {"note": "é\nü"}, "images": [{"id": i, "file_name": f"{i}.png"} for i in range(1, 4)],
            "annotations": [{"id": i, "image_id": 1 + i % 3, "category_id": 1, "bbox": [1.5, 2, 3, 4]}
                            for i in range(1, 5)], "categories": [{"id": 1, "name": "cat"}]}
    text = json.dumps(data, indent=indent, ensure_ascii=False)
    path = tmp_path / "a.json"
    mismatches = []
    for cut in range(1, len(text) - 1, 3):
        path.write_text(text[:cut], encoding="utf-8")
        try:
            json.loads(text[:cut])
            continue
        except json.JSONDecodeError as error:
            expected = f"line {error.lineno}, column {error.colno}"
        with pytest.raises(InputError) as got:
            read_coco(path, images_root=None, records=False)
        if got.value.record != expected:
            mismatches.append((cut, expected, got.value.record))
    assert not mismatches, mismatches[:5]


@pytest.mark.parametrize("file_name, stored", [("./sub/../1.png", "1.png"), ("sub/./../2.png", "2.png"),
                                               ("a/b/../../3.png", "3.png"), ("sub\\..\\1.png", "1.png")])
def test_a_dot_dot_that_stays_inside_the_folder_is_normalised(tmp_path, images, file_name, stored):
    path = _coco(tmp_path / "a.json", images=[{"id": 1, "file_name": file_name}])
    with open_store(tmp_path / "s.duckdb") as store:
        summary = ingest_coco(store, annotations=path, images=images, check_images="full")
        assert summary.new_images == 1
        assert store.scalar("SELECT file_name FROM images") == stored
        export_coco(store, out_dir=tmp_path / "out", inline=True)
    inline = json.loads((tmp_path / "out" / "instances_corrected.json").read_text())
    assert inline["images"][0]["file_name"] == file_name  # the source's record as it was


def test_two_spellings_of_one_file_are_one_image(tmp_path, images, capsys):
    path = _coco(tmp_path / "a.json", images=[{"id": 1, "file_name": "1.png"}, {"id": 2, "file_name": "x/../1.png"}])
    code, out = _run(capsys, ["--db", tmp_path / "s.duckdb", "ingest", "coco", path, "--images", images])
    _refused(code, out, "file_name 'x/../1.png' appears twice (image ids 1 and 2)")


@pytest.mark.parametrize("file_name", ["../1.png", "sub/../../1.png", "./../img/1.png", "a/..\\..\\1.png", "sub/.."])
def test_a_real_escape_is_still_refused(tmp_path, images, capsys, file_name):
    path = _coco(tmp_path / "a.json", images=[{"id": 1, "file_name": file_name}])
    code, out = _run(capsys, ["--db", tmp_path / "s.duckdb", "ingest", "coco", path, "--images", images])
    _refused(code, out, str(path), "image id 1: file_name")
    assert "escapes the images directory with '..'" in out or "names no file" in out
    _no_store(tmp_path)


def test_check_images_none_says_the_files_were_not_checked(tmp_path, images, capsys):
    path = _coco(tmp_path / "a.json", images=[{"id": 1, "file_name": "1.png"}, {"id": 2, "file_name": "gone.png"}])
    db = tmp_path / "s.duckdb"
    code, out = _run(capsys, ["--db", db, "ingest", "coco", path, "--images", images, "--check-images", "none"])
    flat = " ".join(out.split())
    assert code == 0 and f"note: the image files in {images} were not checked (--check-images none)" in flat
    assert flat.count("were not checked") == 1
    assert "note: 1 image in the store has no positive label (train 1)" in flat  # gone.png has no annotation
    code, out = _run(capsys, ["--db", db, "ingest", "coco", path, "--images", images, "--check-images", "none"])
    assert code == 0 and "already ingested" in out and "note:" not in out  # nothing was ingested this time
    code, out = _run(capsys, ["--db", tmp_path / "t.duckdb", "ingest", "coco", path, "--check-images", "none"])
    assert code == 0 and "note: no image file was checked (no --images folder)" in " ".join(out.split())
    table = tmp_path / "t.csv"
    table.write_text("file_name,labels\n1.png,cat\ngone.png,cat\n")
    code, out = _run(capsys, ["--db", tmp_path / "u.duckdb", "ingest", "table", table, "--images", images,
                              "--check-images", "none", "--add-classes"])
    assert code == 0 and "were not checked (--check-images none)" in " ".join(out.split())
    code, out = _run(capsys, ["--db", tmp_path / "v.duckdb", "ingest", "table", table, "--images", images,
                              "--add-classes"])
    assert code == 2 and "gone.png" in out and "note:" not in out


@pytest.mark.parametrize("encoding, name", [("utf-16", "UTF-16-LE"), ("utf-16-be", None), ("utf-32", "UTF-32-LE")])
def test_a_coco_file_in_utf16_or_32_is_named(tmp_path, capsys, encoding, name):
    path = tmp_path / "a.json"
    text = json.dumps({"images": [], "annotations": [], "categories": []})
    path.write_bytes((b"\xfe\xff" if encoding == "utf-16-be" else b"") + text.encode(encoding))
    code, out = _run(capsys, ["--db", tmp_path / "s.duckdb", "ingest", "coco", path, "--check-images", "none"])
    _refused(code, out, f"{path}: not UTF-8 text: it is {name or 'UTF-16-BE'} (its byte-order mark says so)",
             f"iconv -f {name or 'UTF-16-BE'} -t UTF-8")
    _no_store(tmp_path)


def test_a_latin1_byte_deep_in_a_coco_file_is_named_at_its_offset(tmp_path, capsys):
    """The text reader decodes in chunks: its error's position counts from the chunk, not the file."""
    data = {"images": [{"id": i, "file_name": f"{i}.png"} for i in range(1, 30_000)], "annotations": [],
            "categories": [{"id": 1, "name": "café"}]}
    raw = json.dumps(data, ensure_ascii=False).encode()
    at = raw.index("é".encode())
    path = tmp_path / "a.json"
    path.write_bytes(raw[:at] + b"\xe9" + raw[at + 2:])
    code, out = _run(capsys, ["--db", tmp_path / "s.duckdb", "ingest", "coco", path, "--check-images", "none"])
    _refused(code, out, f"not UTF-8 text (invalid continuation byte: byte 0xe9 at offset {at})")
    assert at > 1 << 20
