"""Which interactions a run can use, and whether the base recommender can rank candidates from them.

Rows llmaug can leave out without changing what the rest mean are skipped and counted; a dataset
left with nothing to learn from is a ``DatasetError``, raised before anything is written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

from ..dataset import SourceDataset, rows_let_go
from ..distinct import distinct
from ..errors import ConfigError, DatasetError


@dataclass(frozen=True)
class Usable:
    """The interactions every later step uses, and what was left out on the way (for the manifest)."""

    inter: pd.DataFrame
    skipped_rows: dict[str, int]
    users_with_every_item: int
    users_without_user_row: int

    def warnings(self, source: SourceDataset) -> list[str]:
        name, skipped = source.name, self.skipped_rows
        lines = [
            (skipped["item_duplicate"], f"skipped {skipped['item_duplicate']:,} repeated rows of {name}.item"),
            (skipped.get("user_duplicate", 0), f"skipped {skipped.get('user_duplicate', 0):,} repeated rows of {name}.user"),
            (skipped["inter_unknown_item"], f"skipped {skipped['inter_unknown_item']:,} interactions whose item {name}.item does not list"),
            (self.users_with_every_item, f"users who have interacted with every item: {self.users_with_every_item:,}; their "
                                         f"{skipped['inter_user_with_every_item']:,} interactions are skipped (RecBole cannot sample a negative item for them)"),
            (self.users_without_user_row, f"users of {name}.inter with no row in {name}.user: {self.users_without_user_row:,}; "
                                          "their source columns stay empty"),
        ]
        return [f"llmaug: warning: {text}" for count, text in lines if count]

    def split_off(self) -> "Usable":
        """The counts without the rows, once the split holds them (see ``SourceDataset.split_off``)."""
        return dataclasses.replace(self, inter=rows_let_go(self.inter))

    def manifest(self) -> dict[str, object]:
        return {"skipped_rows": self.skipped_rows, "users_with_every_item": self.users_with_every_item,
                "users_without_user_row": self.users_without_user_row}


def usable_interactions(source: SourceDataset) -> Usable:
    """Skip interactions with an item ``.item`` does not list (an LLM cannot be shown it) and those
    of users who have interacted with every item (RecBole refuses to train on them)."""
    name, uid, iid = source.name, source.uid_field, source.iid_field
    inter = source.inter.frame
    catalogue = source.items[iid]
    known = inter[iid].isin(catalogue)
    if not known.any():
        raise DatasetError(f"none of the {len(inter):,} interactions in {name}.inter names an item {name}.item lists "
                           f"(e.g. {inter[iid].iloc[0]!r}); do both files use the same item ids?")
    unknown = int((~known).sum())
    after = f" (after skipping {unknown:,} interactions whose item {name}.item does not list)" if unknown else ""
    full = known & inter[uid].isin(users_with_every_item(_rows(inter, known), uid, iid, len(catalogue)))
    kept = _rows(inter, known & ~full)  # each row keeps its line in the file as index: the writer copies it from there
    if kept.empty:
        raise DatasetError(f"every user in {name}.inter has interacted with every item {name}.item lists ({len(catalogue):,}){after}; "
                           "RecBole cannot sample a negative item for them")
    users = distinct(kept[uid])
    if len(users) < 2:
        raise DatasetError(f"{name}.inter has usable interactions of one user only ({users[0]!r}){after}; "
                           "a recommender dataset needs at least two users")
    skipped = {**source.skipped_rows, "inter_unknown_item": unknown, "inter_user_with_every_item": int(full.sum())}
    without_row = 0 if source.users is None else int((~pd.Series(users).isin(source.users[uid])).sum())
    return Usable(kept, skipped, int(inter.loc[full, uid].nunique()), without_row)


def _rows(inter: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    """The rows ``mask`` keeps; where it keeps all, the frame itself (a copy of 30 M rows is ~1 GB)."""
    return inter if mask.all() else inter[mask]


def check_rankable(train: pd.DataFrame, source: SourceDataset, size: int) -> None:
    """The base recommender, trained on the training split alone, ranks the items that split holds:
    it needs ``size`` of them, and an item each user has not seen to sample as a negative."""
    uid, iid = source.uid_field, source.iid_field
    items = len(distinct(train[iid]))
    if items < size:
        raise ConfigError(f"candidates = {size} but the training split holds only {items} items; lower --candidates")
    everything = users_with_every_item(train, uid, iid, items)
    if len(everything):
        user = everything[0]
        raise DatasetError(f"user {user!r} has interacted, in the training split, with every item anyone has ({items}), so the "
                           f"base recommender cannot sample a negative item for them: {source.name} is too small or too dense "
                           "for candidates (--tasks users,items needs none)")


def users_with_every_item(inter: pd.DataFrame, uid: str, iid: str, items: int) -> pd.Index:
    """Only users with at least ``items`` rows can have seen every item: their distinct items are
    counted, not everyone's (a grouping of 30 M string pairs takes gigabytes)."""
    rows = inter[uid].value_counts(sort=False)
    many = inter[inter[uid].isin(rows.index[rows >= items])]
    seen = many.groupby(uid, observed=True)[iid].nunique()  # the users there are: a categorical id lists every one
    return seen.index[seen == items]
