"""Per-stage wall time, CPU time and peak resident memory, for the manifest and the scale benchmark.

Peak memory is sampled by a thread rather than read from ``getrusage``: the kernel keeps one
peak per process, which cannot say which stage reached it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
from typing import Iterator

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Resident memory now (Linux); elsewhere the process's peak so far, the best portable bound."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Timer:
    """``with timer("split"): ...`` adds the stage's seconds and records its peak memory."""

    def __init__(self, sample_seconds: float = 0.05) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.peak_rss_mb: dict[str, float] = {}
        self._sample_seconds = sample_seconds
        self._peak = 0

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        self._peak = rss_bytes()
        stop = self._start_sampling()
        try:
            yield
        finally:
            stop.set()
            self._peak = max(self._peak, rss_bytes())
            self.wall[name] = round(self.wall.get(name, 0.0) + time.perf_counter() - wall, 3)
            self.cpu[name] = round(self.cpu.get(name, 0.0) + time.process_time() - cpu, 3)
            self.peak_rss_mb[name] = round(max(self.peak_rss_mb.get(name, 0.0), self._peak / 2**20), 1)

    def _start_sampling(self) -> threading.Event:
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(self._sample_seconds):
                self._peak = max(self._peak, rss_bytes())

        threading.Thread(target=sample, name="llmaug-rss", daemon=True).start()
        return stop
