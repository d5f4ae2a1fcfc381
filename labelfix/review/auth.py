"""Team mode: reviewer accounts, password hashing, sign-in with a wrong-password limit, and sessions.

A review server that other machines can reach (``labelfix review`` on a non-loopback address, or with
``--team``) lets only signed-in reviewers see or change anything; a reviewer's decisions carry the name
they signed in with. Accounts live in the store (tables ``reviewers`` and ``review_sessions``, written by
:mod:`labelfix.store.reviewers`) and are managed with ``labelfix reviewers add/remove/list``.

Passwords are hashed with scrypt (RFC 7914, ``hashlib.scrypt``) and a per-reviewer random salt; the cost
parameters are stored with each hash. Comparisons are constant-time (``hmac.compare_digest``), and an
unknown name costs the same scrypt call as a known one, so timing does not tell which names exist. After
``max_failures`` wrong passwords in a row for one name, that name is locked for ``lock_seconds``. Refused
sign-ins are logged (logger ``labelfix.review.auth``: name, time, reason), never with the password.

A session token (random, 256 bits) is held by the browser session (the review app keeps it in a cookie, so
a refresh keeps the session); the store keeps only its sha256, with its start and last-seen times, so
sessions expire (absolute and idle limits) and end when the account is removed or disabled.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache

from labelfix.errors import LabelfixError
from labelfix.review.models import utc_now
from labelfix.store.database import Store
from labelfix.store.reviewers import (
    ReviewerRow,
    add_reviewer as _insert_reviewer,
    add_session,
    count_enabled_reviewers,
    end_session,
    end_sessions_of,
    has_reviewer_tables,
    remove_reviewer as _delete_reviewer,
    reviewer_row,
    reviewer_rows,
    session_row,
    set_disabled,
    set_password_hash,
    touch_session,
)

__all__ = [
    "ROLES", "AuthError", "FailureLimiter", "Reviewer", "SessionPolicy", "SignInRefused", "add_reviewer",
    "NAME_RULE", "check_name", "clean_reviewer_name", "count_enabled_reviewers", "disable_reviewer", "generate_token", "hash_password", "is_loopback",
    "list_reviewers", "remove_reviewer", "session_reviewer", "set_password", "sign_in", "sign_out",
    "verify_password",
]

logger = logging.getLogger(__name__)

ROLES: tuple[str, ...] = ("annotator", "lead")
# One rule for reviewer names everywhere (the review app's name prompt, `labelfix reviewers add`, --reviewer):
# names go into review events and log lines, so letters (any script), digits, single spaces and . _ @ + -,
# at most 64 characters, never ':' (FiftyOne decisions are recorded as "fiftyone:NAME"). It is the union
# of the two rules the app (40 characters, spaces and +) and the accounts (64, ASCII) had, so no name
# either accepted before is refused now.
NAME_PATTERN = re.compile(r"[\w .@+-]{1,64}")
NAME_RULE = "1 to 64 letters, digits, spaces or . _ @ + - (no ':')"
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
# scrypt cost: n=2**14, r=8, p=1 is the interactive-login setting of the scrypt paper (Percival 2009) and
# of Python's docs; about 16 MiB and tens of milliseconds per check.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32
SCRYPT_MAXMEM = 64 * 1024 * 1024


class AuthError(LabelfixError):
    """An account request that cannot be carried out (bad name, role or password; unknown reviewer)."""


class SignInRefused(LabelfixError):
    """A sign-in that failed: wrong name or password, or the name is locked for a while."""

    def __init__(self, problem: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(problem)


@dataclass(frozen=True)
class Reviewer:
    """Who is reviewing: ``name`` goes on every decision; ``role`` is ``annotator`` or ``lead``.

    Examples
    --------
    >>> Reviewer("ana", "lead").is_lead
    True
    """

    name: str
    role: str

    @property
    def is_lead(self) -> bool:
        return self.role == "lead"


def is_loopback(address: str | None) -> bool:
    """Whether a listen address is reachable from this machine only (127.0.0.0/8, ::1, ``localhost``).

    Anything else, including ``0.0.0.0``, ``::``, an empty address (all interfaces) and host names other
    than ``localhost``, counts as reachable by others.

    Examples
    --------
    >>> [is_loopback(a) for a in ("127.0.0.1", "127.1.2.3", "::1", "localhost", "0.0.0.0", "192.0.2.7", "")]
    [True, True, True, True, False, False, False]
    """
    text = (address or "").strip().strip("[]")
    if text.lower() in ("localhost", "localhost."):
        return True
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


# -- passwords ------------------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """The stored form of a password: ``scrypt$n$r$p$salt$hash`` (base64), with a fresh random salt.

    Examples
    --------
    >>> encoded = hash_password("correct horse", n=2 ** 4)
    >>> encoded.split("$")[:4], verify_password("correct horse", encoded), verify_password("wrong", encoded)
    (['scrypt', '16', '8', '1'], True, False)
    """
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM,
                            dklen=HASH_BYTES)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches the stored ``encoded`` hash (constant-time comparison of the digests)."""
    try:
        scheme, n, r, p, salt_text, digest_text = encoded.split("$")
        if scheme != "scrypt":
            return False
        salt, expected = base64.b64decode(salt_text), base64.b64decode(digest_text)
        digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=int(n), r=int(r), p=int(p),
                                maxmem=SCRYPT_MAXMEM, dklen=len(expected))
    except (ValueError, TypeError):  # a malformed record never matches
        return False
    return hmac.compare_digest(digest, expected)


@cache
def _decoy_hash() -> str:
    """A hash no password matches, checked for unknown names so they cost the same time as known ones."""
    return hash_password(secrets.token_urlsafe(32))


def generate_token() -> str:
    """A random password for a reviewer (24 URL-safe characters, 144 bits), printed once by the CLI."""
    return secrets.token_urlsafe(18)


# -- accounts -------------------------------------------------------------------------------------------------
def clean_reviewer_name(name: object) -> str | None:
    """``name`` with white space trimmed and runs of it made one space, or ``None`` when it breaks the rule
    (:data:`NAME_RULE`); the app's name prompt, ``labelfix reviewers add`` and ``--reviewer`` all use it.

    Examples
    --------
    >>> clean_reviewer_name("  Ana   Lima "), clean_reviewer_name("lee+qa@lab.org"), clean_reviewer_name("José")
    ('Ana Lima', 'lee+qa@lab.org', 'José')
    >>> clean_reviewer_name(""), clean_reviewer_name("a" * 65), clean_reviewer_name("<b>"), clean_reviewer_name("x:y")
    (None, None, None, None)
    """
    cleaned = " ".join(str(name or "").split())
    return cleaned if NAME_PATTERN.fullmatch(cleaned) else None


def check_name(name: str) -> str:
    """The cleaned reviewer name (:func:`clean_reviewer_name`); :class:`AuthError` naming the rule if it breaks it."""
    cleaned = clean_reviewer_name(name)
    if cleaned is None:
        raise AuthError(f"{str(name or '').strip()!r} is not a reviewer name we accept", fix=f"use {NAME_RULE}")
    return cleaned


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}", fix=f"use {' or '.join(ROLES)}")
    return role


def _check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"the password is too short (fewer than {MIN_PASSWORD_LENGTH} characters)",
                        fix="choose a longer one, or let labelfix generate one with --generate")
    if len(password) > MAX_PASSWORD_LENGTH or "\n" in password or "\r" in password:
        raise AuthError(f"the password must be one line of at most {MAX_PASSWORD_LENGTH} characters",
                        fix="choose another one, or let labelfix generate one with --generate")
    return password


def _require_tables(store: Store) -> None:
    if not has_reviewer_tables(store):
        raise AuthError("this store has no reviewer tables (it was opened read-only before an upgrade)",
                        file=store.path, fix="run any labelfix command on it once to upgrade it")


def add_reviewer(store: Store, *, name: str, role: str, password: str, now: dt.datetime | None = None) -> Reviewer:
    """Create an account; the password is stored only as its scrypt hash.

    Raises
    ------
    AuthError
        A bad name, role or password, or an account of that name exists.
    """
    name, role, password = check_name(name), _check_role(role), _check_password(password)
    _require_tables(store)
    encoded = hash_password(password)  # outside the transaction: it takes a while
    with store.transaction():
        existing = reviewer_row(store, name=name)
        if existing is not None:  # names are one reviewer whatever their case (ana is Ana)
            same = "" if existing.name == name else f" as {existing.name!r} (names are not case-sensitive)"
            raise AuthError(f"reviewer {name!r} exists already{same}",
                            fix=f"pick another name, or `labelfix reviewers remove {existing.name}` first")
        _insert_reviewer(store, name=name, role=role, password_hash=encoded, created_at=now or utc_now())
    return Reviewer(name, role)


def remove_reviewer(store: Store, *, name: str, now: dt.datetime | None = None) -> None:
    """Delete an account and end its sessions; decisions already recorded keep the name."""
    _require_tables(store)
    with store.transaction():
        end_sessions_of(store, name=name, at=now or utc_now())
        if not _delete_reviewer(store, name=name):
            raise AuthError(f"no reviewer {name!r}", fix="see `labelfix reviewers list`")


def set_password(store: Store, *, name: str, password: str, now: dt.datetime | None = None) -> None:
    """Replace a reviewer's password and end their sessions."""
    password = _check_password(password)
    _require_tables(store)
    encoded = hash_password(password)
    with store.transaction():
        if not set_password_hash(store, name=name, password_hash=encoded):
            raise AuthError(f"no reviewer {name!r}", fix="see `labelfix reviewers list`")
        end_sessions_of(store, name=name, at=now or utc_now())


def disable_reviewer(store: Store, *, name: str, disabled: bool = True, now: dt.datetime | None = None) -> None:
    """Disable (or enable again) an account; disabling ends its sessions."""
    _require_tables(store)
    with store.transaction():
        if not set_disabled(store, name=name, disabled=disabled):
            raise AuthError(f"no reviewer {name!r}", fix="see `labelfix reviewers list`")
        if disabled:
            end_sessions_of(store, name=name, at=now or utc_now())


def list_reviewers(store: Store) -> list[ReviewerRow]:
    """Every account by name (an old store without the tables has none)."""
    return reviewer_rows(store) if has_reviewer_tables(store) else []


# -- sign-in --------------------------------------------------------------------------------------------------
class FailureLimiter:
    """Counts wrong passwords per name; after ``max_failures`` in a row the name is locked ``lock_seconds``.

    In memory, one per server process (thread-safe); a success clears the count. At most ``max_names``
    names are tracked (the oldest are forgotten), so made-up names cannot grow it without bound.

    Examples
    --------
    >>> limiter = FailureLimiter(max_failures=2, lock_seconds=30)
    >>> t0 = dt.datetime(2025, 1, 1)
    >>> limiter.failed("ana", now=t0), limiter.failed("ana", now=t0)
    (0.0, 30.0)
    >>> limiter.locked_for("ana", now=t0 + dt.timedelta(seconds=10)), limiter.locked_for("ana", now=t0 + dt.timedelta(seconds=31))
    (20.0, 0.0)
    """

    def __init__(self, *, max_failures: int = 5, lock_seconds: float = 30.0, max_names: int = 10_000) -> None:
        self.max_failures = int(max_failures)
        self.lock_seconds = float(lock_seconds)
        self.max_names = int(max_names)
        self._state: OrderedDict[str, tuple[int, dt.datetime | None]] = OrderedDict()
        self._lock = threading.Lock()

    def locked_for(self, name: str, *, now: dt.datetime) -> float:
        """Seconds ``name`` stays locked (0 when it is not)."""
        with self._lock:
            _, until = self._state.get(name, (0, None))
        return max(0.0, (until - now).total_seconds()) if until is not None else 0.0

    def failed(self, name: str, *, now: dt.datetime) -> float:
        """Count a wrong password; return the seconds of the lock it starts (0 if none)."""
        with self._lock:
            count, until = self._state.pop(name, (0, None))
            count = count + 1 if until is None or until <= now else 1  # a lock that ran out starts a new round
            until = None
            lock = 0.0
            if count >= self.max_failures:
                lock = self.lock_seconds
                until = now + dt.timedelta(seconds=lock)
                count = 0
            self._state[name] = (count, until)
            while len(self._state) > self.max_names:
                self._state.popitem(last=False)
        return lock

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._state.pop(name, None)


# One limiter per server process: every browser session of the review app shares it.
SERVER_LIMITER = FailureLimiter()


def _token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _log_refusal(name: str, now: dt.datetime, reason: str) -> None:
    # The typed name is shown with repr (no line breaks or control characters reach the log); never the password.
    logger.warning("sign-in refused: reviewer %r at %sZ: %s", name[:64], now.isoformat(timespec="seconds"), reason)


def sign_in(store: Store, *, name: str, password: str, limiter: FailureLimiter | None = None,
            now: dt.datetime | None = None) -> tuple[Reviewer, str]:
    """Check a name and password; on success start a session and return the reviewer and its token.

    Parameters
    ----------
    store
        The store with the accounts.
    name, password
        As typed in the sign-in form.
    limiter
        The wrong-password counter (default: the server's).
    now
        The current time as naive UTC (tests pass one).

    Raises
    ------
    SignInRefused
        Wrong name or password (one message for both), a disabled account, or a name locked after too many
        wrong passwords (``retry_after`` seconds). Each refusal is logged without the password.
    """
    limiter = SERVER_LIMITER if limiter is None else limiter
    now = now or utc_now()
    name = (name or "").strip()
    key = name.casefold()  # one reviewer whatever the case typed: one failure count
    locked = limiter.locked_for(key, now=now)
    if locked > 0:
        _log_refusal(name, now, f"locked for {locked:.0f} s after too many wrong passwords")
        raise SignInRefused(f"too many wrong passwords for this name: try again in {locked:.0f} s",
                            retry_after=locked)
    account = reviewer_row(store, name=name) if name and has_reviewer_tables(store) else None
    usable = account is not None and not account.disabled
    matches = verify_password(password or "", account.password_hash if usable and account else _decoy_hash())
    if not (usable and matches):
        lock = limiter.failed(key, now=now)
        reason = "wrong password" if usable else ("disabled account" if account is not None else "unknown name")
        _log_refusal(name, now, reason + (f"; locked for {lock:.0f} s" if lock else ""))
        raise SignInRefused("wrong name or password" + (f": locked for {lock:.0f} s" if lock else ""),
                            retry_after=lock or None)
    limiter.succeeded(key)
    assert account is not None
    name = account.name  # as the account was created (its display case)
    token = secrets.token_urlsafe(32)
    with store.transaction():
        add_session(store, token_sha256=_token_sha256(token), name=name, created_at=now)
    assert account is not None
    logger.info("signed in: reviewer %r (%s) at %sZ", name, account.role, now.isoformat(timespec="seconds"))
    return Reviewer(name, account.role), token


@dataclass(frozen=True)
class SessionPolicy:
    """When sessions end: ``max_age`` after sign-in, or after ``idle`` without a request.

    ``touch_every`` limits how often a session's last-seen time is written (not on every key press).
    """

    max_age: dt.timedelta = dt.timedelta(hours=12)
    idle: dt.timedelta = dt.timedelta(hours=2)
    touch_every: dt.timedelta = dt.timedelta(seconds=60)


def session_reviewer(store: Store, *, token: str | None, policy: SessionPolicy = SessionPolicy(),
                     now: dt.datetime | None = None) -> Reviewer | None:
    """The reviewer a session token belongs to, with their current role; ``None`` if the session is over.

    A session is over when it was signed out, is older than ``policy.max_age``, was idle longer than
    ``policy.idle``, or its account was removed or disabled; an expired session is marked ended.
    """
    if not token or not has_reviewer_tables(store):
        return None
    now = now or utc_now()
    digest = _token_sha256(token)
    session = session_row(store, token_sha256=digest)
    if session is None or session.ended_at is not None:
        return None
    account = reviewer_row(store, name=session.name)
    expired = now - session.created_at > policy.max_age or now - session.last_seen_at > policy.idle
    if expired or account is None or account.disabled:
        with store.transaction():
            end_session(store, token_sha256=digest, at=now)
        return None
    if now - session.last_seen_at >= policy.touch_every:
        with store.transaction():
            touch_session(store, token_sha256=digest, at=now)
    return Reviewer(account.name, account.role)


def sign_out(store: Store, *, token: str | None, now: dt.datetime | None = None) -> None:
    """End a session (nothing happens for an unknown or ended one)."""
    if token and has_reviewer_tables(store):
        with store.transaction():
            end_session(store, token_sha256=_token_sha256(token), at=now or utc_now())

