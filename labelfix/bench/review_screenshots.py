"""The README's screenshots of the review app, taken in headless chromium on a demo store.

``docs/review_demo.png``: a missing-label item ("add 'one'?") after two decisions, with the outcome of
the last one, the page grid and the class progress. ``docs/review_app.png``: a spurious-label item
("remove ...?") with the guidelines and keys open in the sidebar. ``docs/review_export.png``: the lead's
export box after an export into a named sub-folder with the inline option, with its download buttons.
The PNGs are saved with a 256-colour palette (a quarter of the size, no visible loss on these pages). Run::

    python -m labelfix.bench.review_screenshots --out docs

Needs Debian's chromium and the playwright package, like the browser tests.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from labelfix.bench.browser import launch_chromium, panel_nonce, review_server, settled, shown_item, \
    wait_first_item, wait_next_item
from labelfix.bench.speed.review_browser import build_review_store


def take(*, out: Path, work: Path, n_images: int = 120) -> list[Path]:
    """Build a demo store under ``work``, serve it and save the two screenshots into ``out``."""
    from playwright.sync_api import sync_playwright

    db = build_review_store(work, n_images=n_images)
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with review_server(db, log=work / "server.log") as (url, _), sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            page.goto(f"{url}/?reviewer=ana", wait_until="commit")
            wait_first_item(page)
            for key in ("a", "x"):
                before, nonce = shown_item(page), panel_nonce(page)
                page.locator(".st-key-flash").click(position={"x": 2, "y": 2})
                page.keyboard.press(key)
                wait_next_item(page, before_item=before, before_nonce=nonce)
            saved.append(out / "review_demo.png")
            page.screenshot(path=str(saved[-1]))
            page.locator(".st-key-kinds").get_by_role("combobox").click()
            page.get_by_role("option", name="spurious labels only (remove)").click()
            page.locator(".st-key-focus_panel h2", has_text="remove").wait_for(timeout=60_000)
            wait_first_item(page)
            page.set_viewport_size({"width": 1440, "height": 1300})
            page.get_by_text("Guidelines and keys").click()
            page.wait_for_timeout(300)  # the expander's opening animation (a picture, not a sync point)
            saved.append(out / "review_app.png")
            page.screenshot(path=str(saved[-1]))
            saved.append(_export_box(page, out / "review_export.png"))
        finally:
            browser.close()
    for path in saved:
        _palette(path)
    return saved


def _export_box(page: Any, path: Path) -> Path:
    """Open the export box, export into ``round-1`` with the inline option, and picture the box."""
    page.get_by_text("Guidelines and keys").click()  # closed again: the sidebar as reviewers mostly see it
    page.get_by_text("Export corrected labels").click()
    write = page.get_by_role("button", name="Write labels.json")
    write.wait_for(timeout=60_000)
    settled(page)
    name = page.get_by_role("textbox", name="Sub-folder name (optional)")
    name.fill("round-1")
    name.press("Enter")
    settled(page)
    page.get_by_text("Also each COCO source").click()
    settled(page)
    download = page.get_by_role("button", name="Download instances_corrected.json")
    for attempt in range(3):  # a click that lands while a widget's rerun redraws the button can be lost
        write.click()
        try:
            download.wait_for(timeout=20_000)
            break
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: click again
            if attempt == 2:
                raise
    settled(page)
    page.locator(".st-key-export_box").screenshot(path=str(path))
    return path


def _palette(path: Path) -> None:
    """Re-save a screenshot with a 256-colour palette (median cut, no dithering): UI pictures stay sharp."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                              dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--images", type=int, default=120)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="labelfix-screenshots-") as work:
        for path in take(out=args.out, work=Path(work), n_images=args.images):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
