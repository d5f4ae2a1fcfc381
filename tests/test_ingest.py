"""Ingest of COCO, label tables and features tables, including valid-but-unusual input."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from labelfix.ingest import ingest_coco, ingest_features, ingest_table
from labelfix.store import open_store
from labelfix.store.embeddings import read_embedding_set
from labelfix.store.labels import load_label_matrix
from tests.conftest import make_coco, store_snapshot, write_image


def test_coco_ingest_keeps_ids_records_and_image_level_labels(db_path, tiny_coco):
    with open_store(db_path) as store:
        summary = ingest_coco(store, annotations=tiny_coco, images=tiny_coco.parent / "images")
        assert (summary.new_images, summary.new_categories) == (4, 3)
        assert summary.new_positive_labels == 5  # images 1, 3: cat+car; image 2: dog
        record = json.loads(store.scalar("SELECT record FROM images WHERE image_id = 1"))
        assert record["custom_key"] == {"camera": "a"}
        assert store.scalar("SELECT name FROM categories WHERE category_id = 5") == "car"
        assert store.scalar("SELECT count(*) FROM annotations") == 5
        header = json.loads(store.scalar("SELECT header FROM sources"))
        assert header["my_top_key"] == [1, 2] and header["info"]["description"] == "tiny"


def test_reingest_is_idempotent_and_second_file_adds(db_path, tmp_path, tiny_coco):
    with open_store(db_path) as store:
        ingest_coco(store, annotations=tiny_coco, images=tmp_path / "images")
    before = store_snapshot(db_path)
    with open_store(db_path) as store:
        assert ingest_coco(store, annotations=tiny_coco, images=tmp_path / "images").already_ingested
    assert store_snapshot(db_path) == before
    second = make_coco(tmp_path, n_images=2, name="more.json", id_offset=100)
    with open_store(db_path) as store:
        summary = ingest_coco(store, annotations=second, images=tmp_path / "images")
        assert summary.new_images == 2 and summary.new_categories == 0
        assert store.scalar("SELECT count(*) FROM images") == 6


def _unusual_images(root: Path) -> dict[str, Path]:
    images = root / "images"
    files = {
        "gray.png": write_image(images / "gray.png", mode="L"),
        "rgba.png": write_image(images / "rgba.png", mode="RGBA"),
        "cmyk.jpg": write_image(images / "cmyk.jpg", mode="CMYK"),
        "ünïcødé 画像.png": write_image(images / "ünïcødé 画像.png"),
    }
    sixteen = images / "sixteen.png"
    Image.fromarray((np.arange(24 * 32, dtype=np.uint16).reshape(24, 32) * 80)).save(sixteen)
    files["sixteen.png"] = sixteen
    rotated = images / "exif.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: shown as 24 x 32
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(rotated, exif=exif)
    files["exif.jpg"] = rotated
    return files


def test_unusual_but_valid_images_ingest_and_decode(db_path, tmp_path):
    from labelfix.io.images import load_rgb

    files = _unusual_images(tmp_path)
    images = [{"id": i + 1, "file_name": name, "extra": {"x": i}} for i, name in enumerate(files)]
    annotations = [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 1, "segmentation": {"counts": "x"},
                    "area": 3.0, "bbox": [0, 0, 1, 1], "whatever": None},
                   {"id": 2, "image_id": 2, "category_id": 1}]  # a bbox-less image-level annotation
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "thing", "k": "v"}]}
    path = tmp_path / "unusual.json"
    path.write_text(json.dumps(coco, ensure_ascii=False), encoding="utf-8")
    with open_store(db_path) as store:
        ingest_coco(store, annotations=path, images=tmp_path / "images")
        sizes = dict(store.fetchall("SELECT file_name, [width, height] FROM images"))
    assert sizes["exif.jpg"] == [24, 32]
    for name, file in files.items():
        image = load_rgb(file)
        assert image.mode == "RGB", name
    assert load_rgb(files["exif.jpg"]).size == (24, 32)
    assert np.asarray(load_rgb(files["sixteen.png"])).max() == 255  # 16-bit rescaled, not clipped


def test_table_ingest_csv_and_parquet(db_path, tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        write_image(tmp_path / "images" / name)
    csv = tmp_path / "labels.csv"
    csv.write_text('file_name,labels,split\na.png,cat;dog,train\nb.png,"[""cat""]",val\nc.png,,test\n')
    with open_store(db_path) as store:
        summary = ingest_table(store, table=csv, images=tmp_path / "images")
        assert summary.new_images == 3 and summary.new_categories == 2
        matrix = load_label_matrix(store)
        assert matrix.category_names == ["cat", "dog"]
        assert matrix.states.tolist() == [[1, 1], [1, 0], [0, 0]]
        assert list(matrix.splits) == ["train", "val", "test"]
        assert ingest_table(store, table=csv, images=tmp_path / "images").already_ingested
    parquet = tmp_path / "more.parquet"
    write_image(tmp_path / "images" / "d.png")
    pd.DataFrame({"file_name": ["d.png"], "labels": [["dog"]]}).to_parquet(parquet)
    with open_store(db_path) as store:
        ingest_table(store, table=parquet, images=tmp_path / "images")
        assert load_label_matrix(store).states[-1].tolist() == [0, 1]


def test_features_table_ingest_registers_embeddings(db_path, tmp_path):
    path = tmp_path / "features.parquet"
    frame = pd.DataFrame({"image_id": [10, 11, 12], "labels": [["a"], ["a", "b"], []],
                          "embedding": [np.full(4, i, np.float32) for i in range(3)],
                          "split": ["train", "val", "test"]})
    frame.to_parquet(path)
    with open_store(db_path) as store:
        ingest_features(store, table=path)
        name = store.scalar("SELECT name FROM embedding_sets")
        ids, embeddings = read_embedding_set(store, name)
        assert ids.tolist() == [10, 11, 12] and embeddings.shape == (3, 4)
        assert load_label_matrix(store).states.tolist() == [[1, 0], [1, 1], [0, 0]]
