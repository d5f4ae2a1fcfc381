"""COCO export: labels form with sources, the inline form, atomic writes, and the export -> ingest round trip."""

import json

import pytest

from labelfix.cli.main import main
from labelfix.ingest import ingest_coco
from labelfix.export import export_coco
from labelfix.io.coco_writer import write_json_atomic
from labelfix.store import open_store
from labelfix.store.labels import load_label_matrix, set_label


@pytest.fixture
def reviewed_store(db_path, tiny_coco):
    with open_store(db_path) as store:
        ingest_coco(store, annotations=tiny_coco, images=tiny_coco.parent / "images")
        with store.transaction():
            set_label(store, image_id=2, category_id=1, state=1, origin="accepted")  # a missed cat, accepted
            set_label(store, image_id=4, category_id=5, state=1, origin="auto")
            set_label(store, image_id=4, category_id=2, state=-1, origin="manual")  # verified absent
            set_label(store, image_id=1, category_id=5, state=-1, origin="manual")  # spurious original, rejected
    return db_path


def test_labels_json_has_sources_and_keeps_every_key(reviewed_store, tmp_path, tiny_coco):
    with open_store(reviewed_store) as store:
        summary = export_coco(store, out_dir=tmp_path / "out")
        assert store.scalar("SELECT count(*) FROM exports") == 1
    document = json.loads((tmp_path / "out" / "labels.json").read_text())
    source = json.loads(tiny_coco.read_text())
    assert document["info"] == source["info"] and document["licenses"] == source["licenses"]
    assert document["my_top_key"] == [1, 2]
    assert document["images"] == source["images"]  # same ids, unknown keys kept, image 4 with no labels kept
    assert document["categories"] == source["categories"]
    cells = {(a["image_id"], a["category_id"]): a["attributes"]["source"] for a in document["annotations"]}
    assert cells == {(1, 1): "original", (2, 1): "accepted", (2, 2): "original", (3, 1): "original",
                     (3, 5): "original", (4, 5): "auto"}
    assert (4, 2) not in cells and (1, 5) not in cells  # verified negatives never become annotations
    assert len({a["id"] for a in document["annotations"]}) == len(document["annotations"])
    assert summary.by_source == {"original": 4, "accepted": 1, "auto": 1}


def test_inline_export_appends_bboxless_annotations_without_renumbering(reviewed_store, tmp_path, tiny_coco, capsys):
    code = main(["export", "coco", "--out", str(tmp_path / "out"), "--inline", "--db", str(reviewed_store)])
    assert code == 0
    out = capsys.readouterr().out
    assert "expect a bbox on every annotation" in out and "2 verified negatives (negative_labels)" in out
    inline = json.loads((tmp_path / "out" / "instances_corrected.json").read_text())
    source = json.loads(tiny_coco.read_text())
    original_ids = {a["id"] for a in source["annotations"]}
    assert inline["annotations"][: len(source["annotations"])] == source["annotations"]  # unchanged, same order
    added = inline["annotations"][len(source["annotations"]):]
    assert [(a["image_id"], a["category_id"]) for a in added] == [(2, 1), (4, 5)]
    assert [a["id"] for a in added] == [max(original_ids) + 1, max(original_ids) + 2]
    assert all("bbox" not in a for a in added)
    assert {k: v for k, v in inline.items() if k != "annotations"} == \
        {k: v for k, v in source.items() if k != "annotations"}


def test_round_trip_export_then_ingest_gives_same_labels(reviewed_store, tmp_path):
    with open_store(reviewed_store) as store:
        export_coco(store, out_dir=tmp_path / "out")
        original = load_label_matrix(store)
    fresh = tmp_path / "fresh.duckdb"
    with open_store(fresh) as store:
        ingest_coco(store, annotations=tmp_path / "out" / "labels.json", images=tmp_path / "images")
        again = load_label_matrix(store)
    assert again.image_ids.tolist() == original.image_ids.tolist()
    assert again.category_ids.tolist() == original.category_ids.tolist()
    assert (again.states == 1).tolist() == (original.states == 1).tolist()
    assert again.states.tolist() == original.states.tolist()  # verified negatives too (issue 13)
    assert (original.states == -1).sum() == 2  # (4, dog) verified absent, (1, car) an original rejected
    assert again.splits.tolist() == original.splits.tolist()
    document = json.loads((tmp_path / "out" / "labels.json").read_text())
    assert document["negative_labels"] == [{"image_id": 1, "category_id": 5, "source": "manual"},
                                           {"image_id": 4, "category_id": 2, "source": "manual"}]


def test_atomic_write_leaves_old_file_when_serialisation_fails(tmp_path):
    target = tmp_path / "labels.json"
    write_json_atomic({"ok": 1}, target)
    with pytest.raises(TypeError):
        write_json_atomic({"bad": object()}, target)
    assert json.loads(target.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["labels.json"]


def test_export_needs_an_existing_store(tmp_path, capsys):
    assert main(["export", "coco", "--out", str(tmp_path / "o"), "--db", str(tmp_path / "none.duckdb")]) == 2
    assert "labelfix init" in capsys.readouterr().err


def test_inline_warning_only_when_bboxless_annotations_were_written(db_path, tiny_coco, tmp_path, capsys):
    """No review: nothing added, no warning. A label accepted then rejected again: still nothing added."""
    with open_store(db_path) as store:
        ingest_coco(store, annotations=tiny_coco, images=tiny_coco.parent / "images")
    assert main(["export", "coco", "--out", str(tmp_path / "a"), "--inline", "--db", str(db_path)]) == 0
    assert "bbox" not in capsys.readouterr().out
    with open_store(db_path) as store, store.transaction():
        set_label(store, image_id=2, category_id=1, state=1, origin="accepted")
        set_label(store, image_id=2, category_id=1, state=-1, origin="manual")
    assert main(["export", "coco", "--out", str(tmp_path / "b"), "--inline", "--db", str(db_path)]) == 0
    assert "bbox" not in capsys.readouterr().out
    inline = json.loads((tmp_path / "b" / "instances_corrected.json").read_text())
    assert inline == json.loads(tiny_coco.read_text())


@pytest.mark.parametrize("negatives, message", [
    ({"image_id": 1}, "is dict, not a list"),
    ([{"image_id": 1, "category_id": "cat"}], "needs integer image_id and category_id"),
    ([{"image_id": 99, "category_id": 1}], "image_id 99 is not in images"),
    ([{"image_id": 1, "category_id": 7}], "category_id 7 is not in categories"),
    ([{"image_id": 1, "category_id": 1}], "both annotated and listed as a verified negative"),
])
def test_bad_negative_labels_are_refused_with_one_message(tmp_path, tiny_coco, negatives, message, capsys):
    data = json.loads(tiny_coco.read_text())
    data["negative_labels"] = negatives
    path = tmp_path / "labels_edited.json"
    path.write_text(json.dumps(data))
    db = tmp_path / "fresh.duckdb"
    assert main(["ingest", "coco", str(path), "--images", str(tiny_coco.parent / "images"), "--db", str(db)]) == 2
    out = capsys.readouterr()
    assert message in out.err + out.out and "Traceback" not in out.err + out.out
    assert not db.exists()


def test_split_given_on_the_command_line_survives_the_round_trip(db_path, tiny_coco, tmp_path):
    # A val file ingested with --split val has no "split" key of its own: labels.json must carry the store's split.
    document = json.loads(tiny_coco.read_text())
    for image in document["images"]:
        del image["split"]
    tiny_coco.write_text(json.dumps(document))
    with open_store(db_path) as store:
        ingest_coco(store, annotations=tiny_coco, images=tmp_path / "images", split="val")
        export_coco(store, out_dir=tmp_path / "out")
        original = load_label_matrix(store)
    assert set(original.splits.tolist()) == {"val"}
    document = json.loads((tmp_path / "out" / "labels.json").read_text())
    assert {image["split"] for image in document["images"]} == {"val"}
    with open_store(tmp_path / "fresh.duckdb") as store:
        ingest_coco(store, annotations=tmp_path / "out" / "labels.json", images=tmp_path / "images")
        assert load_label_matrix(store).splits.tolist() == original.splits.tolist()


# -- the inline export is atomic as a set (fresh-user report, item 7) ------------------------------

def _md5s(folder):
    import hashlib

    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_inline_export_with_a_folder_on_the_second_files_name_writes_nothing(reviewed_store, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "instances_corrected.json").mkdir(parents=True)
    code = main(["export", "coco", "--out", str(out), "--inline", "--db", str(reviewed_store)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"{out / 'instances_corrected.json'}: is a folder" in err and "fix:" in err
    assert ".tmp" not in err
    assert sorted(p.name for p in out.iterdir()) == ["instances_corrected.json"]  # no labels.json, no temp
    with open_store(reviewed_store) as store:
        assert store.scalar("SELECT count(*) FROM exports") == 0


def test_a_failed_inline_export_leaves_the_earlier_export_as_it_was(reviewed_store, tmp_path, capsys, monkeypatch):
    import labelfix.export as export_module

    out = tmp_path / "out"
    assert main(["export", "coco", "--out", str(out), "--inline", "--db", str(reviewed_store)]) == 0
    before = _md5s(out)
    assert set(before) == {"labels.json", "instances_corrected.json"}
    with open_store(reviewed_store) as store:
        set_label(store, image_id=3, category_id=2, state=1, origin="accepted")  # the next export would differ
    real = export_module.write_coco

    def fail_on_the_second(path, **kwargs):
        if ".instances_corrected.json." in path.name:
            raise OSError(28, "No space left on device", str(path))
        return real(path, **kwargs)

    monkeypatch.setattr(export_module, "write_coco", fail_on_the_second)
    capsys.readouterr()
    code = main(["export", "coco", "--out", str(out), "--inline", "--db", str(reviewed_store)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"{out / 'instances_corrected.json'}: no space left on device" in err and ".tmp" not in err
    assert _md5s(out) == before  # both files unchanged, no temporary left
    assert sorted(p.name for p in out.iterdir()) == sorted(before)
    with open_store(reviewed_store) as store:
        assert store.scalar("SELECT count(*) FROM exports") == 2  # the first export's two files only


def test_a_failed_rename_puts_back_the_files_already_replaced(tmp_path, monkeypatch):
    import os

    from labelfix.internal.atomic import atomic_targets

    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(f"old {name}")
    real_replace = os.replace

    def fail_for_b(source, target):
        if str(target).endswith("b.json") and str(source).endswith(".tmp"):
            raise PermissionError(13, "Permission denied", str(source), None, str(target))
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", fail_for_b)
    with pytest.raises(PermissionError) as raised:
        with atomic_targets() as files:
            files.temporary(tmp_path / "a.json").write_text("new a")
            files.temporary(tmp_path / "b.json").write_text("new b")
    assert raised.value.filename == str(tmp_path / "b.json")  # the user's path, not the temporary
    assert (tmp_path / "a.json").read_text() == "old a.json" and (tmp_path / "b.json").read_text() == "old b.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]


def test_a_failed_export_into_a_new_folder_leaves_no_folder(reviewed_store, tmp_path, monkeypatch):
    import labelfix.export as export_module

    def fail(path, **kwargs):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(export_module, "write_coco", fail)
    assert main(["export", "coco", "--out", str(tmp_path / "new" / "out"), "--db", str(reviewed_store)]) == 2
    assert not (tmp_path / "new").exists()


def test_a_folder_on_the_second_name_leaves_an_earlier_labels_json_unchanged(reviewed_store, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", "coco", "--out", str(out), "--inline", "--db", str(reviewed_store)]) == 0
    labels_before = _md5s(out)["labels.json"]
    (out / "instances_corrected.json").unlink()
    (out / "instances_corrected.json").mkdir()
    with open_store(reviewed_store) as store:
        set_label(store, image_id=3, category_id=2, state=1, origin="accepted")  # the next labels.json would differ
    capsys.readouterr()
    assert main(["export", "coco", "--out", str(out), "--inline", "--db", str(reviewed_store)]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'instances_corrected.json'}: is a folder" in err and ".tmp" not in err
    assert _md5s(out) == {"labels.json": labels_before}
    assert sorted(p.name for p in out.iterdir()) == ["instances_corrected.json", "labels.json"]
    with open_store(reviewed_store) as store:
        assert store.scalar("SELECT count(*) FROM exports") == 2  # the earlier export's two files only
