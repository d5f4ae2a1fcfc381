"""Where the review app gets its service and messages (one place for each; the export folder: server_options).

Streamlit reruns the script in a new thread on every interaction and, with fast reruns, lets the old
run finish its current call while the new one starts (issue 14: two runs sharing one DuckDB cursor read
each other's results). The service of :meth:`ReviewService.open` is safe from any thread (a cursor per
call) and holds the store file only while calls run, so ``labelfix status``, ``export`` and the
FiftyOne commands can use the store while reviewers work; :func:`page_session` keeps the file open for
one script run instead of opening it per call.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import streamlit as st

from labelfix.review.app.presence import Presence
from labelfix.review.service import ReviewService
from labelfix.store.database import DB_ENV_VAR, resolve_db_path

TIMING_ENV_VAR = "LABELFIX_REVIEW_TIMING"


def db_path() -> Path:
    """The store this server reviews: ``--db`` after ``--`` on the streamlit command line, else ``$LABELFIX_DB``."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db")
    known, _ = parser.parse_known_args(sys.argv[1:])
    return resolve_db_path(known.db or os.environ.get(DB_ENV_VAR) or None).resolve()


@st.cache_resource(show_spinner=False)
def _service_for(db: str) -> ReviewService:
    # The file stays open a moment after a request (a decision's callback and the run it causes share
    # one open) and is let go at once when another labelfix command waits for it.
    return ReviewService.open(db)


def service() -> ReviewService:
    """The review service of this server process (one for every session and thread)."""
    return _service_for(str(db_path()))


def _served() -> bool:
    """Whether a Streamlit server with browser connections runs this script (not the test harness, which
    puts a mock in the runtime's place)."""
    from streamlit.runtime import Runtime

    return Runtime.exists() and type(Runtime.instance()) is Runtime


@st.cache_resource(show_spinner=False)
def _presence() -> Presence:
    from streamlit.runtime import Runtime

    if not _served():  # Streamlit's test harness: no connections to watch
        return Presence(is_active=lambda _: True)
    watcher = Presence(is_active=Runtime.instance().is_active_session)
    watcher.watch()
    return watcher


def show_leased(service_: ReviewService, *, reviewer: str, suggestion_ids: list[int]) -> None:
    """This browser session now shows these leased items: they are released soon after it goes away."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    if context is not None:
        _presence().hold(session_id=context.session_id, service=service_, reviewer=reviewer,
                         suggestion_ids=suggestion_ids)


def other_tabs(*, reviewer: str) -> int:
    """How many other connected browser sessions show the app under ``reviewer`` (this session is counted in)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    if context is None:
        return 0
    if "_tab" not in st.session_state:
        st.session_state["_tab"] = uuid.uuid4().hex
    return _presence().visit(session_id=context.session_id, reviewer=reviewer, tab=st.session_state["_tab"])


@contextlib.contextmanager
def page_session() -> Iterator[None]:
    """Keep the store file open for one script run (its calls share one open)."""
    with service().session():
        yield


def log_timing(part: str, started: float) -> None:
    """With ``$LABELFIX_REVIEW_TIMING`` set, log how long a script run took (the browser benchmark reads it)."""
    if os.environ.get(TIMING_ENV_VAR):
        print(f"labelfix-timing {part} {time.perf_counter() - started:.4f}", file=sys.stderr, flush=True)


# -- the first item first --------------------------------------------------------------------------------
_WHOLE_PAGE = "_whole_page"


def whole_page() -> bool:
    """Whether this session's runs draw the whole page. A session's first run draws only the review panel
    (issue 14: the first item within a second); the page asks for the rest once the item is on screen.
    Without a browser runtime (Streamlit's test harness) nobody would ask: the whole page is drawn at once."""
    return bool(st.session_state.get(_WHOLE_PAGE)) or not _served()


def draw_whole_page() -> None:
    """From now on draw the whole page (the ``ready`` callback of the key listener, or a page with no item)."""
    st.session_state[_WHOLE_PAGE] = True


def page_run() -> int:
    """How many full runs this session has drawn (a full run draws it last as a marker: browser checks wait
    for the marker of the run the panel belongs to, so they never act on a page still being drawn)."""
    return int(st.session_state.get("_page_run", 0))


def start_page_run() -> None:
    st.session_state["_page_run"] = page_run() + 1


def page_end_marker() -> None:
    """The last element of a full run."""
    st.html(f'<span data-lf-page="{page_run()}"></span>')


def on_ready() -> None:
    """The first item is on screen: run the whole page now (sidebar widgets, tiles, lead sections)."""
    if not whole_page():
        draw_whole_page()
        st.rerun()  # from a callback: the full app reruns, not only the panel's fragment


# -- messages shown once, after the rerun a callback causes ----------------------------------------------
def flash(kind: str, text: str) -> None:
    """Show ``text`` (``kind``: success, info, warning, error) at the top of the review panel."""
    st.session_state["_flash"] = (kind, text)


def last_flash() -> tuple[str, str] | None:
    """The latest message; it stays until the next one replaces it (the outcome of the last decision)."""
    return st.session_state.get("_flash")
