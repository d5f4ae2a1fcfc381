"""Checks of user-given paths, so a slip (a folder for a file, a missing or unreadable file, an output path
that is a file) is one clear message naming the path and the fix, raised before any work is done."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from labelfix.errors import InputError, LabelfixError

# What to do about an OSError on a path the user gave, by errno.
_FIXES = {
    errno.ENOENT: "check the path (relative paths start at the current folder)",
    errno.EACCES: "give yourself access to it (chmod / chown), or use another path",
    errno.EPERM: "give yourself access to it (chmod / chown), or use another path",
    errno.EISDIR: "name a file, not a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder: fix the path",
    errno.EEXIST: "remove it, or choose another path",
    errno.ENOSPC: "free some disk space, or write somewhere else",
    errno.EROFS: "write somewhere writable",
    errno.ENAMETOOLONG: "use a shorter path",
}


def os_error_as_labelfix_error(error: OSError) -> LabelfixError:
    """One clear message (file, what is wrong, the fix) for an OSError raised on a user's path.

    Examples
    --------
    >>> print(os_error_as_labelfix_error(FileNotFoundError(2, "No such file or directory", "a.json")).message)
    a.json: no such file or directory
      fix: check the path (relative paths start at the current folder)
    """
    what = (error.strerror or str(error) or type(error).__name__).rstrip(".")
    what = what[:1].lower() + what[1:]
    if error.filename2 is not None:
        what += f" (and {error.filename2})"
    return LabelfixError(what, file=error.filename, fix=_FIXES.get(error.errno or -1, "check the path"))


def input_file(path: str | Path, *, what: str = "input file") -> Path:
    """``path`` as a :class:`~pathlib.Path` once it names a readable file.

    Raises
    ------
    InputError
        If it does not exist, is a folder, or cannot be read.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"is a folder, not a file (the {what})", file=path,
                         fix=f"name the {what} itself, not the folder it is in")
    if not path.exists():
        raise InputError(f"the {what} does not exist", file=path,
                         fix="check the path (relative paths start at the current folder)")
    try:
        with open(path, "rb"):  # opening shows a permission problem here, not halfway through the work
            pass
    except OSError as error:
        raise InputError(f"cannot read the {what}: {(error.strerror or str(error)).lower()}", file=path,
                         fix=_FIXES.get(error.errno or -1, "check the path")) from error
    return path


def input_folder(path: str | Path, *, what: str = "images folder") -> Path:
    """``path`` as a :class:`~pathlib.Path` once it names an existing folder.

    Raises
    ------
    InputError
        If it does not exist or is a file.
    """
    path = Path(path)
    if path.is_file():
        raise InputError(f"is a file, not a folder (the {what})", file=path, fix=f"name the {what} itself")
    if not path.is_dir():
        raise InputError(f"the {what} does not exist", file=path,
                         fix="check the path (relative paths start at the current folder)")
    return path


def output_folder(path: str | Path, *, option: str = "--out") -> Path:
    """``path`` as a :class:`~pathlib.Path` once it can be (or already is) a writable folder.

    Nothing is created here: the writer creates the folder, so a failed command leaves no empty folder.

    Raises
    ------
    InputError
        If it, or the nearest existing folder above it, is a file or not writable.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"is a file, not a folder ({option} names the folder to write into)", file=path,
                         fix=f"give {option} a folder (it is created if missing), or move the file away")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"cannot create the folder {path}: {existing} is a file", file=existing,
                         fix=f"give {option} a path under a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"cannot write into {existing}: permission denied", file=path,
                         fix=f"give {option} a folder you can write to")
    return path
