"""Roles at the service level (labelfix.review.lead) and confined exports (labelfix.review.export_folder).

An annotator decides and undoes their own decisions, never another's, and cannot export or revert; a lead
reverts a reviewer's decisions, sees per-reviewer counts and agreement, and exports, but only into the
export folder: a sub-folder name such as ``../../x`` or an absolute path writes nothing anywhere (issue 15).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from review_helpers import make_review_store

from labelfix.review.auth import Reviewer
from labelfix.review.export_folder import (
    ExportRefused,
    default_export_dir,
    export_as,
    export_subfolder,
    prepare_export_dir,
    store_export_dir,
    store_folder_name,
)
from labelfix.review.lead import PermissionRefused, revert_reviewer, reviewer_stats, undo_as
from labelfix.review.service import ReviewService
from labelfix.store import open_store

ANA, BOB = Reviewer("ana", "annotator"), Reviewer("bob", "annotator")
LEE = Reviewer("lee", "lead")


@pytest.fixture
def service(tmp_path):
    with open_store(make_review_store(tmp_path)) as store:
        yield ReviewService(store)


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def cell(service, image_id, category_id):
    return service.store.fetchone("SELECT state, origin FROM labels WHERE image_id = ? AND category_id = ?",
                                  [image_id, category_id])


def test_an_annotator_undoes_own_decisions_only(service):
    service.decide(suggestion_id=1, reviewer="ana", decision="accept")
    service.decide(suggestion_id=2, reviewer="bob", decision="reject")
    with pytest.raises(PermissionRefused, match="decided by ana: annotators undo only their own"):
        undo_as(service, reviewer=BOB, suggestion_id=1)
    assert service.item(suggestion_id=1).status == "accepted" and cell(service, 2, 5) == (1, "accepted")
    # "undo last" undoes bob's own decision, not ana's newer one
    service.decide(suggestion_id=3, reviewer="ana", decision="accept")
    event = undo_as(service, reviewer=BOB)
    assert event is not None and event.undoes_event_id == 2 and event.reviewer == "bob"
    assert undo_as(service, reviewer=BOB) is None  # nothing of bob's left
    assert [service.item(suggestion_id=s).status for s in (1, 2, 3)] == ["accepted", "open", "accepted"]
    undo_as(service, reviewer=ANA, suggestion_id=1)
    assert service.item(suggestion_id=1).status == "open" and cell(service, 2, 5) is None


def test_a_lead_undoes_and_reverts_anyones_decisions(service):
    for suggestion_id in (1, 2, 4):
        service.decide(suggestion_id=suggestion_id, reviewer="ana", decision="accept")
    service.decide(suggestion_id=5, reviewer="bob", decision="reject")
    with pytest.raises(PermissionRefused, match="is for leads"):
        revert_reviewer(service, lead=BOB, reviewer="ana")
    undo_as(service, reviewer=LEE, suggestion_id=5)
    assert service.item(suggestion_id=5).status == "open"
    result = revert_reviewer(service, lead=LEE, reviewer="ana")
    assert [e.undoes_event_id for e in result.events] == [3, 2, 1] and not result.conflicts
    assert {e.reviewer for e in result.events} == {"lee"} and {e.note for e in result.events} == {"revert ana"}
    assert all(service.item(suggestion_id=s).status == "open" for s in (1, 2, 4))
    assert all(cell(service, image_id, category_id) is None for image_id, category_id in ((2, 5), (3, 5), (4, 2)))
    assert revert_reviewer(service, lead=LEE, reviewer="ana").events == []  # nothing left in force


def test_reviewer_stats_count_and_agree(service):
    assert reviewer_stats(service) == []
    service.decide(suggestion_id=1, reviewer="ana", decision="accept")
    service.decide(suggestion_id=2, reviewer="ana", decision="reject")
    service.decide(suggestion_id=3, reviewer="ana", decision="skip")
    # bob re-reviews 1 (agrees) and 2 (disagrees) after ana's decisions were undone
    undo_as(service, reviewer=ANA, suggestion_id=1)
    service.decide(suggestion_id=1, reviewer="bob", decision="accept")
    undo_as(service, reviewer=ANA, suggestion_id=2)
    service.decide(suggestion_id=2, reviewer="bob", decision="accept")
    stats = {s.reviewer: s for s in reviewer_stats(service)}
    assert set(stats) == {"ana", "bob"}
    ana, bob = stats["ana"], stats["bob"]
    assert (ana.accepted, ana.rejected, ana.skipped, ana.undone) == (0, 0, 1, 2)
    assert (bob.accepted, bob.rejected, bob.skipped, bob.undone) == (2, 0, 0, 0)
    assert ana.shared == bob.shared == 2 and ana.agreement == bob.agreement == 0.5


def test_only_leads_export(service, tmp_path):
    folder = prepare_export_dir(default_export_dir(service.store.path))
    assert folder == tmp_path / "exports"
    with pytest.raises(PermissionRefused, match="exporting is for leads"):
        export_as(service.store, reviewer=ANA, export_dir=folder, name="mine")
    assert files_under(folder) == set()
    summary = export_as(service.store, reviewer=LEE, export_dir=folder, name="round-1", inline=True)
    assert files_under(folder) == {"round-1", "round-1/labels.json", "round-1/instances_corrected.json"}
    assert {p.parent for p in summary.paths} == {folder / "round-1"}
    # on a loopback server without sign-in there is no reviewer to check
    export_as(service.store, reviewer=None, export_dir=folder, name="round-2")
    assert "round-2/labels.json" in files_under(folder)


BAD_NAMES = ["../../x", "..", ".", "../x", "a/b", "a\\b", "/tmp/x", "~/x", ".hidden", "x" * 65, "a b", "round.1",
             "C:x", "\x00", "o\nk"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_export_names_that_leave_the_folder_write_nothing(service, tmp_path, name):
    folder = prepare_export_dir(tmp_path / "project" / "exports")
    before = files_under(tmp_path)
    with pytest.raises(ExportRefused, match="not a sub-folder name"):
        export_as(service.store, reviewer=LEE, export_dir=folder, name=name)
    assert files_under(tmp_path) == before
    assert service.store.scalar("SELECT count(*) FROM exports") == 0


def test_an_absolute_path_as_name_writes_nothing_there(service, tmp_path):
    folder = prepare_export_dir(tmp_path / "exports")
    outside = tmp_path / "outside"
    with pytest.raises(ExportRefused):
        export_as(service.store, reviewer=LEE, export_dir=folder, name=str(outside))
    assert not outside.exists() and files_under(folder) == set()


def test_a_link_leading_out_of_the_export_folder_is_refused(service, tmp_path):
    folder = prepare_export_dir(tmp_path / "exports")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.symlink(outside, folder / "sneaky")
    (folder / "plainfile").write_text("x")
    for name in ("sneaky", "plainfile"):
        with pytest.raises(ExportRefused, match="not a plain folder"):
            export_as(service.store, reviewer=LEE, export_dir=folder, name=name)
    assert list(outside.iterdir()) == [] and (folder / "plainfile").read_text() == "x"


def test_default_sub_folder_is_time_stamped(tmp_path):
    import datetime as dt

    target = export_subfolder(tmp_path, None, now=dt.datetime(2025, 3, 1, 9, 5, 7))
    assert target == tmp_path.resolve() / "export-20250301-090507"
    assert export_subfolder(tmp_path, "  ").name.startswith("export-")


def test_the_export_folder_must_be_a_writable_folder(tmp_path):
    from labelfix.errors import LabelfixError

    (tmp_path / "file").write_text("x")
    with pytest.raises(LabelfixError, match="is a file|not a folder"):
        prepare_export_dir(tmp_path / "file")
    with pytest.raises(LabelfixError, match="cannot create"):
        prepare_export_dir(tmp_path / "file" / "below")


def test_each_store_exports_into_its_own_folder(service, tmp_path):
    """Two stores beside each other share exports/ but never a file (FRESH 2)."""
    folder = prepare_export_dir(tmp_path / "exports")
    mine = store_export_dir(folder, store_path=tmp_path / "tm.duckdb")
    theirs = store_export_dir(folder, store_path=tmp_path / "rv.duckdb")
    assert (mine, theirs) == (folder / "tm", folder / "rv")
    assert store_folder_name(tmp_path / "tm.db") != store_folder_name(tmp_path / "tm.duckdb")
    assert store_folder_name(tmp_path / "a b.duckdb") != store_folder_name(tmp_path / "a_b.duckdb")
    for odd in ("..duckdb", ".hidden.duckdb", "../x.duckdb", "a/b.duckdb"):
        name = store_folder_name(tmp_path / odd)
        assert "/" not in name and "." not in name and name[0].isalnum()
    first = export_as(service.store, reviewer=LEE, export_dir=mine, name="r1")
    second = export_as(service.store, reviewer=LEE, export_dir=theirs, name="r1")
    assert first.paths[0] == folder / "tm" / "r1" / "labels.json"
    assert second.paths[0] == folder / "rv" / "r1" / "labels.json"


def test_a_store_folder_that_is_a_link_or_a_file_is_refused(tmp_path):
    folder = prepare_export_dir(tmp_path / "exports")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.symlink(outside, folder / "tm")
    (folder / "rv").write_text("x")
    for store in ("tm.duckdb", "rv.duckdb"):
        with pytest.raises(ExportRefused, match="not a plain folder"):
            store_export_dir(folder, store_path=tmp_path / store)
    assert list(outside.iterdir()) == [] and (folder / "rv").read_text() == "x"


def test_time_stamped_exports_never_share_a_folder(service, tmp_path):
    folder = prepare_export_dir(tmp_path / "exports")
    paths = [export_as(service.store, reviewer=None, export_dir=folder).paths[0] for _ in range(3)]
    assert len({p.parent for p in paths}) == 3  # even within one second
    assert all(p.parent.parent == folder and p.parent.name.startswith("export-") for p in paths)
