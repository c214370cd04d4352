"""Handing memory a finished stage freed back to the system.

Splitting a million users' interactions or building RecBole's dataset makes and drops millions of
small objects; glibc keeps the freed pages in its heap, scattered between the objects that stay,
and the next stage's allocations go on top of them. Trimming between stages keeps the run's
resident memory close to what it still holds (measured: docs/results/scale/).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
from typing import Iterator

_runs_setting_aside = 0


@contextlib.contextmanager
def survivors_set_aside() -> Iterator[None]:
    """Within it, what survives a stage's collection is set aside (``gc.freeze``) until the end.

    Once torch, transformers, RecBole and litellm are imported, a full collection walks ~800k of
    their objects (0.7-1 s on the 2-core machine) to find a stage's garbage; a run collects after
    every stage, and Python's own collections of the oldest generation walk them too. What a run
    holds at a stage's end is modules and what it keeps to the end (the split, the prompt data,
    the answers), so later collections need not walk it again. At the end all of it, with whatever
    the caller had set aside, goes back to the oldest generation.
    """
    global _runs_setting_aside
    _runs_setting_aside += 1
    try:
        yield
    finally:
        _runs_setting_aside -= 1
        if not _runs_setting_aside:
            gc.unfreeze()


def release_freed_memory() -> None:
    """Collect garbage, then return the heap's free pages."""
    gc.collect()
    if _runs_setting_aside:
        gc.freeze()
    trim_heap()


def _glibc(name: str):
    try:
        return getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):  # not glibc: musl, macOS, Windows
        return None


_MALLOC_TRIM = _glibc("malloc_trim")
_MALLOPT = _glibc("mallopt")
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
LARGE_BLOCK = 1 << 20
GLIBC_LARGEST_THRESHOLD = 32 << 20  # the most glibc raises the threshold to on its own (64-bit)
GLIBC_TRIM_DEFAULT = 128 << 10


def large_blocks_returned() -> contextlib.AbstractContextManager[None]:
    """Within it, blocks of ``LARGE_BLOCK`` or more are mapped apart and go back to the system
    when freed (glibc's ``M_MMAP_THRESHOLD``; elsewhere, or where the user set
    ``MALLOC_MMAP_THRESHOLD_``, nothing changes; nor the trim threshold where they set ``MALLOC_TRIM_THRESHOLD_``).

    glibc raises that threshold to the largest block freed so far, up to 32 MB: the split's work
    arrays and RecBole's dataset are then carved from the heap and, freed, stay in it between the
    objects that live on (at 10^6 users the base model trained with ~0.3 GB more resident). Each
    mapped block costs fresh pages, though: the encoder ran at 0.6x its speed and the base model's
    training at 0.65x. So stages that hold much and compute little run within it, and after it the
    thresholds are the ones a long run reaches on its own: the largest mapping threshold, and twice
    that as the heap's trim threshold (glibc raises both together, and stops raising either once
    one is set: left at its 128 KB default, the heap's top was given back and faulted in again
    with every batch of the base model, half its time in the kernel at 10^6 users)."""
    return _thresholds(LARGE_BLOCK, GLIBC_TRIM_DEFAULT)


@contextlib.contextmanager
def _thresholds(mmap_threshold: int, trim_threshold: int) -> Iterator[None]:
    """glibc's mapping and trim thresholds set within it; after it, the ones a long run reaches on its own."""
    if _MALLOPT is None or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        yield
        return
    trim = "MALLOC_TRIM_THRESHOLD_" not in os.environ
    _MALLOPT(M_MMAP_THRESHOLD, mmap_threshold)
    if trim:
        _MALLOPT(M_TRIM_THRESHOLD, trim_threshold)
    try:
        yield
    finally:
        _MALLOPT(M_MMAP_THRESHOLD, GLIBC_LARGEST_THRESHOLD)
        if trim:
            _MALLOPT(M_TRIM_THRESHOLD, 2 * GLIBC_LARGEST_THRESHOLD)


def trim_heap() -> None:
    """glibc's ``malloc_trim`` (elsewhere a no-op): cheap enough to call after every encoder batch,
    whose activations grow with the texts' length and would otherwise stay in the heap (6,000
    profile-length texts: 1.13 GB resident without, 0.57 GB with, in the same time)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
