"""The review app's export panel: corrected labels into the server's export folder, then a download button.

No path typed in the browser reaches the file system: the folder is the one fixed when the server started
(``labelfix review --export-dir``); the browser may name a sub-folder, which
:func:`labelfix.review.export_folder.export_subfolder` checks. In team mode only leads see the panel, and
:func:`labelfix.review.export_folder.export_as` checks the role again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from labelfix.errors import LabelfixError
from labelfix.review.app.server_options import export_dir
from labelfix.review.auth import Reviewer
from labelfix.review.export_folder import export_as
from labelfix.review.lead import store_of
from labelfix.review.service import ReviewService

__all__ = ["export_panel"]

FILES_KEY = "_export_files"


def _reader(path: Path, root: Path) -> Callable[[], bytes]:
    """Read the file when the browser asks for it, if it is still a file inside the export folder."""

    def read() -> bytes:
        if path.is_symlink() or not path.resolve().is_relative_to(root.resolve()):
            raise LabelfixError("the exported file is no longer in the export folder", file=path)
        return path.read_bytes()

    return read


def export_panel(service: ReviewService, reviewer: Reviewer | None) -> None:
    """The sidebar export panel (nothing for an annotator in team mode).

    Parameters
    ----------
    service
        The session's review service (its store is exported).
    reviewer
        The signed-in reviewer in team mode; ``None`` on a loopback server without sign-in.
    """
    if reviewer is not None and not reviewer.is_lead:
        return
    with st.sidebar.expander("Export corrected labels"):
        root = export_dir()
        st.caption(f"Written into the server's export folder `{root}`, then offered for download.")
        name = st.text_input("Sub-folder name (optional)", key="export_name", max_chars=64,
                             placeholder="export-YYYYMMDD-HHMMSS",
                             help="Letters, digits, '_' and '-'; empty: a new time-stamped folder.")
        inline = st.checkbox("Also the COCO file with added labels inline (instances_corrected.json)",
                             key="export_inline")
        if st.button("Export…", key="export_preview"):
            st.session_state["_export"] = True
        if st.session_state.get("_export"):
            diff = service.label_diff()
            st.caption("Per-class label diff (source → export)")
            st.dataframe([{"class": d.name, "source": d.original_positive, "export": d.exported_positive,
                           "added": d.added, "removed": d.removed, "verified negative": d.verified_negative}
                          for d in diff], hide_index=True, width="stretch")
            left, right = st.columns(2)
            if left.button("Write labels.json", key="export_write", type="primary"):
                st.session_state["_export"] = False
                try:
                    with store_of(service) as store:
                        summary = export_as(store, reviewer=reviewer, export_dir=root, name=name, inline=inline)
                except LabelfixError as error:
                    st.session_state[FILES_KEY] = []
                    st.error(error.message)
                else:
                    st.session_state[FILES_KEY] = [str(p) for p in summary.paths]
                    st.success(f"wrote {', '.join(p.relative_to(root).as_posix() for p in summary.paths)} "
                               f"({summary.n_annotations} labels: {summary.by_source})")
            if right.button("Cancel", key="export_cancel"):
                st.session_state["_export"] = False
                st.rerun()
        for index, text in enumerate(st.session_state.get(FILES_KEY, [])):
            path = Path(text)
            st.download_button(f"Download {path.parent.name}/{path.name}", data=_reader(path, root),
                               file_name=path.name, mime="application/json", key=f"export_download_{index}",
                               on_click="ignore")
