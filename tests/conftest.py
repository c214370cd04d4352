"""Shared fixtures: real augmented datasets made by the real CLI, once per test run, whatever the
number of xdist workers; and the suite's time kept in sight at the end of every run."""

from __future__ import annotations

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One thread per worker (and per llmaug it starts), set before torch is imported: with a worker on
    # each core, each torch's thread pool spinning for the other's core burned 38% more CPU and made
    # the training tests 18% slower (tests/test_training.py, -n 2: 287 -> 179 s of CPU, 170 -> 139 s).
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import gc
import subprocess
import sys
import time
import traceback
from collections import defaultdict
from pathlib import Path

import pytest
from filelock import FileLock

from tiny_dataset import BOOKS_CONFIG, make_books

LLMAUG = [sys.executable, "-m", "llmaug"]
# llmaug as a terminal starts it: a suite launched as a background job passes SIGINT down ignored,
# and Python then never turns a Ctrl-C into KeyboardInterrupt.
IN_A_TERMINAL = [sys.executable, "-c", "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                 "runpy.run_module('llmaug', run_name='__main__', alter_sys=True)"]
# `make test` on the 2-core machine, pytest alone (README, "Tests"): a run past it says so at the end.
SUITE_BUDGET_S = 480
SLOWEST_SHOWN = 10


def run_llmaug(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the installed CLI as a user would, in a process of its own, capturing its output."""
    return subprocess.run(
        [*LLMAUG, *args], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )


def invoke_llmaug(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """The same command through the same entry point, in this process: a run no longer pays ~10 s of
    importing torch, RecBole and the encoder each time. For tests of what a run does; a test about
    the process itself (a kill, Ctrl-C, children left behind, import time) uses ``run_llmaug``."""
    from click.testing import CliRunner

    from llmaug.cli import main

    # A run collects garbage between stages (llmaug.monitor.memory); in a process that has imported
    # torch, transformers, RecBole and litellm a collection walks ~800k of their objects, 2.4 s each
    # time here. What this process holds before the run is no garbage of the run's: set it aside.
    gc.collect()
    gc.freeze()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        if cwd is not None:
            patch.chdir(cwd)
        result = CliRunner().invoke(main, list(args), prog_name="llmaug")
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):  # a bug: its traceback, as Python prints it
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(["llmaug", *args], result.exit_code, result.stdout, stderr)


def _augment(out: Path, *extra: str, config: str) -> Path:
    """Made by whichever xdist worker asks first; the others wait for it and read the same files."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{out}.lock"):
        if not (out / "manifest.json").exists():
            (settings := out.with_suffix(".yaml")).write_text(config, encoding="utf-8")
            result = invoke_llmaug("augment", "--dataset", "ml-100k", "--out", str(out), "--quiet", "--config", str(settings), *extra)
            assert result.returncode == 0, result.stderr
    return out


def _shared(tmp_path_factory) -> Path:
    """The run's temporary root, common to all xdist workers (each has a base directory under it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def augmented_ml100k(tmp_path_factory) -> Path:
    """ml-100k augmented by the offline provider, every task, all users and items, in the sparse
    regime of the evidence runs: each user keeps 20% of their training interactions (an epoch costs
    a fifth). Named ml-100k, so RecBole's redirect of that name to its bundled copy is in play.
    One run for the whole suite: a second, unthinned one cost 80 s and checked nothing more.
    Its base model trains 2 epochs, not the default 10: no test here reads the candidates' quality,
    and the 8 epochs more took ~16 s of the suite. Read-only."""
    return _augment(_shared(tmp_path_factory) / "ml-100k", "--train-fraction", "0.2", config="candidate_epochs: 2\n")


@pytest.fixture
def books(tmp_path) -> tuple[Path, Path]:
    """The tiny book dataset and the config that maps its fields."""
    config = tmp_path / "books.yaml"
    config.write_text(BOOKS_CONFIG, encoding="utf-8")
    return make_books(tmp_path / "data"), config


_STARTED = pytest.StashKey[float]()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STARTED] = time.monotonic()


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    """The slowest tests (setup, call and teardown together) and the run's time against the budget,
    so a new slow test is seen the day it lands."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    spent: dict[str, float] = defaultdict(float)
    for reports in terminalreporter.stats.values():
        for report in reports:
            if isinstance(report, pytest.TestReport):
                spent[report.nodeid] += report.duration
    if not spent:
        return
    write = terminalreporter.write_line
    terminalreporter.section(f"{SLOWEST_SHOWN} slowest tests")
    for nodeid, seconds in sorted(spent.items(), key=lambda item: -item[1])[:SLOWEST_SHOWN]:
        write(f"{seconds:8.1f} s  {nodeid}")
    elapsed = time.monotonic() - config.stash[_STARTED]
    verdict = "within" if elapsed <= SUITE_BUDGET_S else "OVER"
    write(f"suite: {elapsed:.0f} s wall, {sum(spent.values()):.0f} s in tests; {verdict} the {SUITE_BUDGET_S} s budget "
          f"(tests/conftest.py SUITE_BUDGET_S, README 'Tests')")
