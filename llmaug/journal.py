"""The run's memory: every outcome, appended as a JSON line.

Lines go to a writer thread that hands them to the OS as they come (killing the process loses
only what is still queued, microseconds' worth) and fsyncs them in small batches against a
machine crash. A thread, because a write from the event loop's thread gives up the GIL to
litellm's logging thread for milliseconds per answer. A torn last line is skipped on reading,
so a re-run repeats no request whose answer was recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import sys
import threading
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Optional, Sequence, Union

import numpy as np

from pydantic import BaseModel, ValidationError, model_validator

Slot = tuple[str, int]  # (entity, vote): what one answer is about


def journal_key(task: str, entity: str, model: str, request_hash: str, vote: int = 0) -> str:
    # A later vote may show the same order as an earlier one (a pool of two has two orders): its own key all the same.
    parts = (task, entity, model, request_hash) if vote == 0 else (task, entity, model, request_hash, f"vote {vote}")
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


class AnswerEntry(BaseModel):
    """One answer line, written and read back through this one schema: a line another llmaug
    version wrote is used where it fits and otherwise asked again, never half-understood."""

    key: str
    task: str
    entity: str
    model: str
    request_hash: str
    status: Literal["accepted", "failed", "error"]
    record: Optional[dict[str, Any]] = None  # text fields, or an edge's items, displayed numbers and order
    error: Optional[str] = None
    raw: Optional[str] = None
    reasks: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    vote: int = 0  # which of the user's edge votes; 0 when one is asked

    @model_validator(mode="after")
    def _accepted_answers_hold_a_record(self) -> "AnswerEntry":
        if self.status == "accepted" and (self.record is None or (self.task == "edges" and not (self.record.get("liked") and self.record.get("disliked")))):
            raise ValueError("an accepted answer holds its record")
        return self


STATUSES = {"accepted": "accepted", "failed": "failed", "error": "error"}  # one str object per status
_CODES = ("accepted", "failed", "error")  # an index's status codes; a key whose latest line is unusable is left out


def key_hash(key: str) -> int:
    """64 bits of a journal key, as the index holds it; a line read at the index's offset is
    checked against the whole key, so two keys sharing a hash cannot swap answers."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class Answer:
    """What a run needs of one journaled answer to count it and write its record."""

    status: str
    record: Optional[dict[str, Any]]
    reasks: int
    input_tokens: int
    output_tokens: int
    cost: float

    @classmethod
    def of(cls, entry: AnswerEntry) -> "Answer":
        return cls(STATUSES[entry.status], _shared(entry.record), entry.reasks, entry.input_tokens, entry.output_tokens, entry.cost)


@dataclass
class AnswerIndex:
    """Per journal key, the latest answer's status and where its line starts, as three sorted
    arrays (17 bytes a key): a dict of keys took ~200 bytes a key, 0.4 GB at a million users.
    Records are read from the file only for the entities being written."""

    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    codes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    models: set[str] = field(default_factory=set)
    unusable: int = 0  # keys whose latest line is unreadable or not in this llmaug's format, and torn lines

    def statuses(self, keys: Sequence[str]) -> list[Optional[str]]:
        """The latest status of each key; ``None`` where no usable answer is journaled."""
        return [None if row < 0 else _CODES[self.codes[row]] for row in self._rows(keys).tolist()]

    def answers(self, journal: "Journal", keys: dict[Slot, str]) -> dict[Slot, Answer]:
        """The latest usable answer per slot of ``keys`` (slot -> journal key), read at the indexed
        offsets in file order: a chunk of entities costs its own lines, not a pass over the file."""
        slots = list(keys)
        rows = self._rows([keys[s] for s in slots])
        found = np.flatnonzero(rows >= 0)
        answers: dict[Slot, Answer] = {}
        if not len(found):
            return answers
        with journal.path.open("rb") as fh:
            for position in found[np.argsort(self.offsets[rows[found]], kind="stable")].tolist():
                fh.seek(int(self.offsets[rows[position]]))
                key, entry = _parse(fh.readline())
                if entry is not None and key == keys[slots[position]]:
                    answers[slots[position]] = Answer.of(entry)
        return answers

    def _rows(self, keys: Sequence[str]) -> np.ndarray:
        """Each key's row in the arrays, -1 where it has none."""
        wanted = np.fromiter((key_hash(k) for k in keys), np.uint64, len(keys))
        if not len(self.hashes):
            return np.full(len(keys), -1, np.int64)
        rows = np.minimum(np.searchsorted(self.hashes, wanted), len(self.hashes) - 1)
        return np.where(self.hashes[rows] == wanted, rows, -1)


def index_answers(journal: "Journal") -> AnswerIndex:
    """One pass over the journal, validating every line through ``AnswerEntry``; a key's latest line wins."""
    hashes, offsets, codes = array("Q"), array("q"), array("B")
    unusable_code = len(_CODES)
    index = AnswerIndex()
    offset = 0
    for line in journal.lines():
        key, entry = _parse(line)
        if key is None:
            index.unusable += 1
        else:
            hashes.append(key_hash(key))
            offsets.append(offset)
            codes.append(unusable_code if entry is None else _CODES.index(entry.status))
            if entry is not None:
                index.models.add(entry.model)
        offset += len(line)
    if hashes:
        # Each key's latest line: its hash's first occurrence among the lines taken newest first.
        newest_first = np.frombuffer(hashes, np.uint64)[::-1]
        unique, first = np.unique(newest_first, return_index=True)
        latest = len(newest_first) - 1 - first
        kept = np.frombuffer(codes, np.uint8)[latest]
        usable = kept != unusable_code
        index.unusable += int((~usable).sum())
        index.hashes, index.offsets, index.codes = unique[usable], np.frombuffer(offsets, np.int64)[latest][usable], kept[usable]
    return index


SHORT_VALUE = 64  # characters: ages, genres, countries, item ids repeat across records; sentences do not


def _shared(record: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """The record with its field names and short values as shared strings. Records stay in memory
    until the dataset is written, and every line parsed brings its own copies: a million profiles
    read back took 1.22 GB, 0.46 GB shared (benchmarks/bench_readback.py on a 1M-user run's journal)."""
    if record is None:
        return None
    return {sys.intern(name): sys.intern(value) if isinstance(value, str) and len(value) <= SHORT_VALUE else value
            for name, value in record.items()}


def _parse(line: bytes) -> tuple[Optional[str], Optional[AnswerEntry]]:
    """(key, entry): (None, None) for an unreadable line, (key, None) for a readable line that is
    not an answer in the current format."""
    try:
        raw = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, None
    if not isinstance(raw, dict) or not isinstance(raw.get("key"), str):
        return None, None
    try:
        return raw["key"], AnswerEntry.model_validate(raw)
    except ValidationError:
        return raw["key"], None


_STOP = object()


class Journal:
    def __init__(self, path: Path, sync_every: int = 32, sync_seconds: float = 1.0) -> None:
        self.path = Path(path)
        self.sync_every = sync_every
        self.sync_seconds = sync_seconds
        self.skipped_lines = 0
        self._queue: "queue.SimpleQueue[Union[str, threading.Event, object]]" = queue.SimpleQueue()
        self._writer: Optional[threading.Thread] = None
        self._failure: Optional[BaseException] = None

    def entries(self) -> dict[str, dict[str, Any]]:
        """Latest entry per key; unreadable lines (a torn write) are counted and skipped."""
        return {entry["key"]: entry for entry in self.history()}

    def history(self) -> Iterator[dict[str, Any]]:
        """Every readable entry in the order it was written, a re-asked request's older ones too;
        unreadable lines (a torn write) are counted in ``skipped_lines`` and skipped."""
        self.skipped_lines = 0
        for entry in self._read():
            if entry is None:
                self.skipped_lines += 1
            else:
                yield entry

    def lines(self) -> Iterator[bytes]:
        """The journal's lines as written, streamed."""
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            yield from fh

    def _read(self) -> Iterator[Optional[dict[str, Any]]]:
        for line in self.lines():
            try:
                entry = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                yield None
                continue
            yield entry if isinstance(entry, dict) and "key" in entry else None

    def append(self, entry: dict[str, Any]) -> None:
        if self._failure is not None:
            raise self._failure
        if self._writer is None:
            self._start()
        self._queue.put(json.dumps(entry, ensure_ascii=False) + "\n")

    def sync(self) -> None:
        """Return once everything appended so far is on disk."""
        if self._writer is not None:
            done = threading.Event()
            self._queue.put(done)
            done.wait()
        if self._failure is not None:
            raise self._failure

    def close(self) -> None:
        if self._writer is not None:
            self._queue.put(_STOP)
            self._writer.join()
            self._writer = None
        if self._failure is not None:
            raise self._failure

    def _start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torn = False
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open("rb") as fh:
                fh.seek(-1, os.SEEK_END)
                torn = fh.read(1) != b"\n"
        fh = self.path.open("a", encoding="utf-8")
        if torn:  # start on a fresh line so the torn one stays the only casualty
            fh.write("\n")
        self._writer = threading.Thread(target=self._write_loop, args=(fh,), name="llmaug-journal", daemon=True)
        self._writer.start()

    def _write_loop(self, fh) -> None:
        unsynced, last_sync = 0, time.monotonic()
        try:
            while True:
                item = self._queue.get()
                while True:  # write everything queued, then hand it to the OS in one flush
                    if isinstance(item, str):
                        fh.write(item)
                        unsynced += 1
                    else:
                        fh.flush()
                        os.fsync(fh.fileno())
                        unsynced, last_sync = 0, time.monotonic()
                        if item is _STOP:
                            return
                        item.set()
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                fh.flush()
                if unsynced >= self.sync_every or (unsynced and time.monotonic() - last_sync >= self.sync_seconds):
                    os.fsync(fh.fileno())
                    unsynced, last_sync = 0, time.monotonic()
        except BaseException as exc:  # a full disk must not pass silently
            self._failure = exc
            while True:  # release anyone waiting on a sync
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, threading.Event):
                    item.set()
        finally:
            fh.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
