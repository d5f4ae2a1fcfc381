"""Where the review app gets its store, service, export folder and messages (one place for each).

Streamlit reruns the script in a new thread on every interaction and, with fast reruns, lets the old
run finish its current call while the new one starts; two runs sharing one DuckDB cursor then read each
other's results (issue 14: "connection is busy", "not enough values to unpack"). So every script run
gets its own cursor: :func:`service` keeps one :class:`ReviewService` per thread, over the one
connection of the server process.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import streamlit as st

from labelfix.review.service import ReviewService
from labelfix.store import open_store
from labelfix.store.database import DB_ENV_VAR, Store, resolve_db_path

EXPORT_DIR_ENV_VAR = "LABELFIX_EXPORT_DIR"
TIMING_ENV_VAR = "LABELFIX_REVIEW_TIMING"

_local = threading.local()


def db_path() -> Path:
    """The store this server reviews: ``--db`` after ``--`` on the streamlit command line, else ``$LABELFIX_DB``."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db")
    known, _ = parser.parse_known_args(sys.argv[1:])
    return resolve_db_path(known.db or os.environ.get(DB_ENV_VAR) or None).resolve()


@st.cache_resource(show_spinner=False)
def _server_store(db: str) -> Store:
    """The one read-write connection of this server process."""
    return open_store(db, create=False)


def service() -> ReviewService:
    """The review service of this script run: its own cursor, never shared with an overlapping run."""
    db = str(db_path())
    cached = getattr(_local, "service", None)
    if cached is None or cached[0] != db:
        cached = (db, ReviewService(_server_store(db).cursor()))
        _local.service = cached
    return cached[1]


def export_dir() -> Path:
    """The one folder the app writes exports into: ``$LABELFIX_EXPORT_DIR``, else ``exports/`` beside the store.

    Nothing typed in the browser reaches the file system: exports go here and nowhere else.
    """
    configured = os.environ.get(EXPORT_DIR_ENV_VAR)
    return Path(configured).resolve() if configured else db_path().parent / "exports"


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
