"""The page's keys and mouse gestures: one small Streamlit component (``st.components.v2``) without UI.

Why not ``st.button(shortcut=...)``: Streamlit drops shortcuts while focus is in any input, so after
choosing from a dropdown the keys typed into it instead (issue 14), and a stale second press re-fired
whatever button sat at that place. Here one listener on the whole page (capture phase) handles:

* decision and navigation keys: sent to Python as ``{key, item, seq}``, where ``item`` is the suggestion
  the page *showed* when the key went down. Python acts only if that is still the item it shows, and the
  listener sends nothing more until the page has drawn the next item (held keys repeat nothing), so a
  double press or a held key decides each suggestion at most once.
* focus: a key pressed in a closed dropdown, on a checkbox, radio or button is taken from it (the
  element is blurred); only typing in a text field, or in an open dropdown's search, keeps the key.
* zoom and pan of the large image: mouse wheel, drag, double click to reset, keys ``+ - 0``.
* clicks on a grid thumbnail: show that item large.
* a key pressed while the previous one is still being applied: not sent, and a note says so ("X ignored:
  still saving the previous decision (A)"); a queued key would act on an item not yet seen.
* activity (mouse, wheel, keys) after a quiet spell: an ``alive`` event renews the page's leases.
* the grid's tiles: which one is shown large, and what was decided on each (so a key press does not
  redraw the grid).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import streamlit as st

# Keys sent to Python (lower case ``KeyboardEvent.key``); zoom keys stay in the browser.
SENT_KEYS = ("a", "r", "x", "s", "u", "j", "k", "arrowleft", "arrowright")

_JS = r"""
export default function (component) {
  const { data, setTriggerValue } = component;
  const doc = document;
  const root = window.__labelfixReview = window.__labelfixReview || { seq: 0, zoom: { s: 1, x: 0, y: 0, src: "" } };
  // The latest drawn page: what the user sees now is data.item. Listeners are installed once per page
  // load and always read root.data / root.send, so no listener of an older draw answers a key.
  root.data = data;
  root.send = setTriggerValue;
  root.drawnAt = Date.now();
  if (root.nonce !== data.nonce) { root.nonce = data.nonce; root.pending = false; }
  window.clearTimeout(root.release);
  // A page that never draws again (an error, a lost connection) must not keep keys blocked for long.
  root.release = window.setTimeout(() => { root.pending = false; }, 4000);

  const image = () => doc.querySelector(".st-key-focus_image img");
  const applyZoom = (img) => {
    const z = root.zoom;
    img.style.transformOrigin = "0 0";
    img.style.transform = z.s === 1 ? "" : `translate(${z.x}px, ${z.y}px) scale(${z.s})`;
    img.style.cursor = z.s === 1 ? "zoom-in" : "grab";
  };
  const resetZoom = () => {
    const img = image();
    root.zoom = { s: 1, x: 0, y: 0, src: img ? img.src : "" };
    if (img) applyZoom(img);
  };
  // the image of a new item starts unzoomed
  { const img = image(); if (img && img.src !== root.zoom.src) resetZoom(); }
  // Mark the grid's tiles: the one shown large, and what was decided on each (the grid is not redrawn
  // on a key press). Tiles drawn later (the grid's own reruns) are marked when they appear.
  const markTiles = () => {
    const tiles = root.data.tiles || {};
    for (const tile of doc.querySelectorAll('[class*="st-key-grid_item_"]')) {
      const match = /st-key-grid_item_(\d+)/.exec(tile.className);
      if (!match) continue;
      const state = tiles[match[1]];
      if (state) { if (tile.getAttribute("data-lf-state") !== state) tile.setAttribute("data-lf-state", state); }
      else if (tile.hasAttribute("data-lf-state")) tile.removeAttribute("data-lf-state");
      const focus = Number(match[1]) === root.data.item;
      if (focus !== tile.hasAttribute("data-lf-focus")) tile.toggleAttribute("data-lf-focus", focus);
    }
  };
  markTiles();
  // The first run of a page draws only this panel (the first item); once its picture is on screen the
  // page asks for the rest (sidebar, tiles). Until that run has drawn this panel again, the page is partial.
  root.partial = !!data.partial;
  if (data.partial && root.readyFor !== data.nonce) {
    root.readyFor = data.nonce;
    let frames = 0;
    const ready = () => {
      if (root.data.nonce !== data.nonce) return;  // redrawn meanwhile: that draw asks again
      const img = image();
      if ((!img || !img.complete) && frames++ < 120) { window.requestAnimationFrame(ready); return; }
      window.requestAnimationFrame(() => window.setTimeout(() => {
        if (root.data.nonce === data.nonce) setTriggerValue("ready", { nonce: data.nonce });
      }, 0));
    };
    ready();
  }
  if (root.installed) return;
  root.installed = true;
  let marking = false;
  new MutationObserver(() => {
    if (marking) return;
    marking = true;
    window.requestAnimationFrame(() => { marking = false; markTiles(); });
  }).observe(doc.body, { childList: true, subtree: true });

  const typing = (el) => {
    if (!el || el === doc.body) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA") return true;
    if (el.tagName !== "INPUT") return false;
    const type = (el.getAttribute("type") || "text").toLowerCase();
    if (["checkbox", "radio", "range", "button", "submit", "reset"].includes(type)) return false;
    if (el.getAttribute("role") === "combobox") return el.getAttribute("aria-expanded") === "true";
    return true;
  };
  const zoomAt = (img, factor, cx, cy) => {
    const z = root.zoom;
    if (z.src !== img.src) { z.s = 1; z.x = 0; z.y = 0; z.src = img.src; }
    const s = Math.min(8, Math.max(1, z.s * factor));
    if (s === 1) { z.x = 0; z.y = 0; } else { z.x = cx - (cx - z.x) * s / z.s; z.y = cy - (cy - z.y) * s / z.s; }
    z.s = s;
    applyZoom(img);
  };
  const send = (name, value) => {
    root.pending = true;
    root.seq += 1;
    root.lastKey = value.key || name;
    root.send(name, Object.assign({ seq: root.seq }, value));
  };
  // A key pressed while the previous one is still being applied is not sent (each suggestion is decided at
  // most once per press, and a queued key would act on an item the reviewer has not seen yet); say so.
  const label = (key) => ({ arrowleft: "←", arrowright: "→" })[key] || key.toUpperCase();
  const ignored = (key) => {
    root.ignored = (root.ignored || []).concat([key]).slice(-50);
    const last = root.lastKey || "";
    const what = ["j", "k", "arrowleft", "arrowright", "view"].includes(last) ? "move"
      : last === "u" ? "undo" : "decision";
    let note = doc.getElementById("lf-ignored");
    if (!note) {
      note = doc.createElement("div");
      note.id = "lf-ignored";
      note.setAttribute("role", "status");
      doc.body.appendChild(note);
    }
    note.textContent = `${label(key)} ignored: still saving the previous ${what} (${label(last)})`;
    note.hidden = false;
    window.clearTimeout(root.noteTimer);
    root.noteTimer = window.setTimeout(() => { note.hidden = true; }, 2500);
  };
  // Mouse, wheel and key activity renews the page's leases (an "alive" event at most every renew_ms of quiet):
  // a reviewer studying an image keeps it, an idle one's items go back after the lease time.
  const activity = () => {
    const every = root.data.renew_ms;
    if (!every || root.pending || root.data.item === null) return;
    const now = Date.now();
    if (now - Math.max(root.drawnAt || 0, root.aliveAt || 0) < every) return;
    root.aliveAt = now;
    root.send("alive", { item: root.data.item });
  };
  for (const name of ["mousemove", "wheel", "keydown", "pointerdown", "scroll", "touchstart"]) {
    doc.addEventListener(name, activity, { passive: true, capture: true });
  }
  doc.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (typing(event.target)) return;
    const key = (event.key || "").toLowerCase();
    const img = image();
    if (img && ["+", "=", "-", "_", "0"].includes(key)) {
      event.preventDefault();
      const rect = img.parentElement.getBoundingClientRect();
      if (key === "0") resetZoom(); else zoomAt(img, key === "-" || key === "_" ? 1 / 1.5 : 1.5, rect.width / 2, rect.height / 2);
      return;
    }
    if (!(root.data.keys || []).includes(key)) return;
    const role = event.target && event.target.getAttribute ? event.target.getAttribute("role") : null;
    if (role === "slider" && key.startsWith("arrow")) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    const active = doc.activeElement;
    if (active && active !== doc.body && active.blur) active.blur();
    if (event.repeat) return;  // a held key
    if (root.pending) { ignored(key); return; }  // the page has not drawn the next item yet
    send("key", { key: key, item: root.data.item });
  }, true);
  doc.addEventListener("click", (event) => {
    const target = event.target;
    if (!target || target.tagName !== "IMG") return;
    const box = target.closest('[class*="st-key-grid_item_"]');
    const match = box ? /st-key-grid_item_(\d+)/.exec(box.className) : null;
    if (!match || root.pending) return;
    send("view", { item: Number(match[1]) });
  }, true);
  const focusImage = (event) => event.target && event.target.closest ? event.target.closest(".st-key-focus_image img") : null;
  doc.addEventListener("wheel", (event) => {
    const img = focusImage(event);
    if (!img) return;
    event.preventDefault();
    const rect = img.parentElement.getBoundingClientRect();
    zoomAt(img, event.deltaY < 0 ? 1.25 : 1 / 1.25, event.clientX - rect.left, event.clientY - rect.top);
  }, { passive: false, capture: true });
  let drag = null;
  doc.addEventListener("mousedown", (event) => {
    const img = focusImage(event);
    if (!img || root.zoom.s === 1 || event.button !== 0) return;
    event.preventDefault();
    drag = { x: event.clientX - root.zoom.x, y: event.clientY - root.zoom.y, img: img };
  }, true);
  doc.addEventListener("mousemove", (event) => {
    if (!drag) return;
    root.zoom.x = event.clientX - drag.x;
    root.zoom.y = event.clientY - drag.y;
    applyZoom(drag.img);
  }, true);
  doc.addEventListener("mouseup", () => { drag = null; }, true);
  doc.addEventListener("dblclick", (event) => { if (focusImage(event)) resetZoom(); }, true);
}
"""

_CSS = """
.st-key-focus_image { overflow: hidden; }
.st-key-focus_image img { user-select: none; -webkit-user-drag: none; }
[class*="st-key-grid_item_"] { position: relative; }
[class*="st-key-grid_item_"] img { cursor: pointer; }
[data-lf-focus] { box-shadow: 0 0 0 3px #1f6feb; }
[data-lf-state]::after { content: attr(data-lf-state); position: absolute; top: 12px; left: 12px; right: 12px;
  padding: 2px 6px; border-radius: 4px; background: rgba(25, 25, 25, 0.75); color: #fff; font-size: 0.8rem;
  text-align: center; pointer-events: none; }
[data-lf-state] img { opacity: 0.45; }
[data-lf-state] [class*="st-key-sel_"] { opacity: 0; pointer-events: none; }
#lf-ignored { position: fixed; left: 50%; bottom: 24px; transform: translateX(-50%); z-index: 1000;
  padding: 6px 12px; border-radius: 6px; background: rgba(25, 25, 25, 0.85); color: #fff; font-size: 0.9rem; }
.st-key-actions_missing button[data-testid="stBaseButton-primary"] { background: #1b7f3b; border-color: #1b7f3b; }
.st-key-actions_spurious button[data-testid="stBaseButton-primary"] { background: #c62828; border-color: #c62828; }
"""


@functools.cache
def _component() -> Any:
    return st.components.v2.component("labelfix_review_keys", js=_JS, css=_CSS, isolate_styles=False)


def key_listener(*, item: int | None, nonce: int, tiles: dict[str, str], on_key: Callable[[], None],
                 on_view: Callable[[], None], partial: bool = False,
                 on_ready: Callable[[], None] | None = None, page: int = 0,
                 on_alive: Callable[[], None] | None = None, renew_seconds: float | None = None) -> None:
    """Mount the page's key and mouse listener for the item shown large (``item``; ``None``: no item).

    ``nonce`` must change on every run that draws the page, so the listener knows the page is current.
    ``tiles`` maps suggestion ids to what their grid tile shows over its picture ("added ✓ ana"; empty:
    nothing). ``on_key`` and ``on_view`` run as callbacks; they read the event from :func:`event`.
    ``partial``: only this panel is drawn yet; once the item's picture is on screen the listener sends a
    ``ready`` event and ``on_ready`` runs (it asks for the whole page). ``page``: the full run this panel
    belongs to (:func:`labelfix.review.app.state.page_end_marker`; browser checks wait for its marker).
    ``on_alive``: runs when the reviewer moves the mouse, scrolls or presses a key after ``renew_seconds`` of
    quiet (no run of the page): the page's leases are renewed while the reviewer works.
    """
    _component()(key="review_keys",
                 data={"item": item, "nonce": nonce, "keys": list(SENT_KEYS), "tiles": tiles, "partial": partial,
                       "page": page, "renew_ms": int(renew_seconds * 1000) if renew_seconds and on_alive else 0},
                 on_key_change=on_key, on_view_change=on_view, on_ready_change=on_ready or _nothing,
                 on_alive_change=on_alive or _nothing,
                 width="stretch", height=1)


def _nothing() -> None:
    return None


def event(name: str) -> dict[str, Any] | None:
    """The ``key`` or ``view`` event the current callback was called for (``None`` if there is none)."""
    state = st.session_state.get("review_keys")
    value = state.get(name) if state is not None else None
    return value if isinstance(value, dict) else None
