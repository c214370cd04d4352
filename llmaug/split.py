"""The one split every step uses: RecBole's per-user split, on raw rows.

Two methods, as RecBole's ``eval_args.split``: ``ratio`` (``RS``, the part sizes from RecBole's own
``_calcu_split_ids``) and ``leave_one_out`` (``LS: valid_and_test``: each user's last interaction is
test, the one before it validation, as RecBole's ``_split_index_by_leave_one_out`` decides for users
with fewer than three). Two orders, as ``eval_args.order``: ``random`` (``RO``, seeded) and ``time``
(``TO``, by the timestamp column), the order sequential recommenders are evaluated in: what is held
out comes after everything a prompt or the base model sees.

Done here rather than through RecBole's ``Dataset.build`` so rows keep their exact text
(RecBole would hand back float32 timestamps and normalised ratings).
"""

from __future__ import annotations

import pickle
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import pandas as pd

from .distinct import GroupedRows, as_categorical, coded, column_values, distinct

PARTS = ("train", "valid", "test")
RATIO, LEAVE_ONE_OUT = "ratio", "leave_one_out"


@dataclass
class Split:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame

    def parts(self) -> dict[str, pd.DataFrame]:
        return {"train": self.train, "valid": self.valid, "test": self.test}

    @contextmanager
    def set_aside(self, directory: Path) -> Iterator[None]:
        """The parts in an unlinked file in ``directory`` for the block's length, read back as they
        were when it ends: the base model's training and the tasks need the memory (30 M rows of
        two id codes, a time and a line number are ~0.6 GB at 10^6 users), and nothing reads the
        parts meanwhile (they are ``None`` until then). One pickle, so the distinct ids the parts'
        codes index are stored once, and read back shared as they were. A block that raises
        leaves them ``None``."""
        with tempfile.TemporaryFile(dir=directory) as spill:
            pickle.dump((self.train, self.valid, self.test), spill, protocol=pickle.HIGHEST_PROTOCOL)
            self.train = self.valid = self.test = None
            yield
            spill.seek(0)
            self.train, self.valid, self.test = pickle.load(spill)

    def users(self, uid_field: str) -> pd.Index:
        """Every user in the parts, in the order first seen (training, then validation, then test)."""
        return pd.Index(distinct(np.concatenate([distinct(frame[uid_field]) for frame in self.parts().values()])))

    def let_go(self, *columns: str) -> None:
        """Drop ``columns`` from every part once nothing reads them (30 M id codes are 0.12 GB, times
        0.24 GB); the rows' line numbers stay, which is all the parts' own files are copied by."""
        for frame in self.parts().values():
            for column in columns:
                if column in frame.columns:
                    del frame[column]


def _part_sizes(total: int, ratios: list[float]) -> tuple[int, int]:
    from recbole.data.dataset import Dataset

    normalised = [r / sum(ratios) for r in ratios]
    first, second = Dataset._calcu_split_ids(None, total, normalised)
    return int(first), int(second)


def split_interactions(
    inter: pd.DataFrame, uid_field: str, ratios: list[float], seed: int, train_fraction: float = 1.0,
    method: str = RATIO, time_field: Optional[str] = None,
) -> Split:
    """Order each user's rows (seeded shuffle, or by ``time_field`` oldest first) and cut them
    train/valid/test by ``ratios`` or leave-one-out.

    ``train_fraction`` < 1 then keeps that share (at least one row) of each user's training rows,
    for the sparse regime; validation and test stay as they are. In time order the share kept is
    the most recent, so a user's sequence runs on into what is held out.

    The parts' columns are taken out of ``inter``, which is left with its index alone: at 10^6
    users the usable rows and the parts are 0.7 and 0.6 GB, and need not be held whole at once.
    """
    # On integer codes rather than the rows: each user's rows in order, then which part each of
    # them falls in, a slice of users at a time (``GroupedRows``). The same parts as sorting and
    # grouping the frame, with at most ~16 bytes a row of work arrays beside the rows, 8 of them
    # the seeded permutation's for a moment (a million users' 30 M rows: +0.52 GB measured;
    # sorting all rows at once took ~24 bytes a row).
    users = coded(inter[uid_field])
    if time_field is None:  # each row's place in one seeded shuffle of all rows
        key = _places(np.random.default_rng(seed).permutation(len(inter)))
    else:  # stable: rows with one timestamp keep the file's order; a row without one goes last
        key = pd.to_numeric(inter[time_field], errors="coerce").to_numpy(dtype=np.float64)
    grouped = GroupedRows(users, key)
    del users, key
    counts = grouped.counts
    if method == LEAVE_ONE_OUT:
        held = np.minimum(2, counts - 1)  # a user with one row trains on it; with two, the second is test
        bounds = np.stack([counts - held, counts - held + (held == 2)], axis=1)
    else:
        sizes = np.unique(counts)
        bounds = np.array([_part_sizes(int(n), ratios) for n in sizes])[np.searchsorted(sizes, counts)]  # per user
    train, valid = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
    # Each user's run cut in four: two pieces of training (the part kept, the part left out of every
    # part for the sparse regime), validation, test; one int8 per row.
    kept = np.maximum(1, np.ceil(train * train_fraction)).astype(np.int64) if train_fraction < 1.0 else train  # every user trains on one
    left_out = train - kept
    pieces = [(-1, left_out), (0, kept)] if time_field is not None else [(0, kept), (-1, left_out)]  # in time order the latest are kept
    pieces += [(1, valid), (2, counts - train - valid)]
    values = np.array([value for value, _ in pieces], dtype=np.int8)
    lengths = np.stack([length for _, length in pieces], axis=1)  # per user, per piece
    taken: list[list[np.ndarray]] = [[] for _ in PARTS]
    for low, high, rows in grouped.slices():
        part = np.repeat(np.tile(values, high - low), lengths[low:high].ravel())
        for k, positions in enumerate(taken):
            positions.append(rows[part == k].astype(np.int32))
    del grouped, lengths, bounds, train, valid, kept, left_out, pieces
    positions = [_joined_in_order(part) for part in taken]  # each part in the source's order
    return Split(*_taken(inter, positions))


def _places(permutation: np.ndarray, rows_at_once: int = 1 << 20) -> np.ndarray:
    """Each row's place in ``permutation``, as int32 (4 bytes a row beside the permutation's 8)."""
    places = np.empty(len(permutation), np.int32)
    for start in range(0, len(permutation), rows_at_once):
        at = permutation[start : start + rows_at_once]
        places[at] = np.arange(start, start + len(at), dtype=np.int32)
    return places


def _joined_in_order(pieces: list[np.ndarray]) -> np.ndarray:
    """The pieces as one sorted array, each let go once copied."""
    joined = np.concatenate(pieces) if pieces else np.zeros(0, np.int32)
    pieces.clear()
    joined.sort()
    return joined


def _taken(inter: pd.DataFrame, positions: list[np.ndarray]) -> list[pd.DataFrame]:
    """The rows at each part's ``positions``, indexed by their line in the file (int32 where lines
    fit), a column at a time, each taken out of ``inter`` once copied: pandas gives a column's
    memory back once every column of its block is out, so the parts and all usable rows (0.6 and
    0.7 GB at 10^6 users) are never held whole at once. The ids are categoricals (the reader's,
    or made here from text) whose codes (at most 4 bytes) index one array of distinct ids, shared
    by the parts. Each part's columns are blocks of their own (no copy to consolidate them), so
    ``Split.let_go`` frees a column at once."""
    columns: list[dict[str, np.ndarray | pd.Categorical]] = [{} for _ in positions]
    for name in list(inter.columns):
        values = column_values(inter.pop(name))  # the reader's ids: codes as they are
        if values.dtype == object:
            values = as_categorical(values)
        for part, at in zip(columns, positions):
            part[name] = values.take(at)
        del values
    # The line numbers last, once the rows are gone: beside every column they added to the peak.
    indexes = [pd.Index(_lines_at(inter.index, at)) for at in positions]
    return [pd.DataFrame(part, index=index, copy=False) for part, index in zip(columns, indexes)]


def _lines_at(lines: pd.Index, at: np.ndarray, rows_at_once: int = 1 << 20) -> np.ndarray:
    """``lines[at]`` as int32 where every line fits, without the int64 copy ``Index.take`` makes
    (0.19 GB for 10^6 users' training rows); a range (the reader's lines, where no row was left
    out) is not read at all."""
    dtype = np.int32 if len(lines) == 0 or lines.max() < 2**31 else np.int64
    if isinstance(lines, pd.RangeIndex):
        taken = at.astype(dtype)
        taken *= lines.step
        taken += lines.start
        return taken
    values, taken = lines.to_numpy(), np.empty(len(at), dtype)
    for start in range(0, len(at), rows_at_once):
        taken[start : start + rows_at_once] = values[at[start : start + rows_at_once]]
    return taken
