"""The sign-in gate of the review app in team mode (see :mod:`labelfix.review.auth`).

Call :func:`signed_in_reviewer` at the very top of the page, before any store query: in team mode it shows
only the sign-in form (no class names, counts or images) and stops the run until a reviewer signs in;
then it returns that :class:`~labelfix.review.auth.Reviewer` and puts "signed in as" and a sign-out button
in the sidebar. Outside team mode it returns ``None`` and the app asks for a typed name as before.

Callbacks run before the page, so they ask :func:`acting_reviewer`, which checks the session again:
a session that expired or was ended meanwhile decides nothing.

A refresh or a bookmark keeps the session (FRESH 4): after sign-in the page stores the session token in a
cookie (``labelfix_session_<store>``: ``SameSite=Strict``, ``Secure`` over https, expiring with the session
hours), and a new browser session of the page (a refresh, another tab, a bookmark) reads it from the
request that opened the page and verifies it against the store like any other token: a refresh reuses the
signed-in session instead of opening another. The token is random (256 bits, :mod:`secrets`); the store
keeps only its sha256 and looks it up by that digest, so it is never logged or stored in clear, and the
password is never kept anywhere. Sign-out, the idle limit, the session hours and account changes end the
session in the store, so the cookie then signs nobody in; the page removes a dead cookie.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import sys
from typing import Any

import streamlit as st

from labelfix.review.app.server_options import db_path, session_policy, team_mode
from labelfix.review.auth import (
    Reviewer,
    SignInRefused,
    count_enabled_reviewers,
    session_reviewer,
    sign_in,
    sign_out,
)
from labelfix.review.lead import store_of
from labelfix.review.queries import ReviewQueries

__all__ = ["acting_reviewer", "signed_in_reviewer"]

SESSION_KEY = "_labelfix_session_token"
ENDED_KEY = "_labelfix_ended_token"  # the last token this browser session saw end: its cookie is removed
NOTICE_KEY = "_labelfix_signin_notice"
FORM_KEY = "labelfix_signin"
COOKIE_PREFIX = "labelfix_session_"

# Sets or removes the session cookie in the page (no UI). Removing only a cookie that still holds the ended
# token: another tab of this browser may have signed in meanwhile, and its cookie stays.
_COOKIE_JS = r"""
export default function (component) {
  const { data } = component;
  const attributes = "; Path=/; SameSite=Strict" + (window.location.protocol === "https:" ? "; Secure" : "");
  const current = document.cookie.split("; ").find((c) => c.startsWith(data.name + "="));
  const value = current ? current.slice(data.name.length + 1) : "";
  if (data.token) {
    if (value !== data.token) document.cookie = `${data.name}=${data.token}; Max-Age=${data.max_age}${attributes}`;
  } else if (data.ended && value === data.ended) {
    document.cookie = `${data.name}=; Max-Age=0${attributes}`;
  }
}
"""


def cookie_name() -> str:
    """The session cookie of this store's server (cookies ignore ports: two servers on one host keep theirs)."""
    return COOKIE_PREFIX + hashlib.sha256(str(db_path()).encode("utf-8")).hexdigest()[:12]


@functools.cache
def _cookie_component() -> Any:
    return st.components.v2.component("labelfix_session_cookie", js=_COOKIE_JS)


def _cookie(*, token: str | None = None, ended: str | None = None) -> None:
    """Put the session token into the cookie, or remove a cookie that holds the ended token."""
    if not (token or ended):
        return
    max_age = int(session_policy().max_age.total_seconds())
    _cookie_component()(key="session_cookie", data={"name": cookie_name(), "token": token or "",
                                                     "ended": ended or "", "max_age": max_age},
                        height="content")


def _token() -> str | None:
    """This browser session's token: the one it signed in with, else the cookie the page was opened with."""
    token = st.session_state.get(SESSION_KEY)
    if token:
        return str(token)
    try:
        cookie = st.context.cookies.get(cookie_name())
    except (AttributeError, RuntimeError):  # no browser request (Streamlit's test harness)
        cookie = None
    if not isinstance(cookie, str) or not cookie or cookie == st.session_state.get(ENDED_KEY):
        return None
    return cookie


def _log_to_server_console() -> None:
    """Sign-in lines (refusals, sign-ins) go to the server's stderr, beside Streamlit's own log."""
    auth_logger = logging.getLogger("labelfix.review.auth")
    if not auth_logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        auth_logger.addHandler(handler)
        auth_logger.setLevel(logging.INFO)


def _session_reviewer(service: ReviewQueries) -> Reviewer | None:
    token = _token()
    if not token:
        return None
    with store_of(service) as store:
        return session_reviewer(store, token=token, policy=session_policy())


def acting_reviewer(service: ReviewQueries, *, typed_name: str = "") -> Reviewer | None:
    """Who acts in this browser session now: the signed-in reviewer (team mode), else the typed name as a lead.

    ``None`` in team mode without a live session, and outside it without a typed name.
    """
    if not team_mode():
        name = typed_name.strip()
        return Reviewer(name, "lead") if name else None
    return _session_reviewer(service)


def _sign_out(service: ReviewQueries) -> None:
    token = _token()
    st.session_state.pop(SESSION_KEY, None)
    with store_of(service) as store:
        sign_out(store, token=token)
    st.session_state[ENDED_KEY] = token  # the page removes the cookie that holds it
    st.session_state[NOTICE_KEY] = "Signed out."


def _sign_in_form(service: ReviewQueries) -> None:
    st.title("labelfix review")
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.info(notice)
    with store_of(service) as store:
        n_accounts = count_enabled_reviewers(store)
    if not n_accounts:
        st.error("This review server has no reviewer accounts yet.\n\n"
                 "fix: on the server, `labelfix reviewers add NAME --role lead`, then reload this page.")
        return
    with st.form(FORM_KEY, clear_on_submit=True):  # clear: the password does not stay in the form's state
        name = st.text_input("Reviewer name", key="signin_name", max_chars=64)
        password = st.text_input("Password", type="password", key="signin_password", max_chars=1024)
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            with store_of(service) as store:
                _, token = sign_in(store, name=name, password=password)
        except SignInRefused as refused:
            st.error(refused.problem)
            return
        st.session_state[SESSION_KEY] = token
        st.rerun()


def signed_in_reviewer(service: ReviewQueries) -> Reviewer | None:
    """The signed-in reviewer in team mode (else ``None``); shows the sign-in form and stops until there is one.

    Parameters
    ----------
    service
        The app's review service; its store holds the reviewer accounts.
    """
    if not team_mode():
        return None
    _log_to_server_console()
    token = _token()
    reviewer = _session_reviewer(service)
    if reviewer is None:
        st.session_state.pop(SESSION_KEY, None)
        if token:  # signed in before (this page, or the cookie of an earlier one), and that session is over
            st.session_state[ENDED_KEY] = token
            st.session_state.setdefault(NOTICE_KEY, "Your session ended: sign in again.")
        _sign_in_form(service)
        _cookie(ended=st.session_state.get(ENDED_KEY))
        st.stop()
    assert reviewer is not None and token is not None
    st.session_state[SESSION_KEY] = token  # a refresh's cookie: this browser session's token from now on
    sidebar = st.sidebar.container(key="signed_in")
    name = reviewer.name.replace("_", "\\_")  # reviewer names have no other Markdown characters
    sidebar.markdown(f"Signed in as **{name}** · {reviewer.role}")
    sidebar.button("Sign out", key="sign_out", on_click=_sign_out, args=(service,))
    with sidebar:
        _cookie(token=token)
    return reviewer
