"""labelfix review app: a thin Streamlit UI over :class:`labelfix.review.service.ReviewService`.

Start it with ``labelfix review [--db STORE] [--port 8501]``; the store path comes from ``--db`` after
``--`` on the streamlit command line, or from ``$LABELFIX_DB``. The page has three parts:

* the sidebar (:mod:`.sidebar`): reviewer, class, order, kind, status, score and other filters, guidelines;
* the review panel (:mod:`.panel`), an ``st.fragment``: the item shown large and the live class progress;
  a key reruns only this part (the page's tiles are marked in the browser);
* the page's tiles with batch decisions, another fragment: redrawn on its own widgets and on a new page;
* below it, for a lead: per-reviewer counts (:mod:`.team`) and the export (:mod:`.export_panel`).

Keys (:mod:`.keys`): A add · R remove · X no / keep · S skip · U undo · J/→ next · K/← previous · + − 0 zoom.
"""

from __future__ import annotations

import time

import streamlit as st

from labelfix.errors import LabelfixError
from labelfix.review.app import sidebar
from labelfix.review.app.export_panel import export_panel
from labelfix.review.app.identity import current_reviewer
from labelfix.review.app.lead_panel import lead_panel
from labelfix.review.app.panel import grid_panel, review_panel
from labelfix.review.app.server_options import team_mode
from labelfix.review.app.signin import signed_in_reviewer
from labelfix.review.app.state import log_timing, page_end_marker, page_session, service, start_page_run, whole_page
from labelfix.review.app.team import team_section


def main() -> None:
    started = time.perf_counter()
    st.set_page_config(page_title="labelfix review", layout="wide")
    start_page_run()
    try:
        service_ = service()
    except LabelfixError as error:
        st.error("the review server cannot open its store (see the server's log)" if team_mode() else error.message)
        st.stop()
    # Team mode: only the sign-in form until a reviewer signs in; nothing of the store is shown before.
    signed_in = signed_in_reviewer(service_)
    reviewer = current_reviewer()
    widgets_box, classes_box = sidebar.layout()
    with page_session():
        choice = sidebar.choose(service_)
    review_panel(choice.filters, reviewer, classes_box)
    if not whole_page():
        log_timing("page", started)
        return  # the first item is drawn; the page asks for the rest once it is on screen (keys.py)
    with page_session():
        sidebar.draw(widgets_box, reviewer, choice)
    grid_panel(choice.filters, reviewer)
    with page_session():
        team_section(service_, reviewer, run_id=choice.filters.run_id)
        lead_panel(service_, signed_in)  # team mode: revert a reviewer's decisions (leads only)
        export_panel(service_, signed_in)  # loopback: None, everyone is a lead
    page_end_marker()
    log_timing("page", started)


try:
    main()
except LabelfixError as error:
    st.error(error.message)
