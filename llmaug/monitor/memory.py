"""Handing memory a finished stage freed back to the system.

Splitting a million users' interactions or building RecBole's dataset makes and drops millions of
small objects; glibc keeps the freed pages in its heap, scattered between the objects that stay,
and the next stage's allocations go on top of them. Trimming between stages keeps the run's
resident memory close to what it still holds (measured: docs/results/scale/).
"""

from __future__ import annotations

import ctypes
import gc


def release_freed_memory() -> None:
    """Collect garbage, then return the heap's free pages."""
    gc.collect()
    trim_heap()


def _malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: musl, macOS, Windows
        return None


_MALLOC_TRIM = _malloc_trim()


def trim_heap() -> None:
    """glibc's ``malloc_trim`` (elsewhere a no-op): cheap enough to call after every encoder batch,
    whose activations grow with the texts' length and would otherwise stay in the heap (6,000
    profile-length texts: 1.13 GB resident without, 0.57 GB with, in the same time)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
