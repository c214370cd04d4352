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
    shuffled = inter.iloc[rng.permutation(len(inter))]
    shuffled = shuffled.iloc[np.argsort(shuffled[uid_field].to_numpy(), kind="stable")]
    rank = shuffled.groupby(uid_field, sort=False).cumcount().to_numpy()
    counts = shuffled.groupby(uid_field, sort=False)[uid_field].transform("size").to_numpy()
    bounds = {n: _part_sizes(n, ratios) for n in np.unique(counts)}
    first = np.array([bounds[n][0] for n in counts])
    second = np.array([bounds[n][1] for n in counts])
    part = np.where(rank < first, 0, np.where(rank < second, 1, 2))
    train_mask = part == 0
    if train_fraction < 1.0:
        keep = np.maximum(1, np.ceil(first * train_fraction)).astype(int)
        train_mask &= rank < keep
    restore = lambda frame: frame.sort_index(kind="stable").reset_index(drop=True)  # noqa: E731
    return Split(
        train=restore(shuffled[train_mask]),
        valid=restore(shuffled[part == 1]),
        test=restore(shuffled[part == 2]),
    )
