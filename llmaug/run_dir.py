"""The output directory as a run: what may be written there, the state a re-run continues from,
and putting it back as it was found when a run fails before it has anything worth keeping."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from pathlib import Path
from typing import Iterator, Optional

from . import __version__
from .atomic import write_text_atomically
from .errors import OutputError

STATE = ".llmaug"
SERVER_LOG = "local-server.log"
BATCH_LEDGER = "batches.jsonl"
SET_ASIDE = "forgotten"
# Errors that are about the machine wherever they happen: a full disk, a quota, a read-only mount.
NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


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
    def batches(self) -> Path:
        """The Batch API ledger: batches created are paid for, so a run that made one is worth resuming."""
        return self.state / BATCH_LEDGER

    @property
    def staging(self) -> Path:
        return self.state / "staging" / self.out.name

    @property
    def workspace(self) -> Path:
        """The dataset directory RecBole is pointed at for the base recommender: RecBole wants one
        (``<dir>/<name>``), though the training split reaches it as arrays and this stays empty."""
        return self.state / "base" / self.out.name

    def check(self, source_dir: Path) -> None:
        """Refuse, before anything is written, an ``--out`` that llmaug cannot or must not write."""
        out = self.out
        if out == source_dir or source_dir in out.parents or out in source_dir.parents:
            raise OutputError(f"--out {out} overlaps the dataset directory {source_dir}; choose a directory outside it")
        if out.exists() and not out.is_dir():
            raise OutputError(f"--out {out} exists and is not a directory")
        nearest = next(p for p in (out, *out.parents) if p.exists())
        if not nearest.is_dir():
            raise OutputError(f"cannot create --out {out}: {nearest} is not a directory")
        if not os.access(nearest, os.W_OK | os.X_OK):
            raise OutputError(f"cannot write --out {out}: no permission to write in {nearest}")
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

    @contextlib.contextmanager
    def claimed(self, source_dir: Path, fresh: bool = False) -> Iterator[None]:
        """Hold ``--out`` for one run.

        A run that fails before it has journaled anything (an answer, a paid embedding) or started
        a local server (whose log says why it stopped) leaves ``--out`` as it was found. One that
        fails later keeps its state, so the same command resumes without paying twice. ``--fresh``
        sets the earlier state aside and drops it only once that point is passed.
        """
        found = _tree(self.out)
        created = None if self.out.exists() else _topmost_missing(self.out)
        aside = self.state / SET_ASIDE if fresh and self.state.is_dir() else None
        kept: Optional[dict[Path, int]] = None
        try:
            if aside is not None:
                self._set_aside(aside)
            kept = self._keepsakes()
            self.claim(source_dir)
            yield
        except BaseException as exc:
            restored = kept is None or self._keepsakes() == kept
            if restored:
                self._restore(found, created, aside)
            elif aside is not None:
                shutil.rmtree(aside, ignore_errors=True)
            problem = _disk_problem(exc, self.out)
            if problem is None:
                raise
            where = f" {problem.filename}" if problem.filename else ""
            after = "--out is left as it was found" if restored else f"what was journaled is kept in {self.state}: run the same command again to continue"
            raise OutputError(f"cannot write{where}: {problem.strerror or problem}; {after}") from None
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)

    def claim(self, source_dir: Path) -> None:
        marker = self.state / "run.json"
        if not marker.is_file():
            write_text_atomically(marker, json.dumps({"llmaug": __version__, "source": str(source_dir)}) + "\n")

    def _keepsakes(self) -> dict[Path, int]:
        """Sizes of the files that make a failed run's state worth keeping."""
        files = (self.journal, self.embeddings, self.batches, self.state / SERVER_LOG)
        return {f: f.stat().st_size if f.is_file() else 0 for f in files}

    def _set_aside(self, aside: Path) -> None:
        shutil.rmtree(aside, ignore_errors=True)  # left by a killed --fresh run, whose user asked to forget it
        aside.mkdir()
        for entry in list(self.state.iterdir()):
            if entry.name not in (SET_ASIDE, "run.json"):
                os.replace(entry, aside / entry.name)

    def _restore(self, found: set[str], created: Optional[Path], aside: Optional[Path]) -> None:
        """Remove what this run created; put back what ``--fresh`` set aside. Best effort: a
        failure here must not hide the one that brought us here."""
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
            return
        with contextlib.suppress(OSError):
            if aside is not None and aside.is_dir():
                for entry in list(aside.iterdir()):
                    target = self.state / entry.name
                    if target.is_dir() and not target.is_symlink():
                        shutil.rmtree(target)
                    os.replace(entry, target)
        for root, dirs, files in os.walk(self.out, topdown=False):
            for name in files + dirs:
                path = Path(root, name)
                if str(path.relative_to(self.out)) in found:
                    continue
                with contextlib.suppress(OSError):
                    if path.is_dir() and not path.is_symlink():
                        path.rmdir()
                    else:
                        path.unlink()


def _tree(directory: Path) -> set[str]:
    return {str(Path(root, name).relative_to(directory)) for root, dirs, files in os.walk(directory) for name in dirs + files}


def _topmost_missing(path: Path) -> Path:
    while not path.parent.exists():
        path = path.parent
    return path


def _disk_problem(exc: BaseException, out: Path) -> Optional[OSError]:
    """The ``OSError`` behind ``exc`` if it is the disk's fault or about a file in ``out``."""
    for leaf in _leaves(exc):
        if isinstance(leaf, OSError):
            names = [n for n in (leaf.filename, leaf.filename2) if isinstance(n, (str, bytes, os.PathLike))]
            if leaf.errno in NO_ROOM or any(Path(os.fsdecode(n)).resolve().is_relative_to(out) for n in names):
                return leaf
    return None


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` itself, or every exception inside it when a provider's task group bundled them."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc
