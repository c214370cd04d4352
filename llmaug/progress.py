"""Progress with live counts (accepted, failed, re-asked, tokens, cost), on stderr.

On a terminal each stage is a rich progress bar. Anywhere else (a log file, CI, ``nohup``) a
redrawn bar shows nothing until the run ends, so each stage writes one-line statuses instead:
every ``LLMAUG_PROGRESS_SECONDS`` (default 30) while it runs, and one when it ends. Not when it
starts: a mistake found at once still gets its one line on stderr and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Iterator, Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, Task, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn

LOG_SECONDS = 30.0


class Stage:
    def __init__(self, reporter: "Reporter", task: TaskID) -> None:
        self._reporter = reporter
        self._task = task
        self._detail = ""
        self.counts: dict[str, float] = {}

    def advance(self, steps: int = 1, **counts: float) -> None:
        for key, value in counts.items():
            self.counts[key] = self.counts.get(key, 0) + value
        self._reporter._progress.update(self._task, advance=steps, status=self._status())
        self._reporter._log_if_finished(self._task)

    def describe(self, detail: str) -> None:
        """Say where inside a step the stage is (e.g. the base model's epoch), without advancing."""
        self._detail = detail
        self._reporter._progress.update(self._task, status=self._status())

    def _status(self) -> str:
        parts = [self._detail] if self._detail else []
        for key, value in self.counts.items():
            if key == "cost":
                parts.append(f"${value:.4f}")
            elif value:
                parts.append(f"{key} {int(value):,}")
        return " · ".join(parts)


class Reporter:
    """One rich ``Progress`` for a whole run; each pipeline stage adds its own bar (or log lines)."""

    def __init__(self, console: Optional[Console] = None, enabled: bool = True, log_seconds: Optional[float] = None) -> None:
        self.console = console or Console(stderr=True)
        self._warnings = Console(stderr=True) if self.console.quiet else self.console
        self._log = enabled and not self.console.is_terminal
        self._log_seconds = log_seconds if log_seconds is not None else float(os.environ.get("LLMAUG_PROGRESS_SECONDS", LOG_SECONDS))
        self._logged_end: set[TaskID] = set()
        self._progress = Progress(
            TextColumn("{task.description:<20}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not enabled or self._log,
        )

    @contextlib.contextmanager
    def running(self) -> Iterator["Reporter"]:
        if not self._log:
            with self._progress:
                yield self
            return
        stop = threading.Event()
        ticker = threading.Thread(target=self._tick, args=(stop,), name="llmaug-progress", daemon=True)
        ticker.start()
        try:
            yield self
        finally:
            stop.set()
            ticker.join()

    def stage(self, description: str, total: Optional[float]) -> Stage:
        return Stage(self, self._progress.add_task(description, total=total, status=""))

    @contextlib.contextmanager
    def step(self, description: str) -> Iterator[None]:
        """A stage with nothing to count (reading, splitting, writing): a log still says how long
        it took."""
        stage = self.stage(description, total=1)
        yield
        stage.advance()

    def note(self, message: str) -> None:
        self.console.print(message)

    def warn(self, message: str) -> None:
        """Shown even with ``--quiet``: a warning is about the result, not about progress."""
        self._warnings.print(message, markup=False, highlight=False, soft_wrap=True)

    # -- log mode ------------------------------------------------------------------------------
    def _tick(self, stop: threading.Event) -> None:
        while not stop.wait(self._log_seconds):
            for task in self._progress.tasks:
                if not task.finished and task.id not in self._logged_end:
                    self._write(task)

    def _task(self, task_id: TaskID) -> Task:
        return next(t for t in self._progress.tasks if t.id == task_id)

    def _log_if_finished(self, task_id: TaskID) -> None:
        if not self._log or task_id in self._logged_end:
            return
        task = self._task(task_id)
        if task.finished:
            self._logged_end.add(task_id)
            self._write(task)

    def _write(self, task: Task) -> None:
        self.console.print(status_line(task), markup=False, highlight=False, soft_wrap=True)


def status_line(task: Task) -> str:
    """``Augmenting edges: 4,096/100,000 (4%) · 812.0/s · ETA 1m58s · elapsed 5s · accepted 4,090``."""
    done = f"{task.completed:,.0f}"
    if task.total is not None:
        done += f"/{task.total:,.0f}" + (f" ({task.completed / task.total:.0%})" if task.total else "")
    parts = [f"{task.description}: {done}"]
    elapsed = task.elapsed or 0.0
    if task.finished:
        parts.append(f"done in {_duration(elapsed)}")
    else:
        if task.speed:
            parts.append(f"{task.speed:,.1f}/s")
        if task.time_remaining is not None:
            parts.append(f"ETA {_duration(task.time_remaining)}")
        parts.append(f"elapsed {_duration(elapsed)}")
    if task.fields.get("status"):
        parts.append(task.fields["status"])
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def quiet_reporter() -> Reporter:
    return Reporter(Console(file=sys.stderr, quiet=True), enabled=False)
