"""Who is reviewing: every decision of the app goes through ``current_reviewer().name``.

Without sign-in (the server on loopback, one person or a few trusted ones) the reviewer names
themselves before the first decision; the name lives in the page address (``?reviewer=ana``) so a
refresh or a bookmark keeps it, and each browser tab has its own. Renaming gives back the old name's
leases, so the new name sees the items at once. Without sign-in everybody is a lead (they could start
the server themselves). Team mode (issue 15) puts a sign-in gate in front of this.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import streamlit as st

from labelfix.review.app.state import service
from labelfix.review.auth import NAME_RULE, clean_reviewer_name

Role = Literal["annotator", "lead"]
QUERY_KEY = "reviewer"
DEFAULT_ENV_VAR = "LABELFIX_REVIEWER"


@dataclass(frozen=True)
class Reviewer:
    """A reviewer: the name recorded on decisions and leases, and the role (``annotator`` or ``lead``)."""

    name: str
    role: Role


def check_name(name: str) -> str | None:
    """The cleaned name, or ``None`` when it cannot be a reviewer name (the one rule of
    :func:`labelfix.review.auth.clean_reviewer_name`, shared with ``labelfix reviewers add``).

    Examples
    --------
    >>> check_name("  ana  "), check_name(""), check_name("a" * 65), check_name("ana<script>")
    ('ana', None, None, None)
    """
    return clean_reviewer_name(name)


def _named() -> str | None:
    value = st.query_params.get(QUERY_KEY)
    return check_name(value) if value else None


def _start(field: str) -> None:
    name = check_name(st.session_state.get(field, ""))
    if name is None:
        st.session_state["_name_problem"] = f"Use {NAME_RULE} (the name is recorded on every decision)."
        return
    st.session_state.pop("_name_problem", None)
    name = service().known_reviewer(name=name)  # "ana" is "Ana" if Ana has reviewed here: one reviewer
    previous = _named()
    if previous and previous != name:
        service().release(reviewer=previous)  # the old name's items are free for everyone at once
    st.query_params[QUERY_KEY] = name


def change_reviewer() -> None:
    """Forget the name (and give back its leases): the page asks for a name again."""
    previous = _named()
    if previous:
        service().release(reviewer=previous)
    del st.query_params[QUERY_KEY]


def _ask_name() -> None:
    st.title("labelfix review")
    st.markdown("#### Who is reviewing?")
    st.caption("Your name is recorded on every decision and holds the items you are looking at, so two "
               "reviewers never get the same item. It stays in this page's address: bookmark it or refresh "
               "freely.")
    with st.form("name_form", border=False):
        st.text_input("Your name", key="name_input", value=os.environ.get(DEFAULT_ENV_VAR, ""),
                      max_chars=40, placeholder="e.g. ana")
        st.form_submit_button("Start reviewing", type="primary", on_click=_start, args=("name_input",))
    problem = st.session_state.get("_name_problem")
    if problem:
        st.error(problem)


def current_reviewer() -> Reviewer:
    """The reviewer of this browser tab; asks for a name (and stops the page) until there is one.

    In team mode (issue 15) it is the signed-in reviewer, checked against the session on every call
    (callbacks run before the page's sign-in gate); without a live session nothing is decided.
    """
    from labelfix.review.app.server_options import team_mode

    if team_mode():
        from labelfix.review.app.signin import acting_reviewer

        signed_in = acting_reviewer(service())
        if signed_in is None:
            st.stop()  # the page's sign-in gate shows the form on this run
        assert signed_in is not None
        return Reviewer(name=signed_in.name, role="lead" if signed_in.is_lead else "annotator")
    name = _named()
    if name is None:
        _ask_name()
        st.stop()
    return Reviewer(name=name, role="lead")
