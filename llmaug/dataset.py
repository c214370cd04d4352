"""The source dataset: RecBole atomic files read as text, with their field roles checked.

Tokens stay strings end to end, so every output row is keyed by the dataset's own ids.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd

from .config import Settings
from .errors import DatasetError


def recbole_example_dir() -> Path:
    """Where RecBole keeps the datasets it ships (ml-100k): used instead of any download."""
    import importlib.util

    spec = importlib.util.find_spec("recbole")
    if spec is None or spec.origin is None:
        raise DatasetError("RecBole is not installed")
    return Path(spec.origin).parent / "dataset_example"


def resolve_dataset_dir(name_or_dir: str) -> Path:
    path = Path(name_or_dir)
    if path.is_dir():
        return path.resolve()
    bundled = recbole_example_dir() / name_or_dir
    if "/" not in name_or_dir and bundled.is_dir():
        return bundled
    raise DatasetError(f"dataset '{name_or_dir}' is neither a directory nor a dataset RecBole ships")


@dataclass(frozen=True)
class AtomicFile:
    """One atomic file: its rows as strings and its ``name:type`` header."""

    frame: pd.DataFrame
    types: dict[str, str]

    def header(self) -> list[str]:
        return [f"{name}:{kind}" for name, kind in self.types.items()]


def read_atomic(path: Path) -> AtomicFile:
    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE, encoding="utf-8")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}".splitlines()[0]) from None
    types: dict[str, str] = {}
    for column in frame.columns:
        name, sep, kind = column.partition(":")
        if not sep or kind not in {"token", "token_seq", "float", "float_seq"}:
            raise DatasetError(f"{path.name}: header field '{column}' is not 'name:type' with a RecBole type")
        types[name] = kind
    frame.columns = list(types)
    return AtomicFile(frame, types)


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

    @property
    def items(self) -> pd.DataFrame:
        return self.item.frame

    @property
    def users(self) -> Optional[pd.DataFrame]:
        return self.user.frame if self.user else None


def load_source(name_or_dir: str, settings: Settings) -> SourceDataset:
    directory = resolve_dataset_dir(name_or_dir)
    name = directory.name
    inter_path, item_path, user_path = (directory / f"{name}.{s}" for s in ("inter", "item", "user"))
    if not inter_path.is_file():
        raise DatasetError(f"{directory} has no {inter_path.name} (RecBole names files after their directory)")
    if not item_path.is_file():
        raise DatasetError(f"{directory} has no {item_path.name}: prompts need item text")
    inter = read_atomic(inter_path)
    token_fields = [f for f, kind in inter.types.items() if kind == "token"]
    if len(token_fields) < 2:
        raise DatasetError(f"{inter_path.name} needs a user and an item token column first")
    uid_field, iid_field = token_fields[:2]
    item = read_atomic(item_path)
    user = read_atomic(user_path) if user_path.is_file() else None
    if iid_field not in item.types:
        raise DatasetError(f"{item_path.name} has no '{iid_field}' column to join with {inter_path.name}")
    if user is not None and uid_field not in user.types:
        raise DatasetError(f"{user_path.name} has no '{uid_field}' column to join with {inter_path.name}")
    roles = settings.fields
    for role, field in (("title", roles.title), ("year", roles.year), ("genre", roles.genre)):
        if field is not None and field not in item.types:
            raise DatasetError(f"fields.{role} = '{field}' is not a column of {item_path.name} ({', '.join(item.types)})")
    for field in roles.item_text:
        if field not in item.types:
            raise DatasetError(f"fields.item_text names '{field}', not a column of {item_path.name}")
    item = AtomicFile(item.frame.drop_duplicates(subset=[iid_field]).reset_index(drop=True), item.types)
    return SourceDataset(name, directory, inter, item, user, uid_field, iid_field)
