"""What a team lead sees besides the queue: per-reviewer counts (drawn on full runs, below the panel)."""

from __future__ import annotations

import streamlit as st

from labelfix.review.app.identity import Reviewer
from labelfix.review.app.wording import human_time
from labelfix.review.service import ReviewService


def team_section(service: ReviewService, reviewer: Reviewer, *, run_id: int | None) -> None:
    """Per-reviewer counts for a lead: decisions in force, skips, undone decisions, last activity."""
    if reviewer.role != "lead":
        return
    with st.expander("Reviewers (lead)", key="team_box"):
        rows = service.reviewer_stats(run_id=run_id)
        if not rows:
            st.caption("No decisions yet.")
            return
        st.dataframe([{"reviewer": r.reviewer, "added / removed": r.accepted, "said no": r.rejected,
                       "skipped": r.skipped, "undone": r.undone, "decided": r.accepted + r.rejected,
                       "last decision": human_time(r.last_at)} for r in rows],
                     hide_index=True, width="stretch")
