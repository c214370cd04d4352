"""Shared fixtures: real augmented datasets made by the real CLI, once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tiny_dataset import BOOKS_CONFIG, make_books

LLMAUG = [sys.executable, "-m", "llmaug"]
# llmaug as a terminal starts it: a suite launched as a background job passes SIGINT down ignored,
# and Python then never turns a Ctrl-C into KeyboardInterrupt.
IN_A_TERMINAL = [sys.executable, "-c", "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                 "runpy.run_module('llmaug', run_name='__main__', alter_sys=True)"]


def run_llmaug(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the installed CLI as a user would, capturing its output."""
    return subprocess.run(
        [*LLMAUG, *args], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )


def _augment(out: Path, *extra: str) -> Path:
    result = run_llmaug("augment", "--dataset", "ml-100k", "--out", str(out), "--quiet", *extra)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def augmented_ml100k(tmp_path_factory) -> Path:
    """ml-100k augmented by the offline provider: all users and items, every task."""
    return _augment(tmp_path_factory.mktemp("full") / "ml-100k")


@pytest.fixture(scope="session")
def augmented_ml100k_sparse(tmp_path_factory) -> Path:
    """The sparse regime: each user keeps 20% of their training interactions."""
    return _augment(tmp_path_factory.mktemp("sparse") / "ml-100k-sparse", "--train-fraction", "0.2")


@pytest.fixture
def books(tmp_path) -> tuple[Path, Path]:
    """The tiny book dataset and the config that maps its fields."""
    config = tmp_path / "books.yaml"
    config.write_text(BOOKS_CONFIG, encoding="utf-8")
    return make_books(tmp_path / "data"), config
