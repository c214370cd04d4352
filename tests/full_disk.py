"""Run llmaug on a disk that fills up, with no root and no special filesystem.

From the first time llmaug creates a file or directory under ``--out`` whose path (relative to
``--out``) matches a pattern, every further file or directory it creates there fails with ENOSPC,
as on a full disk. Done with an audit hook, so the refusal comes where Python opens the file; a
real disk refuses the write itself, and llmaug sees the same ``OSError`` either way. Nothing can
remove an audit hook once added: the one hook stays, and does nothing outside ``full_disk()``.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import sys
from pathlib import Path
from typing import Iterator, Optional


class _FullFrom:
    def __init__(self, out: Path, pattern: str) -> None:
        self.out = os.path.realpath(out)
        self.pattern = pattern
        self.full = False

    def check(self, event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            creating = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        elif event == "os.mkdir":
            path, creating = args[0], not os.path.exists(args[0])  # an existing directory is no new space
        else:
            return
        if not creating or not isinstance(path, (str, bytes, os.PathLike)):
            return
        path = os.path.realpath(os.fsdecode(path))
        if path != self.out and not path.startswith(self.out + os.sep):
            return
        self.full = self.full or fnmatch.fnmatch(os.path.relpath(path, self.out), self.pattern)
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


_disk: Optional[_FullFrom] = None
_hooked = False


def _hook(event: str, args: tuple) -> None:
    if _disk is not None:
        _disk.check(event, args)


@contextlib.contextmanager
def full_disk(out: Path, pattern: str) -> Iterator[None]:
    """Within it, the disk under ``out`` is full from the first created path matching ``pattern``."""
    global _disk, _hooked
    if not _hooked:
        sys.addaudithook(_hook)
        _hooked = True
    _disk = _FullFrom(out, pattern)
    try:
        yield
    finally:
        _disk = None
