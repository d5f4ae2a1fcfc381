"""The review panel: the item shown large, the page grid and the live class progress, as one fragment.

A key press or a click inside the panel reruns only this fragment (``st.fragment``), not the sidebar:
the page's slow parts (filters, export, team counts) are drawn once per full run. Images are rendered
once per (file, boxes, size) and cached as JPEG bytes, and the page's labels and boxes come in two
queries for all of its images.
"""

from __future__ import annotations

import html
import time
from pathlib import Path

import streamlit as st

from labelfix.errors import LabelfixError
from labelfix.review.app import actions, page, pictures
from labelfix.review.app.backend import Filters, waiting
from labelfix.review.app.components import label_chips
from labelfix.review.app.identity import Reviewer
from labelfix.review.app.keys import key_listener
from labelfix.review.app.state import (draw_whole_page, last_flash, log_timing, on_ready, other_tabs, page_run,
                                      page_session, service, whole_page)
from labelfix.review.app.wording import human_time, score_text, wording
from labelfix.review.models import PENDING, ClassProgress, ImageBox, ImageLabel, PrecisionEstimate, QueueItem
from labelfix.review.service import ReviewService

def _focus_panel(item: QueueItem, labels: list[ImageLabel], boxes: list[ImageBox], reviewer: Reviewer) -> None:
    words = wording(item.kind, item.category_name)
    left, right = st.container(key="focus_panel").columns([3, 2])
    with left:
        pictures.show_large(item, boxes)
        st.caption("zoom: mouse wheel or + − (0 resets) · drag to pan · boxes are the source annotations")
    with right:
        st.markdown(f"## :{words.color}[{words.sign} {words.question}]" + _ranked_badge(item))
        if item.estimated:  # a PU-estimated threshold, or one resting on an estimated miss rate: not measured
            kind_text = ("missing label, estimated, not measured: the class's threshold rests on an estimate (a PU "
                         "estimate, Elkan & Noto, or an estimated miss rate; the reason says which) whose precision "
                         "was not measured on validation; such estimates are often optimistic")
        elif not item.calibrated:  # an uncalibrated ranked list: a rank, not a confident suggestion
            kind_text = ("ranked only: among this class's highest-scoring unlabelled images, but the class could "
                         "not be calibrated, so how often such items are right is unknown")
        elif item.kind == "missing":
            kind_text = "missing label: the model sees it, the labels do not"
        else:
            kind_text = "spurious label: labelled, but the model doubts it"
        st.markdown(f"{kind_text} · score **{score_text(item.score)}** · rank {item.rank_in_class} in class")
        st.caption(f"image {item.image_id} · {item.file_name or 'no file'} · suggestion {item.suggestion_id}"
                   + (f" · {item.reason}" if item.reason else ""))
        st.markdown("current labels: " + label_chips(labels))
        if item.status in PENDING:
            if item.lease_reviewer and item.lease_reviewer != reviewer.name:
                st.warning(f"held by {item.lease_reviewer} until {human_time(item.lease_expires_at)}")
            row = st.container(key=f"actions_{item.kind}", horizontal=True)
            for action in words.actions:
                row.button(f"{action.label} · {action.key.upper()}", key=f"focus_{action.decision}_{item.suggestion_id}",
                              help=action.help, width="stretch", on_click=actions.on_button,
                              type="primary" if action.decision == "accept" else "secondary",
                              args=(item.suggestion_id, action.decision))
            if item.status == "skipped":
                st.caption("skipped before: decide it now, or skip again")
        else:
            st.markdown(f"**{item.status}** by {item.decided_by or '?'}")
            if item.decided_by == reviewer.name:
                st.button("Undo this decision", key=f"undo_{item.suggestion_id}", on_click=actions.undo_item,
                          args=(item.suggestion_id,))


def _ranked_badge(item: QueueItem) -> str:
    """A grey badge for an item of an uncalibrated ranked list (fresh report item 9: a score of 0.0073 must not
    read as "the model sees it"), an orange one for an item above a PU-estimated threshold (fresh report 3,
    item 1: not the plain calibrated look).

    Examples
    --------
    >>> from labelfix.review.models import QueueItem
    >>> item = QueueItem(7, 1, 3, 5, "one", "missing", 0.0073, 1, None, "open", None, 1, None, None, calibrated=False)
    >>> _ranked_badge(item)
    ' :gray-badge[ranked only, low score]'
    >>> _ranked_badge(QueueItem(8, 1, 3, 5, "one", "missing", 0.61, 1, None, "open", None, 1, None, None,
    ...                         calibrated=False, estimated=True))
    ' :orange-badge[estimated, not measured]'
    """
    if item.estimated:
        return " :orange-badge[estimated, not measured]"
    if item.calibrated:
        return ""
    return " :gray-badge[ranked only" + (", low score]" if item.score < 0.5 else "]")


def _batch_bar(items: list[QueueItem], reviewer: Reviewer, *, acted: set[int]) -> None:
    todo = [i for i in items if i.status in PENDING and i.suggestion_id not in acted]
    selected = [i for i in todo if st.session_state.get(f"sel_{i.suggestion_id}")]
    adds = sum(i.kind != "spurious" for i in selected)
    row = st.columns([1, 1, 1, 1, 1])
    row[0].button("Select all on page", key="select_all", on_click=actions.select_page, args=(True,))
    row[1].button("Clear selection", key="select_none", on_click=actions.select_page, args=(False,))
    row[2].button(f"Add {adds} labels", key="batch_accept", on_click=actions.ask_batch, args=("accept", "missing"),
                  disabled=not adds, help="accept the selected missing-label suggestions")
    row[3].button(f"Remove {len(selected) - adds} labels", key="batch_remove", on_click=actions.ask_batch,
                  args=("accept", "spurious"), disabled=len(selected) == adds,
                  help="accept the selected spurious-label suggestions")
    row[4].button(f"No to {len(selected)}", key="batch_reject", on_click=actions.ask_batch, args=("reject", None),
                  disabled=not selected,
                  help="reject the selected suggestions: missing ones are recorded absent, spurious ones kept")
    batch = st.session_state.get("_batch")
    if batch:
        decision, chosen, verb = batch
        st.warning(f"{verb.capitalize()} {len(chosen)} selected suggestions as {reviewer.name}?")
        confirm = st.columns([1, 1, 4])
        confirm[0].button(f"Confirm: {verb}", key="batch_confirm", type="primary", on_click=actions.confirm_batch)
        confirm[1].button("Cancel", key="batch_cancel", on_click=actions.cancel_batch)


def _tiles(items: list[QueueItem], boxes: dict[int, list[ImageBox]], reviewer: Reviewer, *, acted: set[int]) -> None:
    """The page's thumbnails. Which one is shown large and what was decided on each is marked in the browser
    (the key listener gets :func:`tile_states`), so a key press does not redraw the grid."""
    pictures.prepare_thumbnails(items, boxes)
    # one wrapping row of fixed-width tiles: fewer layout blocks to send and draw than rows of columns
    grid = st.container(horizontal=True, wrap=True, gap="small", key="grid")
    for item in items:
        words = wording(item.kind, item.category_name)
        with grid.container(border=True, key=f"grid_item_{item.suggestion_id}", width=pictures.THUMB_SIZE + 30):
            pictures.show_thumbnail(item, boxes[item.image_id])
            held = f" · held by {item.lease_reviewer}" if item.lease_reviewer and \
                item.lease_reviewer != reviewer.name and item.status in PENDING else ""
            ranked = " · estimated" if item.estimated else "" if item.calibrated else " · ranked"
            st.markdown(f":{words.color}[**{words.sign} {item.category_name}**] · {score_text(item.score)}"
                        f"{ranked}{held}")
            if item.suggestion_id not in acted and item.status in PENDING:
                st.checkbox("select", key=f"sel_{item.suggestion_id}")


def tile_states(items: list[QueueItem], *, acted: set[int]) -> dict[str, str]:
    """What each tile of the page shows over its picture: the decision on it, or nothing while it is open.

    Examples
    --------
    >>> from labelfix.review.models import QueueItem
    >>> item = QueueItem(7, 1, 3, 5, "car", "missing", 0.9, 1, None, "accepted", "ana", 1, None, None)
    >>> tile_states([item], acted=set())
    {'7': 'added ✓ ana'}
    """
    states = {}
    for item in items:
        if item.status == "open" or (item.status == "skipped" and item.suggestion_id not in acted):
            states[str(item.suggestion_id)] = ""
            continue
        verb = {("missing", "accepted"): "added", ("missing", "rejected"): "absent",
                ("spurious", "accepted"): "removed", ("spurious", "rejected"): "kept"}.get(
            (item.kind, item.status), item.status)
        states[str(item.suggestion_id)] = f"{verb} ✓" + (f" {item.decided_by}" if item.decided_by else "")
    return states


def _class_list(progress: list[ClassProgress], held: dict[int, int], current: int | None) -> str:
    rows = []
    for p in progress:
        if not p.total:
            continue
        share = 100 * p.decided / p.total
        mark = "font-weight:700" if p.category_id == current else ""
        count = held.get(p.category_id, 0) if p.category_id is not None else 0
        others = f" · {count} held" if count else ""
        rows.append(
            f'<div class="lf-class" style="{mark}"><div class="lf-name">{html.escape(p.name)}'
            f'<span>{p.decided}/{p.total}{others}</span></div>'
            f'<div class="lf-bar"><div style="width:{share:.1f}%"></div></div></div>')
    style = ("<style>.lf-class{margin:0 0 6px 0;font-size:0.85rem}.lf-name{display:flex;justify-content:space-between;"
             "gap:8px}.lf-name span{color:#666}.lf-bar{height:6px;background:#e6e6e6;border-radius:3px}"
             ".lf-bar div{height:6px;background:#2e9e5b;border-radius:3px}</style>")
    return style + "".join(rows) if rows else "<p>no suggestions yet</p>"


def _progress_line(progress: list[ClassProgress], overall: ClassProgress, category_id: int | None,
                   held: dict[int, int]) -> None:
    chosen = next((p for p in progress if p.category_id == category_id), overall)
    others = held.get(category_id, 0) if category_id is not None else sum(held.values())
    st.progress(chosen.fraction_done,
                text=f"**{chosen.name}**: {chosen.decided} of {chosen.total} decided ({chosen.accepted} added or "
                     f"removed, {chosen.rejected} said no) · {chosen.pending} to review"
                     + (f" · {others} held by other reviewers" if others else ""))


def _accept_above(service_: ReviewService, reviewer: Reviewer, filters: Filters, name: str) -> None:
    category_id = filters.category_id
    if category_id is None or filters.kinds == ("spurious",):
        return
    # Lazy: the estimate and the count are computed only while the box is open.
    box = st.expander(f"Add '{name}' to all open items above a score", key="accept_above_box", on_change="rerun")
    if not box.open:
        return
    estimate = service_.precision_estimate(reviewer=reviewer.name, category_id=category_id, run_id=filters.run_id)
    with box:
        st.markdown(estimate_text(estimate, name))
        default = estimate.stop_score if estimate.stop_score is not None else 0.9
        threshold = st.number_input("score at least", 0.0, 1.0, value=float(default), step=0.01, format="%.4f",
                                    key=f"above_{category_id}")
        waiting = [i for i in service_.items(category_id=category_id, run_id=filters.run_id, statuses=PENDING,
                                             min_score=threshold, kinds=("missing",))]
        st.button(f"Add '{name}' to {len(waiting)} images", key="accept_above_ask", disabled=not waiting,
                  on_click=actions.ask_accept_above, args=(category_id, name, threshold, len(waiting)))
        request = st.session_state.get("_accept_above")
        if request:
            st.warning(f"Add '{request[1]}' to every open item scoring ≥ {request[2]:.4f} ({request[3]} images) "
                       f"as {reviewer.name}?")
            row = st.columns([1, 1, 3])
            row[0].button("Confirm", key="accept_above_confirm", type="primary",
                          on_click=actions.confirm_accept_above)
            row[1].button("Cancel", key="accept_above_cancel", on_click=actions.cancel_accept_above)


def estimate_text(estimate: PrecisionEstimate, name: str) -> str:
    """The precision estimate in words: a claim ("stays at least 90%") only where the interval's lower bound
    supports it, else an estimate with its interval and how many more decisions the bound needs.

    Examples
    --------
    >>> from labelfix.review.models import PrecisionEstimate
    >>> print(estimate_text(PrecisionEstimate(1, "ana", 4, 3, 0.75, 0.3006, 0.9544, 0.95, 0.9, None, 0.8, 49), "zero"))
    Estimate from your last 4 decisions on 'zero' (3 added): precision about **75%**, 95% interval 30%–95%. \
No stopping score yet: the interval's lower end must reach 90% first, which takes at least 49 more decisions \
even if every one is added.
    """
    if not estimate.n or estimate.precision is None:
        return f"Decide a few '{name}' items first: the estimate comes from your own decisions."
    text = (f"Estimate from your last {estimate.n} decisions on '{name}' ({estimate.accepted} added): precision "
            f"about **{estimate.precision:.0%}**, {estimate.confidence:.0%} interval "
            f"{estimate.low:.0%}–{estimate.high:.0%}.")
    if estimate.stop_score is not None:
        return text + (f" Suggested stopping score: **{score_text(estimate.stop_score)}**: of the items you decided "
                       f"scoring at least that, the share you added is ≥ {estimate.target:.0%} with "
                       f"{estimate.confidence:.0%} confidence.")
    if estimate.more_needed is None:
        return text + f" No stopping score: the interval's lower end cannot reach {estimate.target:.0%}."
    if estimate.more_needed == 0:
        return text + (f" No stopping score yet: no score has enough decisions above it for the lower end to "
                       f"reach {estimate.target:.0%}.")
    return text + (f" No stopping score yet: the interval's lower end must reach {estimate.target:.0%} first, which "
                   f"takes at least {estimate.more_needed} more decisions even if every one is added.")


def _focus_item(service_: ReviewService, items: list[QueueItem], todo: list[QueueItem],
                filters: Filters) -> QueueItem | None:
    """The item to show large: the one navigated to, else the page's first item still to decide (when
    listing decided items: the first of the page)."""
    focus_id = st.session_state.get("focus")
    if focus_id is not None:
        try:
            # as the store has it now, not the page's copy: another tab may have undone or decided it
            found = service_.item(suggestion_id=int(focus_id))
        except LabelfixError:
            st.session_state.pop("focus", None)
        else:
            page.sync(found)
            return found
    skipped_now = st.session_state.get("_skipped_now", set())
    fresh = [i for i in todo if i.suggestion_id not in skipped_now]
    if not fresh and not filters.leasing:
        return items[0] if items else None
    return fresh[0] if fresh else None


def _nothing_to_show(filters: Filters, items: list[QueueItem], todo: list[QueueItem], held: dict[int, int],
                     progress: list[ClassProgress]) -> None:
    if todo:
        st.info(f"You skipped every remaining item here ({len(todo)}). Review them again, or choose another class.")
        st.button("Show the skipped items again", key="unskip", on_click=actions.unskip)
        return
    held_here = held.get(filters.category_id, 0) if filters.category_id is not None else sum(held.values())
    st.success("Nothing to review with these filters."
               + (f" {held_here} items are held by other reviewers right now." if held_here else ""))
    # Classes tried in this search for work: each once, so classes held by others never bounce back and forth.
    tried = st.session_state.setdefault("_classes_tried", set())
    tried.add(filters.category_id)
    free = [p.category_id for p in progress
            if waiting(p, filters) > held.get(p.category_id or -1, 0) and p.category_id not in tried]
    if filters.leasing and filters.category_id is not None and free:
        st.session_state["_class_choice"] = free[0]
        st.rerun(scope="app")  # nothing left here for you: go on to the next class with items to review


def _same_name_warning(reviewer: Reviewer) -> None:
    """Tell both tabs when one reviewer name is open in two (a bookmark, a second tab): leases and decisions
    belong to the name, so the tabs share them (issue 14, fresh report item 1)."""
    others = other_tabs(reviewer=reviewer.name)
    if others:
        st.container(key="same_name").warning(
            f"The name {reviewer.name} is open in {others} other tab{'s' if others > 1 else ''}: decisions there "
            f"count as yours, and both tabs may show the same items. U here undoes only what this tab decided.")


@st.fragment(key="panel")
def review_panel(filters: Filters, reviewer: Reviewer, classes_box) -> None:
    """The part of the page that changes with each decision; reruns alone on keys and clicks inside it."""
    started = time.perf_counter()
    with page_session():
        _draw_panel(filters, reviewer, classes_box)
    log_timing("panel", started)


def _draw_panel(filters: Filters, reviewer: Reviewer, classes_box) -> None:
    nonce = st.session_state["_nonce"] = st.session_state.get("_nonce", 0) + 1
    st.session_state["_run_id"] = filters.run_id
    service_ = service()
    progress = page.progress(service_, filters=filters)
    current = page.current(service_, reviewer=reviewer.name, filters=filters)
    items, held, todo = current["items"], current["held"], page.todo(current)
    focus = _focus_item(service_, items, todo, filters)
    if focus is None:
        draw_whole_page()  # nothing to show large: the sidebar (other classes, filters) comes in this run
    whole = whole_page()  # else a session's first run: the first item only, the rest once it is on screen
    if whole:
        classes_box.html(_class_list(progress.by_class, held, filters.category_id))
    message = last_flash()
    top = st.columns([5, 1], vertical_alignment="center")
    status = top[0].container(key="flash", height=56, border=False)
    if message:
        getattr(status, message[0])(message[1])
    top[1].button("Undo last · U", key="undo_last", on_click=actions.undo_last, width="stretch",
                  help="undo the decision the message on the left names: your latest in this tab "
                       "(never someone else's)")
    _same_name_warning(reviewer)
    _progress_line(progress.by_class, progress.overall, filters.category_id, held)
    st.session_state["_shown"] = focus
    st.session_state["_page_ids"] = [i.suggestion_id for i in items]
    if focus is not None:
        st.session_state.pop("_classes_tried", None)
    tiles = tile_states(current["items"], acted=current["acted"])  # after the focus item's sync
    if focus is None:
        _nothing_to_show(filters, items, todo, held, progress.by_class)
        key_listener(item=None, nonce=nonce, tiles=tiles, on_key=actions.on_key, on_view=actions.on_view,
                     page=page_run())
        return
    boxes = current["boxes"]
    if focus.image_id not in boxes:
        boxes = {**boxes, **service_.image_boxes(image_ids=[focus.image_id])}
    labels = service_.image_labels(image_ids=[focus.image_id])
    _focus_panel(focus, labels[focus.image_id], boxes[focus.image_id], reviewer)
    name = next((p.name for p in progress.by_class if p.category_id == filters.category_id), "")
    if whole:
        _accept_above(service_, reviewer, filters, name)
    # Last: the listener learns the shown item only once everything above is drawn.
    key_listener(item=focus.suggestion_id, nonce=nonce, tiles=tiles, on_key=actions.on_key, on_view=actions.on_view,
                 partial=not whole, on_ready=on_ready, page=page_run(), on_alive=actions.on_alive,
                 renew_seconds=service_.lease_seconds / 3 if filters.leasing else None)
    if not whole:
        return  # the pictures ahead are made in the whole-page run, not while this first item is sent
    pictures.render_ahead([i for i in todo if i.suggestion_id != focus.suggestion_id][:3], boxes)
    if not current.get("next_rendered"):
        current["next_rendered"] = True
        pictures.render_next_page(service_, filters)


@st.fragment(key="grid")
def grid_panel(filters: Filters, reviewer: Reviewer) -> None:
    """The page's tiles and batch decisions; reruns alone on its own widgets, and with the panel on a new page."""
    started = time.perf_counter()
    with page_session():
        current = page.current(service(), reviewer=reviewer.name, filters=filters)
        if current["items"]:
            st.divider()
            _batch_bar(current["items"], reviewer, acted=current["acted"])
            _tiles(current["items"], current["boxes"], reviewer, acted=current["acted"])
    log_timing("grid", started)
