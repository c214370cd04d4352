"""Distinct ids, and codes into them, for millions of rows in memory that grows with the distinct
ids rather than the rows.

pandas sizes the hash table of ``pd.unique`` and ``pd.factorize`` by the rows it is handed, ~40
bytes a row however few values are distinct: 1.2 GB for the user ids of 30 M interactions, held
beside the rows while it runs. These give pandas' results, in its order (first appearance).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import hashlib

ROWS_AT_ONCE = 1 << 20  # pd.unique's table for a slice of rows: ~40 MB
FIRST_TABLE = 1 << 16   # factorize's table to start with: it grows as distinct values come


def distinct(values: np.ndarray | pd.Series | pd.Categorical) -> np.ndarray:
    """``pd.unique(values)`` as an array (a categorical's values, not its categories), a slice of
    rows at a time: the distinct values of each slice in order, then those of their concatenation;
    a categorical's codes a slice at a time, hashing only codes not seen before."""
    categorical = _categorical(values)
    if categorical is not None and len(categorical) and categorical.codes.min() >= 0:  # a missing value (-1) as pandas has it
        return np.asarray(categorical.categories).take(_first_seen(categorical.codes, len(categorical.categories)))
    if categorical is not None:
        return np.asarray(pd.unique(categorical))
    values = np.asarray(values)
    if len(values) <= ROWS_AT_ONCE:
        return pd.unique(values)
    return pd.unique(np.concatenate([pd.unique(values[start : start + ROWS_AT_ONCE]) for start in range(0, len(values), ROWS_AT_ONCE)]))


def factorize(values: np.ndarray | pd.Series | pd.Categorical) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(values)``: int64 codes, and the distinct values they index (a categorical's
    values, in order of first appearance, as for the same values as objects)."""
    categorical = _categorical(values)
    if categorical is not None:
        codes, first = factorize(categorical.codes)
        return codes, np.asarray(categorical.categories).take(first)
    values = np.asarray(values)
    return pd.factorize(values, size_hint=min(len(values), FIRST_TABLE) or 1)


def digest_rows(digest: "hashlib._Hash", column: pd.Series, rows_at_once: int = ROWS_AT_ONCE) -> None:
    """``digest.update(pd.util.hash_pandas_object(column, index=False).values.tobytes())``: the same
    bytes, a slice of rows at a time. At once they were a uint64 a row, and a copy of it: the
    training split's two id columns of the 3M-user run, 1.7 GB for a moment, its peak. A
    categorical's categories are hashed once, and each row's hash taken by its code."""
    categorical = _categorical(column)
    if categorical is None:
        for start in range(0, len(column), rows_at_once):
            digest.update(pd.util.hash_pandas_object(column.iloc[start : start + rows_at_once], index=False).to_numpy())
        return
    hashed = pd.util.hash_array(np.asarray(categorical.categories), categorize=False)  # as pandas hashes a categorical: by its values
    missing = np.iinfo(np.uint64).max
    for start in range(0, len(categorical), rows_at_once):
        codes = categorical.codes[start : start + rows_at_once]
        rows = hashed.take(codes) if len(hashed) else np.full(len(codes), missing, np.uint64)
        rows[codes < 0] = missing
        digest.update(rows)


def as_categorical(values: np.ndarray) -> pd.Categorical:
    """``values`` as codes into their distinct values, in order of first appearance: at most 4 bytes
    a row (pandas takes the narrowest integer that indexes them all) where an object column takes 8
    for its pointer, and pickled as one array of numbers."""
    codes, uniques = factorize(values)
    return pd.Categorical.from_codes(codes.astype(np.int32), dtype=pd.CategoricalDtype(uniques))


def column_values(column: pd.Series) -> np.ndarray | pd.Categorical:
    """A column's values: a categorical as it is (codes and ids, never its values as text), any
    other column as its array."""
    return column.array if isinstance(column.dtype, pd.CategoricalDtype) else column.to_numpy()


def coded(column: pd.Series) -> pd.Categorical:
    """A column as a categorical: the reader's and the split's ids as they are, any other coded here."""
    values = column_values(column)
    return values if isinstance(values, pd.Categorical) else as_categorical(np.asarray(values))


def _categorical(values: np.ndarray | pd.Series | pd.Categorical) -> pd.Categorical | None:
    array = values.array if isinstance(values, pd.Series) else values
    return array if isinstance(array, pd.Categorical) else None


class GroupedRows:
    """Rows grouped by their id's code, ids in order of first appearance, each id's rows in order
    of ``key`` (stable: ties, and every row without a key, in file order; NaN last), handed out
    a slice of ids at a time. Sorting all rows at once (a stable argsort of the codes, through
    an order of the key) held five arrays the size of the rows, +0.54 GB at 10^6 users in the
    prompt data; a slice's work is ~32 bytes a row of the slice beside the caller's columns."""

    ROWS_AT_ONCE = 1 << 20

    def __init__(self, ids: pd.Categorical, key: np.ndarray | None = None) -> None:
        self._codes, self._key = ids.codes, key
        self.first_seen = _first_seen(self._codes, len(ids.categories))
        self.counts = _counted(self._codes, len(ids.categories), self.ROWS_AT_ONCE)[self.first_seen]
        self._rank = np.zeros(len(ids.categories), np.int32)
        self._rank[self.first_seen] = np.arange(len(self.first_seen), dtype=np.int32)

    def slices(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(low, high, rows)``: the ids ``first_seen[low:high]`` and their rows' positions, grouped."""
        ends = np.cumsum(self.counts)
        low = 0
        while low < len(ends):
            before = ends[low - 1] if low else 0
            high = max(low + 1, int(np.searchsorted(ends, before + self.ROWS_AT_ONCE, side="right")))
            in_slice = np.zeros(len(self._rank), bool)
            in_slice[self.first_seen[low:high]] = True
            rows = np.flatnonzero(in_slice[self._codes])  # in file order
            if self._key is not None:
                rows = rows[np.argsort(self._key[rows], kind="stable")]
            yield low, high, rows[np.argsort(self._rank[self._codes[rows]], kind="stable")]
            low = high


def _counted(codes: np.ndarray, categories: int, rows_at_once: int) -> np.ndarray:
    """``np.bincount(codes)`` a slice of rows at a time: it casts its input to int64, a copy of
    8 bytes a row (0.19 GB for 10^6 users' training rows, on top of the prompt data's peak)."""
    counts = np.zeros(categories, np.int64)
    for start in range(0, len(codes), rows_at_once):
        counts += np.bincount(codes[start : start + rows_at_once], minlength=categories)
    return counts


def _first_seen(codes: np.ndarray, categories: int, rows_at_once: int = 1 << 16) -> np.ndarray:
    """The distinct ``codes`` in order of first appearance, a slice of rows at a time, each slice
    hashing only the codes no earlier slice had (``pd.unique`` sizes its table by the rows it is
    handed, ~40 bytes a row)."""
    seen = np.zeros(categories, bool)
    found = []
    for start in range(0, len(codes), rows_at_once):
        part = codes[start : start + rows_at_once]
        new = pd.unique(part[~seen[part]])
        seen[new] = True
        found.append(new)
    return np.concatenate(found) if found else np.zeros(0, codes.dtype)
