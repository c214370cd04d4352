"""The output directory as a run: what may be written there, and the state a re-run continues from."""

from __future__ import annotations

import json
from pathlib import Path

from . import __version__
from .atomic import write_text_atomically
from .errors import OutputError

STATE = ".llmaug"


class RunDir:
    def __init__(self, out: Path) -> None:
        self.out = Path(out).resolve()
        self.state = self.out / STATE

    @property
    def journal(self) -> Path:
        return self.state / "journal.jsonl"

    @property
    def embeddings(self) -> Path:
        return self.state / "embeddings.jsonl"

    @property
    def staging(self) -> Path:
        return self.state / "staging" / self.out.name

    @property
    def workspace(self) -> Path:
        """Where the base recommender reads the split (RecBole wants ``<dir>/<name>/<name>.*``)."""
        return self.state / "base" / self.out.name

    def check(self, source_dir: Path) -> None:
        """Refuse, before anything is written, an ``--out`` that is not empty and not ours."""
        out = self.out
        if out.exists() and not out.is_dir():
            raise OutputError(f"--out {out} exists and is not a directory")
        marker = self.state / "run.json"
        # A journal alone (answers committed elsewhere, copied in to rebuild a dataset) is a run too.
        if out.is_dir() and any(out.iterdir()) and not marker.is_file() and not self.journal.is_file():
            raise OutputError(f"--out {out} is not empty and was not written by llmaug; choose another directory")
        if marker.is_file():
            try:
                earlier = json.loads(marker.read_text(encoding="utf-8"))["source"]
            except (OSError, ValueError, KeyError, TypeError):
                raise OutputError(f"{marker} is unreadable; delete {self.state} to start over") from None
            if earlier != str(source_dir):
                raise OutputError(f"--out {out} holds a run of {earlier}, not {source_dir}; choose another directory")

    def forget(self) -> None:
        """``--fresh``: drop the journal, caches and staging of an earlier run; keep its output files
        until the new run replaces them."""
        import shutil

        shutil.rmtree(self.state, ignore_errors=True)

    def claim(self, source_dir: Path) -> None:
        marker = self.state / "run.json"
        if not marker.is_file():
            write_text_atomically(marker, json.dumps({"llmaug": __version__, "source": str(source_dir)}) + "\n")
