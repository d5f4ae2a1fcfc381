"""Exports from the review app go only into one export folder, fixed when the server starts.

Each store exports into its own folder there (:func:`store_export_dir`, ``exports/<store name>/``), so two
stores beside each other (sharing ``exports/``) never write over each other's files. A browser never names
a path: it may give a sub-folder *name* (letters, digits, ``_`` and ``-``; no dots, no separators, so no
``..`` and nothing absolute), which is resolved inside the store's folder and checked to stay there (a
symbolic link leading out is refused). Without a name each export gets a new time-stamped sub-folder. In
team mode only leads export.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from pathlib import Path

from labelfix.errors import LabelfixError
from labelfix.export import ExportSummary, export_coco
from labelfix.review.auth import Reviewer
from labelfix.review.lead import require_lead
from labelfix.review.models import utc_now
from labelfix.store.database import Store

__all__ = ["EXPORT_DIR_NAME", "SUBFOLDER_PATTERN", "ExportRefused", "default_export_dir", "export_as",
           "export_subfolder", "prepare_export_dir", "store_export_dir", "store_folder_name"]

EXPORT_DIR_NAME = "exports"
SUBFOLDER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class ExportRefused(LabelfixError):
    """An export request that would write outside the export folder, or that the role does not allow."""


def default_export_dir(store_path: str | Path) -> Path:
    """``<folder of the store>/exports``."""
    return Path(store_path).resolve().parent / EXPORT_DIR_NAME


def prepare_export_dir(path: str | Path) -> Path:
    """Create the export folder if needed and return it resolved; refuse one that is not a writable folder.

    Raises
    ------
    LabelfixError
        The path is a file, cannot be created, or cannot be written to.
    """
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as error:
        raise LabelfixError("the export folder is a file", file=folder,
                            fix="pass --export-dir a folder") from error
    except OSError as error:
        raise LabelfixError(f"cannot create the export folder: {(error.strerror or str(error)).lower()}",
                            file=folder, fix="pass --export-dir a folder you can write to") from error
    if not folder.is_dir():
        raise LabelfixError("the export folder is not a folder", file=folder, fix="pass --export-dir a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise LabelfixError("cannot write to the export folder", file=folder,
                            fix="pass --export-dir a folder you can write to")
    return folder.resolve()


def store_folder_name(store_path: str | Path) -> str:
    """The folder of one store's exports inside the export folder: the store's file stem, made safe.

    A name with characters other than letters, digits, ``_`` and ``-`` has them replaced and gets a short hash
    of the file name, so two stores never share a folder (``a b.duckdb`` and ``a_b.duckdb``); a store not
    ending in ``.duckdb`` keeps its suffix (``tm.db`` and ``tm.duckdb`` differ).

    Examples
    --------
    >>> store_folder_name("/data/tm.duckdb"), store_folder_name("/data/tm.db")
    ('tm', 'tm-db')
    >>> store_folder_name("/data/a b.duckdb")
    'a_b-46d193'
    """
    path = Path(store_path)
    stem = path.stem if path.suffix == ".duckdb" else path.name.replace(".", "-")
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", stem)[:48].lstrip("_-") or "store"
    if safe != stem:
        safe = f"{safe}-{hashlib.sha256(path.name.encode('utf-8')).hexdigest()[:6]}"
    return safe


def _plain_folder_inside(target: Path, root: Path) -> bool:
    """Whether ``target`` is (or can be made) a real folder directly inside ``root``: no link, no file."""
    return not target.is_symlink() and (not target.exists() or target.is_dir()) and target.resolve().parent == root


def store_export_dir(export_dir: str | Path, *, store_path: str | Path) -> Path:
    """``export_dir/<store name>`` (see :func:`store_folder_name`), created if needed and checked to be a plain
    folder inside ``export_dir`` (a link there is refused).

    Raises
    ------
    ExportRefused
        The store's folder is a link or a file.
    """
    root = Path(export_dir).resolve()
    target = root / store_folder_name(store_path)
    if not _plain_folder_inside(target, root):
        raise ExportRefused(f"{target.name!r} in the export folder is not a plain folder",
                            fix="remove that link or file from the export folder")
    target.mkdir(exist_ok=True)
    if not _plain_folder_inside(target, root):  # replaced by a link meanwhile
        raise ExportRefused(f"{target.name!r} in the export folder is not a plain folder",
                            fix="remove that link or file from the export folder")
    return target


def export_subfolder(export_dir: str | Path, name: str | None, *, now: dt.datetime | None = None) -> Path:
    """The folder ``name`` inside ``export_dir`` (default: ``export-YYYYMMDD-HHMMSS``), checked to stay inside.

    Raises
    ------
    ExportRefused
        ``name`` is not a plain sub-folder name, or it leads outside ``export_dir`` (e.g. a link).

    Examples
    --------
    >>> export_subfolder("/srv/exports", "round-2").as_posix()
    '/srv/exports/round-2'
    >>> export_subfolder("/srv/exports", "../../x")
    Traceback (most recent call last):
    ...
    labelfix.review.export_folder.ExportRefused: '../../x' is not a sub-folder name: exports go only into the export folder
      fix: use 1-64 letters, digits, '_' or '-' (no dots, slashes or absolute paths)
    """
    root = Path(export_dir).resolve()
    text = (name or "").strip() or (now or utc_now()).strftime("export-%Y%m%d-%H%M%S")
    if not SUBFOLDER_PATTERN.fullmatch(text):
        raise ExportRefused(f"{text[:80]!r} is not a sub-folder name: exports go only into the export folder",
                            fix="use 1-64 letters, digits, '_' or '-' (no dots, slashes or absolute paths)")
    target = root / text
    if not _plain_folder_inside(target, root):
        raise ExportRefused(f"{text!r} in the export folder is not a plain folder", fix="choose another sub-folder name")
    return target


def export_as(store: Store, *, reviewer: Reviewer | None, export_dir: str | Path, name: str | None = None,
              inline: bool = False) -> ExportSummary:
    """Export the corrected labels into ``export_dir/name`` (see :func:`export_subfolder`).

    Parameters
    ----------
    store
        The store.
    reviewer
        The signed-in reviewer (team mode: must be a lead); ``None`` on a loopback server without sign-in.
    export_dir
        The export folder fixed at server start.
    name
        Sub-folder name typed in the app; empty for a time-stamped one.
    inline
        Also write ``instances_corrected.json`` (see :func:`labelfix.export.export_coco`).

    Raises
    ------
    ExportRefused
        A bad sub-folder name.
    labelfix.review.lead.PermissionRefused
        ``reviewer`` is an annotator.
    """
    if reviewer is not None:
        require_lead(reviewer, "exporting")
    root = Path(export_dir).resolve()
    target = export_subfolder(root, name)
    if (name or "").strip():
        target.mkdir(exist_ok=True)  # a name typed again: that export is replaced (files are written atomically)
    else:
        target = _new_folder(target)  # a time stamp: never an earlier export's folder
    # Checked again after mkdir: a link put in its place meanwhile must not take the files elsewhere.
    if not _plain_folder_inside(target, root):
        raise ExportRefused(f"{target.name!r} in the export folder is not a plain folder",
                            fix="choose another sub-folder name")
    return export_coco(store, out_dir=target, inline=inline)


def _new_folder(target: Path) -> Path:
    """Create ``target``, or ``target-2``, ``target-3``... when taken (two exports in one second)."""
    for n in range(1, 1000):
        candidate = target if n == 1 else target.with_name(f"{target.name}-{n}")
        try:
            candidate.mkdir()  # not exist_ok: creating it is what claims it
        except FileExistsError:
            continue
        return candidate
    raise ExportRefused("too many exports in one second", fix="wait a second, or type a sub-folder name")
