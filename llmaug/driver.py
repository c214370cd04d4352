"""The streaming driver: a task's entities a chunk at a time. Per chunk, jobs are built, the ones
no earlier run finished are asked, every outcome is journaled, and the chunk's answers (this
run's, and earlier runs' read at their journal offsets) go to a sink that writes them out. So the
driver holds one chunk's jobs and records, not a million users' (issue 26)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, Callable, Optional

from .journal import Answer, AnswerEntry, AnswerIndex, Journal, Slot
from .monitor import Timer
from .progress import Reporter, Stage
from .providers.base import Outcome, Provider
from .tasks import Job, Task

FINAL = ("accepted", "failed")  # a request that ended in "error" got no answer: the next run asks again

Accepted = list[tuple[Job, dict[str, Any]]]
Sink = Callable[[list[str], Accepted], None]  # a chunk's entities, and its accepted records


def chunks(task: Task, provider: Provider, chunk_size: int) -> list[list[str]]:
    """The task's entities cut into the chunks the driver takes, one after the other. A provider
    may take the task whole (the Batch API: chunks in turn would wait for their batches in turn)."""
    entities = task.entities()
    size = provider.chunk_size(chunk_size) or max(1, len(entities))
    return [entities[start : start + size] for start in range(0, len(entities), size)]


def pending_jobs(task: Task, provider: Provider, index: AnswerIndex, entities: list[str]) -> tuple[list[Job], dict[Slot, str], list[Job]]:
    """The chunk's jobs, their journal keys (by entity and vote), and the jobs no earlier run has finished."""
    jobs = task.jobs(entities)
    keys = {job.slot: provider.journal_key(task, job) for job in jobs}
    statuses = index.statuses(list(keys.values()))
    return jobs, keys, [job for job, status in zip(jobs, statuses) if status not in FINAL]


def run_task(task: Task, provider: Provider, journal: Journal, index: AnswerIndex, reporter: Reporter, timer: Timer,
             chunk_size: int, sink: Sink, sink_stage: Optional[str] = None) -> dict[str, Any]:
    """Ask what is pending, a chunk at a time, handing each chunk's entities and accepted records
    (with their jobs) to ``sink``; return the task's counts, taken from the answers as journaled, so earlier
    runs' answers count the same as this run's. Asking is timed as ``task_<name>``, the sink as
    ``sink_stage`` (the same, if not given)."""
    asking = f"task_{task.name}"
    parts = chunks(task, provider, chunk_size)
    stage = reporter.stage(f"Augmenting {task.name}", total=sum(map(len, parts)) * task.jobs_per_entity)
    tally: Counter = Counter()
    errors: set[str] = set()
    empty: Counter = Counter()
    for entities in parts:
        with timer(asking):
            accepted = _ask_chunk(task, provider, journal, index, entities, stage, tally, errors)
        if task.name != "edges":
            for _, record in accepted:
                empty.update({name: not value for name, value in record.items()})
        with timer(sink_stage or asking):
            sink(entities, accepted)
    counts: dict[str, Any] = {key: tally[key] for key in ("requested", "accepted", "failed", "unanswered", "reasked", "from_earlier_run",
                                                           "input_tokens", "output_tokens")}
    counts["cost_usd"] = round(tally["cost_usd"], 6)
    if errors:
        counts["unanswered_errors"] = sorted(errors)[:5]
    if empty:
        counts["empty_fields"] = dict(empty)
    return counts


def _ask_chunk(task: Task, provider: Provider, journal: Journal, index: AnswerIndex, entities: list[str], stage: Stage,
               tally: Counter, errors: set[str]) -> Accepted:
    """One chunk asked and journaled; its accepted records, with their jobs."""
    jobs, keys, pending = pending_jobs(task, provider, index, entities)
    stage.advance(len(jobs) - len(pending), resumed=len(jobs) - len(pending))
    answered: dict[Slot, Answer] = {}

    def emit(outcome: Outcome) -> None:
        job = outcome.job
        entry = AnswerEntry(key=keys[job.slot], task=task.name, entity=job.entity, vote=job.vote, model=provider.model,
                            request_hash=outcome.request_hash, status=outcome.status, record=outcome.record,
                            error=outcome.error, raw=outcome.raw, reasks=outcome.reasks, input_tokens=outcome.input_tokens,
                            output_tokens=outcome.output_tokens, cost=outcome.cost)
        journal.append(entry.model_dump())
        answered[job.slot] = Answer.of(entry)
        if outcome.retryable:
            errors.add(outcome.error)
        stage.advance(accepted=int(outcome.status == "accepted"), failed=int(outcome.status == "failed"),
                      unanswered=int(outcome.retryable), reasked=outcome.reasks,
                      tokens=outcome.input_tokens + outcome.output_tokens, cost=outcome.cost)

    asyncio.run(provider.run(task, pending, emit))
    journal.sync()
    answers = {**index.answers(journal, {slot: key for slot, key in keys.items() if slot not in answered}), **answered}
    accepted = [(job, answers[job.slot].record) for job in jobs if job.slot in answers and answers[job.slot].status == "accepted"]
    _count(tally, jobs, pending, answers, accepted)
    return accepted


def _count(tally: Counter, jobs: list[Job], pending: list[Job], answers: dict[Slot, Answer], accepted: Accepted) -> None:
    final = sum(a.status in FINAL for a in answers.values())
    tally.update(requested=len(jobs), accepted=len(accepted), failed=final - len(accepted), unanswered=len(jobs) - final,
                 reasked=sum(a.reasks for a in answers.values()), from_earlier_run=len(jobs) - len(pending),
                 input_tokens=sum(a.input_tokens for a in answers.values()), output_tokens=sum(a.output_tokens for a in answers.values()))
    tally["cost_usd"] += sum(a.cost for a in answers.values())


def estimate(task: Task, provider: Provider, index: AnswerIndex, chunk_size: int) -> dict[str, Any]:
    """What the task would still send, a chunk at a time: finished answers in the journal are not counted again."""
    requests = input_tokens = output_tokens = 0
    cost: Optional[float] = 0.0
    for entities in chunks(task, provider, chunk_size):
        _, _, pending = pending_jobs(task, provider, index, entities)
        chunk_in, chunk_out, chunk_cost = provider.estimate(task, pending)
        requests, input_tokens, output_tokens = requests + len(pending), input_tokens + chunk_in, output_tokens + chunk_out
        cost = None if cost is None or chunk_cost is None else cost + chunk_cost
    return {"requests": requests, "input_tokens": input_tokens, "output_tokens": output_tokens, "cost_usd": cost}
