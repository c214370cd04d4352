"""One atomic file, read strictly: accepted only where RecBole would read the same rows and fields.

llmaug reads tab-separated UTF-8 with no quoting, so tokens stay exactly as written. RecBole reads
the same text with pandas' python engine, which takes a field that starts with '"' for CSV
quoting, stops at fields longer than Python csv's limit and at a carriage return inside a line.
The output carries the source text through, so a file RecBole would read differently is refused
here, naming the line; a BOM and CRLF line endings mean nothing to either and are accepted.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

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
    lines = _lines(path)
    types = _header(path, lines[0])
    rows, numbers = [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line:
            continue  # RecBole's reader skips blank lines as well
        fields = line.split("\t")
        if len(fields) != len(types):
            raise DatasetError(f"{path.name} line {number} has {len(fields)} tab-separated fields but its header names {len(types)}")
        rows.append(fields)
        numbers.append(number)
    frame = pd.DataFrame(rows, columns=list(types), index=pd.Index(numbers, dtype=int), dtype=str)
    for name, kind in types.items():
        _check_cells(path, name, kind, frame[name])
    return AtomicFile(frame, types)


def _lines(path: Path) -> list[str]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from None
    line_of = lambda offset: data.count(b"\n", 0, offset) + 1  # noqa: E731
    nul = data.find(b"\0")
    if nul != -1:
        raise DatasetError(f"{path.name} line {line_of(nul)} holds a NUL byte: is it a text file?")
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path.name} line {line_of(exc.start)} is not UTF-8 (byte 0x{data[exc.start]:02x}): save the file as UTF-8") from None
    text = text.replace("\r\n", "\n")
    stray = text.find("\r")
    if stray != -1:
        line = text.count("\n", 0, stray) + 1
        raise DatasetError(f"{path.name} line {line} holds a carriage return that ends no line; RecBole cannot read it")
    if not text.strip():
        raise DatasetError(f"{path.name} is empty: an atomic file starts with a header line of 'name:type' fields")
    return text.split("\n")


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
