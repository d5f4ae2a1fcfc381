"""Quiet or misleading validation (issue 13, item 4): each input either reads correctly or gets one clear message.

EXIF-rotated photos, Windows file names, many missing files, CSV separators and encodings, label cells
that hold several labels, a UTF-8 BOM in a COCO file, features tables keyed by strings, and training
a store without positive labels.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from labelfix.cli.main import main
from labelfix.errors import InputError, LabelfixWarning
from labelfix.export import export_coco
from labelfix.ingest import ingest_coco, ingest_features, ingest_table
from labelfix.store import open_store
from labelfix.store.embeddings import read_embedding_set
from labelfix.store.labels import load_label_matrix
from tests.conftest import make_coco, store_snapshot, write_image


def _coco(path: Path, images: list[dict], categories=({"id": 1, "name": "cat"},), annotations=None) -> Path:
    annotations = annotations if annotations is not None else [
        {"id": i + 1, "image_id": image["id"], "category_id": 1} for i, image in enumerate(images)]
    path.write_text(json.dumps({"images": images, "categories": list(categories), "annotations": annotations}))
    return path


def _rotated_photo(path: Path) -> Path:
    """A 32 x 24 JPEG whose EXIF says "rotate 90 degrees": shown (and trained on) as 24 x 32."""
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(path, exif=exif)
    return path


# -- width / height against the file --------------------------------------------------------------------------
def test_declared_size_contradicting_an_exif_rotated_photo_warns_and_stores_the_shown_size(tmp_path, db_path, capsys):
    _rotated_photo(tmp_path / "images" / "photo.jpg")
    write_image(tmp_path / "images" / "plain.png")  # 32 x 24, declared right
    source = _coco(tmp_path / "ann.json", [{"id": 1, "file_name": "photo.jpg", "width": 32, "height": 24},
                                           {"id": 2, "file_name": "plain.png", "width": 32, "height": 24}])
    assert main(["ingest", "coco", str(source), "--images", str(tmp_path / "images"), "--db", str(db_path)]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "1 of 2 images declare a width/height" in err
    assert "photo.jpg declares 32x24, the file shows 24x32" in err and "plain.png" not in err
    assert len(err.strip().splitlines()) == 1 and "warnings.warn" not in err  # one line, no source line
    with open_store(db_path) as store:
        assert store.fetchall("SELECT image_id, width, height FROM images ORDER BY 1") == [(1, 24, 32), (2, 32, 24)]
        summary = export_coco(store, out_dir=tmp_path / "out", inline=True)
    assert summary.warnings == ["instances_corrected.json keeps its source's width/height, which for 1 images differ "
                                "from the image files as displayed (EXIF orientation); labels.json has the files' sizes"]
    labels = json.loads((tmp_path / "out" / "labels.json").read_text())
    assert [(i["width"], i["height"]) for i in labels["images"]] == [(24, 32), (32, 24)]
    inline = json.loads((tmp_path / "out" / "instances_corrected.json").read_text())
    assert inline["images"] == json.loads(source.read_text())["images"]  # the source as it was


def test_with_check_images_none_no_file_is_read_and_declared_sizes_stay(tmp_path, db_path):
    source = _coco(tmp_path / "ann.json", [{"id": 1, "file_name": "photo.jpg", "width": 32, "height": 24}])
    with open_store(db_path) as store:  # the file does not even exist: "none" checks names only
        ingest_coco(store, annotations=source, images=tmp_path / "images", check_images="none")
        assert store.fetchall("SELECT width, height, file_key FROM images") == [
            (32, 24, f"{(tmp_path / 'images').resolve().as_posix()}/photo.jpg")]


# -- file names and files ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sub\\a.png", "sub/a.png", ".\\sub\\a.png", "sub\\\\a.png"])
def test_windows_file_names_are_found(tmp_path, db_path, name):
    write_image(tmp_path / "images" / "sub" / "a.png")
    source = _coco(tmp_path / "ann.json", [{"id": 1, "file_name": name}])
    with open_store(db_path) as store:
        ingest_coco(store, annotations=source, images=tmp_path / "images")
        assert store.scalar("SELECT file_name FROM images") == "sub/a.png"
        export_coco(store, out_dir=tmp_path / "out", inline=True)
    inline = json.loads((tmp_path / "out" / "instances_corrected.json").read_text())
    assert inline["images"][0]["file_name"] == name  # the export gives the name back as it was


def test_windows_file_names_in_a_table(tmp_path, db_path):
    write_image(tmp_path / "images" / "train" / "a.png")
    table = tmp_path / "labels.csv"
    table.write_text("file_name,labels\ntrain\\a.png,cat\n")
    with open_store(db_path) as store:
        ingest_table(store, table=table, images=tmp_path / "images")
        assert store.scalar("SELECT file_name FROM images") == "train/a.png"


@pytest.mark.parametrize("check", ["full", "header"])
def test_every_missing_image_file_is_reported_in_one_message(tmp_path, db_path, capsys, check):
    source = make_coco(tmp_path, n_images=20)
    for image_id in range(3, 16):  # 13 deleted files
        (tmp_path / "images" / f"img_{image_id}.png").unlink()
    argv = ["ingest", "coco", str(source), "--images", str(tmp_path / "images"), "--check-images", check,
            "--db", str(db_path)]
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "13 of 20 image files do not exist: img_3.png, img_4.png" in err
    assert "img_12.png and 3 more" in err and "img_13.png" not in err and "fix:" in err
    assert not db_path.exists()


def test_missing_and_broken_files_together_in_one_message(tmp_path, db_path, capsys):
    source = make_coco(tmp_path, n_images=5)
    (tmp_path / "images" / "img_1.png").unlink()
    (tmp_path / "images" / "img_2.png").unlink()
    (tmp_path / "images" / "img_3.png").write_text("not an image")
    (tmp_path / "images" / "img_4.png").write_bytes(b"")
    assert main(["ingest", "coco", str(source), "--images", str(tmp_path / "images"), "--db", str(db_path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "2 of 5 image files do not exist: img_1.png, img_2.png" in err
    assert "1 of 5 image files cannot be decoded: img_3.png" in err
    assert "1 of 5 image files is empty (0 bytes): img_4.png" in err


def test_missing_files_of_a_table_in_one_message(tmp_path, db_path, capsys):
    write_image(tmp_path / "images" / "a.png")
    table = tmp_path / "labels.csv"
    table.write_text("file_name,labels\na.png,cat\nb.png,cat\nc.png,dog\n")
    argv = ["ingest", "table", str(table), "--images", str(tmp_path / "images"), "--db", str(db_path)]
    assert main(argv) == 2
    assert "2 of 3 image files do not exist: b.png, c.png" in " ".join(capsys.readouterr().err.split())


# -- CSV separators and encodings ------------------------------------------------------------------------------
@pytest.mark.parametrize("separator", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_csv_separated_by_commas_semicolons_or_tabs_reads_the_same(tmp_path, db_path, separator):
    for name in ("a.png", "b.png"):
        write_image(tmp_path / "images" / name)
    rows = [["file_name", "labels", "split"], ["a.png", "cat;dog" if separator != ";" else '"cat;dog"', "train"],
            ["b.png", "dog", "val"]]
    table = tmp_path / "labels.csv"
    table.write_text("\n".join(separator.join(row) for row in rows) + "\n")
    with open_store(db_path) as store:
        ingest_table(store, table=table, images=tmp_path / "images")
        matrix = load_label_matrix(store)
    assert matrix.category_names == ["cat", "dog"]
    assert matrix.states.tolist() == [[1, 1], [0, 1]] and matrix.splits.tolist() == ["train", "val"]


def test_windows_1252_csv_is_read_with_a_warning(tmp_path, db_path, capsys):
    write_image(tmp_path / "images" / "café.png")
    table = tmp_path / "labels.csv"
    table.write_bytes("file_name;labels\ncafé.png;crème brûlée\n".encode("cp1252"))  # Excel, French locale
    argv = ["ingest", "table", str(table), "--images", str(tmp_path / "images"), "--db", str(db_path)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "is not UTF-8 (byte 0xe9 at offset 20): read as Windows-1252" in captured.err
    assert "label separators" not in captured.err  # a class name with a space is not a list
    with open_store(db_path) as store:
        assert store.scalar("SELECT file_name FROM images") == "café.png"
        assert store.scalar("SELECT name FROM categories") == "crème brûlée"


def test_csv_with_unknown_separator_names_the_columns_it_found(tmp_path, db_path, capsys):
    table = tmp_path / "labels.csv"
    table.write_text("file_name|labels\na.png|cat\n")
    argv = ["ingest", "table", str(table), "--images", str(tmp_path), "--db", str(db_path)]
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "missing columns 'file_name', 'labels' (found: file_name|labels)" in err
    assert "separated by commas (or semicolons or tabs)" in err


def test_semicolon_header_with_a_missing_column_says_so(tmp_path, db_path, capsys):
    table = tmp_path / "labels.csv"
    table.write_text("file_name;classes\na.png;cat\n")
    assert main(["ingest", "table", str(table), "--images", str(tmp_path), "--db", str(db_path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "missing column 'labels' (the header is separated by semicolons, not commas)" in err


def test_a_csv_with_a_bom_reads(tmp_path, db_path):
    write_image(tmp_path / "images" / "a.png")
    table = tmp_path / "labels.csv"
    table.write_bytes("\ufefffile_name,labels\na.png,cat\n".encode("utf-8"))
    with open_store(db_path) as store:
        assert ingest_table(store, table=table, images=tmp_path / "images").new_images == 1


# -- label cells holding several labels ------------------------------------------------------------------------
@pytest.mark.parametrize(("cell", "mark", "option"), [('"cat,dog"', "','", "','"),
                                                      ("scab frog_eye_leaf_spot", "' '", "' '"),
                                                      ("cat|dog", "'|'", "'|'")])
def test_label_cells_with_likely_separators_warn_and_report_the_classes(tmp_path, db_path, capsys, cell, mark,
                                                                        option):
    write_image(tmp_path / "images" / "a.png")
    write_image(tmp_path / "images" / "b.png")
    table = tmp_path / "labels.csv"
    table.write_text(f"file_name,labels\na.png,{cell}\nb.png,healthy\n")
    argv = ["ingest", "table", str(table), "--images", str(tmp_path / "images"), "--db", str(db_path)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    created = cell.strip('"')
    assert f"contain {mark}, which look like label separators: {created!r}" in captured.err
    assert f"--label-separator {option}" in captured.err
    assert f"2 categories ({', '.join(sorted([created, 'healthy']))})" in captured.out  # the classes created


@pytest.mark.parametrize(("cell", "separator", "classes"), [('"cat,dog"', ",", ["cat", "dog"]),
                                                            ("scab frog_eye_leaf_spot", " ", ["frog_eye_leaf_spot", "scab"])])
def test_label_separator_option_splits_the_cells(tmp_path, db_path, capsys, cell, separator, classes):
    write_image(tmp_path / "images" / "a.png")
    table = tmp_path / "labels.csv"
    table.write_text(f"file_name,labels\na.png,{cell}\n")
    argv = ["ingest", "table", str(table), "--images", str(tmp_path / "images"), "--label-separator", separator,
            "--db", str(db_path)]
    assert main(argv) == 0
    assert "warning" not in capsys.readouterr().err
    with open_store(db_path) as store:
        assert load_label_matrix(store).category_names == classes
        assert load_label_matrix(store).states.tolist() == [[1, 1]]


@pytest.mark.parametrize("names", [["traffic light", "stop sign"], ["crème brûlée"]])
def test_class_names_with_spaces_are_not_taken_for_lists(tmp_path, db_path, recwarn, names):
    write_image(tmp_path / "images" / "a.png")
    table = tmp_path / "labels.csv"
    table.write_text(f"file_name,labels\na.png,{';'.join(names)}\n", encoding="utf-8")
    with open_store(db_path) as store:
        ingest_table(store, table=table, images=tmp_path / "images")
        assert load_label_matrix(store).category_names == sorted(names)
    assert not [w for w in recwarn if issubclass(w.category, LabelfixWarning)]


def test_space_separated_classes_that_exist_alone_warn(tmp_path, db_path):
    for name in ("a.png", "b.png", "c.png"):
        write_image(tmp_path / "images" / name)
    table = tmp_path / "labels.csv"
    table.write_text("file_name,labels\na.png,rust\nb.png,scab\nc.png,rust scab\n")
    with open_store(db_path) as store, pytest.warns(LabelfixWarning, match="'rust scab'"):
        ingest_table(store, table=table, images=tmp_path / "images")


def test_label_separator_must_be_one_character(tmp_path, db_path, capsys):
    argv = ["ingest", "table", str(tmp_path / "x.csv"), "--images", str(tmp_path), "--label-separator", ";;",
            "--db", str(db_path)]
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


# -- COCO text -----------------------------------------------------------------------------------------------------
def test_utf8_bom_in_a_coco_file_is_accepted(tmp_path, db_path):
    source = make_coco(tmp_path, n_images=3)
    source.write_bytes(b"\xef\xbb\xbf" + source.read_bytes())
    with open_store(db_path) as store:
        assert ingest_coco(store, annotations=source, images=tmp_path / "images").new_images == 3


@pytest.mark.parametrize(("text", "where"), [('{"images": [\n  {"id": 1,, }\n]}', "line 2"),
                                             ('{"images": [], "annotations": [], "categories": [NaN]}', "NaN"),
                                             ('{"images": [], "annotations": [] "categories": []}', "line 1"),
                                             ('[]', "top level is not a JSON object"),
                                             ('', "the file is empty")])
def test_broken_json_is_one_message(tmp_path, db_path, text, where):
    path = tmp_path / "broken.json"
    path.write_text(text)
    with open_store(db_path) as store, pytest.raises(InputError, match=where):
        ingest_coco(store, annotations=path, images=None)


def test_key_order_and_pretty_printing_do_not_matter(tmp_path, db_path):
    source = make_coco(tmp_path, n_images=4)
    data = json.loads(source.read_text())
    reordered = tmp_path / "reordered.json"  # categories and annotations before images, indented
    reordered.write_text(json.dumps({"annotations": data["annotations"], "categories": data["categories"],
                                     "info": data["info"], "images": data["images"]}, indent=4))
    with open_store(db_path) as store:
        ingest_coco(store, annotations=reordered, images=tmp_path / "images")
        export_coco(store, out_dir=tmp_path / "out", inline=True)
        matrix = load_label_matrix(store)
    assert matrix.states.tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 1], [0, 0, 0]]
    written = (tmp_path / "out" / "instances_corrected.json").read_text()
    assert "\n" not in written and ": " not in written  # compact
    assert json.loads(written) == json.loads(reordered.read_text())


# -- features tables keyed by strings ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["file names", "uuids"])
def test_features_table_keyed_by_strings_is_kept_and_exported(tmp_path, db_path, kind):
    ids = ["img_a.jpg", "dir/img_b.jpg", "img_c.jpg"] if kind == "file names" else \
        [str(uuid.UUID(int=i + 1)) for i in range(3)]
    path = tmp_path / "features.parquet"
    pd.DataFrame({"image_id": ids, "labels": [["cat"], ["cat", "dog"], []],
                  "embedding": [np.full(4, i, np.float32) for i in range(3)]}).to_parquet(path)
    with open_store(db_path) as store:
        ingest_features(store, table=path, add_classes=True)
        assert store.fetchall("SELECT source_image_id, image_id FROM source_images ORDER BY position") == \
            [(json.dumps(i), n) for n, i in enumerate(ids, start=1)]
        stored_ids, embeddings = read_embedding_set(store, store.scalar("SELECT name FROM embedding_sets"))
        assert stored_ids.tolist() == [1, 2, 3] and embeddings[:, 0].tolist() == [0, 1, 2]
        assert load_label_matrix(store).states.tolist() == [[1, 0], [1, 1], [0, 0]]
        export_coco(store, out_dir=tmp_path / "out")
    labels = json.loads((tmp_path / "out" / "labels.json").read_text())
    assert [(i["id"], i["source_image_id"], i["file_name"]) for i in labels["images"]] == \
        [(n, i, i) for n, i in enumerate(ids, start=1)]  # the ids as they came, also as file names


def test_a_second_features_table_with_the_same_string_ids_names_the_same_images(tmp_path, db_path):
    for name, dim in (("a.parquet", 4), ("b.parquet", 8)):
        pd.DataFrame({"image_id": ["x.jpg", "y.jpg"], "labels": [["cat"], ["dog"]],
                      "embedding": [np.ones(dim, np.float32), np.zeros(dim, np.float32)]}).to_parquet(tmp_path / name)
    with open_store(db_path) as store:
        ingest_features(store, table=tmp_path / "a.parquet")
        summary = ingest_features(store, table=tmp_path / "b.parquet")
        assert (summary.new_images, summary.known_images) == (0, 2)
        assert store.scalar("SELECT count(*) FROM embedding_sets") == 2


def test_features_table_with_bad_ids_is_refused(tmp_path, db_path, capsys):
    path = tmp_path / "features.parquet"
    pd.DataFrame({"image_id": ["a", "a"], "labels": [["cat"], ["dog"]],
                  "embedding": [np.ones(4, np.float32)] * 2}).to_parquet(path)
    assert main(["ingest", "features", str(path), "--db", str(db_path)]) == 2
    assert "duplicate image_id 'a' (also row 0)" in capsys.readouterr().err


# -- training without a positive label -----------------------------------------------------------------------------
@pytest.mark.parametrize("labelled", [False, True], ids=["no labels", "labels only in val"])
def test_training_a_store_without_positive_train_labels_is_refused_up_front(tmp_path, db_path, capsys, labelled):
    path = tmp_path / "features.parquet"
    pd.DataFrame({"image_id": [1, 2, 3], "labels": [[], ["cat"] if labelled else [], []],
                  "split": ["train", "val" if labelled else "train", "train"],
                  "embedding": [np.full(4, i, np.float32) for i in range(3)]}).to_parquet(path)
    with open_store(db_path) as store:
        if not labelled:
            store.execute("INSERT INTO categories VALUES (1, 'cat', NULL, '{}')")
        ingest_features(store, table=path, add_classes=True)
    before = store_snapshot(db_path)
    assert main(["train", "--mode", "head", "--db", str(db_path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"has no positive label on its {2 if labelled else 3} train images: there is nothing to train on" in err
    assert "fix:" in err and "Traceback" not in err
    assert store_snapshot(db_path) == before  # no run was started


def test_library_warnings_are_labelfix_warnings(tmp_path, db_path):
    _rotated_photo(tmp_path / "images" / "photo.jpg")
    source = _coco(tmp_path / "ann.json", [{"id": 1, "file_name": "photo.jpg", "width": 32, "height": 24}])
    with open_store(db_path) as store, pytest.warns(LabelfixWarning, match="EXIF orientation"):
        ingest_coco(store, annotations=source, images=tmp_path / "images")


def test_huge_and_negative_category_ids_keep_their_cells(tmp_path, db_path):
    images = [{"id": i, "file_name": f"{i}.png"} for i in (1, 2)]
    categories = [{"id": 2**52, "name": "big"}, {"id": -3, "name": "negative"}, {"id": 0, "name": "zero"}]
    annotations = [{"id": 1, "image_id": 1, "category_id": 2**52}, {"id": 2, "image_id": 1, "category_id": 2**52},
                   {"id": 3, "image_id": 2, "category_id": -3}, {"id": 4, "image_id": 2, "category_id": 0}]
    source = _coco(tmp_path / "ann.json", images, categories, annotations)
    with open_store(db_path) as store:
        ingest_coco(store, annotations=source, images=None)
        assert store.fetchall("SELECT image_id, category_id FROM original_labels ORDER BY 1, 2") == \
            [(1, 2**52), (2, -3), (2, 0)]


# -- training without validation (fresh-user report, item 13) ------------------------------------------------
@pytest.mark.parametrize("val", ["none", "no positives"])
def test_training_without_validation_says_so_once_and_trains_every_epoch(tmp_path, db_path, capsys, val):
    """Warn and go on: a store made from one annotation file has no val split, and its scores still rank
    the missing labels; the user hears once what that costs and how to add one. No "val mAP nan"."""
    n_val = 0 if val == "none" else 3
    rng = np.random.default_rng(0)
    labels = [["cat"], ["dog"], ["cat", "dog"], ["cat"], ["dog"], ["cat"]] + [[] for _ in range(n_val)]
    path = tmp_path / "features.parquet"
    pd.DataFrame({"image_id": list(range(1, 7 + n_val)), "labels": labels,
                  "split": ["train"] * 6 + ["val"] * n_val,
                  "embedding": [rng.standard_normal(4).astype(np.float32) for _ in labels]}).to_parquet(path)
    with open_store(db_path) as store:
        ingest_features(store, table=path, add_classes=True)
    assert main(["train", "--mode", "head", "--method", "an", "--epochs", "4", "--db", str(db_path)]) == 0
    out = capsys.readouterr().out
    said = ("this store has no validation split (no image in 'val')" if val == "none" else
            "the validation split has 3 images but no positive label on them")
    flat = " ".join(out.split())
    assert flat.count("warning:") == 1 and said in flat
    assert "no early stopping and no choice of the best epoch" in flat and "cannot calibrate thresholds" in flat
    if val == "none":
        assert "--split val" in flat and "split column" in flat
    else:  # the split is there; it needs labels, not adding
        assert "label the classes on the val images" in flat and "--split val" not in flat
    assert out.index("warning:") < out.index("epoch   1/4")  # up front
    assert "nan" not in out and "val mAP" not in out.replace("no val mAP", "")
    assert [line.split()[1] for line in out.splitlines() if line.startswith("epoch")] == ["1/4", "2/4", "3/4", "4/4"]
    assert "kept the last of 4 epochs (no val positives to choose an epoch by)" in flat
    assert "(no val mAP: no val positives)" in flat
    assert main(["runs", "--db", str(db_path)]) == 0
    assert "nan" not in capsys.readouterr().out


def _train_two_classes(tmp_path, db_path, capsys, *, val_labels):
    rng = np.random.default_rng(0)
    labels = [["cat"], ["dog"], ["cat", "dog"], ["cat"], ["dog"], ["cat"]] + val_labels
    path = tmp_path / "features.parquet"
    pd.DataFrame({"image_id": list(range(1, len(labels) + 1)), "labels": labels,
                  "split": ["train"] * 6 + ["val"] * len(val_labels),
                  "embedding": [rng.standard_normal(4).astype(np.float32) for _ in labels]}).to_parquet(path)
    with open_store(db_path) as store:
        ingest_features(store, table=path, add_classes=True)
    assert main(["train", "--mode", "head", "--method", "an", "--epochs", "2", "--db", str(db_path)]) == 0
    return capsys.readouterr().out


def test_training_with_val_positives_does_not_warn(tmp_path, db_path, capsys):
    out = _train_two_classes(tmp_path, db_path, capsys, val_labels=[["cat"], ["dog"]] * 5)  # 5 per class
    assert "warning:" not in out and "val mAP" in out and "best epoch" in out


def test_training_with_a_tiny_val_split_warns_once_what_it_costs(tmp_path, db_path, capsys):
    """Fresh report 3, finding 4: 3 val positives chose epoch 1 of 400-image training without a word."""
    out = _train_two_classes(tmp_path, db_path, capsys, val_labels=[["cat"], ["dog"], ["cat"]])
    flat = " ".join(out.split())
    assert flat.count("warning:") == 1 and out.index("warning:") < out.index("epoch   1/2")
    assert "only 3 labelled positives for 2 trained classes (fewer than 5 per class)" in flat
    assert "the epoch it chooses" in flat and "holds back" in flat  # what it costs
    assert "at least 5 positives of each class" in flat  # how to fix it
    assert "best epoch" in flat  # it still trains and chooses


def test_training_says_which_reviewed_cells_it_uses(tmp_path, db_path, capsys):
    """Fresh report 3, finding 11: after a review, `train` said nothing about the accepted and rejected cells."""
    out = _train_two_classes(tmp_path, db_path, capsys, val_labels=[["cat"], ["dog"]] * 5)
    assert "train split: uses" not in out  # nothing reviewed yet
    with open_store(db_path) as store:  # image 1 is a cat: a reviewer accepted "dog", one rejected "dog" on image 4
        store.execute("INSERT INTO labels (image_id, category_id, state, origin) VALUES "
                      "(1, (SELECT category_id FROM categories WHERE name = 'dog'), 1, 'accepted'), "
                      "(4, (SELECT category_id FROM categories WHERE name = 'dog'), -1, 'manual')")
    assert main(["train", "--mode", "head", "--method", "an", "--epochs", "2", "--db", str(db_path)]) == 0
    flat = " ".join(capsys.readouterr().out.split())
    assert ("train split: uses 1 positive cells not in the original annotations (1 accepted in review) and 1 "
            "verified negatives (cells marked absent") in flat and "trained as absent, never suggested again" in flat


def test_ingest_counts_images_without_a_label(tmp_path, db_path, capsys):
    """Fresh report 3, finding 12: 200 unlabelled train images passed without a count (a broken join looks so)."""
    rng = np.random.default_rng(0)
    labels = [["cat"], [], ["dog"], [], [], ["cat"]]
    path = tmp_path / "features.parquet"
    pd.DataFrame({"image_id": list(range(1, 7)), "labels": labels, "split": ["train"] * 4 + ["val"] * 2,
                  "embedding": [rng.standard_normal(4).astype(np.float32) for _ in labels]}).to_parquet(path)
    assert main(["ingest", "features", str(path), "--add-classes", "--db", str(db_path)]) == 0
    flat = " ".join(capsys.readouterr().out.split())
    assert "note: 3 images in the store have no positive label (train 2, val 1)" in flat
    assert main(["ingest", "features", str(path), "--add-classes", "--db", str(db_path)]) == 0
    assert "no positive label" not in capsys.readouterr().out  # nothing ingested: nothing to say
