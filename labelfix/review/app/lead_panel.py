"""The lead's panel of the review app: per-reviewer counts and agreement, and reverting a reviewer.

Shown to leads only (in team mode; on a loopback server the one user is the lead).
:func:`labelfix.review.lead.revert_reviewer` checks the role again when the revert runs.
"""

from __future__ import annotations

import streamlit as st

from labelfix.errors import LabelfixError
from labelfix.review.auth import Reviewer
from labelfix.review.lead import revert_reviewer, reviewer_stats
from labelfix.review.service import ReviewService

__all__ = ["lead_panel"]


def lead_panel(service: ReviewService, reviewer: Reviewer | None) -> None:
    """A sidebar expander "Team" for a lead; nothing for an annotator or without a reviewer."""
    if reviewer is None or not reviewer.is_lead:
        return
    with st.sidebar.expander("Team (lead)"):
        notice = st.session_state.pop("_lead_notice", None)
        if notice:
            getattr(st, notice[0])(notice[1])
        stats = reviewer_stats(service)
        if not stats:
            st.caption("No decisions yet.")
            return
        st.dataframe([{"reviewer": s.reviewer, "✓": s.accepted, "✗": s.rejected, "skip": s.skipped,
                       "undone": s.undone, "shared": s.shared,
                       "agree": None if s.agreement is None else f"{s.agreement:.0%}",
                       "last": s.last_at.strftime("%m-%d %H:%M") if s.last_at else ""} for s in stats],
                     hide_index=True, width="stretch", key="lead_stats")
        st.caption("✓/✗/skip: decisions in force; agree: same accept/reject as another reviewer on the "
                   "suggestions both decided (shared).")
        names = [s.reviewer for s in stats if s.accepted + s.rejected + s.skipped]
        if not names:
            return
        target = st.selectbox("Revert every decision of", names, key="lead_revert_who")
        if st.button("Revert…", key="lead_revert"):
            st.session_state["_lead_revert"] = target
        if st.session_state.get("_lead_revert") == target:
            st.warning(f"Undo every decision of {target} still in force?")
            left, right = st.columns(2)
            if left.button("Confirm revert", key="lead_revert_confirm", type="primary"):
                st.session_state.pop("_lead_revert", None)
                try:
                    result = revert_reviewer(service, lead=reviewer, reviewer=target)
                except LabelfixError as error:
                    st.session_state["_lead_notice"] = ("error", error.message)
                else:
                    st.session_state["_lead_notice"] = ("success", (
                        f"reverted {len(result.events)} decisions of {target}"
                        + (f"; {len(result.conflicts)} changed meanwhile, left alone" if result.conflicts else "")))
                st.rerun()
            if right.button("Cancel", key="lead_revert_cancel"):
                st.session_state.pop("_lead_revert", None)
                st.rerun()
