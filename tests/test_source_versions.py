"""An annotation file ingested again after an edit (issue 13, fresh-user finding 10).

A plain ingest only adds labels: it now says so, naming the earlier version and what the store keeps that
the file no longer has. ``--replace-source`` makes the store's original labels follow the new version,
keeps every reviewer decision, and the inline export writes one file for the source again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from labelfix.cli.main import main
from labelfix.export import export_coco
from labelfix.ingest import ingest_coco, ingest_table
from labelfix.states import NEGATIVE, POSITIVE
from labelfix.store import open_store
from labelfix.store.labels import label_counts, load_label_matrix, set_label
from tests.conftest import write_image


def _run(capsys, argv: list[object]) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


def _persons(path: Path, annotated: list[int], *, images: tuple[int, ...] = (1, 2, 3, 4)) -> Path:
    """The fresh user's persons.json: images 1-4, 'person' on the images in ``annotated``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "images": [{"id": i, "file_name": f"{i}.png", "width": 32, "height": 24} for i in images],
        "annotations": [{"id": n + 1, "image_id": i, "category_id": 1, "bbox": [1, 1, 4, 4]}
                        for n, i in enumerate(annotated)],
        "categories": [{"id": 1, "name": "person"}]}))
    return path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    for i in range(1, 6):
        write_image(tmp_path / "img" / f"{i}.png", seed=i)
    return tmp_path / "img"


def _positives(store) -> set[tuple[str, str]]:
    return set(store.fetchall(f"SELECT i.file_name, c.name FROM labels l JOIN images i USING (image_id) "
                              f"JOIN categories c USING (category_id) WHERE l.state = {POSITIVE}"))


# -- a plain ingest of an edited file: adds, and says what it keeps ---------------------------------------------
def test_an_edited_copy_warns_naming_the_earlier_file_and_the_label_it_keeps(tmp_path, images, capsys):
    """The fresh user's case: v2/persons.json drops the person on image 1 and adds one on image 3."""
    v1 = _persons(tmp_path / "persons.json", [1])
    v2 = _persons(tmp_path / "v2" / "persons.json", [3])
    db = tmp_path / "s.duckdb"
    assert _run(capsys, ["--db", db, "ingest", "coco", v1, "--images", images])[0] == 0
    code, text = _run(capsys, ["--db", db, "ingest", "coco", v2, "--images", images])
    assert code == 0 and "Traceback" not in text
    assert f"warning: persons.json was ingested before with other content: source 1 ({v1.resolve()})" in text
    assert ("The store keeps 1 original label that only the earlier version gives (e.g. 'person' on 1.png): "
            "an ingest adds labels, it never removes one") in text
    assert "`export coco --inline` writes one file for each" in text and "--replace-source" in text
    with open_store(db) as store:
        assert _positives(store) == {("1.png", "person"), ("3.png", "person")}  # only added, as it says


def test_a_file_edited_in_place_warns_too(tmp_path, images):
    path = _persons(tmp_path / "persons.json", [1, 2])
    with open_store(tmp_path / "s.duckdb") as store:
        ingest_coco(store, annotations=path, images=images)
        _persons(path, [2, 3])
        with pytest.warns(UserWarning, match=r"persons.json was ingested before with other content") as caught:
            summary = ingest_coco(store, annotations=path, images=images)
        assert "keeps 1 original label" in str(caught[0].message)
        assert summary.versions is not None and not summary.replaced
        assert (summary.versions.labels_not_in_file, summary.versions.example) == (1, "'person' on 1.png")


def test_a_new_version_that_only_adds_warns_without_a_count(tmp_path, images):
    path = _persons(tmp_path / "persons.json", [1])
    with open_store(tmp_path / "s.duckdb") as store:
        ingest_coco(store, annotations=path, images=images)
        _persons(path, [1, 2])
        with pytest.warns(UserWarning, match="ingested before with other content") as caught:
            ingest_coco(store, annotations=path, images=images)
        assert "keeps" not in str(caught[0].message)


@pytest.mark.parametrize("case", ["two passes", "per-split files", "other images folder"])
def test_files_that_are_not_versions_of_each_other_get_no_warning(tmp_path, images, recwarn, case):
    first = _persons(tmp_path / "persons.json", [1])
    second_images = images
    if case == "two passes":  # another name over the same images
        second = _persons(tmp_path / "bikes.json", [2])
    elif case == "per-split files":  # the same name, no image in common
        first = _persons(tmp_path / "train" / "persons.json", [1], images=(1, 2))
        second = _persons(tmp_path / "val" / "persons.json", [3], images=(3, 4))
    else:  # the same file over another folder: other images
        shutil.copytree(images, tmp_path / "img2")
        second, second_images = _persons(tmp_path / "persons.json", [1, 2]), tmp_path / "img2"
        first = _persons(tmp_path / "first" / "persons.json", [1])
    with open_store(tmp_path / "s.duckdb") as store:
        ingest_coco(store, annotations=first, images=images)
        summary = ingest_coco(store, annotations=second, images=second_images, split="val"
                              if case == "per-split files" else "train")
    assert summary.versions is None
    assert not [w for w in recwarn if "ingested before" in str(w.message)]


# -- --replace-source --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("plain_first", [False, True], ids=["replace-at-once", "after-a-plain-ingest"])
def test_replace_source_makes_the_original_labels_follow_the_new_version(tmp_path, images, capsys, plain_first):
    v1 = _persons(tmp_path / "persons.json", [1, 2])
    v2 = _persons(tmp_path / "v2" / "persons.json", [2, 3])
    db = tmp_path / "s.duckdb"
    assert _run(capsys, ["--db", db, "ingest", "coco", v1, "--images", images])[0] == 0
    if plain_first:
        assert _run(capsys, ["--db", db, "ingest", "coco", v2, "--images", images])[0] == 0
    code, text = _run(capsys, ["--db", db, "ingest", "coco", v2, "--images", images, "--replace-source"])
    assert code == 0 and "warning" not in text
    assert (f"replaced the earlier version source 1 ({v1.resolve()}): removed 1 original label only it had "
            f"(e.g. 'person' on 1.png), reviewers' decisions kept") in text
    assert ("already ingested (same file content); replaced" in text) == plain_first
    with open_store(db) as store:
        assert _positives(store) == {("2.png", "person"), ("3.png", "person")}
        assert store.fetchall("SELECT source_id, replaced_by FROM sources ORDER BY source_id") == [(1, 2), (2, None)]
        assert sorted(store.fetchall("SELECT image_id, category_id, source_id FROM original_labels")) == \
            [(2, 1, 2), (3, 1, 2)]
        assert store.scalar("SELECT count(*) FROM annotations WHERE source_id = 1") == 0  # no old boxes in review
        summary = export_coco(store, out_dir=tmp_path / "out", inline=True)
    assert [p.name for p in summary.paths] == ["labels.json", "instances_corrected.json"]  # one file, not .1/.2
    assert json.loads((tmp_path / "out" / "instances_corrected.json").read_text()) == json.loads(v2.read_text())
    # Again: nothing left to replace, nothing changes.
    code, text = _run(capsys, ["--db", db, "ingest", "coco", v2, "--images", images, "--replace-source"])
    assert code == 0 and "already ingested (same file content): nothing changed" in text


def test_replace_source_keeps_every_reviewer_decision(tmp_path, images):
    v1 = _persons(tmp_path / "persons.json", [1, 2, 4])
    v2 = _persons(tmp_path / "persons_v2" / "persons.json", [3])
    with open_store(tmp_path / "s.duckdb") as store:
        ingest_coco(store, annotations=v1, images=images)
        person = store.scalar("SELECT category_id FROM categories")
        set_label(store, image_id=2, category_id=person, state=NEGATIVE, origin="accepted")  # a spurious one, agreed
        set_label(store, image_id=4, category_id=person, state=POSITIVE, origin="manual")  # confirmed by hand
        set_label(store, image_id=5, category_id=person, state=POSITIVE, origin="accepted")  # a missing one, added
        summary = ingest_coco(store, annotations=v2, images=images, replace_source=True)
        assert summary.replaced and summary.versions.labels_not_in_file == 1  # only image 1 was plain original
        states = {(int(i), origin): state for i, _, state, origin in
                  store.fetchall("SELECT image_id, category_id, state, origin FROM labels")}
        assert states == {(2, "accepted"): NEGATIVE, (4, "manual"): POSITIVE, (5, "accepted"): POSITIVE,
                          (3, "original"): POSITIVE}


def test_a_label_another_source_also_gives_stays(tmp_path, images):
    v1 = _persons(tmp_path / "persons.json", [1, 2])
    table = tmp_path / "extra.csv"
    table.write_text("file_name,labels\n1.png,person\n")
    v2 = _persons(tmp_path / "v2" / "persons.json", [3])
    with open_store(tmp_path / "s.duckdb") as store:
        ingest_coco(store, annotations=v1, images=images)
        ingest_table(store, table=table, images=images)
        summary = ingest_coco(store, annotations=v2, images=images, replace_source=True)
        assert summary.versions.labels_not_in_file == 1 and summary.versions.example == "'person' on 2.png"
        assert _positives(store) == {("1.png", "person"), ("3.png", "person")}
        # The table now holds the original label it gave too (the first version gave it first).
        assert store.scalar("SELECT s.kind FROM original_labels o JOIN sources s USING (source_id) "
                            "WHERE o.image_id = 1") == "table"


def test_images_only_the_earlier_version_lists_stay_and_are_counted(tmp_path, images, capsys):
    v1 = _persons(tmp_path / "persons.json", [1, 4], images=(1, 2, 3, 4))
    v2 = _persons(tmp_path / "v2" / "persons.json", [1], images=(1, 2, 3))
    db = tmp_path / "s.duckdb"
    _run(capsys, ["--db", db, "ingest", "coco", v1, "--images", images])
    code, text = _run(capsys, ["--db", db, "ingest", "coco", v2, "--images", images, "--replace-source"])
    assert code == 0 and "removed 1 original label only it had (e.g. 'person' on 4.png)" in text
    assert "1 images only it listed stay in the store" in text
    with open_store(db) as store:
        assert store.scalar("SELECT count(*) FROM images") == 4
        export_coco(store, out_dir=tmp_path / "out", inline=True)
    inline = json.loads((tmp_path / "out" / "instances_corrected.json").read_text())
    assert [image["id"] for image in inline["images"]] == [1, 2, 3]


def test_the_earlier_version_can_come_back(tmp_path, images):
    """A replaced version is history: ingesting its content again is not 'already ingested'."""
    v1 = _persons(tmp_path / "persons.json", [1])
    v2 = _persons(tmp_path / "v2" / "persons.json", [3])
    with open_store(tmp_path / "s.duckdb") as store:
        ingest_coco(store, annotations=v1, images=images)
        ingest_coco(store, annotations=v2, images=images, replace_source=True)
        summary = ingest_coco(store, annotations=v1, images=images, replace_source=True)
        assert not summary.already_ingested and summary.replaced
        assert _positives(store) == {("1.png", "person")}
        assert store.fetchall("SELECT source_id, replaced_by FROM sources ORDER BY source_id") == \
            [(1, 2), (2, 3), (3, None)]


def test_replace_source_with_no_earlier_version_is_a_plain_ingest(tmp_path, images):
    with open_store(tmp_path / "s.duckdb") as store:
        summary = ingest_coco(store, annotations=_persons(tmp_path / "persons.json", [1]), images=images,
                              replace_source=True)
        assert (summary.new_images, summary.new_positive_labels, summary.replaced) == (4, 1, False)


def test_an_edited_label_table_is_replaced(tmp_path, images, capsys):
    table = tmp_path / "labels.csv"
    table.write_text("file_name,labels\n1.png,cat;dog\n2.png,dog\n")
    db = tmp_path / "s.duckdb"
    assert _run(capsys, ["--db", db, "ingest", "table", table, "--images", images, "--add-classes"])[0] == 0
    table.write_text("file_name,labels\n1.png,cat\n2.png,dog\n")
    code, text = _run(capsys, ["--db", db, "ingest", "table", table, "--images", images, "--replace-source"])
    assert code == 0 and "removed 1 original label only it had (e.g. 'dog' on 1.png)" in text
    with open_store(db) as store:
        matrix = load_label_matrix(store)
        assert matrix.states.tolist() == [[1, 0], [0, 1]]
        assert label_counts(store) == {"positive/original": 2}


def test_a_store_of_version_7_gets_each_sources_labels(tmp_path, images):
    """Migration 0008 fills source_labels from the annotations (COCO) and original_labels (tables)."""
    db = tmp_path / "s.duckdb"
    table = tmp_path / "extra.csv"
    table.write_text("file_name,labels\n1.png,person\n5.png,person\n")
    with open_store(db) as store:
        ingest_coco(store, annotations=_persons(tmp_path / "persons.json", [1, 2]), images=images)
        ingest_table(store, table=table, images=images)
        expected = sorted(store.fetchall("SELECT * FROM source_labels"))
    connection = duckdb.connect(str(db))
    connection.execute("DROP TABLE source_labels; ALTER TABLE sources DROP COLUMN replaced_by; "
                       "DELETE FROM schema_migrations WHERE version = 8")
    connection.close()
    with open_store(db) as store:
        backfilled = sorted(store.fetchall("SELECT * FROM source_labels"))
    # The table's 1.png was given first by the COCO file: before version 8 no record of it is left.
    assert backfilled == [cell for cell in expected if cell != (2, 1, 1)]
    assert (1, 1, 1) in backfilled and (2, 5, 1) in backfilled


def test_replace_source_that_finds_nothing_says_so(tmp_path, images, capsys):
    """The fresh user's persons_v2.json: another name, so not taken for a version (two passes have other names)."""
    db = tmp_path / "s.duckdb"
    _run(capsys, ["--db", db, "ingest", "coco", _persons(tmp_path / "persons.json", [1]), "--images", images])
    code, text = _run(capsys, ["--db", db, "ingest", "coco", _persons(tmp_path / "persons_v2.json", [3]),
                               "--images", images, "--replace-source"])
    assert code == 0 and "note: --replace-source replaced nothing: no earlier version of persons_v2.json" in text
