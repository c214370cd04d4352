"""A Ray of llmaug's own for `--ray local`: started apart from any cluster on the machine, gone with llmaug.

`ray.init(address=None)` joins the cluster that `RAY_ADDRESS` or the latest `ray start` names before
it would start one; llmaug once took a user's cluster for its own that way and killed it at the end.
`address="local"` always starts a new Ray, its files go to a temporary directory of its own, and
every process it starts inherits a mark in its environment that nothing outside this Ray carries
(the mark is random and set only while Ray starts). What is removed at the end is chosen by that
mark: ownership by descent, not a name another session could share.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from typing import Any

from ..errors import ProviderError

OWNER_VARIABLE = "LLMAUG_RAY_OWNER"


class OwnRay:
    """A local Ray started by llmaug, and the guard that removes it whatever way llmaug ends."""

    def __init__(self, ray: Any) -> None:
        self._ray = ray
        self.temp_dir = tempfile.mkdtemp(prefix="llmaug-ray-")
        mark = f"{os.getpid()}-{secrets.token_hex(8)}"
        # The guard comes first: a driver killed while Ray starts leaves nothing behind either.
        self._guard = _Guard(mark, self.temp_dir) if sys.platform.startswith("linux") else None
        os.environ[OWNER_VARIABLE] = mark
        try:
            ray.init(address="local", _temp_dir=self.temp_dir, _node_ip_address="127.0.0.1",  # nothing beyond this machine
                     include_dashboard=False, log_to_driver=False, configure_logging=False)
        except Exception as exc:  # a socket path too long for a deep TMPDIR, no room in /dev/shm...
            self._release()
            raise ProviderError(f"cannot start a local Ray in {self.temp_dir}: {exc}".splitlines()[0]) from None
        finally:
            del os.environ[OWNER_VARIABLE]  # llmaug's later children (an LLM server) are not Ray's

    def stop(self) -> None:
        try:
            self._ray.shutdown()
        finally:
            self._release()

    def _release(self) -> None:
        if self._guard is not None:
            self._guard.release()
            self._guard = None


# Waits for its parent's end on a pipe only the parent holds (EOF however the parent ends, even by
# SIGKILL), kills every process whose environment carries the mark, and removes Ray's directory.
# A raylet may start a worker while its siblings go, so it looks again until none is left.
_GUARD = """
import os, shutil, signal, sys, time
mark = ("\\0%s=%s\\0" % (sys.argv[1], sys.argv[2])).encode()
spared = {os.getpid(), os.getppid()}
os.read(0, 1)

def marked():
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                environment = b"\\0" + fh.read()
        except OSError:
            continue
        if mark in environment and int(pid) not in spared:
            yield int(pid)

for _ in range(50):
    found = list(marked())
    if not found:
        break
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.1)
shutil.rmtree(sys.argv[3], ignore_errors=True)
"""


class _Guard:
    """Ray ties its raylet and workers to the driver, but not its dashboard agent: after a SIGKILLed
    driver it lingered for minutes, trying to report to a dead GCS."""

    def __init__(self, mark: str, temp_dir: str) -> None:
        read, self._write = os.pipe()
        self._process = subprocess.Popen(
            [sys.executable, "-c", _GUARD, OWNER_VARIABLE, mark, temp_dir], stdin=read,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(read)

    def release(self) -> None:
        os.close(self._write)
        self._process.wait(timeout=30)
