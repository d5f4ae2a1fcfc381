"""Team mode accounts (labelfix.review.auth): hashing, sign-in, the wrong-password lock, sessions (issue 15)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from review_helpers import make_review_store

from labelfix.review.auth import (
    AuthError,
    FailureLimiter,
    Reviewer,
    SessionPolicy,
    SignInRefused,
    add_reviewer,
    disable_reviewer,
    hash_password,
    is_loopback,
    list_reviewers,
    remove_reviewer,
    session_reviewer,
    set_password,
    sign_in,
    sign_out,
    verify_password,
)
from labelfix.store import open_store

T0 = dt.datetime(2025, 3, 1, 9, 0, 0)
ANA_PASSWORD = "ana-secret-pw"
LEE_PASSWORD = "lee-secret-pw"


@pytest.fixture
def store(tmp_path):
    with open_store(make_review_store(tmp_path)) as store:
        add_reviewer(store, name="ana", role="annotator", password=ANA_PASSWORD, now=T0)
        add_reviewer(store, name="lee", role="lead", password=LEE_PASSWORD, now=T0)
        yield store


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_loopback_addresses():
    assert all(is_loopback(a) for a in ("127.0.0.1", "127.9.9.9", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"))
    assert not any(is_loopback(a) for a in ("0.0.0.0", "::", "", None, "192.0.2.1", "10.0.0.5", "example.org",
                                            "fd00::2"))


def test_hashes_are_salted_scrypt_and_checked():
    first, second = hash_password("same password"), hash_password("same password")
    assert first != second  # a fresh salt each time
    assert first.startswith("scrypt$16384$8$1$") and "same password" not in first
    assert verify_password("same password", first) and verify_password("same password", second)
    assert not verify_password("same passwore", first)
    assert not verify_password("same password", "not-a-hash") and not verify_password("x", "scrypt$1$2$3$!!$!!")


def test_the_store_keeps_hashes_never_passwords(store):
    rows = {row.name: row for row in list_reviewers(store)}
    assert {name: row.role for name, row in rows.items()} == {"ana": "annotator", "lee": "lead"}
    assert verify_password(ANA_PASSWORD, rows["ana"].password_hash)
    dump = repr(store.fetchall("SELECT * FROM reviewers")) + repr(store.fetchall("SELECT * FROM review_sessions"))
    assert ANA_PASSWORD not in dump and LEE_PASSWORD not in dump


@pytest.mark.parametrize("name,role,password,problem", [
    ("ana", "annotator", "long enough", "exists already"),
    ("bad/name", "annotator", "long enough", "not a reviewer name"),
    ("fiftyone:bob", "annotator", "long enough", "not a reviewer name"),
    ("../x", "annotator", "long enough", "not a reviewer name"),
    ("bob", "admin", "long enough", "unknown role"),
    ("bob", "annotator", "short", "too short"),
    ("bob", "annotator", "two\nlines here", "one line"),
])
def test_bad_accounts_are_refused(store, name, role, password, problem):
    with pytest.raises(AuthError, match=problem):
        add_reviewer(store, name=name, role=role, password=password)
    assert [row.name for row in list_reviewers(store)] == ["ana", "lee"]


def test_sign_in_gives_the_account_role_and_a_session(store):
    limiter = FailureLimiter()
    reviewer, token = sign_in(store, name=" ana ", password=ANA_PASSWORD, limiter=limiter, now=T0)
    assert reviewer == Reviewer("ana", "annotator") and not reviewer.is_lead
    assert session_reviewer(store, token=token, now=at(10)) == reviewer
    assert store.scalar("SELECT count(*) FROM review_sessions WHERE token_sha256 = ?", [token]) == 0  # hashed
    lead, _ = sign_in(store, name="lee", password=LEE_PASSWORD, limiter=limiter, now=T0)
    assert lead.is_lead
    assert session_reviewer(store, token="made-up", now=T0) is None
    assert session_reviewer(store, token=None, now=T0) is None


def test_a_wrong_password_is_refused_and_logged_without_the_password(store, caplog):
    caplog.set_level(logging.INFO, logger="labelfix.review.auth")
    with pytest.raises(SignInRefused, match="wrong name or password"):
        sign_in(store, name="ana", password="guess-Xq7-guess", limiter=FailureLimiter(), now=T0)
    with pytest.raises(SignInRefused, match="wrong name or password"):  # the same words for an unknown name
        sign_in(store, name="nobody", password="guess-Xq7-guess", limiter=FailureLimiter(), now=T0)
    refusals = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(refusals) == 2
    assert "'ana'" in refusals[0] and "2025-03-01T09:00:00Z" in refusals[0] and "wrong password" in refusals[0]
    assert "'nobody'" in refusals[1] and "unknown name" in refusals[1]
    assert "guess-Xq7-guess" not in caplog.text
    assert store.scalar("SELECT count(*) FROM review_sessions") == 0


def test_five_wrong_passwords_lock_the_name_for_30_seconds(store):
    limiter = FailureLimiter()
    for attempt in range(4):
        with pytest.raises(SignInRefused, match="wrong name or password$"):
            sign_in(store, name="ana", password="wrong-password", limiter=limiter, now=at(attempt))
    with pytest.raises(SignInRefused, match="locked for 30 s") as refused:
        sign_in(store, name="ana", password="wrong-password", limiter=limiter, now=at(4))
    assert refused.value.retry_after == 30
    # locked: even the right password is refused, and another name is not affected
    with pytest.raises(SignInRefused, match="try again in 20 s"):
        sign_in(store, name="ana", password=ANA_PASSWORD, limiter=limiter, now=at(14))
    assert sign_in(store, name="lee", password=LEE_PASSWORD, limiter=limiter, now=at(14))[0].name == "lee"
    # after the lock the right password works, and it clears the count
    assert sign_in(store, name="ana", password=ANA_PASSWORD, limiter=limiter, now=at(35))[0].name == "ana"
    for attempt in range(4):
        with pytest.raises(SignInRefused, match="password$"):
            sign_in(store, name="ana", password="wrong-password", limiter=limiter, now=at(40 + attempt))


def test_sessions_expire_when_idle_or_old(store):
    policy = SessionPolicy(max_age=dt.timedelta(hours=12), idle=dt.timedelta(minutes=30),
                           touch_every=dt.timedelta(seconds=60))
    _, token = sign_in(store, name="ana", password=ANA_PASSWORD, limiter=FailureLimiter(), now=T0)
    # active every 20 minutes: alive until the absolute limit
    for minutes in range(20, 12 * 60, 20):
        assert session_reviewer(store, token=token, policy=policy, now=at(60 * minutes)) is not None, minutes
    assert session_reviewer(store, token=token, policy=policy, now=at(12 * 3600 + 1)) is None
    assert store.scalar("SELECT ended_at FROM review_sessions") == at(12 * 3600 + 1)  # marked ended
    _, idle = sign_in(store, name="ana", password=ANA_PASSWORD, limiter=FailureLimiter(), now=T0)
    assert session_reviewer(store, token=idle, policy=policy, now=at(31 * 60)) is None
    assert session_reviewer(store, token=idle, policy=policy, now=at(32 * 60)) is None  # stays ended


def test_sign_out_removal_disabling_and_new_password_end_sessions(store):
    limiter = FailureLimiter()
    tokens = [sign_in(store, name="ana", password=ANA_PASSWORD, limiter=limiter, now=T0)[1] for _ in range(4)]
    sign_out(store, token=tokens[0], now=at(1))
    assert session_reviewer(store, token=tokens[0], now=at(2)) is None
    assert session_reviewer(store, token=tokens[1], now=at(2)) is not None  # other sessions go on
    set_password(store, name="ana", password="a-new-password", now=at(3))
    assert session_reviewer(store, token=tokens[1], now=at(4)) is None
    with pytest.raises(SignInRefused):
        sign_in(store, name="ana", password=ANA_PASSWORD, limiter=limiter, now=at(5))
    _, token = sign_in(store, name="ana", password="a-new-password", limiter=limiter, now=at(5))
    disable_reviewer(store, name="ana", now=at(6))
    assert session_reviewer(store, token=token, now=at(7)) is None
    with pytest.raises(SignInRefused, match="wrong name or password"):
        sign_in(store, name="ana", password="a-new-password", limiter=limiter, now=at(8))
    disable_reviewer(store, name="ana", disabled=False)
    _, token = sign_in(store, name="ana", password="a-new-password", limiter=limiter, now=at(9))
    remove_reviewer(store, name="ana", now=at(10))
    assert session_reviewer(store, token=token, now=at(11)) is None
    assert [row.name for row in list_reviewers(store)] == ["lee"]
    with pytest.raises(AuthError, match="no reviewer 'ana'"):
        remove_reviewer(store, name="ana")


def test_a_role_change_applies_to_open_sessions(store):
    _, token = sign_in(store, name="lee", password=LEE_PASSWORD, limiter=FailureLimiter(), now=T0)
    store.execute("UPDATE reviewers SET role = 'annotator' WHERE name = 'lee'")
    assert session_reviewer(store, token=token, now=at(1)) == Reviewer("lee", "annotator")


# -- one rule for reviewer names (fresh-user report, item 14) -----------------------------------------

NAMES = ["ana", "Ana Lima", "lee+qa@lab.org", "José", "a" * 40, "a" * 64, "a" * 65, "-x", "_x", "x.y", "bad/name",
         "fiftyone:bob", "<script>", "", "   ", "a\tb", "名前", "o'neil", "x;y"]


@pytest.mark.parametrize("name", NAMES)
def test_the_app_and_the_accounts_share_one_name_rule(name):
    import re

    from labelfix.review.app.identity import check_name as app_check
    from labelfix.review.auth import AuthError, check_name as account_check

    try:
        account = account_check(name)
    except AuthError:
        account = None
    assert app_check(name) == account  # the same answer, and the same cleaned name
    # No name either old rule accepted is refused now (app: 1-40 of [\w .@+-]; accounts: 1-64 ASCII).
    cleaned = " ".join(name.split())
    old_app = re.fullmatch(r"[\w .@+-]{1,40}", cleaned)
    old_account = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}", name.strip())
    if old_app or old_account:
        assert account is not None


def test_a_name_the_app_accepts_can_become_an_account(store):
    account = add_reviewer(store, name="  Ana   Lima ", role="annotator", password="long enough")
    assert account.name == "Ana Lima"
