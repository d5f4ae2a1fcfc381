"""Several COCO files in one store (issue 13, item 3): an image is its file, each source keeps its own ids.

Two annotation passes over one image set merge their labels on the same images; per-split files that
each number their images from 1 load side by side; each inline export is its source plus only what
review added; a file naming one file under two ids is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labelfix.cli.main import main
from labelfix.export import export_coco
from labelfix.ingest import ingest_coco
from labelfix.store import open_store
from labelfix.store.database import latest_schema_version
from labelfix.store.labels import load_label_matrix, set_label
from tests.conftest import store_snapshot, write_image


def _write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def _passes(root: Path, *, own_category_ids: bool) -> tuple[Path, Path]:
    """persons.json and bikes.json naming the same 4 images with the same ids (two annotation passes)."""
    images = [{"id": i, "file_name": f"img_{i}.png", "width": 32, "height": 24} for i in range(1, 5)]
    for image in images:
        write_image(root / "images" / image["file_name"], seed=image["id"])
    if own_category_ids:  # each pass lists only its class, both numbered 1
        person, bicycle = [{"id": 1, "name": "person"}], [{"id": 1, "name": "bicycle"}]
    else:  # both list the same full category list
        person = bicycle = [{"id": 1, "name": "person"}, {"id": 2, "name": "bicycle"}]
    bike_id = bicycle[-1]["id"]
    persons = {"info": {"description": "persons pass"}, "images": images, "categories": person,
               "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "area": 16,
                                "iscrowd": 0},
                               {"id": 2, "image_id": 2, "category_id": 1, "bbox": [2, 2, 4, 4], "area": 16,
                                "iscrowd": 0}]}
    bikes = {"info": {"description": "bikes pass"}, "images": images, "categories": bicycle,
             "annotations": [{"id": 7, "image_id": 2, "category_id": bike_id, "bbox": [1, 1, 9, 9], "area": 81,
                              "iscrowd": 0},
                             {"id": 8, "image_id": 3, "category_id": bike_id, "bbox": [0, 0, 5, 5], "area": 25,
                              "iscrowd": 0}]}
    return _write(root / "persons.json", persons), _write(root / "bikes.json", bikes)


@pytest.mark.parametrize("own_category_ids", [False, True], ids=["shared categories", "own categories"])
def test_two_passes_over_one_image_set_merge_and_export_each_source_as_it_was(tmp_path, db_path, capsys,
                                                                               own_category_ids):
    persons, bikes = _passes(tmp_path, own_category_ids=own_category_ids)
    images = str(tmp_path / "images")
    assert main(["ingest", "coco", str(persons), "--images", images, "--db", str(db_path)]) == 0
    assert main(["ingest", "coco", str(bikes), "--images", images, "--db", str(db_path)]) == 0
    assert "4 already in the store: labels merged" in capsys.readouterr().out
    with open_store(db_path) as store:
        matrix = load_label_matrix(store)
        assert matrix.image_ids.tolist() == [1, 2, 3, 4]  # the same images, not 8
        assert matrix.category_names == ["person", "bicycle"]
        assert matrix.states.tolist() == [[1, 0], [1, 1], [0, 1], [0, 0]]  # labels of both passes merged

    out = tmp_path / "out"
    assert main(["export", "coco", "--out", str(out), "--inline", "--db", str(db_path)]) == 0
    printed = capsys.readouterr().out
    assert "bbox-less" not in printed  # nothing was added, so no bbox-less annotation was written
    for source in (persons, bikes):
        written = json.loads((out / f"{source.stem}_corrected.json").read_text())
        assert written == json.loads(source.read_text())  # the source as it was: no "added" labels, images kept

    # A reviewer accepts a missed bicycle on image 1 and a missed person on image 3.
    with open_store(db_path) as store:
        bicycle = store.scalar("SELECT category_id FROM categories WHERE name = 'bicycle'")
        with store.transaction():
            set_label(store, image_id=1, category_id=bicycle, state=1, origin="accepted")
            set_label(store, image_id=3, category_id=1, state=1, origin="accepted")
    assert main(["export", "coco", "--out", str(out), "--inline", "--db", str(db_path)]) == 0
    assert "bbox-less" in capsys.readouterr().out
    persons_out = json.loads((out / "persons_corrected.json").read_text())
    bikes_out = json.loads((out / "bikes_corrected.json").read_text())
    source_persons, source_bikes = json.loads(persons.read_text()), json.loads(bikes.read_text())
    added_persons = persons_out["annotations"][len(source_persons["annotations"]):]
    added_bikes = bikes_out["annotations"][len(source_bikes["annotations"]):]
    assert [(a["id"], a["image_id"], a["category_id"], a["attributes"]) for a in added_persons] == \
        [(3, 3, 1, {"source": "accepted"})]  # the person, in the persons file only
    bike_id = source_bikes["categories"][-1]["id"]
    assert [(a["id"], a["image_id"], a["category_id"]) for a in added_bikes] == [(9, 1, bike_id)]
    assert persons_out["categories"] == source_persons["categories"]  # no class appears from the other pass
    assert {k: v for k, v in persons_out.items() if k != "annotations"} == \
        {k: v for k, v in source_persons.items() if k != "annotations"}


def _split_files(root: Path) -> tuple[Path, Path]:
    """instances_train.json (ids 1-3) and instances_val.json (ids 1-2), each numbering from 1."""
    def coco(split: str, n: int) -> dict:
        images = [{"id": i, "file_name": f"{split}_{i:03d}.png", "width": 32, "height": 24} for i in range(1, n + 1)]
        for image in images:
            write_image(root / split / image["file_name"], seed=len(image["file_name"]) + image["id"])
        return {"images": images, "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
                "annotations": [{"id": i, "image_id": i, "category_id": 1 + i % 2, "bbox": [0, 0, 3, 3]}
                                for i in range(1, n + 1)]}
    return (_write(root / "instances_train.json", coco("train", 3)),
            _write(root / "instances_val.json", coco("val", 2)))


def test_per_split_files_numbered_from_one_both_load(tmp_path, db_path, capsys):
    train, val = _split_files(tmp_path)
    assert main(["ingest", "coco", str(train), "--images", str(tmp_path / "train"), "--db", str(db_path)]) == 0
    assert main(["ingest", "coco", str(val), "--images", str(tmp_path / "val"), "--split", "val",
                 "--db", str(db_path)]) == 0
    with open_store(db_path) as store:
        rows = store.fetchall("SELECT image_id, file_name, split FROM images ORDER BY image_id")
        assert rows == [(1, "train_001.png", "train"), (2, "train_002.png", "train"), (3, "train_003.png", "train"),
                        (4, "val_001.png", "val"), (5, "val_002.png", "val")]  # val ids 1, 2 were taken
        matrix = load_label_matrix(store)
        assert matrix.states.tolist() == [[0, 1], [1, 0], [0, 1], [0, 1], [1, 0]]
        export_coco(store, out_dir=tmp_path / "out", inline=True)
    assert json.loads((tmp_path / "out" / "instances_train_corrected.json").read_text()) == \
        json.loads(train.read_text())
    assert json.loads((tmp_path / "out" / "instances_val_corrected.json").read_text()) == json.loads(val.read_text())
    labels = json.loads((tmp_path / "out" / "labels.json").read_text())
    assert [(i["id"], i.get("source_image_id")) for i in labels["images"]] == \
        [(1, None), (2, None), (3, None), (4, 1), (5, 2)]
    # labels.json is one COCO file over all images: re-ingesting it gives the same labels.
    with open_store(tmp_path / "again.duckdb") as store:
        ingest_coco(store, annotations=tmp_path / "out" / "labels.json", images=None)
        assert load_label_matrix(store).states.tolist() == matrix.states.tolist()


def test_reingesting_a_split_file_is_recognised_before_reading(tmp_path, db_path):
    train, _ = _split_files(tmp_path)
    with open_store(db_path) as store:
        ingest_coco(store, annotations=train, images=tmp_path / "train")
        assert ingest_coco(store, annotations=train, images=tmp_path / "train").already_ingested
        # The same annotations over another images folder are other images.
        for name in ("train_001.png", "train_002.png", "train_003.png"):
            write_image(tmp_path / "copy" / name)
        summary = ingest_coco(store, annotations=train, images=tmp_path / "copy")
        assert (summary.already_ingested, summary.new_images) == (False, 3)


@pytest.mark.parametrize(("first", "second"), [("img_1.png", "img_1.png"), ("img_1.png", "./img_1.png"),
                                             ("sub/x.png", "sub//x.png"), ("sub/x.png", "sub\\x.png")])
def test_one_file_listed_under_two_ids_is_refused(tmp_path, db_path, capsys, first, second):
    # Refused, as the table reader refuses a file named twice: merging would rewrite the file's own ids in
    # its export, and keeping both makes two images with contradictory labels.
    data = {"images": [{"id": 1, "file_name": first}, {"id": 2, "file_name": second}],
            "categories": [{"id": 1, "name": "cat"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1}, {"id": 2, "image_id": 2, "category_id": 1}]}
    source = _write(tmp_path / "twice.json", data)
    write_image(tmp_path / "images" / first)
    argv = ["ingest", "coco", str(source), "--images", str(tmp_path / "images"), "--db", str(db_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "appears twice (image ids 1 and 2)" in err and "image id 2" in err and "fix:" in err
    assert not db_path.exists()


def test_an_added_label_whose_class_no_source_lists_goes_to_the_sources_of_its_image(tmp_path, db_path):
    persons, bikes = _passes(tmp_path, own_category_ids=True)
    with open_store(db_path) as store:
        ingest_coco(store, annotations=persons, images=tmp_path / "images")
        ingest_coco(store, annotations=bikes, images=tmp_path / "images")
        with store.transaction():  # a class created later (a table with --add-classes), accepted on image 4
            store.execute("INSERT INTO categories VALUES (9, 'dog', NULL, '{\"id\": 9, \"name\": \"dog\"}')")
            set_label(store, image_id=4, category_id=9, state=1, origin="manual")
        export_coco(store, out_dir=tmp_path / "out", inline=True)
    for name in ("persons_corrected.json", "bikes_corrected.json"):
        written = json.loads((tmp_path / "out" / name).read_text())
        dog = [c for c in written["categories"] if c["name"] == "dog"]
        assert len(dog) == 1 and dog[0]["id"] == 9  # the class comes along, under a free id
        assert written["annotations"][-1]["image_id"] == 4 and written["annotations"][-1]["category_id"] == 9


def test_a_store_of_schema_version_3_is_migrated_with_its_sources_ids(tmp_path):
    """Stores written before version 4 keep their images, each under its source, and export as before."""
    from store_helpers import old_store

    from labelfix.store.database import latest_schema_version

    db = tmp_path / "old.duckdb"
    connection = old_store(db, through_version=3)
    connection.execute(f"INSERT INTO sources VALUES (1, 'coco', '{tmp_path / 'a.json'}', 'x', '{tmp_path}', '{{}}', now())")
    connection.execute("INSERT INTO categories VALUES (3, 'cat', NULL, '{\"id\": 3, \"name\": \"cat\"}')")
    connection.execute("INSERT INTO images VALUES (7, 'a.png', 32, 24, 'train', 1, ?, "
                       "'{\"id\": 7, \"file_name\": \"a.png\"}')", [str(tmp_path)])
    connection.execute("INSERT INTO annotations VALUES (1, 11, 7, 3, '{\"id\": 11, \"image_id\": 7, \"category_id\": 3}')")
    connection.execute("INSERT INTO labels VALUES (7, 3, 1, 'original', now())")
    connection.close()
    with open_store(db) as store:
        assert store.schema_version == latest_schema_version()
        assert store.fetchall("SELECT source_id, source_image_id, image_id FROM source_images") == [(1, "7", 7)]
        assert store.scalar("SELECT file_key FROM images") == f"{tmp_path.as_posix()}/a.png"
        export_coco(store, out_dir=tmp_path / "out", inline=True)
    inline = json.loads((tmp_path / "out" / "instances_corrected.json").read_text())
    assert inline == {"images": [{"id": 7, "file_name": "a.png"}], "categories": [{"id": 3, "name": "cat"}],
                      "annotations": [{"id": 11, "image_id": 7, "category_id": 3}]}
    # The same file ingested again now is the same image.
    write_image(tmp_path / "a.png")
    _write(tmp_path / "b.json", {"images": [{"id": 1, "file_name": "a.png"}], "categories": [{"id": 1, "name": "dog"}],
                                 "annotations": [{"id": 1, "image_id": 1, "category_id": 1}]})
    with open_store(db) as store:
        summary = ingest_coco(store, annotations=tmp_path / "b.json", images=tmp_path)
        assert (summary.new_images, summary.known_images) == (0, 1)
        assert load_label_matrix(store).states.tolist() == [[1, 1]]


def test_a_failed_ingest_of_a_second_file_leaves_the_store_as_it_was(tmp_path, db_path):
    persons, bikes = _passes(tmp_path, own_category_ids=False)
    with open_store(db_path) as store:
        ingest_coco(store, annotations=persons, images=tmp_path / "images")
    before = store_snapshot(db_path)
    (tmp_path / "images" / "img_4.png").unlink()
    assert main(["ingest", "coco", str(bikes), "--images", str(tmp_path / "images"), "--db", str(db_path)]) == 2
    assert store_snapshot(db_path) == before
