"""Exports from two review servers whose stores share one folder, in a real browser (FRESH 2).

Two stores beside each other share ``exports/`` (the default export folder): each server writes into its
own ``exports/<store>/<sub-folder>/``, and each download button serves exactly the file its own export
wrote, even after the other server exported too (before, both wrote ``exports/labels.json`` and a button
read whatever that file held when the page was redrawn). Debian chromium via playwright; skips (never
fails) where /usr/bin/chromium or the playwright package is missing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from review_helpers import make_review_store

from labelfix.bench.browser import launch_chromium, review_server, settled
from labelfix.review.service import ReviewService
from labelfix.states import POSITIVE
from labelfix.store import open_store

pytestmark = [pytest.mark.browser, pytest.mark.slow]




def _two_stores(tmp_path: Path) -> tuple[Path, Path]:
    """``shared/tm.duckdb`` and ``shared/rv.duckdb``: the same data, but rv has one added label more."""
    shared = tmp_path / "shared"
    shared.mkdir()
    stores = []
    for name, accept in (("tm", False), ("rv", True)):
        built = make_review_store(tmp_path / name)
        if accept:
            with open_store(built) as store:
                ReviewService(store).decide(suggestion_id=1, reviewer="kim", decision="accept")
        stores.append(Path(shutil.copy(built, shared / f"{name}.duckdb")))
    return stores[0], stores[1]


def _positives(db: Path) -> set[tuple[int, int]]:
    connection = duckdb.connect(str(db), read_only=True)
    try:
        rows = connection.execute("SELECT image_id, category_id FROM labels WHERE state = ?",
                                  [POSITIVE]).fetchall()
    finally:
        connection.close()
    return {(int(i), int(c)) for i, c in rows}


def _open_export(page, url: str) -> None:
    page.goto(f"{url}/?reviewer=lee", wait_until="domcontentloaded")
    box = page.get_by_text("Export corrected labels")
    box.wait_for(timeout=60_000)
    settled(page)
    box.click()
    page.get_by_role("button", name="Write labels.json").wait_for(timeout=30_000)
    settled(page)


def _write(page, name: str) -> None:
    field = page.get_by_role("textbox", name="Sub-folder name (optional)")
    field.fill(name)
    field.press("Enter")
    settled(page)
    page.get_by_role("button", name="Write labels.json").click()
    page.get_by_role("button", name="Download labels.json").wait_for(timeout=60_000)
    settled(page)


def _download(page) -> bytes:
    with page.expect_download(timeout=30_000) as info:
        page.get_by_role("button", name="Download labels.json").click()
    return Path(info.value.path()).read_bytes()


def test_two_stores_in_one_folder_export_apart(playwright_sync, tmp_path):
    tm, rv = _two_stores(tmp_path)
    exports = tm.parent / "exports"
    with review_server(tm, log=tmp_path / "tm.log") as (tm_url, _), \
            review_server(rv, log=tmp_path / "rv.log") as (rv_url, _):
        browser = launch_chromium(playwright_sync)
        try:
            first = browser.new_page(viewport={"width": 1400, "height": 1600}, accept_downloads=True)
            second = browser.new_page(viewport={"width": 1400, "height": 1600}, accept_downloads=True)
            _open_export(first, tm_url)
            _open_export(second, rv_url)
            _write(first, "round-1")  # the same sub-folder name on both servers
            _write(second, "round-1")
            # the first page's button after the other server's export: still its own store's file
            first_bytes, second_bytes = _download(first), _download(second)
            for page in (first, second):
                assert page.get_by_test_id("stException").count() == 0
        finally:
            browser.close()
    assert sorted(p.relative_to(exports).as_posix() for p in exports.rglob("*.json")) == [
        "rv/round-1/labels.json", "tm/round-1/labels.json"]
    assert first_bytes == (exports / "tm" / "round-1" / "labels.json").read_bytes()
    assert second_bytes == (exports / "rv" / "round-1" / "labels.json").read_bytes()
    for data, db in ((first_bytes, tm), (second_bytes, rv)):
        document = json.loads(data)
        assert {(a["image_id"], a["category_id"]) for a in document["annotations"]} == _positives(db)
    assert _positives(rv) - _positives(tm) == {(2, 5)}  # the two stores differ: the check above can tell
