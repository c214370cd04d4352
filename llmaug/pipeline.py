"""``llmaug augment`` as a library call: dataset -> split -> candidates -> jobs -> provider ->
validated records (journal) -> embeddings -> atomic files."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Iterator, Optional

import pandas as pd

from . import __version__
from .atomic import write_atomic_file, write_text_atomically
from .config import Settings
from .dataset import SourceDataset, load_source
from .embedding import CachedEncoder, get_encoder
from .input.usable import check_rankable, usable_interactions
from .journal import AnswerEntry, Journal, journal_key, usable_answers
from .progress import Reporter, quiet_reporter
from .prompt_data import build_prompt_data
from .records import describe
from .providers import ProviderContext, get_provider
from .providers.base import Outcome, Provider
from .run_dir import RunDir
from .split import Split, split_interactions
from .tasks import TASKS, Job, Task
from .writer import AugmentedData, commit, write_dataset

EMBEDDED_TASKS = {"users": "useremb", "items": "itememb"}


class Timer:
    """Wall and CPU seconds per stage, for the manifest (CPU shows what llmaug itself costs)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[name] = round(self.wall.get(name, 0.0) + time.perf_counter() - wall, 3)
            self.cpu[name] = round(self.cpu.get(name, 0.0) + time.process_time() - cpu, 3)


def augment(
    dataset: str, out: Path, settings: Settings, reporter: Optional[Reporter] = None, fresh: bool = False, dry_run: bool = False
) -> dict[str, Any]:
    """Run the whole augmentation and return the manifest (or, with ``dry_run``, the estimate).

    Re-running into the same ``out`` continues: finished answers come from the journal.
    """
    reporter = reporter or quiet_reporter()
    timer = Timer()
    # Everything a user can get wrong is checked before anything is written.
    source = load_source(dataset, settings)
    run = RunDir(out)
    run.check(source.directory)
    provider_factory = get_provider(settings)
    with timer("split"):
        usable = usable_interactions(source)
        split = split_interactions(usable.inter, source.uid_field, settings.split, settings.seed, settings.train_fraction)
        if "edges" in settings.tasks:
            check_rankable(split.train, source, settings.candidates)
        data = build_prompt_data(source, split.train, settings)
    for warning in usable.warnings(source):
        reporter.warn(warning)

    with run.claimed(source.directory, fresh), reporter.running():
        without_pool = 0
        if "edges" in settings.tasks:
            with timer("candidates"):
                data.candidates.update(_candidates(run, source, split, settings, reporter))
            without_pool = len(set(data.histories) - set(data.candidates))
            if without_pool:
                reporter.warn(f"llmaug: warning: users with fewer than {settings.candidates} items they have not interacted with: "
                              f"{without_pool:,}; they get no candidate pool and no augmented edge")
        item_ids = list(data.item_text)
        item_index = {item: k for k, item in enumerate(item_ids)}
        context = ProviderContext(data, item_index, None, run.state, reporter.warn)
        if dry_run:  # no encoder either: a paid embedding model would bill for the item texts
            with contextlib.closing(provider_factory(settings, context)) as provider:
                return _estimate(provider, data, run, settings)
        counts: dict[str, dict[str, Any]] = {}
        with _load_encoder(settings, run, reporter, timer) as encoder, Journal(run.journal) as journal:
            with timer("item_text_embedding"):
                item_vectors = encoder.encode([describe(data.item_text[i]) for i in item_ids], reporter, "Embedding item text")
            provider = provider_factory(settings, dataclasses.replace(context, item_vectors=item_vectors))
            augmented = AugmentedData(candidates=data.candidates, vectors={"itemtextemb": (item_ids, item_vectors)})
            finished, unusable = usable_answers(journal.entries())
            skipped_lines = journal.skipped_lines + unusable
            _warn_about_journal(run, provider, finished, skipped_lines, reporter)
            with contextlib.closing(provider):  # stops a managed server on success, error and Ctrl-C
                for name in settings.tasks:
                    task = TASKS[name](data)
                    with timer(f"task_{name}"):
                        entries, counts[name] = _run_task(task, provider, journal, finished, reporter)
                    _collect(task, entries, augmented)
                    if name in EMBEDDED_TASKS:
                        with timer(f"{name}_embedding"):
                            ids, texts = _embed_inputs(task, entries)
                            augmented.vectors[EMBEDDED_TASKS[name]] = (ids, encoder.encode(texts, reporter, f"Embedding {name}"))
        with timer("write"):
            files = write_dataset(run.staging, run.out, source, split, augmented, settings.item_attributes, settings.user_profile)
        inputs = {**usable.manifest(), "users_without_candidate_pool": without_pool}
        manifest = _manifest(source, settings, provider, encoder, split, inputs, counts, timer, files, skipped_lines)
        commit(run.staging, run.out, files, manifest)
    return manifest


def _estimate(provider: Provider, data, run: RunDir, settings: Settings) -> dict[str, Any]:
    """What the run would still send: finished answers in the journal are not counted again."""
    finished, _ = usable_answers(Journal(run.journal).entries())
    estimate: dict[str, Any] = {"model": settings.model, "tasks": {}}
    for name in settings.tasks:
        task = TASKS[name](data)
        _, _, jobs = _plan(task, provider, finished)
        input_tokens, output_tokens, cost = provider.estimate(task, jobs)
        estimate["tasks"][name] = {"requests": len(jobs), "input_tokens": input_tokens, "output_tokens": output_tokens, "cost_usd": cost}
    costs = [t["cost_usd"] for t in estimate["tasks"].values()]
    estimate["cost_usd"] = None if None in costs else round(sum(costs), 6)
    return estimate


def _warn_about_journal(run: RunDir, provider: Provider, finished: dict[str, dict], skipped_lines: int, reporter: Reporter) -> None:
    if skipped_lines:
        reporter.warn(f"llmaug: warning: {skipped_lines:,} lines of {run.journal} are unreadable or not in this llmaug's format; "
                      "their requests are asked again")
    others = sorted({e["model"] for e in finished.values()} - {provider.model})
    if others:
        reporter.warn(f"llmaug: warning: {run.journal} holds answers from {', '.join(others)}; this run asks {provider.model} "
                      "and leaves them there for a run with that model")


def _load_encoder(settings: Settings, run: RunDir, reporter: Reporter, timer: Timer) -> "CachedEncoder":
    stage = reporter.stage("Loading encoder", total=1)
    with timer("encoder_load"):
        encoder = get_encoder(settings)
    stage.advance()
    # Paid embeddings are journaled like answers; the local encoder is cheaper to rerun than to store.
    return CachedEncoder(encoder, None if settings.embedding_model == "local" else Journal(run.embeddings))


def _candidates(run: RunDir, source: SourceDataset, split: Split, settings: Settings, reporter: Reporter) -> dict[str, list[str]]:
    """Rank once per (split, base model settings): a re-run reuses the pools its answers were built on."""
    fingerprint = hashlib.sha256(
        json.dumps(
            [settings.candidate_model, settings.candidates, settings.candidate_epochs, settings.candidate_config, settings.seed],
            sort_keys=True,
        ).encode()
        + pd.util.hash_pandas_object(split.train, index=False).values.tobytes()
    ).hexdigest()[:16]
    cache = run.state / f"candidates-{fingerprint}.json"
    if cache.is_file():
        return json.loads(cache.read_text(encoding="utf-8"))
    # The base model's workspace holds the training split only (valid/test are header-only files),
    # so no validation or test interaction can shape a candidate pool.
    for part, frame in split.parts().items():
        rows = frame if part == "train" else frame.iloc[:0]
        write_atomic_file(run.workspace / f"{run.workspace.name}.{part}.inter", rows, source.inter.types)
    from .candidates import rank_candidates  # torch: imported once needed, so a mistake is reported at once

    stage = reporter.stage(f"Training {settings.candidate_model}", total=settings.candidate_epochs)
    ranked = rank_candidates(
        run.workspace,
        source.uid_field,
        source.iid_field,
        settings.candidate_model,
        settings.candidates,
        settings.candidate_epochs,
        settings.seed,
        settings.candidate_config,
        on_epoch=lambda *_: stage.advance(),
    )
    write_text_atomically(cache, json.dumps(ranked, ensure_ascii=False))
    return ranked


FINAL = ("accepted", "failed")  # a request that ended in "error" got no answer: the next run asks again


def _plan(task: Task, provider: Provider, finished: dict[str, dict]) -> tuple[list[Job], dict[str, str], list[Job]]:
    """The task's jobs, their journal keys, and the jobs no earlier run has finished."""
    jobs = task.jobs()
    keys = {job.entity: journal_key(task.name, job.entity, provider.model, provider.request_hash(task, job)) for job in jobs}
    pending = [job for job in jobs if finished.get(keys[job.entity], {}).get("status") not in FINAL]
    return jobs, keys, pending


def _run_task(task: Task, provider: Provider, journal: Journal, finished: dict[str, dict], reporter: Reporter) -> tuple[list[tuple[Job, dict]], dict[str, Any]]:
    jobs, keys, pending = _plan(task, provider, finished)
    done = lambda job: finished.get(keys[job.entity], {}).get("status") in FINAL  # noqa: E731
    stage = reporter.stage(f"Augmenting {task.name}", total=len(jobs))
    stage.advance(len(jobs) - len(pending), resumed=len(jobs) - len(pending))
    unanswered: list[Outcome] = []

    def emit(outcome: Outcome) -> None:
        job = outcome.job
        entry = AnswerEntry(
            key=keys[job.entity],
            task=task.name,
            entity=job.entity,
            model=provider.model,
            request_hash=outcome.request_hash,
            status=outcome.status,
            record=outcome.record,
            error=outcome.error,
            raw=outcome.raw,
            reasks=outcome.reasks,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            cost=outcome.cost,
        ).model_dump()
        journal.append(entry)
        finished[entry["key"]] = entry
        if outcome.retryable:
            unanswered.append(outcome)
        stage.advance(
            accepted=int(outcome.status == "accepted"),
            failed=int(outcome.status == "failed"),
            unanswered=int(outcome.retryable),
            reasked=outcome.reasks,
            tokens=outcome.input_tokens + outcome.output_tokens,
            cost=outcome.cost,
        )

    asyncio.run(provider.run(task, pending, emit))
    journal.sync()
    entries = [(job, finished[keys[job.entity]]) for job in jobs if done(job)]
    accepted = [e for _, e in entries if e["status"] == "accepted"]
    spent = [finished[keys[job.entity]] for job in jobs if keys[job.entity] in finished]
    counts = {
        "requested": len(jobs),
        "accepted": len(accepted),
        "failed": len(entries) - len(accepted),
        "unanswered": len(jobs) - len(entries),
        "reasked": sum(e["reasks"] for e in spent),
        "from_earlier_run": len(jobs) - len(pending),
        "input_tokens": sum(e["input_tokens"] for e in spent),
        "output_tokens": sum(e["output_tokens"] for e in spent),
        "cost_usd": round(sum(e["cost"] for e in spent), 6),
    }
    if unanswered:
        counts["unanswered_errors"] = sorted({o.error for o in unanswered})[:5]
    if accepted and task.name != "edges":
        counts["empty_fields"] = {f: sum(not e["record"].get(f) for e in accepted) for f in accepted[0]["record"]}
    return entries, counts


def _collect(task: Task, entries: list[tuple[Job, dict]], augmented: AugmentedData) -> None:
    records = {job.entity: entry["record"] for job, entry in entries if entry["status"] == "accepted"}
    target = {"edges": augmented.edges, "users": augmented.profiles, "items": augmented.attributes}[task.name]
    target.update(records)


def _embed_inputs(task: Task, entries: list[tuple[Job, dict]]) -> tuple[list[str], list[str]]:
    pairs = [(job.entity, task.embed_text(job, e["record"])) for job, e in entries if e["status"] == "accepted"]
    pairs = [(entity, text) for entity, text in pairs if text]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _manifest(source, settings, provider, encoder, split, inputs, counts, timer, files, skipped_lines) -> dict[str, Any]:
    return {
        "llmaug_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": {"name": source.name, "directory": str(source.directory)},
        "provider": "offline" if provider.model == "offline" else "litellm",
        "model": provider.model,
        "embedding_model": encoder.name,
        "embedding_cost_usd": round(encoder.cost, 6),
        "template_hashes": getattr(provider, "template_hashes", {}),
        "llm": provider.describe(),
        "input": inputs,
        "split": {"train": len(split.train), "valid": len(split.valid), "test": len(split.test)},
        "tasks": counts,
        "cost_usd": round(sum(c["cost_usd"] for c in counts.values()) + encoder.cost, 6),
        "journal_unreadable_lines": skipped_lines,
        "timings_s": timer.wall,
        "cpu_s": timer.cpu,
        "files": files,
        "settings": settings.model_dump(mode="json"),
    }
