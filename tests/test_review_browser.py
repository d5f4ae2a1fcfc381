"""End to end in a real browser: `labelfix review` in a subprocess, Debian chromium driven by playwright.

* a reviewer names themselves, a refresh keeps the name, keys work right after a dropdown, decisions say
  what they did; a screenshot goes into the test's temp folder, or into $LABELFIX_SCREENSHOT_DIR when set;
* 50 key presses 30 ms apart (and a held key) never show an error and decide each suggestion at most once;
* a spurious-label item asks to remove, in red, and only its own key removes;
* a closed tab gives its leased items to another reviewer within seconds.

Every check waits for the page to settle (no run going, no stale element, images loaded) and looks inside
one keyed container. Skips (never fails) where /usr/bin/chromium or the playwright package is missing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb
import pytest
from review_helpers import CLASSES, POSITIVES, make_review_store

from labelfix.bench.browser import (launch_chromium, press_and_wait, panel_nonce, review_server, settled, shown_item,
                                    wait_drawn, wait_first_item, wait_idle, wait_page)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _read(db: Path, sql: str) -> list[tuple]:
    connection = duckdb.connect(str(db), read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def _no_error_on_page(page) -> None:
    assert page.get_by_test_id("stException").count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0


def _focus_page(page) -> None:
    """Click an empty spot of the page (not an input), as a reviewer would before using keys."""
    page.locator(".st-key-flash").click(position={"x": 2, "y": 2})


def test_named_reviewer_keys_after_a_dropdown_and_outcomes(playwright_sync, tmp_path):
    from playwright.sync_api import expect

    db = make_review_store(tmp_path)
    with review_server(db, log=tmp_path / "server.log") as (url, process):
        browser = launch_chromium(playwright_sync)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1250})
            page.goto(url, wait_until="domcontentloaded")
            name = page.get_by_label("Your name")
            expect(name).to_be_visible(timeout=60_000)
            expect(page.locator(".st-key-focus_panel")).to_have_count(0)  # nothing to decide before a name
            name.fill("browser-test")
            name.press("Enter")
            large_item = page.locator(".st-key-focus_panel")
            expect(large_item).to_contain_text("suggestion 1", timeout=60_000)
            assert "reviewer=browser-test" in page.url
            page.reload(wait_until="domcontentloaded")  # a refresh keeps the name (it is in the address)
            wait_first_item(page)
            expect(large_item).to_contain_text("suggestion 1")
            expect(large_item.locator("h2")).to_have_text("+ add 'car'?")
            expect(page.locator(".st-key-grid_item_1")).to_contain_text("+ car · 0.9100")
            expect(page.locator(".st-key-grid_item_1")).to_have_attribute("data-lf-focus", "")  # shown large

            # choose from a dropdown, then press A at once: the key must not go into the dropdown
            nonce = panel_nonce(page)
            page.locator(".st-key-kinds").get_by_role("combobox").click()
            page.get_by_role("option", name="missing labels only (add)").click()
            wait_drawn(page, before_nonce=nonce)  # the run the choice caused, not the page drawn before it
            press_and_wait(page, "a")
            flash = page.locator(".st-key-flash")
            expect(flash).to_contain_text("'car' added to image 2")
            expect(large_item).to_contain_text("suggestion 2")
            _focus_page(page)
            press_and_wait(page, "a")
            expect(flash).to_contain_text("'car' added to image 3")
            expect(large_item).to_contain_text("suggestion 3")
            # the tiles say what was decided, and which one is shown large, without redrawing the grid
            expect(page.locator(".st-key-grid_item_1")).to_have_attribute("data-lf-state", "added ✓ browser-test")
            expect(page.locator(".st-key-grid_item_3")).not_to_have_attribute("data-lf-state", re.compile("."))
            expect(page.locator(".st-key-grid_item_3")).to_have_attribute("data-lf-focus", "")
            # K goes back to the decided item before, J forward again
            press_and_wait(page, "k")
            expect(large_item).to_contain_text("suggestion 2")
            expect(large_item).to_contain_text("accepted by browser-test")
            press_and_wait(page, "j")
            expect(large_item).to_contain_text("suggestion 3")
            _no_error_on_page(page)
            folder = Path(os.environ.get("LABELFIX_SCREENSHOT_DIR") or tmp_path)
            folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(folder / "review_app.png"), full_page=True)
            assert (folder / "review_app.png").stat().st_size > 10_000
        finally:
            browser.close()
    # the server is stopped (the store's read-write lock is free): read the store
    assert _read(db, "SELECT suggestion_id, reviewer, decision FROM review_events ORDER BY event_id") == [
        (1, "browser-test", "accept"), (2, "browser-test", "accept")]
    assert _read(db, "SELECT image_id, category_id, state, origin FROM labels WHERE origin = 'accepted' "
                     "ORDER BY image_id") == [(2, 5, 1, "accepted"), (3, 5, 1, "accepted")]


def test_fifty_quick_presses_and_a_held_key_decide_each_item_at_most_once(playwright_sync, tmp_path):
    # every unlabelled cell is a suggestion: 30 items, more than a page
    cells = [(image_id, category_id, round(0.99 - 0.01 * n, 2))
             for n, (image_id, category_id) in enumerate((i, c) for i in range(1, 11) for c in CLASSES
                                                         if i not in POSITIVES.get(c, ()))]
    db = make_review_store(tmp_path, suggestions=cells)
    with review_server(db, log=tmp_path / "server.log") as (url, process):
        browser = launch_chromium(playwright_sync)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1250})
            page.goto(f"{url}/?reviewer=quick", wait_until="domcontentloaded")
            wait_first_item(page)
            _focus_page(page)
            for _ in range(50):
                page.keyboard.press("a")
                page.wait_for_timeout(30)  # the rhythm under test (30 ms between presses), not a wait for the app
            wait_idle(page)
            # a held key: the browser repeats keydown with repeat=true; none of them may decide anything
            before = shown_item(page)
            page.evaluate("""() => { for (let n = 0; n < 20; n++) document.body.dispatchEvent(
                new KeyboardEvent('keydown', {key: 'a', repeat: true, bubbles: true})); }""")
            settled(page)
            assert shown_item(page) == before
            _no_error_on_page(page)
        finally:
            browser.close()
    decisions = _read(db, "SELECT suggestion_id, count(*) FROM review_events WHERE decision <> 'undo' "
                          "GROUP BY suggestion_id")
    assert 1 <= sum(n for _, n in decisions) <= 50
    assert all(n == 1 for _, n in decisions), decisions  # no suggestion decided twice
    # every recorded accept changed its cell, and nothing else did
    accepted = set(_read(db, "SELECT image_id, category_id FROM review_events WHERE decision = 'accept'"))
    assert set(_read(db, "SELECT image_id, category_id FROM labels WHERE origin = 'accepted'")) == accepted


def test_a_spurious_item_asks_to_remove_and_only_its_own_key_removes(playwright_sync, tmp_path):
    from playwright.sync_api import expect

    db = make_review_store(tmp_path, suggestions=[])
    connection = duckdb.connect(str(db))
    run_id = connection.execute("SELECT max(run_id) FROM runs").fetchone()[0]
    connection.execute("INSERT INTO suggestions (run_id, image_id, category_id, kind, score, rank_in_class, "
                       "threshold, reason) VALUES (?, 1, 1, 'spurious', 0.12, 1, 0.5, 'test')", [run_id])
    connection.close()
    with review_server(db, log=tmp_path / "server.log") as (url, process):
        browser = launch_chromium(playwright_sync)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1250})
            page.goto(f"{url}/?reviewer=spur", wait_until="domcontentloaded")
            large_item = page.locator(".st-key-focus_panel")
            wait_first_item(page)
            expect(large_item.locator("h2")).to_have_text("− remove 'cat'?")
            red, green, _ = (int(v) for v in large_item.locator("h2 span").first.evaluate(
                "e => getComputedStyle(e).color").strip("rgba()").split(",")[:3])
            assert red > green  # worded and coloured as what it does
            _focus_page(page)
            press_and_wait(page, "a", next_item=False)  # the add key does not remove a label
            flash = page.locator(".st-key-flash")
            expect(flash).to_contain_text("this item asks to remove 'cat'?")
            press_and_wait(page, "r", next_item=False)
            expect(flash).to_contain_text("'cat' removed from image 1")
            _no_error_on_page(page)
        finally:
            browser.close()
    assert _read(db, "SELECT suggestion_id, reviewer, decision FROM review_events") == [(1, "spur", "accept")]
    assert _read(db, "SELECT state, origin FROM labels WHERE image_id = 1 AND category_id = 1") == [(-1, "manual")]


def test_closing_a_tab_gives_its_items_to_the_other_reviewer_within_seconds(playwright_sync, tmp_path):
    db = make_review_store(tmp_path)  # the tail class car has 3 suggestions: ana's first page leases them all
    car = {1, 2, 3}
    with review_server(db, log=tmp_path / "server.log") as (url, process):
        browser = launch_chromium(playwright_sync)
        try:
            ana = browser.new_context(viewport={"width": 1400, "height": 1250})
            ana_page = ana.new_page()
            ana_page.goto(f"{url}/?reviewer=ana", wait_until="domcontentloaded")
            wait_first_item(ana_page)
            assert shown_item(ana_page) == 1
            bob = browser.new_page(viewport={"width": 1400, "height": 1250})
            bob.goto(f"{url}/?reviewer=bob", wait_until="domcontentloaded")
            wait_page(bob)
            assert shown_item(bob) not in car  # held by ana: bob goes on to the next class
            ana.close()  # ana closes her tab: her page's leases go back within seconds, not after 120 s
            for _ in range(30):  # a reload a second for 30 s: far less than the lease time of 120 s
                bob.wait_for_timeout(1_000)
                bob.reload(wait_until="domcontentloaded")
                wait_page(bob)
                if shown_item(bob) in car:
                    break
            assert shown_item(bob) == 1
            _no_error_on_page(bob)
        finally:
            browser.close()
