"""labelfix review app: a thin Streamlit UI over :class:`labelfix.review.service.ReviewService`.

Start it with ``labelfix review [--db STORE] [--port 8501]``; the store path comes from ``--db`` after
``--`` on the streamlit command line, or from ``$LABELFIX_DB``. One DuckDB connection per server process
(``st.cache_resource``), one cursor per browser session.

Keyboard (on the item shown large): A accept, X reject, S skip, U undo the last decision.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

import streamlit as st

from labelfix.errors import LabelfixError
from labelfix.review.app.components import label_chips, render_image
from labelfix.review.app.export_panel import export_panel
from labelfix.review.app.lead_panel import lead_panel
from labelfix.review.app.server_options import team_mode
from labelfix.review.app.signin import acting_reviewer, signed_in_reviewer
from labelfix.review.auth import Reviewer
from labelfix.review.lead import undo_as
from labelfix.review.models import Decision, QueueItem, ReviewError
from labelfix.review.service import ReviewService
from labelfix.store import open_store
from labelfix.store.database import DB_ENV_VAR, resolve_db_path

STATUS_CHOICES = {"to review": ("open", "skipped"), "open": ("open",), "skipped / unsure": ("skipped",),
                  "accepted": ("accepted",), "rejected": ("rejected",), "all": None}
GRID_COLUMNS = 4


def _db_path() -> Path:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db")
    known, _ = parser.parse_known_args(sys.argv[1:])
    return resolve_db_path(known.db or os.environ.get(DB_ENV_VAR) or None).resolve()


@st.cache_resource(show_spinner=False)
def _server_store(db: str):
    """The one read-write connection of this server process."""
    return open_store(db, create=False)


def _service() -> ReviewService:
    db = str(_db_path())
    if st.session_state.get("_db") != db:
        st.session_state["_db"] = db
        st.session_state["_service"] = ReviewService(_server_store(db).cursor())
    return st.session_state["_service"]


@st.cache_data(show_spinner=False, max_entries=512)
def _picture(path: str | None, mtime: float, boxes: tuple, highlight: int | None, size: int):
    from labelfix.review.models import ImageBox

    return render_image(Path(path) if path else None, boxes=[ImageBox(*b) for b in boxes], highlight=highlight,
                        size=size)


def _show_picture(service: ReviewService, item: QueueItem, boxes, *, size: int) -> None:
    path = service.image_path(image_id=item.image_id)
    mtime = path.stat().st_mtime if path else 0.0
    picture = _picture(str(path) if path else None, mtime,
                       tuple((b.category_id, b.name, b.bbox) for b in boxes), item.category_id, size)
    st.image(picture, width=size if size < 300 else "stretch")


def _flash(kind: str, text: str) -> None:
    st.session_state["_flash"] = (kind, text)
    st.session_state["_advance"] = True


def _acting() -> Reviewer | None:
    """Who acts now; in team mode the session is checked again (callbacks run before the sign-in gate)."""
    return acting_reviewer(_service(), typed_name=st.session_state.get("reviewer") or "")


def _reviewer() -> str:
    if team_mode():  # the signed-in name, never a typed one
        acting = _acting()
        return acting.name if acting else ""
    return (st.session_state.get("reviewer") or "").strip()


# -- callbacks: run before the script reruns, so the page shows the new state ------------------------
def _decide(suggestion_id: int, decision: Decision) -> None:
    try:
        _service().decide(suggestion_id=suggestion_id, reviewer=_reviewer(), decision=decision)
        _flash("success", f"{decision} recorded for suggestion {suggestion_id}")
    except LabelfixError as error:
        _flash("warning", error.problem)
    st.session_state.pop("focus", None)
    st.session_state.pop(f"sel_{suggestion_id}", None)


def _undo_last() -> None:
    acting = _acting()
    if acting is None:
        _flash("warning", "sign in (or enter your reviewer name) first")
        return
    try:
        event = undo_as(_service(), reviewer=acting)
    except LabelfixError as error:
        _flash("warning", error.problem)
        return
    if event is None:
        _flash("info", "nothing to undo")
    else:
        _flash("success", f"undid decision {event.undoes_event_id} (suggestion {event.suggestion_id})")
        st.session_state["focus"] = event.suggestion_id


def _undo_suggestion(suggestion_id: int) -> None:
    acting = _acting()
    if acting is None:
        _flash("warning", "sign in (or enter your reviewer name) first")
        return
    try:
        undo_as(_service(), reviewer=acting, suggestion_id=suggestion_id)
        _flash("success", f"undid the decision on suggestion {suggestion_id}")
    except LabelfixError as error:
        _flash("warning", error.problem)


def _choose_class() -> None:
    st.session_state["_class_choice"] = st.session_state["class"]
    st.session_state.pop("focus", None)


def _focus(suggestion_id: int) -> None:
    st.session_state["focus"] = suggestion_id


def _select_page(ids: list[int], value: bool) -> None:
    for suggestion_id in ids:
        st.session_state[f"sel_{suggestion_id}"] = value


def _ask_batch(decision: str, ids: list[int]) -> None:
    if ids:
        st.session_state["_batch"] = (decision, ids)
    else:
        _flash("info", "select items first")


def _confirm_batch() -> None:
    decision, ids = st.session_state.pop("_batch", (None, []))
    if not decision:
        return
    result = _service().decide_many(suggestion_ids=ids, reviewer=_reviewer(), decision=decision)
    text = f"{decision}: {len(result.events)} recorded"
    if result.conflicts:
        text += f", {len(result.conflicts)} left alone ({'; '.join(sorted(set(result.conflicts.values())))})"
    _flash("success" if not result.conflicts else "warning", text)
    _select_page(ids, False)


def _cancel_batch() -> None:
    st.session_state.pop("_batch", None)


# -- page ---------------------------------------------------------------------------------------------
def _sidebar(service: ReviewService, signed_in: Reviewer | None):
    sidebar = st.sidebar
    sidebar.header("labelfix review")
    if signed_in is None:  # loopback, no sign-in: the reviewer types a name
        if "reviewer" not in st.session_state:
            st.session_state["reviewer"] = os.environ.get("LABELFIX_REVIEWER") or getpass.getuser()
        sidebar.text_input("Reviewer", key="reviewer", help="Recorded on every decision.")
    order = sidebar.radio("Class order", ["tail first", "head first"], key="order", horizontal=True)
    head_first = order == "head first"
    runs = service.runs()
    run_id = sidebar.selectbox("Suggestion run", runs, key="run", format_func=lambda r: f"run {r}") if runs else None
    progress = service.progress(run_id=run_id, head_first=head_first)
    table = [{"class": p.name, "freq": p.frequency, "open": p.open, "✓": p.accepted, "✗": p.rejected,
              "skip": p.skipped} for p in progress.by_class]
    sidebar.caption("Classes, tail first: freq = current positives in train; ✓ accepted, ✗ rejected")
    sidebar.dataframe(table, hide_index=True, width="stretch", height=min(38 + 35 * len(table), 320))
    with_suggestions = [p for p in progress.by_class if p.total]
    options = [p.category_id for p in with_suggestions] + [None]
    names = {p.category_id: p for p in with_suggestions}
    pending = [p.category_id for p in with_suggestions if p.pending]
    current = st.session_state.get("_class_choice", "unset")
    finished = st.session_state.pop("_advance", False) and current in names and not names[current].pending
    if current not in options or finished:
        # first visit, or the reviewer just finished this class: go on to the next class with open items
        current = pending[0] if pending else options[0]
    # The choice lives in our own state: option labels and order change as counts change (tail first).
    st.session_state["_class_choice"] = st.session_state["class"] = current
    category_id = sidebar.selectbox(
        "Class", options, key="class", on_change=_choose_class,
        format_func=lambda c: "all classes" if c is None else
        f"{names[c].name} · freq {names[c].frequency} · {names[c].pending} to review")
    low, high = sidebar.slider("Score range", 0.0, 1.0, (0.0, 1.0), step=0.01, key="score")
    status = sidebar.selectbox("Status", list(STATUS_CHOICES), key="status")
    page_size = sidebar.select_slider("Items per page", [4, 8, 12, 16, 24], value=8, key="page_size")
    acting = signed_in or acting_reviewer(service, typed_name=_reviewer())
    lead_panel(service, acting)
    export_panel(service, signed_in)
    return dict(head_first=head_first, run_id=run_id, category_id=category_id, min_score=low, max_score=high,
                status=status, page_size=page_size, progress=progress)


def _progress_row(progress) -> None:
    overall = progress.overall
    columns = st.columns(5)
    columns[0].metric("To review", overall.open)
    columns[1].metric("Skipped / unsure", overall.skipped)
    columns[2].metric("Accepted", overall.accepted)
    columns[3].metric("Rejected", overall.rejected)
    columns[4].metric("Done", f"{overall.decided} / {overall.total}")
    st.progress(overall.fraction_done)


def _page_items(service: ReviewService, filters: dict) -> list[QueueItem]:
    statuses = STATUS_CHOICES[filters["status"]]
    common = dict(category_id=filters["category_id"], run_id=filters["run_id"], head_first=filters["head_first"],
                  min_score=filters["min_score"], max_score=filters["max_score"])
    if statuses is not None and set(statuses) <= {"open", "skipped"}:
        if not _reviewer():
            return []
        return service.next_items(reviewer=_reviewer(), n=filters["page_size"], statuses=statuses, **common)
    page = st.number_input("Page", min_value=1, value=1, step=1, key="page")
    return service.items(statuses=statuses, limit=filters["page_size"], offset=(page - 1) * filters["page_size"],
                         **common)


def _focus_panel(service: ReviewService, item: QueueItem, labels, boxes) -> None:
    # Keyed containers get the CSS class st-key-<key>: a stable handle for tests, apart from the grid twin.
    left, right = st.container(key="focus_panel").columns([3, 2])
    with left:
        _show_picture(service, item, boxes, size=512)
    with right:
        st.subheader(f"{item.category_name}?")
        st.markdown(f"**{item.kind}** suggestion · score **{item.score:.3f}** · rank {item.rank_in_class} in class")
        st.caption(f"image {item.image_id} · {item.file_name or 'no file'} · suggestion {item.suggestion_id}"
                   + (f" · {item.reason}" if item.reason else ""))
        st.markdown(label_chips(labels))
        st.markdown(f"status: **{item.status}**" + (f" by {item.decided_by}" if item.decided_by else ""))
        if item.status in ("open", "skipped"):
            row = st.columns(3)
            row[0].button("Accept", key="accept_focus", shortcut="A", type="primary", width="stretch",
                          on_click=_decide, args=(item.suggestion_id, "accept"))
            row[1].button("Reject", key="reject_focus", shortcut="X", width="stretch",
                          on_click=_decide, args=(item.suggestion_id, "reject"))
            row[2].button("Skip", key="skip_focus", shortcut="S", width="stretch",
                          on_click=_decide, args=(item.suggestion_id, "skip"))
        else:
            st.button("Undo this decision", key="undo_focus", on_click=_undo_suggestion, args=(item.suggestion_id,))


def _grid(service: ReviewService, items: list[QueueItem], labels, boxes, focus_id: int) -> None:
    pending = [i.suggestion_id for i in items if i.status in ("open", "skipped")]
    row = st.columns([1, 1, 1, 1, 2])
    row[0].button("Select all on page", key="select_all", on_click=_select_page, args=(pending, True))
    row[1].button("Clear selection", key="select_none", on_click=_select_page, args=(pending, False))
    selected = [s for s in pending if st.session_state.get(f"sel_{s}")]
    row[2].button(f"Accept selected ({len(selected)})", key="batch_accept", on_click=_ask_batch,
                  args=("accept", selected))
    row[3].button(f"Reject selected ({len(selected)})", key="batch_reject", on_click=_ask_batch,
                  args=("reject", selected))
    batch = st.session_state.get("_batch")
    if batch:
        decision, ids = batch
        st.warning(f"{decision.capitalize()} {len(ids)} selected suggestions as {_reviewer()}?")
        confirm = st.columns([1, 1, 4])
        confirm[0].button(f"Confirm {decision}", key="batch_confirm", type="primary", on_click=_confirm_batch)
        confirm[1].button("Cancel", key="batch_cancel", on_click=_cancel_batch)
    for start in range(0, len(items), GRID_COLUMNS):
        columns = st.columns(GRID_COLUMNS)
        for column, item in zip(columns, items[start:start + GRID_COLUMNS]):
            with column.container(border=True, key=f"grid_item_{item.suggestion_id}"):
                _show_picture(service, item, boxes[item.image_id], size=220)
                marker = "▶ " if item.suggestion_id == focus_id else ""
                st.markdown(f"{marker}**{item.category_name}** · {item.score:.2f} · {item.status}")
                st.markdown(label_chips(labels[item.image_id]))
                buttons = st.columns(2)
                buttons[0].button("View", key=f"view_{item.suggestion_id}", on_click=_focus,
                                  args=(item.suggestion_id,))
                if item.status in ("open", "skipped"):
                    buttons[1].checkbox("select", key=f"sel_{item.suggestion_id}")
                    small = st.columns(3)
                    small[0].button("✓", key=f"acc_{item.suggestion_id}", help="accept",
                                    on_click=_decide, args=(item.suggestion_id, "accept"))
                    small[1].button("✗", key=f"rej_{item.suggestion_id}", help="reject",
                                    on_click=_decide, args=(item.suggestion_id, "reject"))
                    small[2].button("↷", key=f"skp_{item.suggestion_id}", help="skip",
                                    on_click=_decide, args=(item.suggestion_id, "skip"))
                else:
                    buttons[1].button("Undo", key=f"und_{item.suggestion_id}", on_click=_undo_suggestion,
                                      args=(item.suggestion_id,))


def main() -> None:
    st.set_page_config(page_title="labelfix review", layout="wide")
    try:
        service = _service()
    except LabelfixError as error:
        st.error("the review server cannot open its store (see the server's log)" if team_mode() else error.message)
        st.stop()
    # Team mode: only the sign-in form until a reviewer signs in; nothing of the store is shown before.
    signed_in = signed_in_reviewer(service)
    filters = _sidebar(service, signed_in)
    flash = st.session_state.pop("_flash", None)
    if flash:
        getattr(st, flash[0])(flash[1])
    _progress_row(filters["progress"])
    top = st.columns([4, 1])
    top[0].caption("Keys on the large item: **A** accept · **X** reject · **S** skip · **U** undo last decision")
    top[1].button("Undo last", key="undo_last", shortcut="U", on_click=_undo_last, width="stretch")
    if not _reviewer():
        st.warning("Enter your reviewer name in the sidebar to start.")
        st.stop()
    items = _page_items(service, filters)
    if not items:
        st.success("Nothing to review with these filters.")
        return
    image_ids = [i.image_id for i in items]
    labels = service.image_labels(image_ids=image_ids)
    boxes = service.image_boxes(image_ids=image_ids)
    by_id = {i.suggestion_id: i for i in items}
    focus_id = st.session_state.get("focus")
    if focus_id not in by_id:
        focus_id = items[0].suggestion_id
    _focus_panel(service, by_id[focus_id], labels[by_id[focus_id].image_id], boxes[by_id[focus_id].image_id])
    st.divider()
    _grid(service, items, labels, boxes, focus_id)


try:
    main()
except ReviewError as error:
    st.error(error.message)
