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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("LABELFIX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-quic", "--no-first-run", "--disable-sync"]

# Streamlit marks the elements of the previous script run data-stale="true" until the new run replaces them,
# and shows a running icon while a run goes on; a page is settled when neither is there and every image has
# loaded. Checks wait for this, then look inside one keyed container (.st-key-<key>).
SETTLED = """() => !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')
    && !document.querySelector('[data-stale="true"]')
    && Array.from(document.images).every(image => image.complete)"""

# The suggestion the large item shows, read from its caption ("... · suggestion 17 · ..."); null when none.
SHOWN_ITEM = """() => { const panel = document.querySelector('.st-key-focus_panel');
    if (!panel) return null; const match = /suggestion (\\d+)/.exec(panel.innerText); return match ? Number(match[1]) : null; }"""


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
def review_server(db: Path, *, log: Path, extra_args: tuple[str, ...] = (),
                  env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """``labelfix review --db DB`` on a free loopback port, in its own process group; yields (url, process)."""
    port = free_port()
    environment = {**os.environ, "LABELFIX_DB": str(db), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
                   **(env or {})}
    with open(log, "w") as out:
        process = subprocess.Popen([*labelfix_command(), "review", "--db", str(db), "--port", str(port), *extra_args],
                                   stdout=out, stderr=subprocess.STDOUT, env=environment, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, process)
            yield url, process
        finally:
            stop(process)


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def settled(page: Any, timeout_ms: int = 30_000) -> None:
    page.wait_for_function(SETTLED, timeout=timeout_ms, polling="raf")


def shown_item(page: Any) -> int | None:
    return page.evaluate(SHOWN_ITEM)
