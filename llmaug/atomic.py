"""Writing RecBole atomic files, and committing a finished dataset atomically."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd


def write_atomic_file(path: Path, frame: pd.DataFrame, types: Mapping[str, str]) -> None:
    """Write ``frame`` as a tab-separated atomic file with a ``name:type`` header, via temp + rename.

    RecBole reads atomic files with CSV quoting, so a cell holding '"' (generated text may start
    with one) is quoted the CSV way: RecBole reads back exactly the text written.
    """
    out = frame[list(types)].copy()
    out.columns = [f"{name}:{kind}" for name, kind in types.items()]
    write_text_atomically(path, lambda fh: out.to_csv(fh, sep="\t", index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n"))


def float_seq(vectors: np.ndarray) -> list[str]:
    """RecBole's ``float_seq`` cell: space-separated numbers, one string per row."""
    return [" ".join(f"{x:.6g}" for x in row) for row in np.asarray(vectors, dtype=np.float32)]


_UMASK = os.umask(0)
os.umask(_UMASK)


def write_text_atomically(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            write(fh) if callable(write) else fh.write(write)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide the dataset from other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
