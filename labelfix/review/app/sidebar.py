"""The sidebar: who reviews, which suggestions (class, order, kind, status, score, filters), guidelines, export.

Drawn on full runs only; the live class progress is drawn into ``classes_box`` by the review panel.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from labelfix.review.app import page
from labelfix.review.app.backend import Filters, waiting
from labelfix.review.app.identity import Reviewer, change_reviewer
from labelfix.review.app.state import export_dir, flash
from labelfix.review.app.wording import KEY_HELP
from labelfix.review.models import PENDING
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


def sidebar(service: ReviewService, reviewer: Reviewer) -> tuple[Filters, Any]:
    """Draw the sidebar; return the chosen filters and the container the class progress goes into."""
    bar = st.sidebar
    bar.markdown("### labelfix review")
    who = bar.columns([3, 2])
    who[0].markdown(f"Reviewing as **{reviewer.name}**" + (" (lead)" if reviewer.role == "lead" else ""))
    who[1].button("Change", key="change_reviewer", on_click=change_reviewer,
                  help="Review under another name; your held items are given back at once.")
    _guidelines(bar)
    runs = service.runs()
    run_id = bar.selectbox("Suggestion run", runs, key="run", format_func=lambda r: f"run {r}",
                           on_change=_reset_focus) if len(runs) > 1 else (runs[0] if runs else None)
    order = bar.radio("Class order", list(ORDER_CHOICES), key="order", horizontal=True, on_change=_reset_focus)
    head_first = ORDER_CHOICES[order]
    progress = page.progress(service, filters=Filters(run_id=run_id, head_first=head_first))
    with_suggestions = [p for p in progress.by_class if p.total]
    names = {p.category_id: p for p in with_suggestions}
    options: list[int | None] = [p.category_id for p in with_suggestions] + [None]
    kinds = KIND_CHOICES[st.session_state.get("kinds", next(iter(KIND_CHOICES)))]
    current = st.session_state.get("_class_choice", "unset")
    if current not in options:
        pending = [p.category_id for p in with_suggestions if waiting(p, Filters(kinds=kinds))]
        current = pending[0] if pending else options[0]
    # The choice lives in our own state: the order of options changes with the class order.
    st.session_state["_class_choice"] = st.session_state["class"] = current
    category_id = bar.selectbox(
        "Class", options, key="class", on_change=_choose_class,
        format_func=lambda c: "all classes" if c is None else f"{names[c].name} · {names[c].frequency} labelled")
    kinds = KIND_CHOICES[bar.selectbox("Suggestions", list(KIND_CHOICES), key="kinds", on_change=_choose_kinds,
                                       help="Missing-label items ask to ADD a class; spurious-label items ask to "
                                            "REMOVE a label. Missing ones come first unless you choose.")]
    status_name = bar.selectbox("Status", list(STATUS_CHOICES), key="status", on_change=_reset_focus)
    statuses = STATUS_CHOICES[status_name]
    low, high = bar.slider("Score range", 0.0, 1.0, (0.0, 1.0), step=0.01, key="score", on_change=_reset_focus)
    page_size = bar.segmented_control("Items per page", PAGE_SIZES, key="page_size", default=12,
                                      on_change=_reset_focus) or 12
    with bar.expander("Filters: current label, image, reviewer"):
        class_names = {p.category_id: p.name for p in progress.by_class}
        with_label = st.selectbox("Images that currently have the label", [None, *class_names], key="with_label",
                                  format_func=lambda c: "any" if c is None else class_names[c],
                                  on_change=_reset_focus)
        image_text = st.text_input("Image id", key="image_filter", placeholder="e.g. 12", on_change=_reset_focus)
        image_id = int(image_text) if image_text.strip().isdigit() else None
        if image_text.strip() and image_id is None:
            st.caption("an image id is a number")
        decided_by = st.text_input("Decided by (for decided items)", key="decided_by", on_change=_reset_focus,
                                   placeholder="reviewer name").strip() or None
    page_number = 1
    if statuses is None or not set(statuses) <= set(PENDING):
        page_number = int(bar.number_input("Page", min_value=1, value=1, step=1, key="page"))
    bar.markdown("**Classes** " + ("(frequent first)" if head_first else "(rare first)") + ": decided / suggested")
    classes_box = bar.empty()  # the review panel draws the live class progress into it
    classes_box.caption("…")
    filters = Filters(run_id=run_id, category_id=category_id, head_first=head_first, min_score=low, max_score=high,
                      statuses=statuses, kinds=kinds, image_id=image_id, with_label=with_label, decided_by=decided_by,
                      page_size=int(page_size), page=page_number)
    return filters, classes_box


def _guidelines(bar) -> None:
    with bar.expander("Guidelines and keys"):
        st.markdown(
            "**:green[+ add 'seven'?]** — a *missing label*: the model sees a seven the labels do not have. "
            "**A** adds it if you see one; **X** says it is not there (recorded as absent).\n\n"
            "**:red[− remove 'eight'?]** — a *spurious label*: the image is labelled 'eight' but the model doubts "
            "it. **R** removes the label if there is no eight; **X** keeps it.\n\n"
            "Not sure? **S** skips (the item comes back at the end). Decide what you *see*, not what the score "
            "says. Boxes drawn on the image are the source annotations.")
        st.markdown("\n".join(f"- **{key}** {text}" for key, text in KEY_HELP))


def _write_export() -> None:
    from labelfix.export import export_coco
    from labelfix.review.app.state import service

    folder = export_dir()
    try:
        with service().connection() as store:
            summary = export_coco(store, out_dir=folder)
    except OSError as error:
        flash("error", f"could not write into {folder}: {error}")
        return
    st.session_state["_exported"] = [str(p) for p in summary.paths]
    flash("success", f"wrote {', '.join(p.name for p in summary.paths)} into {folder} "
                     f"({summary.n_annotations} labels: {summary.by_source})")


def export_section(service: ReviewService, reviewer: Reviewer) -> None:
    """Export the corrected labels into the server's export folder, then offer the file for download."""
    if reviewer.role != "lead":
        return
    box = st.expander("Export corrected labels", key="export_box", on_change="rerun")
    if not box.open:
        return  # lazy: the diff is computed only while the box is open
    with box:
        folder = export_dir()
        st.caption(f"Writes labels.json into the server's export folder {folder}.")
        diff = service.label_diff()
        st.dataframe([{"class": d.name, "source": d.original_positive, "export": d.exported_positive,
                       "added": d.added, "removed": d.removed, "verified absent": d.verified_negative}
                      for d in diff], hide_index=True, width="stretch")
        st.button("Write labels.json", key="export_write", type="primary", on_click=_write_export)
        for path in st.session_state.get("_exported", []):
            target = folder / path.rsplit("/", 1)[-1]
            if target.is_file():
                st.download_button(f"Download {target.name}", data=target.read_bytes(), file_name=target.name,
                                   mime="application/json", key=f"download_{target.name}")
