"""What a team lead sees besides the queue: per-reviewer counts and agreement (full runs, below the panel)."""

from __future__ import annotations

import streamlit as st

from labelfix.review.app.identity import Reviewer
from labelfix.review.app.wording import human_time
from labelfix.review.service import ReviewService


def team_section(service: ReviewService, reviewer: Reviewer, *, run_id: int | None) -> None:
    """Per-reviewer counts for a lead: decisions in force, skips, undone decisions, last activity; agreement."""
    if reviewer.role != "lead":
        return
    box = st.expander("Reviewers (lead)", key="team_box", on_change="rerun")
    if not box.open:
        return  # lazy: counted only while the box is open
    with box:
        rows = service.reviewer_stats(run_id=run_id)
        if not rows:
            st.caption("No decisions yet.")
            return
        st.dataframe([{"reviewer": r.reviewer, "added / removed": r.accepted, "said no": r.rejected,
                       "skipped": r.skipped, "undone": r.undone, "decided": r.accepted + r.rejected,
                       "last decision": human_time(r.last_at)} for r in rows],
                     hide_index=True, width="stretch")
        pairs = [a for a in service.agreement() if a.n_common]
        if pairs:
            st.caption("Agreement on the cells two reviewers both decided (add or not):")
            st.dataframe([{"reviewers": f"{a.reviewer_a} · {a.reviewer_b}", "both decided": a.n_common,
                           "agree": a.n_agree, "agreement": f"{a.n_agree / a.n_common:.0%}"} for a in pairs],
                         hide_index=True, width="stretch")
