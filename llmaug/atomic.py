"""Writing RecBole atomic files, and committing a finished dataset atomically."""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from .errors import DatasetError
from .input.reader import AtomicFile


def write_atomic_file(path: Path, frame: pd.DataFrame, types: Mapping[str, str]) -> None:
    """Write ``frame`` as a tab-separated atomic file with a ``name:type`` header, via temp + rename.

    RecBole reads atomic files with CSV quoting, so a cell holding '"' (generated text may start
    with one) is quoted the CSV way: RecBole reads back exactly the text written.
    """
    with AtomicRows(path, types, keep_empty=True) as rows:
        rows.frame(frame)


def float_seq(vectors: np.ndarray) -> list[str]:
    """RecBole's ``float_seq`` cell: space-separated numbers, one string per row."""
    vectors = np.asarray(vectors, dtype=np.float32)
    template = " ".join(["%.6g"] * vectors.shape[1])
    return [template % tuple(row) for row in vectors.tolist()]  # one C-level format per row: 2.5x a join


def write_vector_file(path: Path, id_field: str, vector_field: str, ids: Sequence[str], vectors: np.ndarray, chunk: int = 8192) -> None:
    """An atomic file of one token and one ``float_seq`` column."""
    with AtomicRows(path, {id_field: "token", vector_field: "float_seq"}, keep_empty=True) as rows:
        rows.vectors(ids, vectors, chunk)


class AtomicRows:
    """An atomic file written a part at a time, as its rows are produced (a million users' edges or
    vectors need not be held until the end): it appears at ``path`` complete when closed, and not
    at all if the run fails first. Nothing is written before the first rows. Without
    ``keep_empty``, a file that got no row does not appear at all: RecBole cannot load a
    ``float_seq`` file without rows (max() of nothing)."""

    def __init__(self, path: Path, types: Mapping[str, str], keep_empty: bool = False) -> None:
        self.path = Path(path)
        self.types = dict(types)
        self.keep_empty = keep_empty
        self.rows = 0
        self._written: Optional[contextlib.AbstractContextManager] = None
        self._fh: Optional[IO] = None

    def frame(self, frame: pd.DataFrame) -> None:
        if not len(frame):
            return
        frame.to_csv(self._file(), columns=list(self.types), header=False, sep="\t", index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        self.rows += len(frame)

    def vectors(self, ids: Sequence[str], vectors: np.ndarray, chunk: int = 8192) -> None:
        """One token and one ``float_seq`` cell a row, formatted a chunk of rows at a time: a million
        384-d vectors are ~4 GB as Python strings, ~0.1 GB a chunk at a time."""
        if not len(ids):
            return
        fh = self._file()
        for start in range(0, len(ids), chunk):
            cells = float_seq(vectors[start : start + chunk])
            fh.write("".join(f"{_quoted(token)}\t{cell}\n" for token, cell in zip(ids[start : start + chunk], cells)))
        self.rows += len(ids)

    def close(self) -> bool:
        """Put the file in place; whether there is one (not when it got no row and must not be empty)."""
        if not self.rows and not self.keep_empty:
            self.discard()
            return False
        self._file()
        written, self._written = self._written, None
        written.__exit__(None, None, None)
        return True

    def discard(self) -> None:
        if self._written is not None:
            written, self._written = self._written, None
            written.__exit__(RuntimeError, RuntimeError("discarded"), None)

    def _file(self) -> IO:
        if self._fh is None:
            self._written = atomically_written(self.path)
            self._fh = self._written.__enter__()
            # As pandas writes a header under QUOTE_MINIMAL: no "name:type" holds a tab, quote or newline.
            self._fh.write("\t".join(f"{name}:{kind}" for name, kind in self.types.items()) + "\n")
        return self._fh

    def __enter__(self) -> "AtomicRows":
        return self

    def __exit__(self, kind, *exc: object) -> None:
        self.discard() if kind is not None else self.close()


def _quoted(token: str) -> str:
    """As ``csv.QUOTE_MINIMAL`` writes a token cell (no tab or newline can be in one)."""
    return f'"{token.replace(chr(34), chr(34) * 2)}"' if '"' in token else token


_UMASK = os.umask(0)
os.umask(_UMASK)


def write_text_atomically(path: Path, write) -> None:
    with atomically_written(path) as fh:
        write(fh) if callable(write) else fh.write(write)


@contextlib.contextmanager
def atomically_written(path: Path, mode: str = "w") -> Iterator[IO]:
    """A file handle whose file appears at ``path`` complete, with the umask's permissions, or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide the dataset from other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def copy_rows(source: AtomicFile, targets: Mapping[Path, pd.Index]) -> None:
    """Write each target as ``source``'s header and the rows at the given line numbers, copied
    byte for byte (a CRLF line ends in LF): the cells llmaug did not keep are written as the user
    wrote them, and RecBole reads them as it reads the source (``input.reader`` made sure)."""
    if not source.unchanged():
        raise DatasetError(f"{source.path.name} changed during the run; run again once nothing writes to it")
    last = max((int(lines.max()) for lines in targets.values() if len(lines)), default=0)
    parts = np.full(last + 1, -1, dtype=np.int8)
    for number, lines in enumerate(targets.values()):
        parts[np.asarray(lines)] = number
    part_of = parts.tobytes()  # indexing bytes is several times faster than indexing an array, once per line
    header = ("\t".join(source.header()) + "\n").encode("utf-8")
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(atomically_written(path, "wb")) for path in targets]
        for fh in files:
            fh.write(header)
        with open(source.path, "rb") as rows:
            for number, line in enumerate(rows, start=1):
                if number > last:
                    break
                part = part_of[number]
                if part != 255:
                    if line.endswith(b"\r\n"):
                        line = line[:-2] + b"\n"
                    elif not line.endswith(b"\n"):
                        line += b"\n"
                    files[part].write(line)
