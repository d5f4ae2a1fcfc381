"""The store stays open to the team while reviewers work (issue 14 item 5).

A review server process (a ReviewService made by ``open``, as the app uses it) decides while this process
exports and reads the status; CLI commands wait for a store another process holds, and say so when it
stays held.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from review_helpers import make_review_store

from labelfix.export import export_coco
from labelfix.review.service import ReviewService
from labelfix.store import open_store
from labelfix.store.access import SharedStoreFile

ROOT = Path(__file__).resolve().parents[1]

REVIEWER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from labelfix.review.service import ReviewService

    db, go = sys.argv[1], Path(sys.argv[2])
    service = ReviewService.open(db, lock_timeout=60)
    n = 0
    while True:
        if n == 8:  # half way: wait until the other process has exported once, while we are alive
            print("waiting", flush=True)
            while not go.exists():
                time.sleep(0.01)
        items = service.next_items(reviewer="app", n=1)
        if not items:
            break
        item = items[0]
        result = service.submit(suggestion_id=item.suggestion_id, reviewer="app",
                                decision="reject" if n % 3 == 0 else "accept", expected_status=item.status,
                                token=str(n))
        print(item.suggestion_id, int(result.applied), flush=True)
        n += 1
""")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def _exported_cells(path: Path) -> set[tuple[int, int]]:
    document = json.loads(path.read_text())
    return {(a["image_id"], a["category_id"]) for a in document["annotations"]
            if a["attributes"]["source"] == "accepted"}


def test_review_decisions_and_exports_at_once_lose_nothing(tmp_path):
    cells = [(image_id, category_id, 0.5 + 0.01 * image_id) for image_id in range(1, 9) for category_id in (5, 7)]
    db = make_review_store(tmp_path, suggestions=cells)
    go = tmp_path / "go"
    reviewer = subprocess.Popen([sys.executable, "-c", REVIEWER, str(db), str(go)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=_env())
    assert reviewer.stdout is not None
    decided: list[tuple[int, int]] = []
    line = reviewer.stdout.readline()
    while line.strip() != "waiting":
        assert line, reviewer.stderr.read() if reviewer.stderr else "reviewer died"
        decided.append(tuple(int(v) for v in line.split()))  # type: ignore[arg-type]
        line = reviewer.stdout.readline()
    exports = []
    # the review server is alive and between requests: an export and the status both get in
    with open_store(db, create=False, lock_timeout=60) as store:
        export_coco(store, out_dir=tmp_path / "out0")
        exports.append(tmp_path / "out0" / "labels.json")
    status = subprocess.run([sys.executable, "-m", "labelfix.cli.main", "--db", str(db), "status"],
                            capture_output=True, text=True, env=_env(), timeout=120)
    assert status.returncode == 0, status.stderr
    go.touch()
    while reviewer.poll() is None:  # keep exporting while the reviewer works
        with open_store(db, create=False, lock_timeout=60) as store:
            export_coco(store, out_dir=tmp_path / f"out{len(exports)}")
        exports.append(tmp_path / f"out{len(exports)}" / "labels.json")
    out, err = reviewer.communicate()
    assert reviewer.returncode == 0, err
    decided.extend(tuple(int(v) for v in row.split()) for row in out.splitlines() if row.strip())  # type: ignore
    assert len(decided) == 16 and all(applied for _, applied in decided)
    with open_store(db, create=False) as store:
        service = ReviewService(store)
        accepted = {(i.image_id, i.category_id) for i in service.items(statuses=["accepted"])}
        assert {i.suggestion_id for i in service.items(statuses=["accepted", "rejected"])} == {s for s, _ in decided}
        assert len(accepted) == 10
        export_coco(store, out_dir=tmp_path / "final")
    # every decision is in the store, and in the next export: each export holds what was decided before it
    assert _exported_cells(tmp_path / "final" / "labels.json") == accepted
    first = _exported_cells(exports[0])
    assert len(first) == 5  # 8 decisions before the first export: 5 accepts
    for path in exports:
        assert first <= _exported_cells(path) <= accepted


HOLDER = textwrap.dedent("""
    import sys, time
    from labelfix.store import open_store
    with open_store(sys.argv[1], create=False):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def test_commands_wait_for_a_held_store_and_say_so_when_it_stays_held(tmp_path):
    db = make_review_store(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), "1.5"], stdout=subprocess.PIPE, text=True,
                              env=_env())
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    waited = subprocess.run([sys.executable, "-m", "labelfix.cli.main", "--db", str(db), "status"],
                            capture_output=True, text=True, env={**_env(), "LABELFIX_LOCK_TIMEOUT": "60"},
                            timeout=120)
    assert waited.returncode == 0, waited.stderr  # the store was held when it started: it waited
    holder.wait(timeout=60)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), "60"], stdout=subprocess.PIPE, text=True,
                              env=_env())
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        refused = subprocess.run([sys.executable, "-m", "labelfix.cli.main", "--db", str(db), "status"],
                                 capture_output=True, text=True, env={**_env(), "LABELFIX_LOCK_TIMEOUT": "0.5"},
                                 timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode == 2
    text = refused.stdout + refused.stderr
    assert "in use by another process" in text and "LABELFIX_LOCK_TIMEOUT" in text and "Traceback" not in text


def test_a_shared_store_file_is_closed_between_calls_and_shared_by_threads(tmp_path):
    db = make_review_store(tmp_path)
    shared = SharedStoreFile(db)
    service = ReviewService(shared)
    assert service.next_items(reviewer="ana", n=2)
    assert not shared.is_open  # nothing held between calls: another process may open the store now
    probe = subprocess.run([sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1]).close()",
                            str(db)], capture_output=True, text=True, env=_env(), timeout=120)
    assert probe.returncode == 0, probe.stderr
    with service.session():
        service.progress()
        service.items()
        assert shared.is_open and shared.opens == 2
    assert not shared.is_open
    with service.connection() as store:
        assert store.scalar("SELECT count(*) FROM leases") == 2


def test_a_lingering_review_server_lets_a_waiting_command_in_at_once(tmp_path):
    db = make_review_store(tmp_path)
    service = ReviewService.open(db, linger_seconds=600)  # would keep the file for 10 minutes when idle
    service.next_items(reviewer="ana", n=2)
    shared = service._access.source
    assert isinstance(shared, SharedStoreFile) and shared.is_open
    status = subprocess.run([sys.executable, "-m", "labelfix.cli.main", "--db", str(db), "status"],
                            capture_output=True, text=True, env={**_env(), "LABELFIX_LOCK_TIMEOUT": "60"},
                            timeout=120)
    assert status.returncode == 0, status.stderr  # well before the linger ended: the server let go
    assert not shared.is_open
    assert len(service.next_items(reviewer="ana", n=2)) == 2  # and the server opens it again when asked
    assert not (tmp_path / "review.duckdb.waiting").exists()
    shared.close()


def test_a_store_moved_while_serving_gives_one_message_and_no_new_file(tmp_path):
    # DuckDB creates an empty database at a missing path: the service must say the store is gone instead.
    import pytest

    from labelfix.errors import StoreError

    db = make_review_store(tmp_path)
    service = ReviewService.open(db, linger_seconds=0.0)
    assert service.items()  # the store is read once; the file is closed again after the call
    moved = db.with_name("moved.duckdb")
    db.rename(moved)
    with pytest.raises(StoreError, match="gone") as raised:
        service.items()
    assert "restart the server" in (raised.value.fix or "")
    assert not db.exists()
    db.write_text("not a store")
    with pytest.raises(StoreError, match="cannot be opened"):
        service.items()
    assert db.read_text() == "not a store"
