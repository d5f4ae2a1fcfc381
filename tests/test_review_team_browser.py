"""Team mode in a real browser (issue 15): `labelfix review` on a shared address, Debian chromium via playwright.

The server listens on this machine's own non-loopback IPv4 address (from ``hostname -I``), which makes it
a team server as other machines would see it; on a machine without one, ``--team`` on 127.0.0.1 turns on the
same mode. Checked, in one server run:

- before sign-in the page is only the sign-in form, and nothing the websocket delivers names a class, an
  image or a count; keys pressed there decide nothing;
- a wrong password is refused, and the server's log names the reviewer and the time but not the password;
- an annotator signs in, decides with the keyboard under the signed-in name, and has neither the lead's
  team panel nor the export panel;
- a lead signs in, sees the annotator's counts, is refused a sub-folder ``../../x``, exports into the
  store's folder inside the export folder and downloads the file, and the page shows no server path;
- the store afterwards holds exactly the annotator's decision, and nothing was written outside the
  export folder.

A second test: a session survives a refresh, a second tab and a bookmark (one open session), and ends on
sign-out and when it expires (the sign-in form again, the cookie removed).

Skips (never fails) where /usr/bin/chromium or the playwright package is missing.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from labelfix.bench.browser import SETTLED, labelfix_command, stop
from review_helpers import make_review_store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("LABELFIX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-quic", "--no-first-run", "--disable-sync", "--no-proxy-server"]
PASSWORDS = {"ana": "ana-Kq4-password", "lee": "lee-Vw8-password"}
WRONG_PASSWORD = "wrong-Zq9-guess"
# Text that only the review page shows: class names, image file names, counts, buttons of the queue.
STORE_TEXT = ["dog", "bird", "img_", "freq ", "to review", "suggestion 1", "Accept", "Export corrected"]



def _shared_address() -> str | None:
    """An IPv4 address of this machine that is not loopback and can be listened on, if there is one."""
    try:
        listed = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    for text in listed:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        if address.version != 4 or address.is_loopback or address.is_link_local:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((text, 0))
            except OSError:
                continue
        return text
    return None


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 90.0) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # straight to this machine
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"labelfix review exited with {process.returncode}")
        try:
            with opener.open(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"the review app did not answer on {url} within {timeout:.0f} s")


def _wait_for_log(path: Path, text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = path.read_text(errors="replace")
        if text in log:
            return log
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in the server log:\n{path.read_text(errors='replace')[-3000:]}")




@pytest.fixture
def team_server(tmp_path):
    db = make_review_store(tmp_path)
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    env.pop("LABELFIX_DB", None)
    env.pop("LABELFIX_REVIEWER", None)
    for name, role in (("ana", "annotator"), ("lee", "lead")):
        subprocess.run([*labelfix_command(), "reviewers", "add", name, "--role", role, "--password-stdin",
                        "--db", str(db)], input=PASSWORDS[name] + "\n", text=True, env=env, check=True,
                       capture_output=True)
    host = _shared_address()
    mode = ["--address", host] if host else ["--address", "127.0.0.1", "--team"]
    host = host or "127.0.0.1"
    port = _free_port(host)
    log_path = tmp_path / "server.log"
    log = open(log_path, "w")
    process = subprocess.Popen([*labelfix_command(), "review", "--db", str(db), "--port", str(port), *mode],
                               stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://{host}:{port}"
    try:
        _wait_healthy(url, process)
        yield url, db, process, log_path
    finally:
        stop(process)
        log.close()


def _settled(page) -> None:
    page.wait_for_function(SETTLED, timeout=30_000)


def _sign_in(page, name: str, password: str) -> None:
    page.get_by_label("Reviewer name").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def _frames_text(frames: list) -> str:
    return b"".join(f if isinstance(f, bytes) else f.encode() for f in frames).decode("utf-8", errors="replace")


def test_team_mode_in_a_browser(playwright_sync, team_server, tmp_path):
    from playwright.sync_api import expect

    url, db, process, log_path = team_server
    browser = playwright_sync.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    try:
        # -- not signed in: the sign-in form only, nothing of the store on the page or on the websocket ----------
        page = browser.new_page(viewport={"width": 1400, "height": 1250})
        frames: list = []
        page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(payload)))
        page.goto(url, wait_until="domcontentloaded")
        expect(page.get_by_label("Reviewer name")).to_be_visible(timeout=60_000)
        _settled(page)
        page.locator("h1").first.click()
        for key in "axsu":  # the review keys decide nothing here
            page.keyboard.press(key)
        _settled(page)
        body = page.locator("body").inner_text()
        assert "Sign in" in body
        for text in STORE_TEXT:
            assert text not in body, text
            assert text not in _frames_text(frames), text
        assert frames, "the websocket delivered nothing: the check above would be empty"

        # -- a wrong password: refused, logged with name and time, without the password --------------------------
        _sign_in(page, "ana", WRONG_PASSWORD)
        expect(page.get_by_test_id("stAlert").filter(has_text="wrong name or password")).to_be_visible(
            timeout=30_000)
        log = _wait_for_log(log_path, "sign-in refused: reviewer 'ana'")
        assert "wrong password" in log and "Z: wrong password" in log
        assert WRONG_PASSWORD not in log and WRONG_PASSWORD not in page.content()

        # -- the annotator: decides under the signed-in name; no team panel, no export ---------------------------
        before_sign_in = len(frames)
        _sign_in(page, "ana", PASSWORDS["ana"])
        large_item = page.locator(".st-key-focus_panel")
        expect(large_item).to_contain_text("suggestion 1", timeout=60_000)
        _settled(page)
        assert "dog" in _frames_text(frames[before_sign_in:])  # the websocket check above can see store text
        expect(page.locator(".st-key-signed_in")).to_contain_text("Signed in as ana · annotator")
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_text("Team (lead)")).to_have_count(0)
        expect(sidebar.get_by_text("Export corrected labels")).to_have_count(0)
        expect(page.get_by_label("Reviewer", exact=True)).to_have_count(0)  # no typed name in team mode
        expect(large_item.locator("h2")).to_contain_text("add 'car'?")
        page.locator(".st-key-flash").click(position={"x": 2, "y": 2})  # focus the page, not a widget
        page.keyboard.press("a")
        expect(page.locator(".st-key-flash")).to_contain_text("'car' added to image", timeout=30_000)
        _settled(page)
        page.screenshot(path=str(tmp_path / "annotator.png"), full_page=True)

        # -- the lead: sees the team, is refused a path, exports into the export folder, downloads ---------------
        lead = browser.new_page(viewport={"width": 1400, "height": 1400}, accept_downloads=True)
        lead.goto(url, wait_until="domcontentloaded")
        expect(lead.get_by_label("Reviewer name")).to_be_visible(timeout=60_000)
        _sign_in(lead, "lee", PASSWORDS["lee"])
        expect(lead.locator(".st-key-signed_in")).to_contain_text("Signed in as lee · lead", timeout=60_000)
        _settled(lead)
        lead_sidebar = lead.get_by_test_id("stSidebar")
        lead_sidebar.get_by_text("Team (lead)").click()
        team_table = lead_sidebar.get_by_test_id("stDataFrame").last
        expect(team_table).to_be_visible()
        # the export: only a sub-folder name can be typed; a path is refused; the files go into this store's
        # folder inside the export folder fixed at server start, then download
        lead.get_by_text("Export corrected labels").click()
        write = lead.get_by_role("button", name="Write labels.json")
        expect(write).to_be_visible(timeout=30_000)
        _settled(lead)
        sub_folder = lead.get_by_role("textbox", name="Sub-folder name (optional)")
        sub_folder.fill("../../x")
        sub_folder.press("Enter")
        _settled(lead)
        write.click()
        expect(lead.get_by_test_id("stAlert").filter(has_text="is not a sub-folder name")).to_be_visible(
            timeout=30_000)
        sub_folder.fill("")
        sub_folder.press("Enter")
        _settled(lead)
        write.click()
        download = lead.get_by_role("button", name="Download labels.json")
        expect(download).to_be_visible(timeout=60_000)
        _settled(lead)
        [written] = (db.parent / "exports").rglob("labels.json")
        with lead.expect_download(timeout=30_000) as download_info:
            download.click()
        assert Path(download_info.value.path()).read_bytes() == written.read_bytes()
        assert str(db.parent) not in lead.locator("body").inner_text()  # no server path in a team browser
        lead.screenshot(path=str(tmp_path / "lead.png"), full_page=True)
    finally:
        browser.close()

    stop(process)
    import duckdb

    connection = duckdb.connect(str(db), read_only=True)
    try:
        events = connection.execute("SELECT suggestion_id, reviewer, decision FROM review_events ORDER BY event_id"
                                    ).fetchall()
    finally:
        connection.close()
    assert events == [(1, "ana", "accept")]  # the signed-in name; the unsigned page decided nothing
    exports = db.parent / "exports"
    [stamp] = [p.name for p in (exports / "review").iterdir()]
    assert stamp.startswith("export-")  # no name typed: a new time-stamped sub-folder
    assert sorted(p.relative_to(exports).as_posix() for p in exports.rglob("*")) == [
        "review", f"review/{stamp}", f"review/{stamp}/labels.json"]
    assert not (tmp_path / "x").exists() and not (tmp_path.parent / "x").exists()
    log = log_path.read_text(errors="replace")
    assert not any(password in log for password in (*PASSWORDS.values(), WRONG_PASSWORD))


def _open_sessions(db: Path, name: str) -> int:
    return int(_with_store(db, lambda c: c.execute(
        "SELECT count(*) FROM review_sessions WHERE name = ? AND ended_at IS NULL", [name]).fetchone()[0]))


def _with_store(db: Path, work, *, read_only: bool = True, timeout: float = 30.0):
    """Run ``work(connection)`` on the store; the server holds the file only while its calls run."""
    import duckdb

    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = duckdb.connect(str(db), read_only=read_only)
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
            continue
        try:
            return work(connection)
        finally:
            connection.close()


def _session_cookies(context) -> list[dict]:
    return [c for c in context.cookies() if c["name"].startswith("labelfix_session_")]


def _wait_no_session_cookie(context, timeout: float = 30.0) -> None:
    """The page removes the cookie of an ended session (a script of its own, run when the page is drawn)."""
    deadline = time.monotonic() + timeout
    while _session_cookies(context):
        assert time.monotonic() < deadline, "the ended session's cookie is still there"
        time.sleep(0.2)


def test_a_session_survives_a_refresh_and_ends_on_sign_out_or_expiry(playwright_sync, team_server):
    from playwright.sync_api import expect

    url, db, process, log_path = team_server
    browser = playwright_sync.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1250})
        page = context.new_page()
        page.goto(url, wait_until="domcontentloaded")
        expect(page.get_by_label("Reviewer name")).to_be_visible(timeout=60_000)
        _sign_in(page, "ana", PASSWORDS["ana"])
        signed_in = page.locator(".st-key-signed_in")
        expect(signed_in).to_contain_text("Signed in as ana · annotator", timeout=60_000)
        _settled(page)
        [cookie] = _session_cookies(context)  # the token only: never the name or the password
        assert cookie["sameSite"] == "Strict" and cookie["expires"] > time.time() + 11 * 3600
        assert PASSWORDS["ana"] not in cookie["value"] and "ana" not in cookie["name"]

        # -- refresh twice, and open a second tab (a bookmark): still ana, one open session ---------------------
        for _ in range(2):
            page.reload(wait_until="domcontentloaded")
            expect(signed_in).to_contain_text("Signed in as ana · annotator", timeout=60_000)
            _settled(page)
        other = context.new_page()
        other.goto(url, wait_until="domcontentloaded")
        expect(other.locator(".st-key-signed_in")).to_contain_text("Signed in as ana", timeout=60_000)
        other.close()
        assert _open_sessions(db, "ana") == 1
        # the refreshed page decides under the signed-in name
        page.locator(".st-key-flash").click(position={"x": 2, "y": 2})
        page.keyboard.press("a")
        expect(page.locator(".st-key-flash")).to_contain_text("'car' added to image", timeout=30_000)
        _settled(page)

        # -- sign out, refresh: the sign-in form, no open session, no cookie -------------------------------------
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_text("Signed out.")).to_be_visible(timeout=30_000)
        _wait_no_session_cookie(context)
        page.reload(wait_until="domcontentloaded")
        expect(page.get_by_label("Reviewer name")).to_be_visible(timeout=60_000)
        expect(signed_in).to_have_count(0)
        assert _open_sessions(db, "ana") == 0

        # -- sign in again; the session outlives --session-hours (12): a refresh shows the sign-in form ----------
        _sign_in(page, "ana", PASSWORDS["ana"])
        expect(signed_in).to_contain_text("Signed in as ana", timeout=60_000)
        _settled(page)
        assert _open_sessions(db, "ana") == 1
        _with_store(db, lambda c: c.execute("UPDATE review_sessions SET created_at = created_at - INTERVAL 13 HOUR "
                                            "WHERE ended_at IS NULL"), read_only=False)
        page.reload(wait_until="domcontentloaded")
        expect(page.get_by_label("Reviewer name")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Your session ended: sign in again.")).to_be_visible()
        expect(signed_in).to_have_count(0)
        _wait_no_session_cookie(context)
        assert _open_sessions(db, "ana") == 0
    finally:
        browser.close()
    events = _with_store(db, lambda c: c.execute("SELECT suggestion_id, reviewer, decision FROM review_events"
                                                 ).fetchall())
    assert events == [(1, "ana", "accept")]
    log = log_path.read_text(errors="replace")
    assert PASSWORDS["ana"] not in log
