"""What prompts are allowed to see: item text and users' *training* histories, nothing else.

Built from the training split alone, so no validation or test interaction can reach a prompt,
a candidate list or an offline answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd

from .config import Settings
from .dataset import SourceDataset
from .distinct import GroupedRows, coded
from .keyed_rows import KeyedRows


@dataclass(frozen=True)
class PromptData:
    settings: Settings
    source: SourceDataset
    item_text: dict[str, dict[str, str]]            # item token -> {"title": ..., "year": ..., ...}
    histories: Mapping[str, list[str]]              # user token -> training items, oldest first
    demographics: Mapping[str, dict[str, str]]      # user token -> source user columns used in prompts
    candidates: Mapping[str, list[str]] = field(default_factory=dict)  # user token -> C_u, best first

    def users(self) -> list[str]:
        users = list(self.histories)
        limit = self.settings.limit_users
        return users[:limit] if limit else users

    def items(self) -> list[str]:
        items = list(self.item_text)
        limit = self.settings.limit_items
        return items[:limit] if limit else items


def _item_text(source: SourceDataset, settings: Settings) -> dict[str, dict[str, str]]:
    roles = settings.fields
    columns = {"title": roles.title, "year": roles.year, "genre": roles.genre}
    columns.update({name: name for name in roles.item_text})
    # Each role reads its column: a column may serve two roles, or be the id itself (a title-keyed catalogue).
    items = source.items
    roles_frame = pd.DataFrame({role: items[col] for role, col in columns.items() if col}, index=items.index)
    records = roles_frame.to_dict("records")
    return {item: {k: v for k, v in r.items() if v} for item, r in zip(items[source.iid_field].tolist(), records)}


class Histories(KeyedRows, Mapping[str, list[str]]):
    """Each user's training items, oldest first: codes into one array of item tokens, a user's run
    of them found by offsets. A list per user was ~330 B a user at 24 items; this is ~4 B an item.
    Users come in the order they first appear in the training split."""

    def __init__(self, train: pd.DataFrame, source: SourceDataset) -> None:
        users, items = coded(train[source.uid_field]), coded(train[source.iid_field])
        grouped = GroupedRows(users, train[source.time_field].to_numpy() if source.time_field else None)
        self._ends = np.cumsum(grouped.counts)
        self._items = np.asarray(items.categories, dtype=object)
        self._codes = np.empty(len(train), items.codes.dtype)  # the split's item codes, grouped by user
        written = 0
        for _, _, rows in grouped.slices():
            self._codes[written : written + len(rows)] = items.codes[rows]
            written += len(rows)
        super().__init__(np.asarray(users.categories, dtype=object).take(grouped.first_seen))

    def __getitem__(self, user: str) -> list[str]:
        row = self._row(user)
        start = self._ends[row - 1] if row else 0
        return self._items[self._codes[start : self._ends[row]]].tolist()


class Demographics(KeyedRows, Mapping[str, dict[str, str]]):
    """Each user's stated demographic columns, read from the source's user frame (which the
    written .user file needs anyway) when a prompt asks: a dict per user took a few hundred bytes."""

    def __init__(self, users: pd.DataFrame, uid_field: str, columns: list[str]) -> None:
        self._columns = {column: users[column].to_numpy() for column in columns}
        super().__init__(users[uid_field].to_numpy())

    def __getitem__(self, user: str) -> dict[str, str]:
        row = self._row(user)
        return {column: cells[row] for column, cells in self._columns.items() if cells[row]}


def _demographics(source: SourceDataset, settings: Settings) -> Mapping[str, dict[str, str]]:
    users: Optional[pd.DataFrame] = source.users
    if users is None:
        return {}
    return Demographics(users, source.uid_field, [c for c in settings.fields.user_demographics if c in users.columns])


def build_prompt_data(source: SourceDataset, train: pd.DataFrame, settings: Settings,
                      candidates: Optional[Mapping[str, list[str]]] = None) -> PromptData:
    return PromptData(
        settings=settings,
        source=source,
        item_text=_item_text(source, settings),
        histories=Histories(train, source),
        demographics=_demographics(source, settings),
        candidates={} if candidates is None else candidates,
    )
