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
from typing import Any, Optional

import pandas as pd

from . import __version__
from .atomic import write_text_atomically
from .candidates import BaseModelPlan, plan_base_model
from .candidates.order import consensus
from .config import Settings
from .dataset import SourceDataset, load_source
from .embedding import CachedEncoder, get_encoder
from .input.usable import check_rankable, usable_interactions
from .monitor import Timer, release_freed_memory, survivors_set_aside
from .journal import STATUSES, AnswerEntry, AnswerIndex, Journal, Slot, answers_for, index_answers
from .progress import Reporter, quiet_reporter
from .prompt_data import build_prompt_data
from .records import describe
from .providers import ProviderContext, get_provider
from .providers.base import Outcome, Provider
from .run_dir import RunDir
from .split import Split, split_interactions
from .tasks import TASKS, Job, Task
from .writer import AugmentedData, attribute_suffix, commit, write_dataset

EMBEDDED_TASKS = {"users": "useremb", "items": "itememb"}


def augment(
    dataset: str, out: Path, settings: Settings, reporter: Optional[Reporter] = None, fresh: bool = False, dry_run: bool = False
) -> dict[str, Any]:
    """Run the whole augmentation and return the manifest (or, with ``dry_run``, the estimate).

    Re-running into the same ``out`` continues: finished answers come from the journal.
    """
    with survivors_set_aside():
        return _augment(dataset, out, settings, reporter or quiet_reporter(), fresh, dry_run)


def _augment(dataset: str, out: Path, settings: Settings, reporter: Reporter, fresh: bool, dry_run: bool) -> dict[str, Any]:
    timer = Timer()
    # Everything a user can get wrong is checked before anything is written; the provider first, as
    # it needs the settings alone (a cluster or model that is not there is said before the dataset is read).
    provider_factory = get_provider(settings)
    with timer("read"), reporter.step("Reading dataset"):
        source = load_source(dataset, settings)
    run = RunDir(out)
    run.check(source.directory)
    with timer("split"), reporter.step("Splitting"):
        usable = usable_interactions(source)
        split = split_interactions(usable.inter, source.uid_field, settings.split, settings.seed, settings.train_fraction,
                                   settings.split_method, source.time_field if settings.split_order == "time" else None)
        source, usable = source.split_off(), usable.split_off()
        if "edges" in settings.tasks:
            check_rankable(split.train, source, settings.candidates)
        data = build_prompt_data(source, split.train, settings)
        release_freed_memory()
    for warning in usable.warnings(source):
        reporter.warn(warning)

    with run.claimed(source.directory, fresh), reporter.running():
        without_pool, plan = 0, None
        if "edges" in settings.tasks:
            with timer("candidates"):
                pools, plan = _candidates(run, source, split, settings, reporter)
                data.candidates.update(pools)
                release_freed_memory()  # RecBole's dataset and model
            without_pool = len(set(data.histories) - set(data.candidates))
            if without_pool:
                reporter.warn(f"llmaug: warning: users with fewer than {settings.candidates} items they have not interacted with: "
                              f"{without_pool:,}; they get no candidate pool and no augmented edge")
        item_ids = list(data.item_text)
        item_index = {item: k for k, item in enumerate(item_ids)}
        context = ProviderContext(data, item_index, None, run.state, reporter.warn, reporter.stage)
        if dry_run:  # no encoder either: a paid embedding model would bill for the item texts
            with contextlib.closing(provider_factory(settings, context)) as provider:
                return _estimate(provider, data, run, settings)
        counts: dict[str, dict[str, Any]] = {}
        with _load_encoder(settings, run, reporter, timer) as encoder, Journal(run.journal) as journal:
            with timer("item_text_embedding"):
                item_vectors = encoder.encode([describe(data.item_text[i]) for i in item_ids], reporter, "Embedding item text")
            provider = provider_factory(settings, dataclasses.replace(context, item_vectors=item_vectors))
            augmented = AugmentedData(candidates=data.candidates, vectors={"itemtextemb": (item_ids, item_vectors)})
            index = index_answers(journal)
            _warn_about_journal(run, provider, index, reporter)
            with contextlib.closing(provider):  # stops a managed server on success, error and Ctrl-C
                for name in settings.tasks:
                    task = TASKS[name](data)
                    with timer(f"task_{name}"):
                        accepted, counts[name] = _run_task(task, provider, journal, index, reporter)
                    if name == "edges":
                        counts[name].update(_collect_edges(accepted, settings, augmented))
                    else:
                        _collect(task, accepted, augmented)
                    ids, texts = _embed_inputs(task, accepted) if name in EMBEDDED_TASKS else ([], [])
                    # The jobs, each with its prompt's context, are let go before the next stage:
                    # at 1M users the edges' alone hold 0.9 GB, which would stay through the profiles.
                    del accepted
                    release_freed_memory()  # the task's jobs and the answers read back
                    if name in EMBEDDED_TASKS:
                        with timer(f"{name}_embedding"):
                            augmented.vectors[EMBEDDED_TASKS[name]] = (ids, encoder.encode(texts, reporter, f"Embedding {name}"))
                        del ids, texts
                    if name == "items":
                        with timer("attribute_embedding"):
                            _embed_each_attribute(augmented, settings.item_attributes, encoder, reporter)
        with timer("write"), reporter.step("Writing dataset"):
            files = write_dataset(run.staging, run.out, source, split, augmented, settings.item_attributes, settings.user_profile,
                                  sequences=settings.split_order == "time", label_threshold=settings.label_threshold)
        inputs = {**usable.manifest(), "users_without_candidate_pool": without_pool}
        manifest = _manifest(source, settings, provider, encoder, split, inputs, plan, counts, timer, files, index.unusable)
        commit(run.staging, run.out, files, manifest)
    return manifest


def _estimate(provider: Provider, data, run: RunDir, settings: Settings) -> dict[str, Any]:
    """What the run would still send: finished answers in the journal are not counted again."""
    index = index_answers(Journal(run.journal))
    estimate: dict[str, Any] = {"model": settings.model, "tasks": {}}
    for name in settings.tasks:
        task = TASKS[name](data)
        _, _, jobs = _plan(task, provider, index)
        input_tokens, output_tokens, cost = provider.estimate(task, jobs)
        estimate["tasks"][name] = {"requests": len(jobs), "input_tokens": input_tokens, "output_tokens": output_tokens, "cost_usd": cost}
    costs = [t["cost_usd"] for t in estimate["tasks"].values()]
    estimate["cost_usd"] = None if None in costs else round(sum(costs), 6)
    return estimate


def _warn_about_journal(run: RunDir, provider: Provider, index: AnswerIndex, reporter: Reporter) -> None:
    if index.unusable:
        reporter.warn(f"llmaug: warning: {index.unusable:,} lines of {run.journal} are unreadable or not in this llmaug's format; "
                      "their requests are asked again")
    others = sorted(index.models - {provider.model})
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


def _candidates(run: RunDir, source: SourceDataset, split: Split, settings: Settings, reporter: Reporter) -> tuple[dict[str, list[str]], BaseModelPlan]:
    """Rank once per (split, base model plan): a re-run reuses the pools its answers were built on."""
    plan = plan_base_model(settings.candidate_model, settings.candidate_epochs, settings.candidate_config, len(split.train))
    fingerprint = hashlib.sha256(json.dumps([plan.model, settings.candidates, plan.epochs, plan.config, settings.seed], sort_keys=True).encode())
    for field in (source.uid_field, source.iid_field):  # all the base model sees: no validation or test interaction
        fingerprint.update(pd.util.hash_pandas_object(split.train[field], index=False).values.tobytes())
    cache = run.state / f"candidates-{fingerprint.hexdigest()[:16]}.json"
    if cache.is_file():
        return json.loads(cache.read_text(encoding="utf-8")), plan
    from .candidates.ranking import rank_candidates  # torch: imported once needed, so a mistake is reported at once

    ranked = rank_candidates(split.train, run.workspace, source.uid_field, source.iid_field, plan, settings.candidates, settings.seed, reporter.stage)
    write_text_atomically(cache, json.dumps(ranked, ensure_ascii=False))
    return ranked, plan


FINAL = ("accepted", "failed")  # a request that ended in "error" got no answer: the next run asks again


def _plan(task: Task, provider: Provider, index: AnswerIndex) -> tuple[list[Job], dict[Slot, str], list[Job]]:
    """The task's jobs, their journal keys (by entity and vote), and the jobs no earlier run has finished."""
    jobs = task.jobs()
    keys = {job.slot: provider.journal_key(task, job) for job in jobs}
    pending = [job for job in jobs if index.status.get(keys[job.slot]) not in FINAL]
    return jobs, keys, pending


def _run_task(task: Task, provider: Provider, journal: Journal, index: AnswerIndex, reporter: Reporter) -> tuple[list[tuple[Job, dict]], dict[str, Any]]:
    """Ask what is pending; return the accepted records (with their jobs) and the task's counts,
    both read back from the journal so earlier runs' answers count the same as this run's."""
    jobs, keys, pending = _plan(task, provider, index)
    stage = reporter.stage(f"Augmenting {task.name}", total=len(jobs))
    stage.advance(len(jobs) - len(pending), resumed=len(jobs) - len(pending))
    unanswered: list[Outcome] = []

    def emit(outcome: Outcome) -> None:
        job = outcome.job
        entry = AnswerEntry(
            key=keys[job.slot],
            task=task.name,
            entity=job.entity,
            vote=job.vote,
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
        index.status[entry["key"]] = STATUSES[entry["status"]]
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
    answers = answers_for(journal, keys)
    final = [a for a in answers.values() if a.status in FINAL]
    accepted = [(job, answers[job.slot].record) for job in jobs if job.slot in answers and answers[job.slot].status == "accepted"]
    counts = {
        "requested": len(jobs),
        "accepted": len(accepted),
        "failed": len(final) - len(accepted),
        "unanswered": len(jobs) - len(final),
        "reasked": sum(a.reasks for a in answers.values()),
        "from_earlier_run": len(jobs) - len(pending),
        "input_tokens": sum(a.input_tokens for a in answers.values()),
        "output_tokens": sum(a.output_tokens for a in answers.values()),
        "cost_usd": round(sum(a.cost for a in answers.values()), 6),
    }
    if unanswered:
        counts["unanswered_errors"] = sorted({o.error for o in unanswered})[:5]
    if accepted and task.name != "edges":
        counts["empty_fields"] = {f: sum(not record.get(f) for _, record in accepted) for f in accepted[0][1]}
    return accepted, counts


def _collect(task: Task, accepted: list[tuple[Job, dict]], augmented: AugmentedData) -> None:
    target = {"users": augmented.profiles, "items": augmented.attributes}[task.name]
    target.update((job.entity, record) for job, record in accepted)


def _collect_edges(accepted: list[tuple[Job, dict]], settings: Settings, augmented: AugmentedData) -> dict[str, Any]:
    """One edge per user: the majority of its valid votes (the one answer, with a single vote),
    kept if its agreement reaches ``min_agreement``; what was left out is counted."""
    votes: dict[str, list[tuple[int, str, str]]] = {}
    for job, record in accepted:
        votes.setdefault(job.entity, []).append((job.vote, record["liked"], record["disliked"]))
    no_majority = below = 0
    for user, picks in votes.items():
        edge = consensus(picks, settings.votes)
        if edge is None:
            no_majority += 1
        elif edge.agreement < settings.min_agreement:
            below += 1
        else:
            augmented.edges[user] = {"liked": edge.liked, "disliked": edge.disliked, "agreement": edge.agreement}
    return {"votes": settings.votes, "users_answered": len(votes), "no_majority": no_majority,
            "below_min_agreement": below, "written": len(votes) - no_majority - below}


def _embed_each_attribute(augmented: AugmentedData, attributes: list[str], encoder: CachedEncoder, reporter: Reporter) -> None:
    """One vector per stated value of each generated attribute, the value alone: the reference's
    reading (one embedding per attribute column). Repeated values (a country) are encoded once."""
    for attribute in attributes:
        stated = {item: record[attribute] for item, record in augmented.attributes.items() if record.get(attribute)}
        vectors = encoder.encode(list(stated.values()), reporter, f"Embedding {attribute.replace('_', ' ')}")
        augmented.vectors[attribute_suffix(attribute)] = (list(stated), vectors)


def _embed_inputs(task: Task, accepted: list[tuple[Job, dict]]) -> tuple[list[str], list[str]]:
    pairs = [(job.entity, task.embed_text(job, record)) for job, record in accepted]
    pairs = [(entity, text) for entity, text in pairs if text]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _manifest(source, settings, provider, encoder, split, inputs, plan, counts, timer, files, skipped_lines) -> dict[str, Any]:
    return {
        "llmaug_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": {"name": source.name, "directory": str(source.directory)},
        "provider": "offline" if provider.model == "offline" else "litellm",
        "model": provider.model,
        "embedding_model": encoder.name,
        "embedding_precision": encoder.precision,
        "embedding_cost_usd": round(encoder.cost, 6),
        "template_hashes": getattr(provider, "template_hashes", {}),
        "llm": provider.describe(),
        "input": inputs,
        "split": {"train": len(split.train), "valid": len(split.valid), "test": len(split.test)},
        "base_model": None if plan is None else dataclasses.asdict(plan),
        "tasks": counts,
        "cost_usd": round(sum(c["cost_usd"] for c in counts.values()) + encoder.cost, 6),
        "journal_unreadable_lines": skipped_lines,
        "timings_s": timer.wall,
        "cpu_s": timer.cpu,
        "peak_rss_mb": timer.peak_rss_mb,
        "files": files,
        "settings": settings.model_dump(mode="json"),
    }
