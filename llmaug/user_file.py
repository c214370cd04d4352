"""The ``.user`` file written a slice of users at a time, each user's row joined with the profile
the users task wrote for it.

The profiles come in the order the task's answers did, not the file's: joined whole they were
~8 Python strings a user (~0.6 GB at 10^6 users, the run's peak). Here the profile rows are first
sorted by the slice their user falls in, into a scratch file, a chunk of rows at a time; each
slice then reads back its own, so memory grows with a slice, not with the users.
"""

from __future__ import annotations

import csv
import pickle
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import IO, Optional

import numpy as np
import pandas as pd

from .atomic import AtomicRows

USERS_AT_ONCE = 1 << 16


def write_user_file(path: Path, users: pd.DataFrame, uid: str, types: dict[str, str], profiles: Optional[Path] = None,
                    fields: tuple[str, ...] = (), rows_at_once: int = USERS_AT_ONCE) -> None:
    """``users`` as the atomic file ``path`` with ``types``' columns; with ``profiles`` (the users
    task's rows: user, then ``fields``), each user's profile as ``profile_<field>``, empty for a
    user without one."""
    with AtomicRows(path, types, keep_empty=True) as rows, tempfile.TemporaryFile(dir=path.parent) as scratch:
        by_slice = _ProfilesBySlice(profiles, fields, pd.Index(users[uid]), rows_at_once, scratch) if profiles else None
        for k, start in enumerate(range(0, len(users), rows_at_once)):
            part = users.iloc[start : start + rows_at_once].reset_index(drop=True)
            if by_slice is not None:
                part = pd.concat([part, by_slice.frame(k, len(part))], axis=1)
            rows.frame(part)


class _ProfilesBySlice:
    """The profile rows, as pickled pieces in ``scratch`` named by the slice of ``users`` they join."""

    def __init__(self, path: Path, fields: tuple[str, ...], users: pd.Index, rows_at_once: int, scratch: IO[bytes]) -> None:
        self.columns = [f"profile_{f}" for f in fields]
        self.rows_at_once = rows_at_once
        self._scratch = scratch
        self._pieces: dict[int, list[int]] = defaultdict(list)  # slice -> offsets of its pieces
        chunks = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n",
                             chunksize=rows_at_once)
        for chunk in chunks:
            rows = users.get_indexer(chunk.iloc[:, 0])
            known = np.flatnonzero(rows >= 0)  # a profile of a user not in the file's users is not joined
            if not len(known):
                continue
            rows = rows[known]
            order = np.argsort(rows // rows_at_once)
            rows, values = rows[order], chunk.iloc[known[order], 1:].to_numpy(dtype=object)
            slices = rows // rows_at_once
            bounds = np.flatnonzero(np.diff(slices)) + 1
            for piece_rows, piece_values in zip(np.split(rows, bounds), np.split(values, bounds)):
                self._pieces[int(piece_rows[0] // rows_at_once)].append(scratch.tell())
                pickle.dump((piece_rows, piece_values), scratch, protocol=pickle.HIGHEST_PROTOCOL)

    def frame(self, k: int, length: int) -> pd.DataFrame:
        """Slice ``k``'s profile columns, a row for each of its ``length`` users."""
        cells = np.full((length, len(self.columns)), "", dtype=object)
        for offset in self._pieces.pop(k, []):
            self._scratch.seek(offset)
            rows, values = pickle.load(self._scratch)
            cells[rows - k * self.rows_at_once] = values
        return pd.DataFrame(cells, columns=self.columns)
