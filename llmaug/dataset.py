"""The source dataset: RecBole atomic files read as text, with their field roles checked.

Tokens stay strings end to end, so every output row is keyed by the dataset's own ids. Of the
interactions only the ids and the time are held (rows keep their line in the file as index): the
output's interaction files are copied from the source file, so every other cell stays as written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pandas as pd

from .config import FieldRoles, Settings
from .errors import DatasetError
from .input.locate import resolve_dataset_dir
from .input.reader import MISSING, AtomicFile, read_atomic

TEXT = ("token", "token_seq")
SHOWN = ("token", "token_seq", "float")  # what a prompt can show as text: not a float_seq vector


@dataclass(frozen=True)
class SourceDataset:
    """A RecBole atomic dataset and the roles its columns play for augmentation."""

    name: str
    directory: Path
    inter: AtomicFile
    item: AtomicFile
    user: Optional[AtomicFile]
    uid_field: str
    iid_field: str
    skipped_rows: dict[str, int] = field(default_factory=dict)  # reason -> rows left out, for the manifest

    @property
    def time_field(self) -> Optional[str]:
        """The interactions' time, which orders a history: the first float field named like one."""
        return time_field(self.inter.types)

    @property
    def items(self) -> pd.DataFrame:
        return self.item.frame

    @property
    def users(self) -> Optional[pd.DataFrame]:
        return self.user.frame if self.user else None

    def split_off(self) -> "SourceDataset":
        """This dataset with its interaction rows let go (their header kept): once the split holds
        every usable row, keeping the source's copy too would double the largest table."""
        return dataclasses.replace(self, inter=dataclasses.replace(self.inter, frame=rows_let_go(self.inter.frame)))


def rows_let_go(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s columns without its rows: a copy (a slice would keep the rows), its categorical
    ids as objects (an empty categorical keeps every distinct id, a million users' through the run)."""
    empty = frame.iloc[:0]
    return empty.astype({name: object for name, dtype in empty.dtypes.items() if isinstance(dtype, pd.CategoricalDtype)}).copy()


def time_field(types: dict[str, str]) -> Optional[str]:
    return next((f for f, kind in types.items() if kind == "float" and "time" in f.lower()), None)


def load_source(name_or_dir: str, settings: Settings) -> SourceDataset:
    directory = resolve_dataset_dir(name_or_dir)
    name = directory.name
    inter_path, item_path, user_path = (directory / f"{name}.{s}" for s in ("inter", "item", "user"))
    if not inter_path.is_file():
        raise DatasetError(f"{directory} has no {inter_path.name} (RecBole names files after their directory)")
    if not item_path.is_file():
        raise DatasetError(f"{directory} has no {item_path.name}: prompts need item text")
    inter = read_atomic(inter_path, lambda types: (_ids(types, inter_path), [f for f in [time_field(types)] if f]), coded=True)
    uid_field, iid_field = _ids(inter.types, inter_path)
    if inter.frame.empty:
        raise DatasetError(f"{inter_path.name} has a header but no interactions")
    item = read_atomic(item_path)
    user = read_atomic(user_path) if user_path.is_file() else None
    _check_key(item, iid_field, item_path, inter_path)
    if item.frame.empty:
        raise DatasetError(f"{item_path.name} has a header but lists no items")
    if user is not None:
        _check_key(user, uid_field, user_path, inter_path)
        _check_ids(user, (uid_field,), user_path)
    _check_ids(inter, (uid_field, iid_field), inter_path)
    _check_ids(item, (iid_field,), item_path)
    _check_roles(settings.fields, item, user, item_path, user_path)
    if settings.split_order == "time" and time_field(inter.types) is None:
        raise DatasetError(f"split_order: time orders each user's interactions by their timestamp, and {inter_path.name} "
                           "has no timestamp column (a float column named like 'timestamp'): use split_order: random")
    item, duplicate_items = _one_row_per_id(item, iid_field, item_path)
    skipped = {"item_duplicate": duplicate_items}
    if user is not None:
        user, skipped["user_duplicate"] = _one_row_per_id(user, uid_field, user_path)
        user = _renumbered(user)
    return SourceDataset(name, directory, inter, _renumbered(item), user, uid_field, iid_field, skipped)


def _ids(types: dict[str, str], path: Path) -> tuple[str, str]:
    """RecBole's convention: the first two token columns of ``.inter`` are the user and item ids."""
    token_fields = [f for f, kind in types.items() if kind == "token"]
    if len(token_fields) < 2:
        header = " ".join(f"{name}:{kind}" for name, kind in types.items())
        raise DatasetError(f"{path.name} needs two token columns, the user id and then the item id; its header is {header}")
    return token_fields[0], token_fields[1]


def _check_key(file: AtomicFile, key: str, path: Path, inter_path: Path) -> None:
    if key not in file.types:
        raise DatasetError(f"{path.name} has no '{key}' column to join with {inter_path.name}")
    if file.types[key] != "token":
        raise DatasetError(f"{path.name} declares {key}:{file.types[key]} but {inter_path.name} has {key}:token; an id is a token in both")


def _check_ids(file: AtomicFile, keys: tuple[str, ...], path: Path) -> None:
    """An id RecBole reads as missing (pandas' NA strings, an empty cell) or as its padding would
    be dropped or merged by RecBole while llmaug keeps it: refused instead."""
    for key in keys:
        column = file.frame[key]
        bad = column.isin(MISSING) | column.eq("[PAD]")
        if bad.any():
            line = bad.idxmax()
            reading = "its padding token" if column[line] == "[PAD]" else "a missing value"
            raise DatasetError(f"{path.name} line {line}: {key} {column[line]!r} cannot be an id, RecBole reads it as {reading}")


def _check_roles(roles: FieldRoles, item: AtomicFile, user: Optional[AtomicFile], item_path: Path, user_path: Path) -> None:
    shown = [("fields.title", roles.title, TEXT), ("fields.year", roles.year, SHOWN), ("fields.genre", roles.genre, TEXT)]
    shown += [("fields.item_text", column, SHOWN) for column in roles.item_text]
    for setting, column, allowed in shown:
        if column is None:
            continue
        if column not in item.types:
            raise DatasetError(f"{setting} = '{column}' is not a column of {item_path.name} ({', '.join(item.types)})")
        if item.types[column] not in allowed:
            raise DatasetError(f"{setting} = '{column}' is a {item.types[column]} column of {item_path.name}; it must be {' or '.join(allowed)}")
    present = [column for column in roles.user_demographics if user is not None and column in user.types]  # used where present
    for column in present:
        if user.types[column] not in SHOWN:
            raise DatasetError(f"fields.user_demographics names '{column}', a {user.types[column]} column of {user_path.name}; "
                               f"it must be {' or '.join(SHOWN)}")


def _one_row_per_id(file: AtomicFile, key: str, path: Path) -> tuple[AtomicFile, int]:
    """A repeated row is skipped and counted; one id with two different rows is the user's call."""
    repeated = file.frame.duplicated(subset=[key])
    distinct = file.frame.drop_duplicates()
    conflicting = distinct.duplicated(subset=[key])
    if conflicting.any():
        token = distinct[key][conflicting].iloc[0]
        first, second = file.frame.index[file.frame[key] == token][:2]
        raise DatasetError(f"{path.name} lists {key} {token!r} twice with different fields (lines {first} and {second}); keep one row per id")
    return dataclasses.replace(file, frame=file.frame[~repeated]), int(repeated.sum())


def _renumbered(file: AtomicFile) -> AtomicFile:
    """Line numbers served the messages above; later steps count item and user rows from 0."""
    return dataclasses.replace(file, frame=file.frame.reset_index(drop=True))
