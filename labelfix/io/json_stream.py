"""Stream a large JSON document: the top-level object's keys, and the items of its big arrays one at a time.

Each item comes with its exact source text, so a record is stored and written back as it was without
being serialised again. Python's C scanner parses the items from a sliding window over the file, a run
of items (about 64 KB) per call (:meth:`JsonStream.item_runs`), so memory stays at one window plus the
caller's columns, however large the file, and the file is read once. ijson (the usual streaming parser) was measured for the same
work on a COCO-2017-train-sized file and is slower: it streams one prefix per pass (images, then
annotations: two passes) and gives no source text, so every record must be serialised again, which
for 860k annotations with floats costs as much as parsing them (``labelfix/bench/speed/coco_memory.py``,
``benchmarks/results/coco_memory.json``: steps ``ijson`` and ``labelfix_reader``).
"""

from __future__ import annotations

import codecs
import gc
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from labelfix.errors import InputError

WINDOW = 8 << 20  # characters read at a time
RUN = 64 << 10  # characters parsed in one call by JsonStream.item_runs
MAX_ITEM = 256 << 20  # an item longer than this is reported, not buffered without end
_SPACE = re.compile(r"[ \t\n\r]*")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class JsonStream:
    """A cursor over a JSON text file read in windows; see :func:`iter_top_level`.

    Parameters
    ----------
    handle
        The file, opened as UTF-8 text (a byte-order mark is skipped).
    path
        For error messages.
    """

    def __init__(self, handle: IO[str], *, path: Path) -> None:
        self.handle = handle
        self.path = path
        self.buffer = handle.read(WINDOW)
        if self.buffer.startswith("\ufeff"):  # a UTF-8 byte-order mark (Windows editors write one)
            self.buffer = self.buffer[1:]
        self.pos = 0
        self.eof = not self.buffer
        self.lines_before = 0  # newlines in the text already dropped from the window
        self.column_before = 0  # characters of the window's first line that were dropped with it
        self.decoder = json.JSONDecoder(parse_constant=_refuse_constant)

    # -- the window ----------------------------------------------------------------------------------
    def _more(self) -> bool:
        """Drop what was consumed and read the next window; False at the end of the file."""
        if self.eof:
            return False
        chunk = self.handle.read(WINDOW)
        dropped_lines = self.buffer.count("\n", 0, self.pos)
        self.lines_before += dropped_lines
        # The window now starts inside a line: remember how far into it, for the column of an error.
        self.column_before = (self.pos - self.buffer.rfind("\n", 0, self.pos) - 1 if dropped_lines
                              else self.column_before + self.pos)
        self.buffer = self.buffer[self.pos:] + chunk
        self.pos = 0
        self.eof = not chunk
        return bool(chunk)

    def where(self, pos: int | None = None) -> str:
        pos = self.pos if pos is None else pos
        lines = self.buffer.count("\n", 0, pos)
        column = pos - self.buffer.rfind("\n", 0, pos) if lines else self.column_before + pos + 1
        return f"line {self.lines_before + lines + 1}, column {column}"

    def error(self, problem: str, pos: int | None = None) -> InputError:
        return InputError(f"invalid JSON: {problem}", file=self.path, record=self.where(pos),
                          fix="repair the file (e.g. `python -m json.tool FILE` shows the spot)")

    def peek(self) -> str:
        """The next character that is not white space ('' at the end), without consuming it."""
        if self.pos < len(self.buffer) and self.buffer[self.pos] not in " \t\n\r":  # the usual case, no regex
            return self.buffer[self.pos]
        while True:
            self.pos = _SPACE.match(self.buffer, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buffer):
                return self.buffer[self.pos]
            if not self._more():
                return ""

    def expect(self, characters: str) -> str:
        found = self.peek()
        if not found or found not in characters:
            wanted = " or ".join(repr(c) for c in characters)
            raise self.error(f"expecting {wanted}, found {found!r}" if found else f"expecting {wanted}, "
                             f"found the end of the file")
        self.pos += 1
        return found

    def value(self) -> tuple[Any, str]:
        """Parse the next value; return it and its source text."""
        self.peek()
        while True:
            start = self.pos
            try:
                value, end = self.decoder.raw_decode(self.buffer, start)
            except json.JSONDecodeError as error:
                if self.eof or len(self.buffer) - start > MAX_ITEM:
                    raise self.error(error.msg, error.pos) from error
                self._more()
                continue
            except ValueError as error:  # NaN / Infinity, refused by parse_constant
                raise self.error(str(error), start) from error
            if end >= len(self.buffer) and not self.eof:  # a number may go on in the next window
                self._more()
                continue
            self.pos = end
            return value, self.buffer[start:end]

    def items(self) -> Iterator[tuple[Any, str]]:
        """The items of the array that starts here, each with its source text."""
        self.expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield self.value()
            if self._past_separator():
                return

    def item_runs(self, *, run: int = RUN) -> Iterator[tuple[list[Any], str]]:
        """The items of the array that starts here in runs of about ``run`` characters: each run's values
        and its exact source text (the items with the separators between them).

        A run ends at a ``}`` followed by ``,`` or ``]`` and is parsed in one call as ``[`` + text + ``]``,
        which saves the per-item calls of :meth:`items` (most of the reading time of a large COCO file).
        The parse can only succeed when the cut is a true item boundary: a cut inside a string leaves it
        unterminated, a cut inside a nested object leaves the brackets unbalanced. Where no cut parses (an
        item larger than a run, items that are not objects, a syntax error), one item is read with
        :meth:`value`, which reports errors with their line and column.
        """
        self.expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            while len(self.buffer) - self.pos < run and self._more():
                pass
            values, end = self._run(self.pos + run)
            if values is not None:
                text = self.buffer[self.pos:end]
            else:
                value, text = self.value()
                values, end = [value], self.pos
            yield values, text
            self.pos = end
            if self._past_separator():
                return
            self.peek()

    def _past_separator(self) -> bool:
        """Step over the ``,`` or ``]`` after an array item; True when it closed the array."""
        after = self.buffer[self.pos:self.pos + 1]  # compact files: the separator comes right after
        if after in (",", "]"):
            self.pos += 1
            return after == "]"
        return self.expect(",]") == "]"

    def _run(self, limit: int) -> tuple[list[Any] | None, int]:
        """The values of the items from ``pos`` to the last item end before ``limit`` that parses, and the end."""
        limit = min(limit, len(self.buffer))
        for _ in range(4):  # a "}" of a nested object is tried, then an earlier one
            cut = self.buffer.rfind("}", self.pos, limit)
            if cut < 0:
                return None, self.pos
            after = _SPACE.match(self.buffer, cut + 1).end()  # type: ignore[union-attr]
            if after < len(self.buffer) and self.buffer[after] in ",]":
                # Parsed values hold no cycles, but their many containers would trigger the cyclic
                # collector over and over (it doubles the parse time): it is paused for the call.
                collecting = gc.isenabled()
                gc.disable()
                try:
                    values = self.decoder.decode("[" + self.buffer[self.pos:cut + 1] + "]")
                except ValueError:  # not a boundary (or a syntax error, which value() will report)
                    values = None
                finally:
                    if collecting:
                        gc.enable()
                if values is not None:
                    return values, cut + 1
            limit = cut
        return None, self.pos


def iter_top_level(path: Path, *, arrays: tuple[str, ...]) -> Iterator[tuple[str, Any, "JsonStream | None"]]:
    """Walk a JSON object's top-level keys in file order.

    Yields ``(key, value, None)`` for ordinary keys and ``(key, None, stream)`` for keys in ``arrays`` whose
    value is an array: the caller must consume ``stream.items()`` before asking for the next key.

    Raises
    ------
    InputError
        For a syntax error (with line and column), a top level that is not an object, or a text that
        is not UTF-8.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            stream = JsonStream(handle, path=path)
            if stream.peek() != "{":
                if stream.peek() == "":
                    raise InputError("the file is empty", file=path, fix="a COCO file is a JSON object")
                raise InputError("top level is not a JSON object", file=path,
                                 fix="a COCO file is an object with images, annotations and categories")
            stream.pos += 1
            if stream.peek() == "}":
                stream.pos += 1
                return
            while True:
                key, _ = stream.value()
                if not isinstance(key, str):
                    raise stream.error("expecting a property name in double quotes")
                stream.expect(":")
                if key in arrays and stream.peek() == "[":
                    yield key, None, stream
                else:
                    yield key, stream.value()[0], None
                if stream.expect(",}") == "}":
                    break
            if stream.peek():
                raise stream.error("extra data after the top-level object")
    except UnicodeDecodeError as error:
        raise not_utf8(path, error) from error


def not_utf8(path: Path, error: UnicodeDecodeError) -> InputError:
    """The message for a JSON file that is not UTF-8: the first bad byte's offset in the file (the text reader's
    error counts from its own chunk), and UTF-16/32 named when a byte-order mark shows it."""
    head = b""
    offset = error.start
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as handle:
        read = 0
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            head = head or chunk[:4]
            pending = len(decoder.getstate()[0])  # bytes of a character cut by the previous chunk
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as found:
                offset = read - pending + found.start
                break
            read += len(chunk)
    encoding = next((name for bom, name in (
        (b"\xff\xfe\x00\x00", "UTF-32-LE"), (b"\x00\x00\xfe\xff", "UTF-32-BE"), (b"\xff\xfe", "UTF-16-LE"),
        (b"\xfe\xff", "UTF-16-BE")) if head.startswith(bom)), None)
    if encoding:
        return InputError(f"not UTF-8 text: it is {encoding} (its byte-order mark says so)", file=path,
                          fix=f"save the annotations as UTF-8 JSON (e.g. `iconv -f {encoding} -t UTF-8 FILE`)")
    return InputError(f"not UTF-8 text ({error.reason}: byte {_byte_at(path, offset)} at offset {offset})",
                      file=path, fix="save the annotations as UTF-8 JSON")


def _byte_at(path: Path, offset: int) -> str:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return f"{handle.read(1)[0]:#04x}"
