"""The run's record of the batches it planned and created.

A batch is paid for once it exists at the provider, so the record is written before and after each
step that creates one, a line at a time, fsynced: a run killed anywhere finds its batches again
instead of creating them twice. A torn last line (a kill in mid-write) is skipped.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Optional

from ..atomic import atomically_written


@dataclass
class Submission:
    """One request file, and the batch made of it once created."""

    sha: str                    # of the file's bytes: names the file and tags the batch (metadata)
    task: str
    requests: int
    carried: dict[str, list] = field(default_factory=dict)  # custom id -> [reasks, input tokens, output tokens, cost] so far
    batch_id: Optional[str] = None
    collected: bool = False


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.requests = self.path.parent / "batch-requests"

    def submissions(self) -> dict[str, Submission]:
        """Every submission by sha, as the lines so far leave it."""
        found: dict[str, Submission] = {}
        if not self.path.is_file():
            return found
        with self.path.open("rb") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue  # a torn last line
                for planned in entry.get("planned", []):
                    found[planned["sha"]] = Submission(**planned)
                if "created" in entry and entry["created"] in found:
                    found[entry["created"]].batch_id = entry["batch_id"]
                for sha in entry.get("collected", []):
                    if sha in found:
                        found[sha].collected = True
        return found

    def request_file(self, sha: str) -> Path:
        return self.requests / f"{sha}.jsonl"

    def custom_ids(self, sha: str) -> list[str]:
        """A submission's requests, in file order (the file, not this ledger, holds them: at 10^8
        requests the ids alone would be gigabytes here)."""
        return [json.loads(line)["custom_id"] for line in self._lines(sha)]

    def messages(self, sha: str, custom_ids: set[str]) -> dict[str, list[dict]]:
        """What was sent for these requests of a submission (a re-ask continues the conversation)."""
        lines = (json.loads(line) for line in self._lines(sha))
        return {line["custom_id"]: line["body"]["messages"] for line in lines if line["custom_id"] in custom_ids}

    def _lines(self, sha: str) -> Iterator[bytes]:
        with self.request_file(sha).open("rb") as fh:
            yield from (line for line in fh if line.strip())

    def write_requests(self, sha: str, content: bytes) -> None:
        with atomically_written(self.request_file(sha), "wb") as fh:
            fh.write(content)

    def plan(self, submissions: list[Submission], collected: list[str]) -> None:
        """One line naming the submissions whose files are written and those they replace: re-asks
        supersede the batch whose answers they correct, in the same line, so a kill leaves either
        the old batch to collect again or the new one to create, never both."""
        self._append({"planned": [asdict(s) for s in submissions], "collected": collected})
        self._forget(collected)

    def created(self, sha: str, batch_id: str) -> None:
        self._append({"created": sha, "batch_id": batch_id})

    def collect(self, shas: list[str]) -> None:
        self._append({"collected": shas})
        self._forget(shas)

    def _forget(self, shas: list[str]) -> None:
        """A collected submission's answers are in the journal; its prompts need not stay."""
        for sha in shas:
            self.request_file(sha).unlink(missing_ok=True)

    def _append(self, entry: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as fh:
            torn = False
            if fh.seek(0, os.SEEK_END) > 0:
                fh.seek(-1, os.SEEK_END)
                torn = fh.read(1) != b"\n"
            fh.write((("\n" if torn else "") + json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())

