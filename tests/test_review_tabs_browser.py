"""One reviewer name in two real browser tabs (issue 14, fresh report items 1 and 15): the fresh user's
s4.py and s3.py with real keys, and a key pressed while the previous one is still being applied.

Every check waits for the page to settle and looks inside one keyed container; nothing asserts a time.
Skips (never fails) where /usr/bin/chromium or the playwright package is missing.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from review_helpers import make_review_store

from labelfix.bench.browser import (launch_chromium, press_and_wait, panel_nonce, review_server, shown_item, wait_drawn,
                                    wait_first_item, wait_idle)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _events(db: Path) -> list[tuple]:
    connection = duckdb.connect(str(db), read_only=True)
    try:
        return connection.execute("SELECT suggestion_id, reviewer, decision FROM review_events ORDER BY event_id"
                                  ).fetchall()
    finally:
        connection.close()


def _open(browser, url: str, name: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1250})
    page.goto(f"{url}/?reviewer={name}", wait_until="domcontentloaded")
    wait_first_item(page, timeout_ms=180_000)  # a loaded machine: the first run of a server imports the app
    page.locator(".st-key-flash").click(position={"x": 2, "y": 2}, timeout=120_000)  # keys go to the page
    return page


def _no_error(page) -> None:
    assert page.get_by_test_id("stException").count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0


def test_s4_a_tab_answers_from_the_store_after_the_other_tab_undid(playwright_sync, tmp_path):
    from playwright.sync_api import expect

    db = make_review_store(tmp_path)
    with review_server(db, log=tmp_path / "server.log") as (url, _):
        browser = launch_chromium(playwright_sync)
        try:
            one = _open(browser, url, "lee")
            first = shown_item(one)
            press_and_wait(one, "a")
            expect(one.locator(".st-key-flash")).to_contain_text("'car' added to image 2 · U undoes it")
            two = _open(browser, url, "lee")
            expect(two.locator(".st-key-same_name")).to_contain_text(
                "The name lee is open in 1 other tab: decisions there count as yours")
            press_and_wait(two, "u", next_item=False)
            expect(two.locator(".st-key-flash")).to_contain_text("undid your decision: 'car' on image 2 is "
                                                                 "undecided again")
            press_and_wait(one, "k")  # back to the item tab 1 decided: it is shown as the store has it, open again
            assert shown_item(one) == first
            expect(one.locator(".st-key-same_name")).to_contain_text("open in 1 other tab")  # both tabs told
            expect(one.locator(".st-key-focus_panel")).to_contain_text("Not there · X")
            press_and_wait(one, "x")
            expect(one.locator(".st-key-flash")).to_contain_text("'car' not added to image 2 (marked absent)")
            # the other order: tab 1 shows the decided item, tab 2 undoes it, tab 1 presses without moving
            press_and_wait(one, "k")
            expect(one.locator(".st-key-focus_panel")).to_contain_text("rejected by lee")
            press_and_wait(one, "x", next_item=False)  # still decided in the store: said so, nothing recorded
            expect(one.locator(".st-key-flash")).to_contain_text(
                "nothing recorded: 'car' on image 2 is already rejected by you")
            press_and_wait(two, "u", next_item=False)
            expect(two.locator(".st-key-flash")).to_contain_text("'car' on image 2 is undecided again")
            press_and_wait(one, "a")  # the page still showed "rejected"; the store says open: the key decides it
            expect(one.locator(".st-key-flash")).to_contain_text("'car' added to image 2 · U undoes it")
            # mouse activity after a quiet spell renews the page's leases: the page asks the server (an
            # "alive" event, one panel run). The quiet spell is set, not waited for: no time in the test.
            wait_idle(one)
            nonce = panel_nonce(one)
            one.evaluate("() => { window.__labelfixReview.drawnAt = 0; window.__labelfixReview.aliveAt = 0; }")
            one.mouse.move(300, 300)
            one.mouse.move(320, 310)
            wait_drawn(one, before_nonce=nonce)
            _no_error(one)
            _no_error(two)
        finally:
            browser.close()
    assert _events(db) == [(first, "lee", "accept"), (first, "lee", "undo"), (first, "lee", "reject"),
                           (first, "lee", "undo"), (first, "lee", "accept")]


def test_s3_u_undoes_only_what_its_flash_named_and_a_key_during_a_save_is_reported(playwright_sync, tmp_path):
    from playwright.sync_api import expect

    db = make_review_store(tmp_path)
    with review_server(db, log=tmp_path / "server.log") as (url, _):
        browser = launch_chromium(playwright_sync)
        try:
            one = _open(browser, url, "kim")
            a = shown_item(one)
            press_and_wait(one, "x")
            b = shown_item(one)
            press_and_wait(one, "a")
            flash = one.locator(".st-key-flash")
            expect(flash).to_contain_text("'car' added to image 3 · U undoes it")
            two = _open(browser, url, "kim")
            press_and_wait(two, "u", next_item=False)  # undoes kim's latest: the add on image 3
            expect(two.locator(".st-key-flash")).to_contain_text("'car' on image 3 is undecided again")
            press_and_wait(one, "u", next_item=False)
            expect(flash).to_contain_text("nothing undone: your decision ('car' added to image 3) was already "
                                          "undone elsewhere")
            press_and_wait(one, "u", next_item=False)
            expect(flash).to_contain_text("undid your decision: 'car' on image 2 is undecided again")
            # S, then U: the skip is what is undone, and said so
            press_and_wait(one, "s")
            expect(flash).to_contain_text("skipped (back of the queue) · U undoes it")
            press_and_wait(one, "u", next_item=False)
            expect(flash).to_contain_text("undid your skip:")
            # two keys with nothing between them: the second comes while the first is being applied
            wait_idle(one)
            note = one.evaluate("""() => {
                for (const key of ['a', 'x']) document.body.dispatchEvent(
                    new KeyboardEvent('keydown', {key: key, bubbles: true}));
                const note = document.getElementById('lf-ignored');
                return note ? note.textContent : null; }""")
            assert note == "X ignored: still saving the previous decision (A)"
            wait_idle(one)
            _no_error(one)
            _no_error(two)
        finally:
            browser.close()
    events = _events(db)  # the server is stopped: the store is free to read
    # tab 1's first U found its add undone by tab 2 and undid nothing; its next U undid the reject
    assert [(e[0], e[2]) for e in events[:4]] == [(a, "reject"), (b, "accept"), (b, "undo"), (a, "undo")]
    assert [e[2] for e in events[4:]] == ["skip", "undo", "accept"]  # the A of the last two keys only
