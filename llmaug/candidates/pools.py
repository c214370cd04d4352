"""The candidate pools C_u as the base model ranks them: one int32 row of item codes a user.

A list of item strings per user (and its dict entry) was ~250 B a user at 10 candidates; here a
pool is 40 B. Torch-free, so a run whose pools are cached never imports the ranking.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Mapping
from typing import IO, Any, Iterator

import numpy as np

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
    def read_json(cls, source: IO[str], chars_at_once: int = 1 << 20) -> "Pools":
        """The cache's format back (user -> pool, every pool the same length), an entry at a time:
        ``json.loads`` made each pool a list of new strings, ~0.8 GB at 10^6 users until the pools
        were let go, where a pool is 40 bytes here."""
        users: list[str] = []
        codes: dict[str, int] = {}
        ranked = array("i")
        for user, pool in _object_entries(source, chars_at_once):
            users.append(user)
            ranked.extend(codes.setdefault(item, len(codes)) for item in pool)
        width = len(ranked) // max(len(users), 1)
        return cls(np.array(users, dtype=object), np.array(list(codes), dtype=object),
                   np.frombuffer(ranked, np.int32).reshape(len(users), width))

    def slices(self, rows_at_once: int) -> Iterator[list[tuple[str, list[str]]]]:
        """(user, pool) pairs a slice of users at a time, in row order: no lookup by token, so no
        index is made (writing the cache made it beside the split just read back: a 1M run's peak
        went from 1.84 to 1.90 GB there)."""
        for start in range(0, len(self._ranked), rows_at_once):
            users = self._tokens[start : start + rows_at_once].tolist()
            yield [(user, self._items[row].tolist()) for user, row in zip(users, self._ranked[start : start + rows_at_once])]

    def write_json(self, out: IO[str], rows_at_once: int = 10_000) -> None:
        """The cache's format, user -> pool, as it was when pools were dicts of lists, written a
        slice of users at a time: as one string it was ~350 MB at 10^6 users, held beside the split."""
        out.write("{")
        for k, part in enumerate(self.slices(rows_at_once)):
            out.write((", " if k else "") + ", ".join(
                f"{json.dumps(user, ensure_ascii=False)}: {json.dumps(pool, ensure_ascii=False)}" for user, pool in part))
        out.write("}")


def _object_entries(source: IO[str], chars_at_once: int) -> Iterator[tuple[str, Any]]:
    """The key-value pairs of the JSON object ``source`` holds, in order, reading a block of
    characters at a time: an entry cut by a block's end is decoded again once the next is read."""
    decode = json.JSONDecoder().raw_decode
    text, at, first, ended = "", 0, True, False
    while True:
        try:
            cursor = _after(text, at, "{") if first else at
            if first and text[_skipped(text, cursor)] == "}":
                return
            key, cursor = decode(text, _skipped(text, cursor))
            value, cursor = decode(text, _skipped(text, _after(text, cursor, ":")))
            cursor = _skipped(text, cursor)
            if not isinstance(key, str) or text[cursor] not in ",}":
                raise json.JSONDecodeError("expected a key, then ',' or '}' after its value", text, cursor)
        except (IndexError, json.JSONDecodeError):
            if ended:
                raise json.JSONDecodeError("not a whole JSON object", text, at) from None
            block = source.read(chars_at_once)
            text, at, ended = text[at:] + block, 0, not block
            continue
        yield key, value
        first, at = False, cursor + 1
        if text[cursor] == "}":
            return


def _skipped(text: str, at: int) -> int:
    """``at``, past any JSON whitespace."""
    while at < len(text) and text[at] in " \t\n\r":
        at += 1
    return at


def _after(text: str, at: int, mark: str) -> int:
    """Just past ``mark``, the next character after whitespace (IndexError where the text ends first)."""
    at = _skipped(text, at)
    if text[at] != mark:
        raise json.JSONDecodeError(f"expected {mark!r}", text, at)
    return at + 1
