"""The sign-in gate of the review app in team mode (see :mod:`labelfix.review.auth`).

Call :func:`signed_in_reviewer` at the very top of the page, before any store query: in team mode it shows
only the sign-in form (no class names, counts or images) and stops the run until a reviewer signs in;
then it returns that :class:`~labelfix.review.auth.Reviewer` and puts "signed in as" and a sign-out button
in the sidebar. Outside team mode it returns ``None`` and the app asks for a typed name as before.

Callbacks run before the page, so they ask :func:`acting_reviewer`, which checks the session again:
a session that expired or was ended meanwhile decides nothing.
"""

from __future__ import annotations

import logging
import sys

import streamlit as st

from labelfix.review.app.server_options import session_policy, team_mode
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
NOTICE_KEY = "_labelfix_signin_notice"
FORM_KEY = "labelfix_signin"


def _log_to_server_console() -> None:
    """Sign-in lines (refusals, sign-ins) go to the server's stderr, beside Streamlit's own log."""
    auth_logger = logging.getLogger("labelfix.review.auth")
    if not auth_logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        auth_logger.addHandler(handler)
        auth_logger.setLevel(logging.INFO)


def _session_reviewer(service: ReviewQueries) -> Reviewer | None:
    token = st.session_state.get(SESSION_KEY)
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
    token = st.session_state.pop(SESSION_KEY, None)
    with store_of(service) as store:
        sign_out(store, token=token)
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
    reviewer = _session_reviewer(service)
    if reviewer is None:
        if st.session_state.pop(SESSION_KEY, None):
            st.session_state[NOTICE_KEY] = "Your session ended: sign in again."
        _sign_in_form(service)
        st.stop()
    assert reviewer is not None
    sidebar = st.sidebar.container(key="signed_in")
    name = reviewer.name.replace("_", "\\_")  # reviewer names have no other Markdown characters
    sidebar.markdown(f"Signed in as **{name}** · {reviewer.role}")
    sidebar.button("Sign out", key="sign_out", on_click=_sign_out, args=(service,))
    return reviewer
