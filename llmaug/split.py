"""The one split every step uses: RecBole's per-user ratio split, seeded, on raw rows.

Done here rather than through RecBole's ``Dataset.build`` so rows keep their exact text
(RecBole would hand back float32 timestamps and normalised ratings); the part sizes come from
RecBole's own ``_calcu_split_ids`` so a RecBole user gets the split they know.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PARTS = ("train", "valid", "test")


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame

    def parts(self) -> dict[str, pd.DataFrame]:
        return {"train": self.train, "valid": self.valid, "test": self.test}


def _part_sizes(total: int, ratios: list[float]) -> tuple[int, int]:
    from recbole.data.dataset import Dataset

    normalised = [r / sum(ratios) for r in ratios]
    first, second = Dataset._calcu_split_ids(None, total, normalised)
    return int(first), int(second)


def split_interactions(
    inter: pd.DataFrame, uid_field: str, ratios: list[float], seed: int, train_fraction: float = 1.0
) -> Split:
    """Shuffle each user's rows (seeded) and cut them train/valid/test like RecBole's ``RS`` + ``RO``.

    ``train_fraction`` < 1 then keeps that share (at least one row) of each user's training rows,
    for the sparse regime; validation and test stay as they are.
    """
    rng = np.random.default_rng(seed)
    # On integer codes rather than the rows: each user's rows in a seeded random order, then each
    # row's rank within its user. The same parts as shuffling and grouping the frame, in a few
    # int32 arrays (a million users' 30 M rows: ~120 MB each) instead of copies of the frame.
    users = pd.factorize(inter[uid_field].to_numpy())[0].astype(np.int32)
    order = rng.permutation(len(inter)).astype(np.int32)
    order = order[np.argsort(users[order], kind="stable")]
    counts = np.bincount(users)
    del users
    sizes = np.unique(counts)
    bounds = np.array([_part_sizes(int(n), ratios) for n in sizes], dtype=np.int32)[np.searchsorted(sizes, counts)]  # per user
    user_of = np.repeat(np.arange(len(counts), dtype=np.int32), counts)  # order lists user 0's rows, then user 1's, ...
    rank = np.arange(len(order), dtype=np.int32) - np.repeat((np.cumsum(counts) - counts).astype(np.int32), counts)
    part = np.where(rank < bounds[user_of, 0], 0, np.where(rank < bounds[user_of, 1], 1, 2)).astype(np.int8)
    if train_fraction < 1.0:
        keep = np.maximum(1, np.ceil(bounds[:, 0] * train_fraction)).astype(np.int32)
        part[(part == 0) & (rank >= keep[user_of])] = -1  # left out of training, and of every part
    del rank, user_of
    rows = lambda k: inter.iloc[np.sort(order[part == k])]  # noqa: E731  (in the source's order)
    return Split(train=rows(0), valid=rows(1), test=rows(2))
