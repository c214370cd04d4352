"""One atomic file, read strictly: accepted only where RecBole would read the same rows and fields.

llmaug reads tab-separated UTF-8 with no quoting, so tokens stay exactly as written. RecBole reads
the same text with pandas' python engine, which takes a field that starts with '"' for CSV
quoting, stops at fields longer than Python csv's limit and at a carriage return inside a line.
The output carries the source text through, so a file RecBole would read differently is refused
here, naming the line; a BOM and CRLF line endings mean nothing to either and are accepted.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Iterable, Iterator, Optional

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
    """One atomic file: the kept columns of its rows (indexed by line number), its ``name:type``
    header, and the file's path and (size, mtime) when read, so that rows can be copied from it
    later exactly as written."""

    frame: pd.DataFrame
    types: dict[str, str]
    path: Path
    stamp: tuple[int, int]

    def header(self) -> list[str]:
        return [f"{name}:{kind}" for name, kind in self.types.items()]

    def unchanged(self) -> bool:
        """Whether the file is still as it was read (same size and modification time)."""
        return _stamp(self.path) == self.stamp


# Given the header, which columns to keep as text and which as numbers.
Keep = Callable[[dict[str, str]], tuple[Collection[str], Collection[str]]]


def read_atomic(path: Path, keep: Keep = lambda types: (types, ()), coded: bool = False) -> AtomicFile:
    """Every cell is checked; the frame keeps the text of the columns ``keep`` names first (all by
    default) and those it names second as float64 (a missing value is NaN). A large interaction
    file then holds its ids and times, not 30 M distinct timestamp strings; its other cells are
    copied from the file when written (``atomic.copy_rows``). ``coded`` keeps the text columns
    (ids) as categoricals, codes into their distinct values in order of first appearance: 4 bytes
    a row where a pointer to a shared string is 8 (0.24 GB for a million users' 30 M interactions)."""
    stamp = _stamp(path)
    blocks = _blocks(path)
    head = next(blocks)  # the header and the first rows
    if not head.data.strip() and not any(block.data.strip() for block in blocks):
        raise _empty(path)
    end = head.data.find(b"\n")
    types = _header(path, head.data[: len(head.data) if end == -1 else end].removesuffix(b"\r").decode("utf-8"))  # no copy of the rest
    text, numbers = keep(types)
    wanted = _Kept(path, types, [n for n in types if n in text], [n for n in types if n in numbers], coded)
    seen = _Seen()
    chunks = _parsed(itertools.chain([head], blocks), types, wanted, seen)
    del head
    blocks.close()  # where the parser gave up before the end: the exact reader reads the file again
    if chunks is None:
        seen = _Seen()
        chunks = [wanted(_exact(path, _checked_bytes(path), types), seen)]
    frame = _joined(chunks, seen.categories())
    if _stamp(path) != stamp:
        raise DatasetError(f"{path.name} changed while it was read; run again once nothing writes to it")
    return AtomicFile(frame, types, Path(path), stamp)


def _joined(chunks: list[pd.DataFrame], categories: dict[str, np.ndarray]) -> pd.DataFrame:
    """The chunks as one frame, each column a pandas block of its own: the split takes the columns
    out one by one, and a column's memory goes back only once its block's other columns are out
    too. (Chunks whose columns were blocks of their own, let go as each column was joined, made
    the 1M split's peak 0.26 GB higher, not lower: measured, and left as it is.) A coded column's
    chunks hold codes into ``categories``, which every chunk added to."""
    index = chunks[0].index.append([chunk.index for chunk in chunks[1:]])  # consecutive ranges stay a range
    columns: dict[str, np.ndarray | pd.Categorical] = {}
    for name in list(chunks[0].columns):
        values = pd.concat([chunk.pop(name) for chunk in chunks], ignore_index=True).to_numpy()
        columns[name] = pd.Categorical.from_codes(values, dtype=pd.CategoricalDtype(categories[name])) if name in categories else values
    return pd.DataFrame(columns, index=index, copy=False)


def _stamp(path: Path) -> tuple[int, int]:
    try:
        status = os.stat(path)
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from None
    return status.st_size, status.st_mtime_ns


@dataclass(frozen=True)
class _Kept:
    """Checks a block of rows and keeps the wanted columns of it."""

    path: Path
    types: dict[str, str]
    text: list[str]
    numbers: list[str]
    coded: bool = False

    def __call__(self, rows: pd.DataFrame, seen: "_Seen") -> pd.DataFrame:
        for name, kind in self.types.items():
            _check_cells(self.path, name, kind, rows[name])
        kept = {name: seen.coded(name, rows[name]) if self.coded else seen.shared(rows[name]) for name in self.text}
        kept.update({name: _number(rows[name]) for name in self.numbers})
        return pd.DataFrame(kept, index=rows.index)


class _Seen:
    """What the chunks read so far hold: one str object per repeated text (shared by every
    column), and each coded column's distinct values, numbered as they came."""

    def __init__(self) -> None:
        self._strings: dict[str, str] = {}
        self._codes: dict[str, dict[str, int]] = {}

    def shared(self, column: pd.Series) -> pd.Series:
        """``column``, its repeated values one str object each, where that saves memory: a column
        with fewer distinct values than ``SHARED_VALUES`` of its rows (a million users' 30 M ids
        then take 8 bytes a row instead of ~60)."""
        codes, uniques = pd.factorize(column)
        if len(uniques) > SHARED_VALUES * len(column):
            return column
        values = np.array([self._strings.setdefault(u, u) for u in uniques], dtype=object)
        return pd.Series(values.take(codes), index=column.index, dtype=object)

    def coded(self, name: str, column: pd.Series) -> np.ndarray:
        """``column``'s codes into the distinct values of ``name`` read so far."""
        codes, uniques = pd.factorize(column)
        numbers = self._codes.setdefault(name, {})
        return np.array([numbers.setdefault(u, len(numbers)) for u in uniques], dtype=np.int32).take(codes)

    def categories(self) -> dict[str, np.ndarray]:
        return {name: np.array(list(numbers), dtype=object) for name, numbers in self._codes.items()}


def _number(column: pd.Series) -> pd.Series:
    return pd.to_numeric(column.where(~column.isin(MISSING)), errors="coerce").astype("float64")


SHARED_VALUES = 0.5
CHUNK_ROWS = 250_000  # each chunk's cells are all strings while they are checked


def _parsed(blocks: Iterable[_Block], types: dict[str, str], kept: _Kept, seen: _Seen) -> Optional[list[pd.DataFrame]]:
    """The rows through pandas' C parser, a block of the file and a chunk of rows at a time, or
    ``None`` where it cannot be trusted to read them as llmaug reads them (a blank line, a row with
    too few or too many fields, a file of one column): the exact reader then reads them, and names a
    bad line. Cells keep their text exactly: no quoting, no NA values."""
    names = list(types)
    if len(names) < 2:
        return None
    frames: list[pd.DataFrame] = []
    for block in blocks:
        header = block.first_line == 1
        body = block.data.find(b"\n") + 1 if header else 0
        if header and not body:
            return None  # the header alone, without its newline
        lines = block.data.count(b"\n", body) + (not block.data.endswith(b"\n"))
        if not lines:
            continue  # the header alone: the rows are in the next block
        # Every row holds exactly len(names) - 1 tabs: a short row or a blank line makes the count fall
        # short (the parser would pad them with empty cells); a long row is a ParserError.
        if block.data.count(b"\t", body) != (len(names) - 1) * lines:
            return None
        first_line = line = block.first_line + header
        try:
            for chunk in pd.read_csv(io.BytesIO(block.data), sep="\t", header=None, skiprows=int(header), names=names, dtype=str,
                                     quoting=csv.QUOTE_NONE, na_filter=False, skip_blank_lines=False, engine="c", encoding="utf-8",
                                     index_col=False, chunksize=CHUNK_ROWS):
                chunk.index = pd.RangeIndex(line, line + len(chunk))  # each row's line in the file: no blank line got this far
                line += len(chunk)
                frames.append(kept(chunk, seen))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):
            return None
        if line - first_line != lines:
            return None
    return frames or None  # no rows: the exact reader gives the header's empty frame


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


# A file is read, checked and parsed this many bytes at a time (cut after a line's end), so that its
# rows and all its bytes are never held together: the bytes of 30 M interactions are ~0.75 GB.
BLOCK_BYTES = 1 << 26
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class _Block:
    """Whole lines of a file (the last may lack its newline), and the number of the first."""

    first_line: int
    data: bytes


def _blocks(path: Path) -> Iterator[_Block]:
    """The file as blocks of about ``BLOCK_BYTES``, each checked as ``_checked_bytes`` checks the
    whole file, the first without its BOM."""
    try:
        file = open(path, "rb")
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from None
    with file:
        line, rest = 1, b""
        while True:
            try:
                piece = file.read(BLOCK_BYTES)
            except OSError as exc:
                raise DatasetError(f"cannot read {path}: {exc.strerror}") from None
            data = rest + piece
            end = data.rfind(b"\n") + 1 if piece else len(data)  # at the end of the file, its last line
            if not end and piece:
                rest = data  # a line longer than a block: read on
                continue
            data, rest = data[:end], data[end:]
            data = _checked(path, data, line)
            if line == 1:
                data = data.removeprefix(BOM)
            if line == 1 or data:
                yield _Block(line, data)
            if not piece:
                return
            line += data.count(b"\n")


def _checked_bytes(path: Path) -> bytes:
    """The whole file's bytes, BOM removed, once they are known to be NUL-free UTF-8 whose only
    carriage returns end lines (the exact reader's input)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from None
    data = _checked(path, data, 1).removeprefix(BOM)
    if not data.strip():
        raise _empty(path)
    return data


def _empty(path: Path) -> DatasetError:
    return DatasetError(f"{path.name} is empty: an atomic file starts with a header line of 'name:type' fields")


def _checked(path: Path, data: bytes, first_line: int) -> bytes:
    """``data`` (lines of ``path`` from ``first_line`` on), once it is NUL-free UTF-8 whose only
    carriage returns end lines."""
    line_of = lambda offset, text=data: first_line + text.count(b"\n", 0, offset)  # noqa: E731
    nul = data.find(b"\0")
    if nul != -1:
        raise DatasetError(f"{path.name} line {line_of(nul)} holds a NUL byte: is it a text file?")
    bad = _utf8_error(data)
    if bad is not None:
        raise DatasetError(f"{path.name} line {line_of(bad)} is not UTF-8 (byte 0x{data[bad]:02x}): save the file as UTF-8")
    if b"\r" in data:
        unix = data.replace(b"\r\n", b"\n")
        stray = unix.find(b"\r")
        if stray != -1:
            raise DatasetError(f"{path.name} line {line_of(stray, unix)} holds a carriage return that ends no line; RecBole cannot read it")
    return data


def _utf8_error(data: bytes, step: int = 1 << 24) -> Optional[int]:
    """Where ``data`` stops being UTF-8, checked 16 MB at a time: decoding a 1 GB file whole would
    hold a second copy of it as text."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(data), step):
            decoder.decode(view[start : start + step], final=start + step >= len(data))
    except UnicodeDecodeError:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:  # the exact offset, from the one slow decode of a bad file
            return exc.start
    return None


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
