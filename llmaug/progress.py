"""Progress bars with live counts (accepted, failed, re-asked, tokens, cost), on stderr."""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator, Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class Stage:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task
        self.counts: dict[str, float] = {}

    def advance(self, steps: int = 1, **counts: float) -> None:
        for key, value in counts.items():
            self.counts[key] = self.counts.get(key, 0) + value
        self._progress.update(self._task, advance=steps, status=self._status())

    def _status(self) -> str:
        parts = []
        for key, value in self.counts.items():
            if key == "cost":
                parts.append(f"${value:.4f}")
            elif value:
                parts.append(f"{key} {int(value):,}")
        return " · ".join(parts)


class Reporter:
    """One rich ``Progress`` for a whole run; each pipeline stage adds its own bar."""

    def __init__(self, console: Optional[Console] = None, enabled: bool = True) -> None:
        self.console = console or Console(stderr=True)
        self._warnings = Console(stderr=True) if self.console.quiet else self.console
        self._progress = Progress(
            TextColumn("{task.description:<20}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not enabled,
        )

    @contextlib.contextmanager
    def running(self) -> Iterator["Reporter"]:
        with self._progress:
            yield self

    def stage(self, description: str, total: Optional[float]) -> Stage:
        return Stage(self._progress, self._progress.add_task(description, total=total, status=""))

    def note(self, message: str) -> None:
        self.console.print(message)

    def warn(self, message: str) -> None:
        """Shown even with ``--quiet``: a warning is about the result, not about progress."""
        self._warnings.print(message, markup=False, highlight=False, soft_wrap=True)


def quiet_reporter() -> Reporter:
    return Reporter(Console(file=sys.stderr, quiet=True), enabled=False)
