"""What prompts are allowed to see: item text and users' *training* histories, nothing else.

Built from the training split alone, so no validation or test interaction can reach a prompt,
a candidate list or an offline answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd

from .config import Settings
from .dataset import SourceDataset


@dataclass(frozen=True)
class PromptData:
    settings: Settings
    source: SourceDataset
    item_text: dict[str, dict[str, str]]            # item token -> {"title": ..., "year": ..., ...}
    histories: dict[str, list[str]]                 # user token -> training items, oldest first
    demographics: dict[str, dict[str, str]]         # user token -> source user columns used in prompts
    candidates: dict[str, list[str]] = field(default_factory=dict)  # user token -> C_u, best first

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


def _histories(train: pd.DataFrame, source: SourceDataset) -> dict[str, list[str]]:
    users, items = train[source.uid_field].to_numpy(), train[source.iid_field].to_numpy()
    if source.time_field:
        oldest_first = np.argsort(train[source.time_field].to_numpy(), kind="stable")  # no time (NaN) last
        users, items = users[oldest_first], items[oldest_first]
    grouped = pd.Series(items).groupby(users, sort=False).agg(list)
    first_seen = pd.unique(train[source.uid_field])
    return dict(zip(first_seen, grouped.reindex(first_seen)))


def _demographics(source: SourceDataset, settings: Settings) -> dict[str, dict[str, str]]:
    users: Optional[pd.DataFrame] = source.users
    if users is None:
        return {}
    columns = [c for c in settings.fields.user_demographics if c in users.columns]
    records = users[[source.uid_field, *columns]].to_dict("records")
    return {r.pop(source.uid_field): {k: v for k, v in r.items() if v} for r in records}


def build_prompt_data(source: SourceDataset, train: pd.DataFrame, settings: Settings) -> PromptData:
    return PromptData(
        settings=settings,
        source=source,
        item_text=_item_text(source, settings),
        histories=_histories(train, source),
        demographics=_demographics(source, settings),
    )
