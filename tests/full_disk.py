"""Run llmaug on a disk that fills up, with no root and no special filesystem.

From the first time llmaug creates a file or directory under ``--out`` whose path (relative to
``--out``) matches a pattern, every further file or directory it creates there fails with ENOSPC,
as on a full disk. Done with an audit hook, so the refusal comes where Python opens the file; a
real disk refuses the write itself, and llmaug sees the same ``OSError`` either way.

    python -c "import full_disk; full_disk.main()" OUT PATTERN augment --out OUT ...
"""

from __future__ import annotations

import errno
import fnmatch
import os
import runpy
import sys


def install(out: str, pattern: str) -> None:
    out = os.path.realpath(out)
    full = False

    def hook(event: str, args: tuple) -> None:
        nonlocal full
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
        if path != out and not path.startswith(out + os.sep):
            return
        full = full or fnmatch.fnmatch(os.path.relpath(path, out), pattern)
        if full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    sys.addaudithook(hook)


def main() -> None:
    """``python -c "import full_disk; full_disk.main()" OUT PATTERN <llmaug arguments>``"""
    out, pattern = sys.argv.pop(1), sys.argv.pop(1)
    install(out, pattern)
    runpy.run_module("llmaug", run_name="__main__", alter_sys=True)
