"""Review app speed in a real browser: key press → next item shown, and the first load (issue 14).

Builds a demo store (MNIST-digit images with boxes; missing-label suggestions on the hidden labels plus
false ones, and a few spurious-label suggestions), serves it with ``labelfix review``, and drives headless
chromium (playwright):

* ``first_load_s``: from opening the app in a new tab to ``first_item`` (the first item shown large with
  its picture; a session's first run draws only the review panel, and the page asks for the rest once the
  picture is on screen) and to ``settled`` (the whole page drawn to its end, every image loaded): ``new_browser`` (an
  empty HTTP cache: Streamlit's own scripts are fetched and parsed each time), ``returning_browser``
  (the same browser again) and ``server_cold`` (the server's very first page, its picture cache empty).
* ``decision_s`` per page size: from a key press (A / X, as the item asks) to the next item shown large,
  every image on the page loaded and the run over; ``server_run_s``: the part of it the server spent
  running the review panel and ``server_key_s`` handling the key (recording the decision), both logged
  by the app with ``$LABELFIX_REVIEW_TIMING``; the rest is the browser drawing and the network.
* ``streamlit_floor``: the same key press and page load on a one-line Streamlit page with the same key
  listener: what Streamlit itself costs on this machine at this load.

Goal (issue 14): p95 ≤ 0.300 s per decision at 24 items per page, first load ≤ 1 s. Run::

    python -m labelfix.bench.speed.review_browser --out benchmarks/results/review_browser.json

Not a test: timings depend on the machine and its load (the result records the load average). The
README's screenshots come from :mod:`labelfix.bench.review_screenshots` on the same kind of store.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from labelfix.bench.browser import (launch_chromium, panel_nonce, review_server, settled, shown_item,
                                    streamlit_server, wait_drawn, wait_first_item, wait_next_item)
from labelfix.bench.speed.report import emit_report

TIMING_ENV_VAR = "LABELFIX_REVIEW_TIMING"  # labelfix.review.app.state logs run times with it (that module needs Streamlit)


def build_review_store(out_dir: Path, *, n_images: int = 400, seed: int = 0) -> Path:
    """A store with demo images and suggestions of both kinds under ``out_dir``; returns its path.

    Missing-label suggestions: every hidden label of the train split (scores 0.55-0.99) and as many
    false ones on cells whose digit is absent (0.50-0.85); spurious-label suggestions on 4 % of the
    observed labels (0.02-0.35, the model doubts them).
    """
    from labelfix.ingest import ingest_coco
    from labelfix.io.demo_data import make_demo_dataset
    from labelfix.store import open_store
    from labelfix.store.runs import create_run
    from labelfix.store.suggestions import add_suggestions

    out_dir = Path(out_dir)
    demo = make_demo_dataset(out_dir=out_dir / "data", seed=seed, n_train=n_images, n_val=4, n_test=4,
                             image_size=128)
    db = out_dir / "review.duckdb"
    if db.exists():
        db.unlink()
    rng = np.random.default_rng(seed)
    full = json.loads(demo.full_annotations.read_text())
    observed = json.loads(demo.observed_annotations.read_text())
    train = {image["id"] for image in full["images"] if image["split"] == "train"}
    truth = {(a["image_id"], a["category_id"]) for a in full["annotations"] if a["image_id"] in train}
    seen = {(a["image_id"], a["category_id"]) for a in observed["annotations"] if a["image_id"] in train}
    hidden = sorted(truth - seen)
    classes = sorted(c["id"] for c in full["categories"])
    absent: set[tuple[int, int]] = set()
    images = sorted(train)
    while len(absent) < len(hidden):
        cell = (int(rng.choice(images)), int(rng.choice(classes)))
        if cell not in truth:
            absent.add(cell)
    spurious = sorted(seen)
    spurious = [spurious[i] for i in rng.choice(len(spurious), size=max(4, len(spurious) // 25), replace=False)]

    def table(cells: list[tuple[int, int]], low: float, high: float, *, most_likely_low: bool = False) -> pa.Table:
        # rank 1 = most likely: the highest score for a missing label, the lowest for a spurious one
        scores = rng.uniform(low, high, size=len(cells))
        ranks = np.zeros(len(cells), dtype=np.int64)
        order = np.lexsort((scores if most_likely_low else -scores, np.array([c for _, c in cells])))
        counter: dict[int, int] = {}
        for index in order:
            category = cells[index][1]
            counter[category] = counter.get(category, 0) + 1
            ranks[index] = counter[category]
        return pa.table({"image_id": [i for i, _ in cells], "category_id": [c for _, c in cells],
                         "score": scores, "rank_in_class": ranks})

    with open_store(db) as store:
        ingest_coco(store, annotations=demo.observed_annotations, images=demo.images_dir, check_images="none")
        run_id = create_run(store, method="bench", mode="suggest", config={"bench": "review_browser"})
        missing = hidden + sorted(absent)
        missing_scores = table(missing, 0.5, 0.99)
        add_suggestions(store, run_id=run_id, cells=missing_scores, kind="missing",
                        reason="bench: model probability above the class threshold")
        add_suggestions(store, run_id=run_id, cells=table(spurious, 0.02, 0.35, most_likely_low=True), kind="spurious",
                        reason="bench: annotated, but the model doubts it")
    return db


def _summary(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(np.ceil(0.95 * len(ordered))) - 1)] if ordered else None
    return {"n": len(values), "p50": round(statistics.median(values), 4) if values else None,
            "p95": round(p95, 4) if p95 is not None else None, "max": round(max(values), 4) if values else None,
            "values": [round(v, 4) for v in values]}


def _decision_key(page: Any, n: int) -> str:
    """Alternate yes and no, in the keys the shown item asks for (A / X to add, R / X to remove)."""
    question = page.locator(".st-key-focus_panel h2").first.inner_text()
    yes = "r" if "remove" in question else "a"
    return yes if n % 2 else "x"


def _set_page_size(page: Any, size: int) -> None:
    choice = page.locator(".st-key-page_size").get_by_role("radio", name=str(size), exact=True)
    nonce = panel_nonce(page)
    choice.click()
    wait_drawn(page, before_nonce=nonce, timeout_ms=120_000)
    page.wait_for_function("() => document.querySelector('.st-key-page_size [aria-checked=\"true\"]').innerText"
                           f".trim() === '{size}'", timeout=30_000)
    wait_first_item(page)


# The floor: Streamlit alone, with the same key listener and one line of text in a fragment. A key press
# there costs what any Streamlit page costs on this machine; the review app's own share is the difference.
FLOOR_APP = """
import streamlit as st
from labelfix.review.app.keys import key_listener

def advance():
    st.session_state["n"] = st.session_state.get("n", 1) + 1

@st.fragment(key="panel")
def panel():
    n = st.session_state.get("n", 1)
    nonce = st.session_state["_nonce"] = st.session_state.get("_nonce", 0) + 1
    st.container(key="focus_panel").markdown(f"suggestion {n}")
    key_listener(item=n, nonce=nonce, tiles={}, on_key=advance, on_view=lambda: None)

panel()
"""


def _floor(browser: Any, out_dir: Path, presses: int) -> dict[str, Any]:
    script = out_dir / "floor_app.py"
    script.write_text(FLOOR_APP)
    with streamlit_server(script, log=out_dir / "floor.log") as (url, _):
        context = browser.new_context(viewport={"width": 1500, "height": 1300})
        page = context.new_page()
        loads = []
        for _ in range(4):
            start = time.perf_counter()
            page.goto(url, wait_until="commit")
            wait_first_item(page)
            loads.append(time.perf_counter() - start)
        times = [_press_and_time(page, "a", spot=".st-key-focus_panel") for _ in range(presses)]
        context.close()
    # the first load is in a new browser (empty cache), the others in the same one
    return {"key_press_s": _summary(times), "page_load_new_browser_s": round(loads[0], 4),
            "page_load_s": _summary(loads[1:])}


def _load(context: Any, url: str) -> tuple[float, float]:
    """Seconds from opening the app in a new tab to (its first item shown large with its picture, the whole
    page drawn to its end with every image loaded)."""
    page = context.new_page()
    start = time.perf_counter()
    page.goto(f"{url}/?reviewer=bench", wait_until="commit")
    page.wait_for_function("() => { const img = document.querySelector('.st-key-focus_image img'); "
                           "return img && img.complete && /suggestion \\d+/.test("
                           "document.querySelector('.st-key-focus_panel').innerText); }", timeout=60_000, polling="raf")
    shown = time.perf_counter() - start
    wait_first_item(page)
    settled_at = time.perf_counter() - start
    page.close()
    return shown, settled_at


class _ServerTimes:
    """The server's own time per script run, from the ``labelfix-timing`` lines of its log."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.offset = 0

    def take(self) -> dict[str, float]:
        """Seconds per part (``panel``, ``key``, ``page``) logged since the last call."""
        with open(self.log, encoding="utf-8", errors="replace") as handle:
            handle.seek(self.offset)
            text = handle.read()
            self.offset = handle.tell()
        parts: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("labelfix-timing "):
                _, part, seconds = line.split()[:3]
                parts[part] = parts.get(part, 0.0) + float(seconds)
        return parts


def _press_and_time(page: Any, key: str, *, spot: str = ".st-key-flash") -> float:
    before, nonce = shown_item(page), panel_nonce(page)
    page.locator(spot).click(position={"x": 2, "y": 2})  # the page, not an input, has focus
    start = time.perf_counter()
    page.keyboard.press(key)
    wait_next_item(page, before_item=before, before_nonce=nonce)
    return time.perf_counter() - start




def run(*, out_dir: Path, n_images: int, presses: int, page_sizes: list[int], loads: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    db = build_review_store(out_dir, n_images=n_images)
    build_s = time.perf_counter() - started
    result: dict[str, Any] = {"config": {"n_images": n_images, "presses_per_size": presses, "page_sizes": page_sizes,
                                         "loads": loads},
                              "machine": {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg(),
                                          "python": platform.python_version()},
                              "build_store_s": round(build_s, 2)}
    log = out_dir / "server.log"
    with review_server(db, log=log, env={TIMING_ENV_VAR: "1"}) as (url, _), sync_playwright() as playwright:
        server = _ServerTimes(log)
        browser = launch_chromium(playwright)
        try:
            # new browser: an empty HTTP cache, Streamlit's scripts are fetched and parsed again each time
            fresh = []
            for _ in range(loads):
                context = browser.new_context(viewport={"width": 1500, "height": 1300})
                fresh.append(_load(context, url))
                context.close()
            # returning reviewer: the same browser opens the app again (its scripts come from the cache)
            context = browser.new_context(viewport={"width": 1500, "height": 1300})
            returning = [_load(context, url) for _ in range(loads)]
            context.close()
            result["first_load_s"] = {
                "server_cold": round(fresh[0][1], 4),
                "new_browser": {"first_item": _summary([f[0] for f in fresh[1:]]),
                                "settled": _summary([f[1] for f in fresh[1:]])},
                "returning_browser": {"first_item": _summary([r[0] for r in returning[1:]]),
                                      "settled": _summary([r[1] for r in returning[1:]])}}
            context = browser.new_context(viewport={"width": 1500, "height": 1300})
            page = context.new_page()
            page.goto(f"{url}/?reviewer=bench", wait_until="commit")
            wait_first_item(page)
            result["decision_s"], result["server_run_s"], result["server_key_s"] = {}, {}, {}
            for size in page_sizes:
                _set_page_size(page, size)
                for n in range(3):  # warm-up: the first pictures of a page size are rendered now
                    _press_and_time(page, _decision_key(page, n))
                times, runs, keys = [], [], []
                server.take()
                for n in range(presses):
                    times.append(_press_and_time(page, _decision_key(page, n)))
                    logged = server.take()
                    runs.append(logged.get("panel", 0.0))
                    keys.append(logged.get("key", 0.0))
                result["decision_s"][str(size)] = _summary(times)
                result["server_run_s"][str(size)] = _summary(runs)
                result["server_key_s"][str(size)] = _summary(keys)
            result["streamlit_floor"] = _floor(browser, out_dir, presses)
        finally:
            browser.close()
    result["machine"]["load_avg_end"] = os.getloadavg()
    goal = result["decision_s"].get("24", {}).get("p95")
    result["goal"] = {"decision_p95_s": 0.3, "first_load_s": 1.0,
                      "decision_p95_met": goal is not None and goal <= 0.3,
                      "first_load_met": result["first_load_s"]["returning_browser"]["first_item"]["p95"] <= 1.0}
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=400, help="train images of the demo store")
    parser.add_argument("--presses", type=int, default=40, help="timed key presses per page size")
    parser.add_argument("--page-sizes", type=int, nargs="+", default=[24, 8])
    parser.add_argument("--loads", type=int, default=6, help="page loads per kind (new and returning browser)")
    parser.add_argument("--out", type=Path, help="write the result JSON here")
    parser.add_argument("--work", type=Path, help="folder for the demo store (default: a temporary one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="labelfix-review-browser-") as tmp:
        result = run(out_dir=args.work or Path(tmp), n_images=args.images, presses=args.presses,
                     page_sizes=args.page_sizes, loads=args.loads)
    result["command"] = "python -m labelfix.bench.speed.review_browser " + " ".join(
        sys.argv[1:] if argv is None else argv)
    emit_report(result, args.out, echo=False)
    summary = {size: (v["p50"], v["p95"]) for size, v in result["decision_s"].items()}
    floor = result["streamlit_floor"]
    loads = result["first_load_s"]
    print(f"first item shown p95: new browser {loads['new_browser']['first_item']['p95']} s, returning browser "
          f"{loads['returning_browser']['first_item']['p95']} s (all drawn: {loads['new_browser']['settled']['p95']} / "
          f"{loads['returning_browser']['settled']['p95']} s; server's first page {loads['server_cold']} s); "
          f"decision (p50, p95) s by page size: {summary}; Streamlit alone: key press "
          f"({floor['key_press_s']['p50']}, {floor['key_press_s']['p95']}) s, page load p95 {floor['page_load_s']['p95']} s")


if __name__ == "__main__":
    main()

