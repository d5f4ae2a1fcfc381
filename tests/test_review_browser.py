"""End to end in a real browser: `labelfix review` in a subprocess, Debian chromium driven by playwright.

Accepts two suggestions with the keyboard (key A), checks the store, and saves a screenshot: into the test's
temp folder, or into $LABELFIX_SCREENSHOT_DIR when set (how docs/review_app.png is made) so a test run
never changes the checkout.
Skips (never fails) where /usr/bin/chromium or the playwright package is missing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from review_helpers import make_review_store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("LABELFIX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-quic", "--no-first-run", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _labelfix_command() -> list[str]:
    script = Path(sys.executable).with_name("labelfix")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from labelfix.cli.main import entry_point; entry_point()"]


def _stop(process: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM the server's process group and wait until every process of it is gone (the store is unlocked)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.poll()
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"labelfix review exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"the review app did not answer on {url} within {timeout:.0f} s")


@pytest.fixture
def playwright_sync():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium) "
                    f"to run the browser test")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install playwright==1.65.2)")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture
def review_server(tmp_path):
    db = make_review_store(tmp_path)
    port = _free_port()
    log = open(tmp_path / "server.log", "w")
    env = {**os.environ, "LABELFIX_DB": str(db), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    process = subprocess.Popen([*_labelfix_command(), "review", "--db", str(db), "--port", str(port),
                                "--reviewer", "browser-test"],
                               stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield url, db, process
    finally:
        _stop(process)
        log.close()


# Streamlit marks the elements of the previous script run data-stale="true" until the new run replaces them,
# so while a run is going a text can be on the page twice (e.g. a grid item at its old and its new place).
# Every check waits for the run to finish first and then looks inside one keyed container.
SETTLED = """() => !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')
    && !document.querySelector('[data-stale="true"]')
    && Array.from(document.images).every(image => image.complete)"""


def _settled(page) -> None:
    page.wait_for_function(SETTLED, timeout=30_000)


def test_accept_two_suggestions_with_the_keyboard(playwright_sync, review_server, tmp_path):
    from playwright.sync_api import expect

    url, db, process = review_server
    browser = playwright_sync.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1250})
        page.goto(url, wait_until="domcontentloaded")
        large_item = page.locator(".st-key-focus_panel")
        keys_hint = page.get_by_test_id("stCaptionContainer").filter(has_text="Keys on the large item")
        done = page.get_by_test_id("stMetric").filter(has_text="Done")
        expect(large_item).to_contain_text("suggestion 1", timeout=60_000)
        _settled(page)
        expect(page.locator(".st-key-grid_item_1")).to_contain_text("car · 0.91 · open")
        expect(done).to_contain_text("0 / 8")
        for number in (1, 2):
            expect(large_item).to_contain_text(f"suggestion {number}")
            expect(large_item.locator(".st-key-accept_focus").get_by_role("button")).to_be_enabled()
            keys_hint.click()  # focus the page, not a text input, so the key reaches the shortcut
            page.keyboard.press("a")
            expect(page.get_by_test_id("stAlert").filter(has_text=f"accept recorded for suggestion {number}")
                   ).to_be_visible(timeout=30_000)
            _settled(page)
        expect(large_item).to_contain_text("suggestion 3")
        expect(page.locator(".st-key-grid_item_3")).to_contain_text("car · 0.55 · open")
        expect(page.locator(".st-key-grid_item_1")).to_have_count(0)  # decided items leave the queue
        expect(done).to_contain_text("2 / 8")  # the progress counter
        folder = Path(os.environ.get("LABELFIX_SCREENSHOT_DIR") or tmp_path)
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / "review_app.png"), full_page=True)
        assert (folder / "review_app.png").stat().st_size > 10_000
    finally:
        browser.close()

    # the server holds the store's read-write lock: stop it, then read the store
    _stop(process)
    import duckdb

    connection = duckdb.connect(str(db), read_only=True)
    try:
        events = connection.execute("SELECT suggestion_id, reviewer, decision FROM review_events ORDER BY event_id"
                                    ).fetchall()
        labels = connection.execute("SELECT image_id, category_id, state, origin FROM labels "
                                    "WHERE origin = 'accepted' ORDER BY image_id").fetchall()
    finally:
        connection.close()
    assert events == [(1, "browser-test", "accept"), (2, "browser-test", "accept")]
    assert labels == [(2, 5, 1, "accepted"), (3, 5, 1, "accepted")]
