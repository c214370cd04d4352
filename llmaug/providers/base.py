"""What every provider does: answer a task's jobs and report each outcome as it happens."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from ..journal import journal_key
from ..tasks import Job, Task


@dataclass
class Outcome:
    """The word on one job: an accepted record, an invalid answer (``error`` + ``raw``, final), or a
    request that never got an answer (``retryable``: a re-run asks again, nothing was paid)."""

    job: Job
    request_hash: str
    record: Optional[dict[str, Any]] = None
    error: Optional[str] = None
    raw: Optional[str] = None
    reasks: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    retryable: bool = False

    @property
    def status(self) -> str:
        if self.record is not None:
            return "accepted"
        return "error" if self.retryable else "failed"


Emit = Callable[[Outcome], None]


class Provider(ABC):
    """A source of answers; selected by name (``offline`` or a litellm model string)."""

    model: str

    @abstractmethod
    def request_hash(self, task: Task, job: Job) -> str:
        """Identify what would be asked, so a re-run can tell a finished request from a changed one."""

    def journal_key(self, task: Task, job: Job) -> str:
        """The key its answer is journaled under (and, in a Batch API request, its custom id)."""
        return journal_key(task.name, job.entity, self.model, self.request_hash(task, job), job.vote)

    def estimate(self, task: Task, jobs: Sequence[Job]) -> tuple[int, int, Optional[float]]:
        """Input tokens, output tokens and cost (``None`` if unpriced) ``jobs`` would take; sends nothing."""
        return 0, 0, 0.0

    def chunk_size(self, configured: int) -> Optional[int]:
        """How many entities the driver hands ``run`` at a time; ``None``: a task's all at once."""
        return configured

    @abstractmethod
    async def run(self, task: Task, jobs: Sequence[Job], emit: Emit) -> None:
        """Answer ``jobs``, calling ``emit`` once per job as soon as its outcome is final."""

    def describe(self) -> dict[str, Any]:
        """How requests were made (the manifest's ``llm``): what a reader needs to judge the answers."""
        return {}

    def close(self) -> None:
        """Release what the provider started (a managed server); called on success, error and Ctrl-C."""
