"""Read a CSV label table as the spreadsheet programs people use save it: the encoding, the separator and the
quoting are found or refused with the line, before the rows are parsed (pyarrow's CSV reader).

Encodings: UTF-8 (with or without a byte-order mark); UTF-16 (Excel's "Unicode Text", LibreOffice), told
by its byte-order mark or, without one, by its NUL bytes; else Windows-1252, with a warning. Separators:
comma, else the semicolon or tab that splits the header into the required columns (Excel writes ``;``
where the decimal mark is a comma). Quoting: a quote left open on its line is refused; pyarrow would take
every following row into that one cell, without a word.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from labelfix.errors import InputError, LabelfixWarning

SEPARATORS = {",": "commas", ";": "semicolons", "\t": "tabs"}
_SAVE_AS = "save the table as CSV UTF-8 (Excel: Save As > CSV UTF-8)"
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe", "utf-16-le"),
         (b"\xfe\xff", "utf-16-be"))


def read_csv_table(path: Path, *, required: tuple[str, ...], text_columns: tuple[str, ...]) -> pa.Table:
    """The table of a CSV file, every column in ``text_columns`` read as text.

    Raises
    ------
    InputError
        Not text in a known encoding, no header with the required columns, or a broken quote (with its line).
    """
    raw = path.read_bytes()
    text, encoding = decode_table(path, raw)
    delimiter = find_delimiter(path, text, required, encoding=encoding)
    if '"' in text:
        check_quotes(path, text, delimiter)
    data = raw if encoding == "utf-8" else text.encode("utf-8")  # pyarrow reads UTF-8 (and skips its BOM)
    return pacsv.read_csv(io.BytesIO(data), parse_options=pacsv.ParseOptions(delimiter=delimiter),
                          convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(text_columns, pa.string()),
                                                               strings_can_be_null=False))


def decode_table(path: Path, raw: bytes) -> tuple[str, str]:
    """(text, encoding) of a table file's bytes; see the module's docstring for the encodings tried.

    Examples
    --------
    >>> decode_table(Path("t.csv"), "file_name\\tlabels\\n".encode("utf-16"))
    ('file_name\\tlabels\\n', 'utf-16-le')
    """
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return _decode(path, raw[len(bom):], encoding), encoding
    head = raw[:4096]
    if b"\x00" in head:
        # UTF-16 without a byte-order mark: ASCII text has a NUL beside every character.
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if odd > len(head) // 4 and even == 0:
            return _decode(path, raw, "utf-16-le"), "utf-16-le"
        if even > len(head) // 4 and odd == 0:
            return _decode(path, raw, "utf-16-be"), "utf-16-be"
        raise InputError(f"holds NUL bytes (the first at offset {raw.index(0)}): not a text table", file=path,
                         fix=f"{_SAVE_AS}; a Parquet table needs the .parquet suffix")
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as error:
        text = _decode(path, raw, "cp1252", utf8_error=error)
        warnings.warn(LabelfixWarning(
            f"{path.name} is not UTF-8 (byte {raw[error.start]:#04x} at offset {error.start}): read as Windows-1252, "
            f"as Excel saves it. Check the class and file names; to be sure, save it as CSV UTF-8"), stacklevel=5)
        return text, "cp1252"


def _decode(path: Path, raw: bytes, encoding: str, *, utf8_error: UnicodeDecodeError | None = None) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        if utf8_error is not None:  # neither UTF-8 nor Windows-1252
            problem = (f"not UTF-8 text (byte {raw[utf8_error.start]:#04x} at offset {utf8_error.start}) and not "
                       f"Windows-1252 either")
        else:
            problem = f"starts as {encoding.upper()} text but is not valid {encoding.upper()} ({error.reason} " \
                      f"at byte offset {error.start})"
        raise InputError(problem, file=path, fix=_SAVE_AS) from error


def find_delimiter(path: Path, text: str, required: tuple[str, ...], *, encoding: str = "utf-8") -> str:
    """The separator that splits the header line into the ``required`` columns (comma first); the error names
    the encoding the text was read in, when it was not UTF-8."""
    header = text.split("\n", 1)[0].strip("\r")
    names = {delimiter: [name.strip().strip('"') for name in header.split(delimiter)] for delimiter in SEPARATORS}
    for delimiter in SEPARATORS:
        if all(column in names[delimiter] for column in required):
            return delimiter
    found = max(names.values(), key=len)
    hint = next((f" (the header is separated by {SEPARATORS[d]}, not commas)" for d in (";", "\t")
                 if len(names[d]) > 1), "")
    missing = [repr(column) for column in required if column not in found]
    read_as = "" if encoding == "utf-8" else f", read as {encoding.upper()} text"
    raise InputError(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}{hint} "
                     f"(found: {', '.join(found)}{read_as})", file=path,
                     fix=f"a label table needs the columns {', '.join(required)} in its first line, separated "
                         f"by commas (or semicolons or tabs)")


def check_quotes(path: Path, text: str, delimiter: str) -> None:
    """Refuse a line whose quoting is broken: a quote not closed on its line (a cell never spans lines in a
    label table), or text after a closing quote. Only lines holding a quote are parsed (C speed).

    Examples
    --------
    >>> check_quotes(Path("t.csv"), 'file_name,labels\\n1.png,"cat;dog"\\n2.png,"cat\\n', ",")
    Traceback (most recent call last):
    ...
    labelfix.errors.InputError: t.csv: line 3: a quote opens a cell and is not closed on its line: '2.png,"cat'
      fix: close the quote ("cat;dog"), or remove it; a quote inside a quoted cell is written twice ("")
    """
    for number, line in enumerate(text.splitlines(), start=1):
        if '"' not in line:
            continue
        try:
            next(csv.reader([line], delimiter=delimiter, strict=True), None)
        except csv.Error as error:
            opened = "end of data" in str(error)
            problem = ("a quote opens a cell and is not closed on its line" if opened else
                       f"a quoted cell is followed by other text before the next {SEPARATORS[delimiter][:-1]}")
            shown = line if len(line) <= 80 else line[:77] + "..."
            raise InputError(f"{problem}: {shown!r}", file=path, record=f"line {number}",
                             fix='close the quote ("cat;dog"), or remove it; a quote inside a quoted cell is '
                                 'written twice ("")') from error
