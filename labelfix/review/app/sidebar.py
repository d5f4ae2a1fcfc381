"""The sidebar: who reviews, which suggestions (class, order, kind, status, score, filters), guidelines.

Drawn on full runs only, and after the review panel: :func:`choose` reads what the widgets hold from the
session first, so the first item shows before the sidebar is drawn. The live class progress is drawn
into the sidebar's ``classes_box`` by the review panel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from labelfix.review.app import page
from labelfix.review.app.backend import Filters, waiting
from labelfix.review.app.identity import Reviewer, change_reviewer
from labelfix.review.app.wording import KEY_HELP
from labelfix.review.models import PENDING, Progress
from labelfix.review.service import ReviewService

STATUS_CHOICES: dict[str, tuple[str, ...] | None] = {
    "to review": PENDING, "skipped": ("skipped",), "added / removed (accepted)": ("accepted",),
    "said no (rejected)": ("rejected",), "all": None}
KIND_CHOICES: dict[str, tuple[str, ...] | None] = {
    "missing labels first, then spurious": None, "missing labels only (add)": ("missing",),
    "spurious labels only (remove)": ("spurious",)}
ORDER_CHOICES = {"rare classes first": False, "frequent classes first": True}
PAGE_SIZES = [8, 12, 24]


def _choose_class() -> None:
    st.session_state["_class_choice"] = st.session_state["class"]
    st.session_state.pop("focus", None)


def _choose_kinds() -> None:
    # another kind of item: start from the first class that has such items waiting
    st.session_state.pop("_class_choice", None)
    _reset_focus()


def _reset_focus() -> None:
    st.session_state.pop("focus", None)
    st.session_state.pop("_skipped_now", None)


@dataclass(frozen=True)
class Choice:
    """What the sidebar's widgets say now (read from the session before they are drawn), and the classes."""

    filters: Filters
    runs: list[int]
    progress: Progress


def layout() -> tuple[Any, Any]:
    """The sidebar's two places, made first: one for the widgets (drawn last, after the review panel, so the
    first item shows sooner) and one the review panel draws the live class progress into."""
    widgets = st.sidebar.container()
    classes_box = st.sidebar.empty()
    classes_box.caption("…")
    return widgets, classes_box


def _state(key: str, default: Any) -> Any:
    value = st.session_state.get(key, default)
    return default if value is None and default is not None else value


def choose(service: ReviewService) -> Choice:
    """The filters the sidebar's widgets hold (their values from the session; defaults on a first visit)."""
    runs = service.runs()
    run_id = _state("run", runs[0] if runs else None) if len(runs) > 1 else (runs[0] if runs else None)
    head_first = ORDER_CHOICES[_state("order", next(iter(ORDER_CHOICES)))]
    kinds = KIND_CHOICES[_state("kinds", next(iter(KIND_CHOICES)))]
    progress = page.progress(service, filters=Filters(run_id=run_id, head_first=head_first))
    with_suggestions = [p for p in progress.by_class if p.total]
    options: list[int | None] = [p.category_id for p in with_suggestions] + [None]
    current = st.session_state.get("_class_choice", "unset")
    if current not in options:
        # classes whose suggestions are calibrated first: the page never opens on an uncalibrated ranked list
        # while calibrated items wait (fresh report item 9); rare classes first within each
        pending = [p.category_id for p in sorted(with_suggestions, key=lambda p: p.ranked_only)
                   if waiting(p, Filters(kinds=kinds))]
        current = pending[0] if pending else options[0]
    # The choice lives in our own state: the order of options changes with the class order.
    st.session_state["_class_choice"] = current
    statuses = STATUS_CHOICES[_state("status", next(iter(STATUS_CHOICES)))]
    low, high = _state("score", (0.0, 1.0))
    image_text = str(_state("image_filter", "")).strip()
    page_number = int(_state("page", 1)) if statuses is None or not set(statuses) <= set(PENDING) else 1
    filters = Filters(run_id=run_id, category_id=current, head_first=head_first, min_score=float(low),
                      max_score=float(high), statuses=statuses, kinds=kinds,
                      image_id=int(image_text) if image_text.isdigit() else None,
                      with_label=_state("with_label", None), decided_by=str(_state("decided_by", "")).strip() or None,
                      page_size=int(_state("page_size", 12)), page=page_number)
    return Choice(filters=filters, runs=runs, progress=progress)


def draw(box: Any, reviewer: Reviewer, choice: Choice) -> None:
    """The sidebar's widgets, into ``box``; their values are what :func:`choose` read."""
    filters, progress = choice.filters, choice.progress
    with box:
        st.markdown("### labelfix review")
        who = st.columns([3, 2])
        who[0].markdown(f"Reviewing as **{reviewer.name}**" + (" (lead)" if reviewer.role == "lead" else ""))
        who[1].button("Change", key="change_reviewer", on_click=change_reviewer,
                      help="Review under another name; your held items are given back at once.")
        _guidelines()
        if len(choice.runs) > 1:
            st.selectbox("Suggestion run", choice.runs, key="run", format_func=lambda r: f"run {r}",
                         on_change=_reset_focus)
        st.radio("Class order", list(ORDER_CHOICES), key="order", horizontal=True, on_change=_reset_focus)
        with_suggestions = [p for p in progress.by_class if p.total]
        names = {p.category_id: p for p in with_suggestions}
        st.session_state["class"] = filters.category_id
        st.selectbox("Class", [p.category_id for p in with_suggestions] + [None], key="class", on_change=_choose_class,
                     format_func=lambda c: "all classes" if c is None else
                     f"{names[c].name} · {names[c].frequency} labelled"
                     + (" · ranked only" if names[c].ranked_only else ""))
        st.selectbox("Suggestions", list(KIND_CHOICES), key="kinds", on_change=_choose_kinds,
                     help="Missing-label items ask to ADD a class; spurious-label items ask to REMOVE a label. "
                          "Missing ones come first unless you choose.")
        st.selectbox("Status", list(STATUS_CHOICES), key="status", on_change=_reset_focus)
        st.slider("Score range", 0.0, 1.0, (0.0, 1.0), step=0.01, key="score", on_change=_reset_focus)
        st.segmented_control("Items per page", PAGE_SIZES, key="page_size", default=12, on_change=_reset_focus)
        with st.expander("Filters: current label, image, reviewer"):
            class_names = {p.category_id: p.name for p in progress.by_class}
            st.selectbox("Images that currently have the label", [None, *class_names], key="with_label",
                         format_func=lambda c: "any" if c is None else class_names[c], on_change=_reset_focus)
            image_text = st.text_input("Image id", key="image_filter", placeholder="e.g. 12", on_change=_reset_focus)
            if image_text.strip() and not image_text.strip().isdigit():
                st.caption("an image id is a number")
            st.text_input("Decided by (for decided items)", key="decided_by", on_change=_reset_focus,
                          placeholder="reviewer name")
        if filters.statuses is None or not set(filters.statuses) <= set(PENDING):
            st.number_input("Page", min_value=1, value=1, step=1, key="page")
        st.markdown("**Classes** " + ("(frequent first)" if filters.head_first else "(rare first)")
                    + ": decided / suggested")


def _guidelines() -> None:
    with st.expander("Guidelines and keys"):
        st.markdown(
            "**:green[+ add 'seven'?]** — a *missing label*: the model sees a seven the labels do not have. "
            "**A** adds it if you see one; **X** says it is not there (recorded as absent).\n\n"
            "**:red[− remove 'eight'?]** — a *spurious label*: the image is labelled 'eight' but the model doubts "
            "it. **R** removes the label if there is no eight; **X** keeps it.\n\n"
            "Not sure? **S** skips (the item comes back at the end). Decide what you *see*, not what the score "
            "says. Boxes drawn on the image are the source annotations.")
        st.markdown("\n".join(f"- **{key}** {text}" for key, text in KEY_HELP))
