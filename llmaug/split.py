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
        two ids, a time and a line number are ~1 GB at 10^6 users), and nothing reads the parts
        meanwhile (they are ``None`` until then). One pickle, so an id several parts hold is
        stored once, and the parts read back share it as they did. A block that raises leaves
        them ``None``."""
        with tempfile.TemporaryFile(dir=directory) as spill:
            pickle.dump((self.train, self.valid, self.test), spill, protocol=pickle.HIGHEST_PROTOCOL)
            self.train = self.valid = self.test = None
            yield
            spill.seek(0)
            self.train, self.valid, self.test = pickle.load(spill)

    def users(self, uid_field: str) -> pd.Index:
        """Every user in the parts, in the order first seen (training, then validation, then test)."""
        return pd.Index(pd.unique(np.concatenate([pd.unique(frame[uid_field]) for frame in self.parts().values()])))

    def let_go(self, column: str) -> None:
        """Drop ``column`` from every part once nothing reads it (30 M times are 0.24 GB)."""
        for frame in self.parts().values():
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
    """
    # On integer codes rather than the rows: each user's rows in order, then each row's rank
    # within its user. The same parts as sorting and grouping the frame, in a few int32 arrays
    # (a million users' 30 M rows: ~120 MB each) instead of copies of the frame.
    users = pd.factorize(inter[uid_field].to_numpy())[0].astype(np.int32)
    if time_field is None:
        order = np.random.default_rng(seed).permutation(len(inter)).astype(np.int32)
    else:  # stable: rows with one timestamp keep the file's order; a row without one goes last
        order = np.argsort(pd.to_numeric(inter[time_field], errors="coerce").to_numpy(dtype=np.float64), kind="stable").astype(np.int32)
    order = order[np.argsort(users[order], kind="stable")]
    counts = np.bincount(users)
    del users
    if method == LEAVE_ONE_OUT:
        held = np.minimum(2, counts - 1)  # a user with one row trains on it; with two, the second is test
        bounds = np.stack([counts - held, counts - held + (held == 2)], axis=1).astype(np.int32)
    else:
        sizes = np.unique(counts)
        bounds = np.array([_part_sizes(int(n), ratios) for n in sizes], dtype=np.int32)[np.searchsorted(sizes, counts)]  # per user
    user_of = np.repeat(np.arange(len(counts), dtype=np.int32), counts)  # order lists user 0's rows, then user 1's, ...
    rank = np.arange(len(order), dtype=np.int32) - np.repeat((np.cumsum(counts) - counts).astype(np.int32), counts)
    part = np.where(rank < bounds[user_of, 0], 0, np.where(rank < bounds[user_of, 1], 1, 2)).astype(np.int8)
    if train_fraction < 1.0:
        keep = np.maximum(1, np.ceil(bounds[:, 0] * train_fraction)).astype(np.int32)
        left_out = rank < (bounds[:, 0] - keep)[user_of] if time_field is not None else rank >= keep[user_of]
        part[(part == 0) & left_out] = -1  # left out of training, and of every part
    del rank, user_of
    rows = lambda k: inter.iloc[np.sort(order[part == k])]  # noqa: E731  (in the source's order)
    return Split(train=rows(0), valid=rows(1), test=rows(2))
