"""The Streamlit review app through streamlit.testing.v1.AppTest: naming, wording, decisions, undo, batch, export.

Keys come from a browser component that AppTest cannot press; the buttons of the large item call the
same code, and tests/test_review_browser.py presses the real keys.
"""

from __future__ import annotations

import json

import duckdb
import pytest
import streamlit as st
from review_helpers import make_review_store, open_review_app

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402


def start(db, *, reviewer: str | None = "tester") -> AppTest:
    return open_review_app(reviewer)


@pytest.fixture
def store(tmp_path, monkeypatch):
    db = make_review_store(tmp_path)
    monkeypatch.setenv("LABELFIX_DB", str(db))
    monkeypatch.setenv("LABELFIX_EXPORT_DIR", str(tmp_path / "exports"))
    monkeypatch.delenv("LABELFIX_REVIEWER", raising=False)
    # same process as the app: this connection shares the app's cached DuckDB instance
    connection = duckdb.connect(str(db))
    yield db, connection
    connection.close()
    # Drop the app's cached server connection so no DuckDB object outlives the test.
    st.cache_resource.clear()


def events(connection):
    return connection.execute("SELECT suggestion_id, reviewer, decision, undoes_event_id FROM review_events "
                              "ORDER BY event_id").fetchall()


def cell(connection, image_id, category_id):
    rows = connection.execute("SELECT state, origin FROM labels WHERE image_id = ? AND category_id = ?",
                              [image_id, category_id]).fetchall()
    return rows[0] if rows else None


def texts(at) -> list[str]:
    return [m.value for m in at.markdown] + [s.value for s in at.success] + [i.value for i in at.info] \
        + [w.value for w in at.warning]


def add_in_latest_run(connection, rows, *, kind):
    """Suggestions of ``kind`` in the latest run (the queue shows one run)."""
    run_id = connection.execute("SELECT max(run_id) FROM suggestions").fetchone()[0]
    for rank, (image_id, category_id, score) in enumerate(rows, start=1):
        connection.execute("INSERT INTO suggestions (run_id, image_id, category_id, kind, score, rank_in_class, "
                           "threshold, reason) VALUES (?, ?, ?, ?, ?, ?, 0.5, 'test')",
                           [run_id, image_id, category_id, kind, score, rank])


def test_a_reviewer_names_themselves_before_the_first_decision(store):
    db, connection = store
    at = start(db, reviewer=None)
    assert "#### Who is reviewing?" in [m.value for m in at.markdown]
    assert not [b for b in at.button if b.key.startswith("focus_")]  # nothing to decide without a name
    at.text_input(key="name_input").input("  ana  ")
    at.button[0].click().run()  # the form's submit button
    assert not at.exception
    assert at.query_params["reviewer"] in ("ana", ["ana"])  # kept in the page address: a refresh keeps it
    at.button(key="focus_accept_1").click().run()
    assert events(connection) == [(1, "ana", "accept", None)]


def test_a_bad_name_is_refused(store):
    db, _ = store
    at = start(db, reviewer=None)
    at.text_input(key="name_input").input("<b>")
    at.button[0].click().run()
    assert "reviewer" not in at.query_params
    assert any("letters, digits" in e.value for e in at.error)


def test_classes_tail_first_add_then_undo_states_the_outcome(store):
    db, connection = store
    at = start(db)
    classes = at.selectbox(key="class")
    assert classes.options[:3] == ["car · 1 labelled", "dog · 3 labelled", "cat · 6 labelled"]
    assert "## :green[+ add 'car'?]" in texts(at)
    at.selectbox(key="class").select(2).run()  # dog
    assert not at.exception
    assert "## :green[+ add 'dog'?]" in texts(at)
    assert at.button(key="focus_accept_4").label == "Add 'dog' · A"
    at.button(key="focus_accept_4").click().run()
    assert events(connection) == [(4, "tester", "accept", None)]
    assert cell(connection, 4, 2) == (1, "accepted")
    assert "'dog' added to image 4 · U undoes it" in texts(at)
    at.button(key="undo_last").click().run()
    assert events(connection)[-1][2:] == ("undo", 1)
    assert cell(connection, 4, 2) is None
    assert "undid your decision: 'dog' on image 4 is undecided again" in texts(at)
    # the undone item is shown large again, and "not there" records it as absent
    at.button(key="focus_reject_4").click().run()
    assert events(connection)[-1][:3] == (4, "tester", "reject")
    assert cell(connection, 4, 2) == (-1, "manual")
    assert any(t.startswith("'dog' not added to image 4") for t in texts(at))


def test_spurious_items_ask_to_remove_and_never_lead_the_queue(store):
    db, connection = store
    # a spurious-label suggestion on the rarest class: it must not come before car's missing labels
    add_in_latest_run(connection, [(1, 5, 0.2)], kind="spurious")
    at = start(db)
    assert "## :green[+ add 'car'?]" in texts(at)
    for suggestion_id in (1, 2, 3):
        at.button(key=f"focus_accept_{suggestion_id}").click().run()
    assert "## :red[− remove 'car'?]" in texts(at)
    (spurious_id,) = connection.execute("SELECT suggestion_id FROM suggestions WHERE kind = 'spurious'").fetchone()
    assert at.button(key=f"focus_accept_{spurious_id}").label == "Remove 'car' · R"
    assert at.button(key=f"focus_reject_{spurious_id}").label == "Keep 'car' · X"
    assert cell(connection, 1, 5) == (1, "original")
    at.button(key=f"focus_accept_{spurious_id}").click().run()
    assert "'car' removed from image 1 · U undoes it" in texts(at)
    assert cell(connection, 1, 5) == (-1, "manual")


def test_skipping_the_last_item_does_not_show_it_again(store):
    db, connection = store
    at = start(db)
    at.button(key="focus_accept_1").click().run()
    at.button(key="focus_accept_2").click().run()
    at.button(key="focus_skip_3").click().run()  # car's last item
    assert not at.exception
    shown = [b.key for b in at.button if b.key.startswith("focus_accept_")]
    assert shown != ["focus_accept_3"]
    assert events(connection)[-1][:3] == (3, "tester", "skip")


def test_batch_needs_confirmation_and_says_what_it_does(store):
    db, connection = store
    at = start(db)
    at.button(key="select_all").click().run()
    assert at.button(key="batch_accept").label == "Add 3 labels"
    at.button(key="batch_accept").click().run()
    assert "Add 3 selected suggestions as tester?" in [w.value for w in at.warning]
    assert events(connection) == []  # nothing before the confirmation
    at.button(key="batch_cancel").click().run()
    at.button(key="batch_accept").click().run()
    at.button(key="batch_confirm").click().run()
    assert [(s, d) for s, _, d, _ in events(connection)] == [(1, "accept"), (2, "accept"), (3, "accept")]
    assert connection.execute("SELECT count(*) FROM labels WHERE category_id = 5 AND origin = 'accepted'"
                              ).fetchall() == [(3,)]
    # car is done: the app moves on to the next class with items to review
    assert at.selectbox(key="class").value == 2


def test_renaming_gives_back_the_old_names_leases(store):
    db, connection = store
    at = start(db, reviewer="ana")
    held = connection.execute("SELECT count(*) FROM leases WHERE reviewer = 'ana'").fetchone()[0]
    assert held > 0
    at.button(key="change_reviewer").click().run()
    assert connection.execute("SELECT count(*) FROM leases WHERE reviewer = 'ana'").fetchone()[0] == 0
    assert "#### Who is reviewing?" in [m.value for m in at.markdown]


def test_items_held_by_someone_else_are_said_so(store):
    db, connection = store
    from labelfix.review.service import ReviewService
    from labelfix.store.database import Store

    ReviewService(Store(connection, path=db)).next_items(reviewer="bo", n=3, category_id=5)  # bo holds car
    at = start(db)
    assert not at.exception
    # the class list says so, and the app went on to the next class with items free for tester
    assert any("car<span>0/3 · 3 held</span>" in h.proto.body for h in at.get("html"))
    assert "## :green[+ add 'dog'?]" in texts(at)


def test_status_filter_lead_counts_and_export_into_the_export_folder(store, tmp_path):
    db, connection = store
    at = start(db)
    at.button(key="focus_accept_1").click().run()
    at.selectbox(key="status").select("added / removed (accepted)").run()
    assert "**accepted** by tester" in texts(at)
    at.session_state["team_box"] = True  # open the lead's boxes (they compute only while open)
    at.session_state["export_box"] = True
    at.run()
    frames = [f.value for f in at.dataframe]
    team = next(f for f in frames if "reviewer" in f.columns)
    assert team.iloc[0]["reviewer"] == "tester" and team.iloc[0]["added / removed"] == 1
    diff = next(f for f in frames if "class" in f.columns)
    car = diff[diff["class"] == "car"].iloc[0]
    assert (car["source"], car["export"], car["added"]) == (1, 2, 1)
    assert not (tmp_path / "exports").exists() or not any((tmp_path / "exports").rglob("*.json"))  # diff first
    at.text_input(key="export_name").input("round-1")
    at.checkbox(key="export_inline").check()
    at.button(key="export_write").click().run()
    assert not at.exception and not at.error
    # this store's own folder (two stores beside each other share exports/, never a file), then the sub-folder
    written = tmp_path / "exports" / "review" / "round-1"
    document = json.loads((written / "labels.json").read_text())
    assert {(a["image_id"], a["category_id"]): a["attributes"]["source"] for a in document["annotations"]}[
        (2, 5)] == "accepted"
    assert sorted(p.name for p in written.iterdir()) == ["instances_corrected.json", "labels.json"]
    buttons = at.get("download_button")  # every file this export wrote is offered for download
    assert sorted(b.proto.label for b in buttons) == ["Download instances_corrected.json", "Download labels.json"]
    assert str(written) in " ".join(s.value for s in at.success)  # loopback: the local user sees where


def test_export_refuses_names_that_leave_the_folder_and_time_stamps_each_export(store, tmp_path):
    db, connection = store
    at = start(db)
    at.session_state["export_box"] = True
    at.run()
    for name in ("../x", "/tmp/x", "a/b"):
        at.text_input(key="export_name").input(name)
        at.button(key="export_write").click().run()
        assert any("is not a sub-folder name" in e.value for e in at.error), name
        assert not at.get("download_button")
    assert not (tmp_path / "x").exists() and not any((tmp_path / "exports").rglob("*.json"))
    at.text_input(key="export_name").input("")
    at.button(key="export_write").click().run()
    at.button(key="export_write").click().run()
    folders = sorted((tmp_path / "exports" / "review").iterdir())
    assert len(folders) == 2 and all(f.name.startswith("export-") for f in folders)  # never one over the other


def test_accept_all_above_a_score_shows_the_precision_estimate(store):
    db, connection = store
    at = start(db)
    at.selectbox(key="class").select(2).run()  # dog: 0.88, 0.66, 0.61
    at.button(key="focus_accept_4").click().run()
    at.button(key="focus_reject_5").click().run()
    at.session_state["accept_above_box"] = True
    at.run()
    said = next(t for t in texts(at) if t.startswith("Estimate from your last 2 decisions on 'dog' (1 added)"))
    assert "precision about **50%**, 95% interval 9%–91%" in said
    assert "No stopping score yet" in said and "≥" not in said  # two decisions support no claim
    at.number_input(key="above_2").set_value(0.6).run()
    assert at.button(key="accept_above_ask").label == "Add 'dog' to 1 images"
    at.button(key="accept_above_ask").click().run()
    assert any("every open item scoring ≥ 0.6000" in w.value for w in at.warning)
    at.button(key="accept_above_confirm").click().run()
    assert not at.exception
    assert events(connection)[-1][:3] == (6, "tester", "accept")
    assert cell(connection, 6, 2) == (1, "accepted")


def test_filters_by_image_and_current_label(store):
    db, _ = store
    at = start(db)
    at.text_input(key="image_filter").input("4").run()
    assert not at.exception
    shown = {b.key.rsplit("_", 1)[1] for b in at.button if b.key.startswith("focus_accept_")}
    assert shown == {"3"}  # car on image 4 (suggestion 3): the only car item of image 4
    at.text_input(key="image_filter").input("").run()
    at.selectbox(key="with_label").select(1).run()  # images that currently carry 'cat' (1-6)
    assert any(t.startswith("image 2 ·") for t in [c.value for c in at.caption])


def test_a_download_serves_only_the_bytes_this_export_wrote(store, tmp_path):
    """Another export under the same name (another session or server) replaces the file: the button of the
    first export is withdrawn, and its reader refuses to serve different bytes (FRESH 2)."""
    from labelfix.errors import LabelfixError
    from labelfix.review.app.export_panel import FILES_KEY, _reader

    db, connection = store
    at = start(db)
    at.session_state["export_box"] = True
    at.run()
    at.text_input(key="export_name").input("same")
    at.button(key="export_write").click().run()
    [file] = at.session_state[FILES_KEY]
    written = tmp_path / "exports" / "review" / "same" / "labels.json"
    assert file.shown == "review/same/labels.json" and _reader(file)() == written.read_bytes()
    original = written.read_bytes()
    written.write_bytes(original.replace(b'"', b"'"))  # same size, other bytes
    with pytest.raises(LabelfixError, match="changed since this export"):
        _reader(file)()
    written.write_bytes(original + b"\n")
    at.run()
    assert not at.get("download_button")
    assert any("changed since this export" in c.value for c in at.caption)
