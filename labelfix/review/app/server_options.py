"""What the review server was started with: team mode, the export folder and the session limits.

``labelfix review`` passes them to the Streamlit script as its own arguments after ``--`` (see
``labelfix.cli.review_commands.streamlit_command``); ``$LABELFIX_TEAM`` and ``$LABELFIX_EXPORT_DIR`` do
the same for a script started another way. Team mode is also forced when Streamlit listens on an
address other machines can reach, or when a browser connects from another machine, so serving the
script with plain ``streamlit run`` on all interfaces still asks for sign-in.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from functools import cache
from pathlib import Path

import streamlit as st

from labelfix.review.auth import SessionPolicy, is_loopback
from labelfix.review.export_folder import default_export_dir, prepare_export_dir
from labelfix.store.database import DB_ENV_VAR, resolve_db_path

TEAM_ENV_VAR = "LABELFIX_TEAM"
EXPORT_DIR_ENV_VAR = "LABELFIX_EXPORT_DIR"


@cache
def _arguments(argv: tuple[str, ...]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db")
    parser.add_argument("--team", action="store_true")
    parser.add_argument("--export-dir")
    parser.add_argument("--session-hours", type=float, default=12.0)
    parser.add_argument("--idle-minutes", type=float, default=120.0)
    known, _ = parser.parse_known_args(list(argv))
    return known


def arguments() -> argparse.Namespace:
    """The script's own arguments (those after ``--`` on the streamlit command line)."""
    return _arguments(tuple(sys.argv[1:]))


def db_path() -> Path:
    """The store the server serves: ``--db``, else ``$LABELFIX_DB``, else the default name."""
    return resolve_db_path(arguments().db or os.environ.get(DB_ENV_VAR) or None).resolve()


def team_mode() -> bool:
    """Whether reviewers must sign in: ``--team`` / ``$LABELFIX_TEAM``, a shared listen address, or a remote browser."""
    if arguments().team or os.environ.get(TEAM_ENV_VAR, "").lower() in ("1", "true", "yes"):
        return True
    address = st.get_option("server.address")
    if address is not None and not is_loopback(str(address)):
        return True
    # Streamlit reports None for a browser on this machine; anything else came from another machine.
    # (Streamlit's test harness mocks the runtime and answers a mock object, not a str: not a browser.)
    remote = st.context.ip_address
    return isinstance(remote, str) and not is_loopback(remote)


def export_dir() -> Path:
    """The one folder the app writes exports into (created if missing), fixed when the server started."""
    given = arguments().export_dir or os.environ.get(EXPORT_DIR_ENV_VAR)
    return prepare_export_dir(given if given else default_export_dir(db_path()))


def session_policy() -> SessionPolicy:
    """Session limits: ``--session-hours`` after sign-in, ``--idle-minutes`` without a request."""
    known = arguments()
    idle = dt.timedelta(minutes=max(known.idle_minutes, 1.0))
    return SessionPolicy(max_age=dt.timedelta(hours=max(known.session_hours, 0.01)), idle=idle,
                         touch_every=min(dt.timedelta(seconds=60), idle / 4))
