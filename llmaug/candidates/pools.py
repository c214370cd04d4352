"""The candidate pools C_u as the base model ranks them: one int32 row of item codes a user.

A list of item strings per user (and its dict entry) was ~250 B a user at 10 candidates; here a
pool is 40 B. Torch-free, so a run whose pools are cached never imports the ranking.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Iterator

import numpy as np

from ..distinct import factorize
from ..keyed_rows import KeyedRows


class Pools(KeyedRows, Mapping[str, list[str]]):
    """``ranked[k]`` holds the codes into ``items`` of user ``users[k]``'s pool, best first."""

    def __init__(self, users: np.ndarray, items: np.ndarray, ranked: np.ndarray) -> None:
        self._items = np.asarray(items, dtype=object)
        self._ranked = np.asarray(ranked, dtype=np.int32)
        super().__init__(users)

    def __getitem__(self, user: str) -> list[str]:
        return self._items[self._ranked[self._row(user)]].tolist()

    @classmethod
    def from_lists(cls, pools: Mapping[str, list[str]]) -> "Pools":
        """From user -> pool, every pool the same length (as ranking gives them and the cache holds them)."""
        users = np.array(list(pools), dtype=object)
        flat = np.array([item for pool in pools.values() for item in pool], dtype=object)
        codes, items = factorize(flat)
        width = len(flat) // max(len(users), 1)
        return cls(users, items, codes.reshape(len(users), width))

    def slices(self, rows_at_once: int) -> Iterator[list[tuple[str, list[str]]]]:
        """(user, pool) pairs a slice of users at a time, in row order: no lookup by token."""
        for start in range(0, len(self._ranked), rows_at_once):
            users = self._keys()[start : start + rows_at_once]
            yield [(user, self._items[row].tolist()) for user, row in zip(users, self._ranked[start : start + rows_at_once])]

    def write_json(self, out: IO[str], rows_at_once: int = 10_000) -> None:
        """The cache's format, user -> pool, as it was when pools were dicts of lists, written a
        slice of users at a time: as one string it was ~350 MB at 10^6 users, held beside the split."""
        out.write("{")
        for k, part in enumerate(self.slices(rows_at_once)):
            out.write((", " if k else "") + ", ".join(
                f"{json.dumps(user, ensure_ascii=False)}: {json.dumps(pool, ensure_ascii=False)}" for user, pool in part))
        out.write("}")
