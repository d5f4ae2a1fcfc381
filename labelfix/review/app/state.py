"""Where the review app gets its service, export folder and messages (one place for each).

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
from collections.abc import Iterator
from pathlib import Path

import streamlit as st

from labelfix.review.service import ReviewService
from labelfix.store.database import DB_ENV_VAR, resolve_db_path

EXPORT_DIR_ENV_VAR = "LABELFIX_EXPORT_DIR"
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


@contextlib.contextmanager
def page_session() -> Iterator[None]:
    """Keep the store file open for one script run (its calls share one open)."""
    with service().session():
        yield


def export_dir() -> Path:
    """The one folder the app writes exports into, fixed at server start (``--export-dir``, else ``exports/``
    beside the store; :func:`labelfix.review.app.server_options.export_dir`).

    Nothing typed in the browser reaches the file system: exports go here and nowhere else.
    """
    from labelfix.review.app.server_options import export_dir as server_export_dir

    return server_export_dir()


def log_timing(part: str, started: float) -> None:
    """With ``$LABELFIX_REVIEW_TIMING`` set, log how long a script run took (the browser benchmark reads it)."""
    if os.environ.get(TIMING_ENV_VAR):
        print(f"labelfix-timing {part} {time.perf_counter() - started:.4f}", file=sys.stderr, flush=True)


# -- messages shown once, after the rerun a callback causes ----------------------------------------------
def flash(kind: str, text: str) -> None:
    """Show ``text`` (``kind``: success, info, warning, error) at the top of the review panel."""
    st.session_state["_flash"] = (kind, text)


def last_flash() -> tuple[str, str] | None:
    """The latest message; it stays until the next one replaces it (the outcome of the last decision)."""
    return st.session_state.get("_flash")
