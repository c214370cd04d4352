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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Optional, Union

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


@dataclass
class AnswerIndex:
    """Per journal key, the latest answer's status, and nothing else: at a million users the
    whole entries (prompts' raw answers included) would take gigabytes; this takes ~200 bytes a key."""

    status: dict[str, str] = field(default_factory=dict)
    models: set[str] = field(default_factory=set)
    unusable: int = 0  # keys whose latest line is unreadable or not in this llmaug's format, and torn lines


@dataclass(frozen=True)
class Answer:
    """What a run needs of one journaled answer to count it and write its record."""

    status: str
    record: Optional[dict[str, Any]]
    reasks: int
    input_tokens: int
    output_tokens: int
    cost: float


def index_answers(journal: "Journal") -> AnswerIndex:
    """One pass over the journal, validating every line through ``AnswerEntry``."""
    index = AnswerIndex()
    unusable_keys: set[str] = set()
    for line in journal.lines():
        key, entry = _parse(line)
        if key is None:
            index.unusable += 1
        elif entry is None:
            index.status.pop(key, None)
            unusable_keys.add(key)
        else:
            index.status[key] = STATUSES[entry.status]
            index.models.add(entry.model)
            unusable_keys.discard(key)
    index.unusable += len(unusable_keys)
    return index


def answers_for(journal: "Journal", keys: dict[Slot, str]) -> dict[Slot, Answer]:
    """The latest usable answer per slot of ``keys`` (slot -> journal key), streaming the file:
    only lines for these keys are validated and kept."""
    entity_of = {key: slot for slot, key in keys.items()}
    answers: dict[Slot, Answer] = {}
    for line in journal.lines():
        key = _key_prefix(line)
        if key is not None and key not in entity_of:
            continue
        key, entry = _parse(line)
        if key not in entity_of:
            continue
        if entry is None:
            answers.pop(entity_of[key], None)
        else:
            answers[entity_of[key]] = Answer(STATUSES[entry.status], _shared(entry.record), entry.reasks, entry.input_tokens, entry.output_tokens, entry.cost)
    return answers


SHORT_VALUE = 64  # characters: ages, genres, countries, item ids repeat across records; sentences do not


def _shared(record: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """The record with its field names and short values as shared strings. Records stay in memory
    until the dataset is written, and every line parsed brings its own copies: a million profiles
    read back took 1.22 GB, 0.46 GB shared (benchmarks/bench_readback.py on a 1M-user run's journal)."""
    if record is None:
        return None
    return {sys.intern(name): sys.intern(value) if isinstance(value, str) and len(value) <= SHORT_VALUE else value
            for name, value in record.items()}


_PREFIX = b'{"key": "'


def _key_prefix(line: bytes) -> Optional[str]:
    """The key of a line this llmaug wrote (``key`` first, as ``json.dumps`` of an ``AnswerEntry``),
    read without parsing the line; ``None`` for any other line, which is then parsed in full."""
    if line.startswith(_PREFIX):
        end = line.find(b'"', len(_PREFIX))
        if end > 0 and b"\\" not in line[len(_PREFIX) : end]:
            return line[len(_PREFIX) : end].decode("ascii", "replace")
    return None


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
