"""The streaming JSON reader's runs: parsed many items per call, cut only at true item boundaries."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from labelfix.errors import InputError
from labelfix.io import json_stream
from labelfix.io.json_stream import JsonStream

TRICKY = [
    {"id": 1, "name": "a}, {\"b\": 2}"},  # a "}," inside a string: not a boundary
    {"id": 2, "seg": {"counts": "x}", "size": [2, 3]}, "n": {"m": {}}},  # nested objects end in "},"
    {"id": 3, "s": "\\\"}]"},
    {"id": 4, "f": 1.5e3, "u": "é \u2028 😀"},
    [1, 2, {"x": "}"}],  # an item that is not an object
    "text } , ]",
    7,
    None,
    {"id": 5},
]


def _runs(text: str, *, run: int) -> tuple[list, str]:
    stream = JsonStream(io.StringIO(text), path=Path("x.json"))
    values, texts = [], []
    for run_values, run_text in stream.item_runs(run=run):
        values.extend(run_values)
        texts.append(run_text)
    assert stream.peek() == ""
    return values, ",".join(texts)


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("run", [1, 7, 40, 1 << 16])
def test_runs_give_every_item_with_its_source_text(monkeypatch: pytest.MonkeyPatch, indent: int | None,
                                                   run: int) -> None:
    monkeypatch.setattr(json_stream, "WINDOW", 23)  # items cross window edges
    text = json.dumps(TRICKY * 3, indent=indent, ensure_ascii=False)
    values, joined = _runs(text, run=run)
    assert values == TRICKY * 3
    assert json.loads("[" + joined + "]") == TRICKY * 3  # the texts, re-joined, are the same items


def test_empty_and_single_item_arrays() -> None:
    assert _runs("[]", run=10) == ([], "")
    assert _runs(" [ {\"a\": 1} ] ", run=10)[0] == [{"a": 1}]


@pytest.mark.parametrize("text, line", [("[{\"a\": 1},\n{\"a\": }]", 2), ("[{\"a\": 1},\n\n{\"a\": NaN}]", 3),
                                        ("[{\"a\": 1},]", 1), ("[{\"a\": 1} {\"b\": 2}]", 1),
                                        ("[{\"a\": 1},\n{\"a\": 2}", 2)])
def test_syntax_errors_are_reported_with_their_line(text: str, line: int) -> None:
    with pytest.raises(InputError, match=f"line {line}"):
        _runs(text, run=1 << 16)


def test_indented_coco_with_tricky_records_round_trips_through_the_store(tmp_path: Path) -> None:
    """Runs of records (newlines, nested RLE objects, "}," in strings) are stored and exported as they were."""
    from labelfix.export import export_coco
    from labelfix.ingest import ingest_coco
    from labelfix.store import open_store

    images = [{"id": i, "file_name": f"{i}.jpg", "note": "a}, {\"b\": 1}" if i == 2 else "é"} for i in range(1, 40)]
    annotations = [{"id": 10 * i, "image_id": 1 + i % 39, "category_id": 1 + i % 2, "iscrowd": i % 3 == 0,
                    "segmentation": {"counts": "ab}],", "size": [4, 5]} if i % 3 == 0 else [[1.5, 2, 3, 4]]}
                   for i in range(1, 300)]
    source = {"info": {"v": 1}, "images": images, "annotations": annotations,
              "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
    path = tmp_path / "indented.json"
    path.write_text(json.dumps(source, indent=3, ensure_ascii=False), encoding="utf-8")
    with open_store(tmp_path / "s.duckdb") as store:
        summary = ingest_coco(store, annotations=path, images=None, check_images="none")
        assert (summary.new_images, summary.new_annotations) == (39, 299)
        export_coco(store, out_dir=tmp_path / "out", inline=True)
    assert json.loads((tmp_path / "out" / "instances_corrected.json").read_text(encoding="utf-8")) == source


@pytest.mark.parametrize("bad, message", [
    ({"id": 2**64, "image_id": 1, "category_id": 1}, r"out of range \(at most 2\^63-1\)"),
    ({"id": 3, "image_id": 2**63, "category_id": 1}, r"image_id 9223372036854775808 is out of range"),
    ({"id": True, "image_id": 1, "category_id": 1}, "is not an integer"),
    ({"id": 3, "image_id": 1.0, "category_id": 1}, "must be integers"),
    ({"image_id": 1, "category_id": 1}, "annotation id None is not an integer"),
    ([1, 2], "not an object"),
])
def test_odd_annotation_records_in_a_run_get_one_message(tmp_path: Path, bad: object, message: str) -> None:
    from labelfix.io.coco import read_coco

    annotations = [{"id": i, "image_id": 1, "category_id": 1} for i in range(1, 50)] + [bad]
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "1.jpg"}], "annotations": annotations,
                                "categories": [{"id": 1, "name": "cat"}]}))
    with pytest.raises(InputError, match=message) as error:
        read_coco(path, images_root=None, records=False)
    assert "annotations[49]" in str(error.value) or "annotation id" in str(error.value)


def test_huge_image_and_category_ids_are_refused(tmp_path: Path) -> None:
    from labelfix.io.coco import read_coco

    for images, categories in (([{"id": 2**63, "file_name": "1.jpg"}], [{"id": 1, "name": "cat"}]),
                               ([{"id": 1, "file_name": "1.jpg"}], [{"id": -(2**63) - 1, "name": "cat"}])):
        path = tmp_path / "h.json"
        path.write_text(json.dumps({"images": images, "annotations": [], "categories": categories}))
        with pytest.raises(InputError, match="is out of range"):
            read_coco(path, images_root=None, records=False)
