"""The ``reviewers`` and ``review_sessions`` tables: team-mode accounts and signed-in sessions.

Plain storage: what a password hash is and when a session expires is decided by
:mod:`labelfix.review.auth`, which calls these functions. Names are stored as given (the caller checks them)
and looked up without regard to case: ``ana`` and ``Ana`` are one reviewer, shown as first written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from labelfix.store.database import Store


@dataclass(frozen=True)
class ReviewerRow:
    """One row of ``reviewers`` (``active_sessions``: sessions not ended, as far as the store knows)."""

    name: str
    role: str
    password_hash: str
    created_at: dt.datetime
    disabled: bool
    active_sessions: int = 0


@dataclass(frozen=True)
class SessionRow:
    """One row of ``review_sessions``."""

    name: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    ended_at: dt.datetime | None


def has_reviewer_tables(store: Store) -> bool:
    """Whether the store has the tables (an old store opened read-only may lack them)."""
    return bool(store.scalar("SELECT count(*) FROM information_schema.tables WHERE table_name = 'reviewers'"))


def add_reviewer(store: Store, *, name: str, role: str, password_hash: str, created_at: dt.datetime) -> None:
    store.execute("INSERT INTO reviewers (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                  [name, role, password_hash, created_at])


def remove_reviewer(store: Store, *, name: str) -> bool:
    """Delete the account; return whether there was one. Review events keep the name."""
    found = store.scalar("SELECT count(*) FROM reviewers WHERE lower(name) = lower(?)", [name])
    store.execute("DELETE FROM reviewers WHERE lower(name) = lower(?)", [name])
    return bool(found)


def set_password_hash(store: Store, *, name: str, password_hash: str) -> bool:
    found = store.scalar("SELECT count(*) FROM reviewers WHERE lower(name) = lower(?)", [name])
    store.execute("UPDATE reviewers SET password_hash = ? WHERE lower(name) = lower(?)", [password_hash, name])
    return bool(found)


def set_disabled(store: Store, *, name: str, disabled: bool) -> bool:
    found = store.scalar("SELECT count(*) FROM reviewers WHERE lower(name) = lower(?)", [name])
    store.execute("UPDATE reviewers SET disabled = ? WHERE lower(name) = lower(?)", [bool(disabled), name])
    return bool(found)


def reviewer_row(store: Store, *, name: str) -> ReviewerRow | None:
    row = store.fetchone("SELECT name, role, password_hash, created_at, disabled FROM reviewers "
                         "WHERE lower(name) = lower(?)", [name])
    return None if row is None else ReviewerRow(row[0], row[1], row[2], row[3], bool(row[4]))


def reviewer_rows(store: Store) -> list[ReviewerRow]:
    """Every account by name, with its number of sessions not ended."""
    rows = store.fetchall(
        "SELECT r.name, r.role, r.password_hash, r.created_at, r.disabled, "
        "(SELECT count(*) FROM review_sessions s WHERE s.name = r.name AND s.ended_at IS NULL) "
        "FROM reviewers r ORDER BY r.name")
    return [ReviewerRow(r[0], r[1], r[2], r[3], bool(r[4]), int(r[5])) for r in rows]


def known_reviewer_name(store: Store, *, name: str) -> str | None:
    """The name as first written of the reviewer ``name`` is (case aside): an account, else the earliest
    decision or a lease; None for a new name."""
    accounts = ("SELECT name, 0 AS tier, created_at AS first_at FROM reviewers WHERE lower(name) = lower(?) UNION ALL "
                if has_reviewer_tables(store) else "")
    row = store.fetchone(
        f"SELECT name FROM ({accounts}SELECT reviewer AS name, 1 AS tier, min(created_at) AS first_at FROM review_events "
        f"WHERE lower(reviewer) = lower(?) GROUP BY ALL "
        f"UNION ALL SELECT reviewer, 2, NULL FROM leases WHERE lower(reviewer) = lower(?)) ORDER BY tier, first_at LIMIT 1",
        [name, name, name] if accounts else [name, name])
    return None if row is None else str(row[0])


def count_enabled_reviewers(store: Store) -> int:
    if not has_reviewer_tables(store):
        return 0
    return int(store.scalar("SELECT count(*) FROM reviewers WHERE NOT disabled") or 0)


# -- sessions ---------------------------------------------------------------------------------------------
def add_session(store: Store, *, token_sha256: str, name: str, created_at: dt.datetime) -> None:
    store.execute("INSERT INTO review_sessions (token_sha256, name, created_at, last_seen_at) VALUES (?, ?, ?, ?)",
                  [token_sha256, name, created_at, created_at])


def session_row(store: Store, *, token_sha256: str) -> SessionRow | None:
    row = store.fetchone("SELECT name, created_at, last_seen_at, ended_at FROM review_sessions "
                         "WHERE token_sha256 = ?", [token_sha256])
    return None if row is None else SessionRow(row[0], row[1], row[2], row[3])


def touch_session(store: Store, *, token_sha256: str, at: dt.datetime) -> None:
    store.execute("UPDATE review_sessions SET last_seen_at = ? WHERE token_sha256 = ? AND ended_at IS NULL",
                  [at, token_sha256])


def end_session(store: Store, *, token_sha256: str, at: dt.datetime) -> None:
    store.execute("UPDATE review_sessions SET ended_at = ? WHERE token_sha256 = ? AND ended_at IS NULL",
                  [at, token_sha256])


def end_sessions_of(store: Store, *, name: str, at: dt.datetime) -> int:
    """End every open session of ``name``; return how many were open."""
    n = store.scalar("SELECT count(*) FROM review_sessions WHERE lower(name) = lower(?) AND ended_at IS NULL", [name])
    store.execute("UPDATE review_sessions SET ended_at = ? WHERE lower(name) = lower(?) AND ended_at IS NULL",
                  [at, name])
    return int(n or 0)


def delete_sessions_before(store: Store, *, before: dt.datetime) -> None:
    """Forget sessions that ended, or were last seen, before ``before`` (housekeeping)."""
    store.execute("DELETE FROM review_sessions WHERE coalesce(ended_at, last_seen_at) < ?", [before])
