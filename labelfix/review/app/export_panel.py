"""The review app's export panel: corrected labels into the server's export folder, then download buttons.

No path typed in the browser reaches the file system: the folder is the one fixed when the server started
(``labelfix review --export-dir``, default ``exports/`` beside the store), and each store writes into its own
folder there (``exports/<store name>/``, :func:`labelfix.review.export_folder.store_export_dir`), so two stores
in one folder never overwrite each other's exports. The browser may name a sub-folder, which
:func:`labelfix.review.export_folder.export_subfolder` checks; without one, each export gets a new
time-stamped sub-folder.

The download buttons serve exactly the files this export wrote: each file's sha256 is taken when it is
written, and a file changed or replaced since (another export under the same sub-folder name, a link put in
its place) is refused rather than served. A team-mode browser never sees the server's absolute paths, only
paths inside the export folder. In team mode only leads see the panel, and
:func:`labelfix.review.export_folder.export_as` checks the role again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from labelfix.errors import LabelfixError
from labelfix.review.app.server_options import db_path, export_dir, team_mode
from labelfix.review.auth import Reviewer
from labelfix.review.export_folder import ExportRefused, export_as, store_export_dir, store_folder_name
from labelfix.review.lead import store_of
from labelfix.review.service import ReviewService

__all__ = ["WrittenFile", "export_panel"]

FILES_KEY = "_export_files"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WrittenFile:
    """A file the export of this browser session wrote: where it is, as shown and on the server, and its digest."""

    shown: str  # inside the export folder: "<store>/<sub-folder>/labels.json"
    path: str  # on the server; never sent to a team-mode browser
    sha256: str
    size: int


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _written(path: Path, root: Path) -> WrittenFile:
    return WrittenFile(shown=path.relative_to(root).as_posix(), path=str(path), sha256=_sha256(path),
                       size=path.stat().st_size)


def _unchanged(file: WrittenFile) -> bool:
    """A cheap check before offering the button (the digest is checked again when the file is served)."""
    path = Path(file.path)
    return not path.is_symlink() and path.is_file() and path.stat().st_size == file.size


def _reader(file: WrittenFile) -> Callable[[], bytes]:
    """Read the file when the browser asks for it; serve it only if it still holds what this export wrote."""

    def read() -> bytes:
        data = Path(file.path).read_bytes()
        if hashlib.sha256(data).hexdigest() != file.sha256:
            raise ExportRefused(f"{file.shown} changed since this export wrote it", fix="export again")
        return data

    return read


def _problem(error: LabelfixError, *, team: bool) -> str:
    """The message for the browser: without the server's paths in team mode."""
    if not team:
        return error.message
    return error.problem + (f"\n\nfix: {error.fix}" if error.fix else "")


def _write(service: ReviewService, reviewer: Reviewer | None, *, team: bool) -> None:
    root = export_dir()
    name = str(st.session_state.get("export_name") or "")
    inline = bool(st.session_state.get("export_inline"))
    try:
        folder = store_export_dir(root, store_path=db_path())
        with store_of(service) as store:
            summary = export_as(store, reviewer=reviewer, export_dir=folder, name=name, inline=inline)
        files = [_written(path, root) for path in summary.paths]
    except LabelfixError as error:
        st.session_state[FILES_KEY] = []
        st.error(_problem(error, team=team))
        return
    except OSError as error:  # the file system refused (full disk, permissions)
        st.session_state[FILES_KEY] = []
        st.error(f"could not write the export: {(error.strerror or type(error).__name__).lower()}"
                 + ("" if team else f" ({error.filename})"))
        return
    st.session_state[FILES_KEY] = files
    where = files[0].shown.rsplit("/", 1)[0] if team else str(Path(files[0].path).parent)
    st.success(f"wrote {', '.join(Path(f.shown).name for f in files)} into {where} "
               f"({summary.n_annotations} labels: {summary.by_source})")
    for warning in summary.warnings:  # e.g. the inline option on a store ingested from tables only
        st.warning(warning)


def export_panel(service: ReviewService, reviewer: Reviewer | None) -> None:
    """The export box below the review page (nothing for an annotator in team mode).

    Lazy: the per-class diff is computed only while the box is open.

    Parameters
    ----------
    service
        The session's review service (its store is exported).
    reviewer
        The signed-in reviewer in team mode; ``None`` on a loopback server without sign-in (everyone is a lead).
    """
    if reviewer is not None and not reviewer.is_lead:
        return
    box = st.expander("Export corrected labels", key="export_box", on_change="rerun")
    if not box.open:
        return
    team = team_mode()
    with box:
        store_folder = store_folder_name(db_path())
        where = (f"the server's export folder, under `{store_folder}/`" if team
                 else f"`{export_dir() / store_folder}`")
        st.caption(f"Writes labels.json into a sub-folder of {where}, then offers the files for download here.")
        left, right = st.columns(2)
        left.text_input("Sub-folder name (optional)", key="export_name", max_chars=64,
                        placeholder="export-YYYYMMDD-HHMMSS",
                        help="Letters, digits, '_' and '-'; empty: a new time-stamped folder. The same name "
                             "again replaces that export.")
        right.checkbox("Also each COCO source with the added labels inline", key="export_inline",
                       help="instances_corrected.json (one per source: <source>_corrected.json), as "
                            "`labelfix export coco --inline`.")
        diff = service.label_diff()
        st.dataframe([{"class": d.name, "source": d.original_positive, "export": d.exported_positive,
                       "added": d.added, "removed": d.removed, "verified absent": d.verified_negative}
                      for d in diff], hide_index=True, width="stretch")
        if st.button("Write labels.json", key="export_write", type="primary"):
            _write(service, reviewer, team=team)
        files: list[WrittenFile] = st.session_state.get(FILES_KEY, [])
        columns = st.columns(max(1, len(files)))
        for index, file in enumerate(files):
            name = Path(file.shown).name
            if not _unchanged(file):
                columns[index].caption(f"{file.shown} changed since this export: write it again")
                continue
            columns[index].download_button(f"Download {name}", data=_reader(file), file_name=name,
                                           mime="application/json", key=f"export_download_{index}",
                                           on_click="ignore", help=f"{file.shown} in the export folder")
