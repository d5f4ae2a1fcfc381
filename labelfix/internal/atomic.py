"""Atomic file writes: write beside the target, then rename, so a reader never sees half a file.

:func:`atomic_target` does one file; :func:`atomic_targets` does a set of files that belong together
(an export's labels.json and its inline files): every file is written to its temporary first, and the
targets are replaced only once all are written, so a failure leaves the previous set as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from labelfix.errors import LabelfixError


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it replaces ``path``, on error it is removed.

    Examples
    --------
    >>> with atomic_target("/tmp/labelfix-example.txt") as temporary:  # doctest: +SKIP
    ...     temporary.write_text("done")
    """
    with atomic_targets() as files:
        yield files.temporary(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> str:
    """Write UTF-8 ``text`` atomically (flushed to disk before the rename); return its sha256."""
    data = text.encode("utf-8")
    with atomic_target(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return hashlib.sha256(data).hexdigest()


class AtomicSet:
    """Temporary paths for a set of targets, handed out by :func:`atomic_targets`."""

    def __init__(self) -> None:
        self.pairs: list[tuple[Path, Path]] = []  # (temporary, target)
        self.created: list[Path] = []  # folders made for the targets, removed again if the set fails

    def temporary(self, path: str | os.PathLike) -> Path:
        """A temporary file beside ``path`` that replaces it when the whole set is written."""
        path = Path(path)
        refuse_a_folder(path)
        missing = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
        path.parent.mkdir(parents=True, exist_ok=True)
        self.created += missing
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(descriptor)
        self.pairs.append((Path(name), path))
        return Path(name)

    def target_of(self, filename: object) -> Path | None:
        """The target a temporary file name stands for (``None``: not one of ours)."""
        for temporary, target in self.pairs:
            if isinstance(filename, (str, os.PathLike)) and Path(filename) == temporary:
                return target
        return None


def refuse_a_folder(path: Path) -> None:
    """Refuse a target that is an existing folder, naming it (before anything is written)."""
    if path.is_dir():
        raise LabelfixError("is a folder, so this file cannot be written there", file=path,
                            fix="move or remove that folder, or write to another --out folder")


@contextlib.contextmanager
def atomic_targets() -> Iterator[AtomicSet]:
    """Write a set of files all or nothing: each goes to a temporary beside its target, and the targets
    are replaced only when every file is written; on an error the temporaries are removed and every
    target keeps its previous content. An OSError on a temporary is re-raised naming its target.

    Examples
    --------
    >>> with atomic_targets() as files:  # doctest: +SKIP
    ...     files.temporary("out/a.json").write_text("a")
    ...     files.temporary("out/b.json").write_text("b")
    """
    files = AtomicSet()
    try:
        yield files
        for _, target in files.pairs:
            refuse_a_folder(target)  # a folder appeared meanwhile: refuse before anything is replaced
        _replace_all(files.pairs)
    except OSError as error:
        _remove(files)
        raise _named_for_the_user(error, files) from error
    except BaseException:
        _remove(files)
        raise


def _replace_all(pairs: list[tuple[Path, Path]]) -> None:
    """Rename every temporary onto its target; if one rename fails, put back the targets replaced so far."""
    backups: list[tuple[Path, Path | None]] = []  # (target, its previous content or None when it had none)
    try:
        for temporary, target in pairs:
            os.chmod(temporary, 0o644)  # mkstemp makes it private; outputs are meant to be shared
            backup = None
            if len(pairs) > 1 and target.exists():  # one rename is atomic by itself: no backup needed
                backup = target.with_name(f"{temporary.name}.previous")
                try:
                    os.link(target, backup)
                except OSError:  # a file system without hard links
                    shutil.copy2(target, backup)
            backups.append((target, backup))
            os.replace(temporary, target)
    except BaseException:
        for target, backup in reversed(backups):
            # A backup that cannot be put back stays on disk (the previous content is never deleted).
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, target)
                    backup.unlink(missing_ok=True)  # still there when it was a hard link of the unreplaced target
                else:
                    target.unlink(missing_ok=True)
        raise
    for _, backup in backups:
        if backup is not None:
            backup.unlink(missing_ok=True)


def _remove(files: AtomicSet) -> None:
    for temporary, _ in files.pairs:
        temporary.unlink(missing_ok=True)
    for folder in files.created:  # deepest first; a folder something else wrote into stays
        with contextlib.suppress(OSError):
            folder.rmdir()


def _named_for_the_user(error: OSError, files: AtomicSet) -> OSError:
    """The same error naming the target the user asked for instead of our temporary file."""
    target = files.target_of(error.filename)
    if target is None:
        return error
    return type(error)(error.errno, error.strerror, str(target))  # filename2 (the rename's target) is the same
