"""Where a dataset named on the command line is: a directory, or one RecBole ships.

Kept apart from the readers (pandas, numpy) so a wrong name is answered before any of them is
imported: a typo costs a user a fraction of a second, not the second those imports take.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import DatasetError


def recbole_example_dir() -> Path:
    """Where RecBole keeps the datasets it ships (ml-100k): used instead of any download."""
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
