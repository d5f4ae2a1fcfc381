"""Driving the review app in a real browser: start ``labelfix review``, headless chromium, wait for a settled page.

Shared by the browser benchmark (:mod:`labelfix.bench.speed.review_browser`), the README screenshots
and the browser tests. Needs Debian's chromium (``/usr/bin/chromium`` or ``$LABELFIX_CHROMIUM``) and the
``playwright`` package (a test/bench extra).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("LABELFIX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-quic", "--no-first-run", "--disable-sync"]

# Streamlit marks the elements of the previous script run data-stale="true" until the new run replaces them,
# and shows a running icon while a run goes on; a page is settled when neither is there, every image has
# loaded and the page is whole: the end marker of the full run the review panel belongs to is there (a session's
# first run draws only the first item, the rest follows; see labelfix.review.app.state.page_end_marker).
# Checks wait for this, then look inside one keyed container (.st-key-<key>).
SETTLED = """() => !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')
    && (() => { const r = window.__labelfixReview; return !r || !r.data || !r.data.page
        || !!document.querySelector(`[data-lf-page="${r.data.page}"]`); })()
    && !document.querySelector('[data-stale="true"]')
    && Array.from(document.images).every(image => image.complete)"""

# The suggestion the large item shows, read from its caption ("... · suggestion 17 · ..."); null when none.
SHOWN_ITEM = """() => { const panel = document.querySelector('.st-key-focus_panel');
    if (!panel) return null; const match = /suggestion (\\d+)/.exec(panel.innerText); return match ? Number(match[1]) : null; }"""


# The review panel's last element is the key listener; each run gives it a new nonce, so a nonce above the
# one read before an action means the panel's run for that action has been drawn to its end.
PANEL_NONCE = "() => (window.__labelfixReview && window.__labelfixReview.nonce) || 0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def labelfix_command() -> list[str]:
    """The ``labelfix`` console script beside this Python, else the CLI through ``-c``."""
    script = Path(sys.executable).with_name("labelfix")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from labelfix.cli.main import entry_point; entry_point()"]


def stop(process: subprocess.Popen, timeout: float = 30.0) -> None:
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


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"labelfix review exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the review app did not answer on {url} within {timeout:.0f} s")


@contextmanager
def _serve(command: Callable[[int], list[str]], *, log: Path,
           env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run ``command(port)`` on a free loopback port in its own process group until the block ends."""
    port = free_port()
    environment = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", **env}
    with open(log, "w") as out:
        process = subprocess.Popen(command(port), stdout=out, stderr=subprocess.STDOUT, env=environment,
                                   start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, process)
            yield url, process
        finally:
            stop(process)


@contextmanager
def streamlit_server(script: Path, *, log: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A plain ``streamlit run SCRIPT`` on a free loopback port (the benchmark's floor: Streamlit alone)."""
    with _serve(lambda port: [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
                              "--browser.gatherUsageStats", "false", "--server.port", str(port)],
                log=log, env={}) as served:
        yield served


@contextmanager
def review_server(db: Path, *, log: Path, extra_args: tuple[str, ...] = (),
                  env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """``labelfix review --db DB`` on a free loopback port, in its own process group; yields (url, process)."""
    with _serve(lambda port: [*labelfix_command(), "review", "--db", str(db), "--port", str(port), *extra_args],
                log=log, env={"LABELFIX_DB": str(db), **(env or {})}) as served:
        yield served


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def settled(page: Any, timeout_ms: int = 30_000) -> None:
    page.wait_for_function(SETTLED, timeout=timeout_ms, polling="raf")


def shown_item(page: Any) -> int | None:
    return page.evaluate(SHOWN_ITEM)


def panel_nonce(page: Any) -> int:
    return int(page.evaluate(PANEL_NONCE))


def wait_drawn(page: Any, *, before_nonce: int, timeout_ms: int = 30_000) -> None:
    """Wait until the panel has been drawn again to its end (after a key or a click) and the page is settled."""
    page.wait_for_function(f"() => ({PANEL_NONCE})() > {before_nonce} && ({SETTLED})()", timeout=timeout_ms,
                           polling="raf")


def wait_idle(page: Any, timeout_ms: int = 30_000) -> None:
    """Wait until no key press is waiting for its drawing and the page is settled."""
    page.wait_for_function(f"() => !(window.__labelfixReview && window.__labelfixReview.pending) && ({SETTLED})()",
                           timeout=timeout_ms, polling="raf")


def wait_first_item(page: Any, timeout_ms: int = 60_000) -> None:
    """Wait until a fresh page shows its first item, drawn to the end and settled."""
    page.wait_for_function(f"() => ({PANEL_NONCE})() > 0 && ({SHOWN_ITEM})() !== null && ({SETTLED})()",
                           timeout=timeout_ms, polling="raf")


def wait_page(page: Any, timeout_ms: int = 60_000) -> None:
    """Wait until a fresh page has drawn its review panel (an item or none) to its end and is settled."""
    page.wait_for_function(f"() => ({PANEL_NONCE})() > 0 && ({SETTLED})()", timeout=timeout_ms, polling="raf")


def wait_next_item(page: Any, *, before_item: int | None, before_nonce: int, timeout_ms: int = 30_000) -> None:
    """Wait until the panel has been drawn again to its end, shows another item, and the page is settled."""
    page.wait_for_function(f"() => ({PANEL_NONCE})() > {before_nonce} && ({SHOWN_ITEM})() !== {before_item or 'null'}"
                           f" && ({SETTLED})()", timeout=timeout_ms, polling="raf")


def press_and_wait(page: Any, key: str, *, next_item: bool = True) -> None:
    """Press ``key`` and wait until the panel is drawn again (showing another item when ``next_item``)."""
    before, nonce = shown_item(page), panel_nonce(page)
    page.keyboard.press(key)
    if next_item:
        wait_next_item(page, before_item=before, before_nonce=nonce)
    else:
        wait_drawn(page, before_nonce=nonce)
