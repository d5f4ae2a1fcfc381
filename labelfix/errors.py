"""Errors a user can act on: each names the file, the record and the fix."""

from __future__ import annotations

from pathlib import Path


class LabelfixError(Exception):
    """Base class of every error labelfix reports to a user.

    Parameters
    ----------
    problem
        What is wrong, in one sentence.
    file
        The file the problem is in, if any.
    record
        Where in the file: an image id, a line number, a JSON path.
    fix
        What the user should do about it.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | Path | None = None,
        record: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = str(file) if file is not None else None
        self.record = record
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = ": ".join(part for part in (self.file, self.record) if part)
        text = f"{where}: {self.problem}" if where else self.problem
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class InputError(LabelfixError):
    """An input file (annotations, table, image) is malformed or inconsistent."""


class StoreError(LabelfixError):
    """The label store is missing, of the wrong version, or in conflict with a request."""


class LabelfixWarning(UserWarning):
    """Something a user should know that does not stop the command (one line; the CLI prints it as ``warning:``)."""
