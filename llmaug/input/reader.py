"""One atomic file, read strictly: accepted only where RecBole would read the same rows and fields.

llmaug reads tab-separated UTF-8 with no quoting, so tokens stay exactly as written. RecBole reads
the same text with pandas' python engine, which takes a field that starts with '"' for CSV
quoting, stops at fields longer than Python csv's limit and at a carriage return inside a line.
The output carries the source text through, so a file RecBole would read differently is refused
here, naming the line; a BOM and CRLF line endings mean nothing to either and are accepted.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
from pandas._libs.parsers import STR_NA_VALUES

from ..errors import DatasetError

RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")
FIELD_LIMIT = csv.field_size_limit()
# What RecBole's pandas reads as a missing value rather than as text.
MISSING = frozenset(STR_NA_VALUES)


@dataclass(frozen=True)
class AtomicFile:
    """One atomic file: its rows as strings (indexed by line number) and its ``name:type`` header."""

    frame: pd.DataFrame
    types: dict[str, str]

    def header(self) -> list[str]:
        return [f"{name}:{kind}" for name, kind in self.types.items()]


def read_atomic(path: Path) -> AtomicFile:
    data = _checked_bytes(path)
    end = data.find(b"\n")
    types = _header(path, data[: len(data) if end == -1 else end].removesuffix(b"\r").decode("utf-8"))  # no copy of the rest
    frame = _parsed(data, types)
    if frame is None:
        frame = _exact(path, data, types)
    for name, kind in types.items():
        _check_cells(path, name, kind, frame[name])
    return AtomicFile(frame, types)


# A column with fewer distinct values than this share of its rows is kept as one str object per
# distinct value: a million users' 30 M ids then take 8 bytes a row instead of ~60.
SHARED_VALUES = 0.5
CHUNK_ROWS = 1_000_000


def _parsed(data: bytes, types: dict[str, str]) -> Optional[pd.DataFrame]:
    """The rows through pandas' C parser, a chunk at a time, or ``None`` where it cannot be trusted
    to read them as llmaug reads them (a blank line, a row with too few or too many fields, a file
    of one column): the exact reader then reads them, and names a bad line. Cells keep their text
    exactly: no quoting, no NA values."""
    names = list(types)
    body = data.find(b"\n") + 1
    if not body or body == len(data) or len(names) < 2:
        return None
    lines = data.count(b"\n", body) + (not data.endswith(b"\n"))
    # Every row holds exactly len(names) - 1 tabs: a short row or a blank line makes the count fall
    # short (the parser would pad them with empty cells); a long row is a ParserError.
    if data.count(b"\t", body) != (len(names) - 1) * lines:
        return None
    canonical: dict[str, str] = {}
    frames = []
    try:
        for chunk in pd.read_csv(io.BytesIO(data), sep="\t", header=None, skiprows=1, names=names, dtype=str, quoting=csv.QUOTE_NONE,
                                 na_filter=False, skip_blank_lines=False, engine="c", encoding="utf-8", index_col=False,
                                 chunksize=CHUNK_ROWS):
            frames.append(pd.DataFrame({name: _shared(chunk[name], canonical) for name in names}))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):
        return None
    if sum(len(f) for f in frames) != lines:
        return None
    frame = pd.concat(frames, ignore_index=True)
    frame.index = pd.RangeIndex(2, 2 + len(frame))  # each row's line in the file: no blank line got this far
    return frame


def _shared(column: pd.Series, canonical: dict[str, str]) -> pd.Series:
    codes, uniques = pd.factorize(column)
    if len(uniques) > SHARED_VALUES * len(column):
        return column
    values = np.array([canonical.setdefault(u, u) for u in uniques], dtype=object)
    return pd.Series(values.take(codes), index=column.index, dtype=object)


def _exact(path: Path, data: bytes, types: dict[str, str]) -> pd.DataFrame:
    """Line by line in Python: slower, but names the line that is wrong."""
    lines = data.decode("utf-8").replace("\r\n", "\n").split("\n")
    rows, numbers = [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line:
            continue  # RecBole's reader skips blank lines as well
        fields = line.split("\t")
        if len(fields) != len(types):
            raise DatasetError(f"{path.name} line {number} has {len(fields)} tab-separated fields but its header names {len(types)}")
        rows.append(fields)
        numbers.append(number)
    return pd.DataFrame(rows, columns=list(types), index=pd.Index(numbers, dtype=int), dtype=str)


def _checked_bytes(path: Path) -> bytes:
    """The file's bytes, BOM removed, once they are known to be NUL-free UTF-8 whose only carriage
    returns end lines."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from None
    line_of = lambda offset: data.count(b"\n", 0, offset) + 1  # noqa: E731
    nul = data.find(b"\0")
    if nul != -1:
        raise DatasetError(f"{path.name} line {line_of(nul)} holds a NUL byte: is it a text file?")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path.name} line {line_of(exc.start)} is not UTF-8 (byte 0x{data[exc.start]:02x}): save the file as UTF-8") from None
    data = data.removeprefix(b"\xef\xbb\xbf")
    if b"\r" in data:
        unix = data.replace(b"\r\n", b"\n")
        stray = unix.find(b"\r")
        if stray != -1:
            line = unix.count(b"\n", 0, stray) + 1
            raise DatasetError(f"{path.name} line {line} holds a carriage return that ends no line; RecBole cannot read it")
    if not data.strip():
        raise DatasetError(f"{path.name} is empty: an atomic file starts with a header line of 'name:type' fields")
    return data


def _header(path: Path, line: str) -> dict[str, str]:
    if not line:
        raise DatasetError(f"{path.name} line 1 is empty: the header of 'name:type' fields must be the first line")
    types: dict[str, str] = {}
    for column in line.split("\t"):
        parts = column.split(":")
        if len(parts) == 1:
            raise DatasetError(f"{path.name} header field '{column}' has no type: write '{column}:token' "
                               f"(RecBole types: {', '.join(RECBOLE_TYPES)})")
        if len(parts) > 2:
            raise DatasetError(f"{path.name} header field '{column}' holds more than one ':' (RecBole splits name and type there)")
        name, kind = parts
        if not name:
            raise DatasetError(f"{path.name} header field '{column}' has no name")
        if kind not in RECBOLE_TYPES:
            raise DatasetError(f"{path.name} header field '{column}': '{kind}' is not a RecBole type ({', '.join(RECBOLE_TYPES)})")
        if name in types:
            raise DatasetError(f"{path.name} header names '{name}' twice")
        types[name] = kind
    return types


def _check_cells(path: Path, name: str, kind: str, column: pd.Series) -> None:
    def refuse(bad: pd.Series, problem: str) -> None:
        if bad.any():
            line = bad.idxmax()
            raise DatasetError(f"{path.name} line {line}: {name}:{kind} {problem.format(value=_show(column[line]))}")

    refuse(column.str.len() > FIELD_LIMIT, f"holds more than {FIELD_LIMIT:,} characters, the most RecBole reads in a field")
    refuse(column.str.startswith('"'), "starts with a double quote, which RecBole's reader takes for CSV quoting")
    if kind == "float":
        refuse(~column.isin(MISSING) & pd.to_numeric(column.where(~column.isin(MISSING)), errors="coerce").isna(), "holds {value}, not a number")
    elif kind == "float_seq":
        refuse(column.map(lambda cell: not _float_seq(cell)), "holds {value}, not space-separated numbers")


def _float_seq(cell: str) -> bool:
    try:
        [float(x) for x in cell.split(" ") if x]
    except ValueError:
        return False
    return True


def _show(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")
