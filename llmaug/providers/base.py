"""What every provider does: answer a task's jobs and report each outcome as it happens."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from ..tasks import Job, Task


@dataclass
class Outcome:
    """The final word on one job: an accepted record, or a failure with the raw answer kept."""

    job: Job
    request_hash: str
    record: Optional[dict[str, Any]] = None
    error: Optional[str] = None
    raw: Optional[str] = None
    reasks: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0

    @property
    def accepted(self) -> bool:
        return self.record is not None


Emit = Callable[[Outcome], None]


class Provider(ABC):
    """A source of answers; selected by name (``offline`` or a litellm model string)."""

    model: str

    @abstractmethod
    def request_hash(self, task: Task, job: Job) -> str:
        """Identify what would be asked, so a re-run can tell a finished request from a changed one."""

    @abstractmethod
    async def run(self, task: Task, jobs: Sequence[Job], emit: Emit) -> None:
        """Answer ``jobs``, calling ``emit`` once per job as soon as its outcome is final."""
