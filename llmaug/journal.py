"""The run's memory: every outcome, appended as a JSON line.

Each line is handed to the OS as soon as it is written, so killing the process loses nothing
that was answered; lines are fsync'd in small batches against a machine crash. A torn last line
is skipped on reading, so a re-run repeats no request whose answer was recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator, Optional


def journal_key(task: str, entity: str, model: str, request_hash: str) -> str:
    return hashlib.sha256("\x1f".join((task, entity, model, request_hash)).encode()).hexdigest()[:24]


class Journal:
    def __init__(self, path: Path, sync_every: int = 32, sync_seconds: float = 1.0) -> None:
        self.path = Path(path)
        self.sync_every = sync_every
        self.sync_seconds = sync_seconds
        self.skipped_lines = 0
        self._pending = 0
        self._last_sync = time.monotonic()
        self._fh = None

    def entries(self) -> dict[str, dict[str, Any]]:
        """Latest entry per key; unreadable lines (a torn write) are counted and skipped."""
        latest: dict[str, dict[str, Any]] = {}
        self.skipped_lines = 0
        for entry in self._read():
            if entry is None:
                self.skipped_lines += 1
            else:
                latest[entry["key"]] = entry
        return latest

    def _read(self) -> Iterator[Optional[dict[str, Any]]]:
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    yield None
                    continue
                yield entry if isinstance(entry, dict) and "key" in entry else None

    def append(self, entry: dict[str, Any]) -> None:
        if self._fh is None:
            self._open()
        self._fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._fh.flush()
        self._pending += 1
        if self._pending >= self.sync_every or time.monotonic() - self._last_sync >= self.sync_seconds:
            self.sync()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torn = False
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open("rb") as fh:
                fh.seek(-1, os.SEEK_END)
                torn = fh.read(1) != b"\n"
        self._fh = self.path.open("a", encoding="utf-8")
        if torn:  # start on a fresh line so the torn one stays the only casualty
            self._fh.write("\n")

    def sync(self) -> None:
        if self._fh is not None and self._pending:
            os.fsync(self._fh.fileno())
        self._pending = 0
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._fh is not None:
            self.sync()
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
