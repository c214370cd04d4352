"""``llmaug augment`` as a library call: dataset -> split -> candidates -> prompt data -> per task,
a chunk of users at a time (``driver``): jobs -> provider -> validated records (journal) -> sinks
(embeddings, atomic files in staging) -> the dataset committed."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Optional

from . import __version__
from .atomic import write_text_atomically
from .candidates import ADAM, BaseModelPlan, plan_base_model
from .candidates.pools import Pools
from .config import Settings
from .dataset import SourceDataset, load_source
from .distinct import digest_rows
from .driver import estimate, run_task
from .embedding import CachedEncoder, get_encoder
from .input.usable import check_rankable, usable_interactions
from .monitor import Timer, large_blocks_returned, release_freed_memory, survivors_set_aside
from .journal import AnswerIndex, Journal, index_answers
from .progress import Reporter, quiet_reporter
from .prompt_data import build_prompt_data
from .records import describe
from .providers import ProviderContext, get_provider
from .providers.base import Provider
from .run_dir import RunDir
from .sinks import Outputs
from .split import Split, split_interactions
from .tasks import TASKS
from .writer import AugmentedData, attribute_suffix, commit, write_features, write_interactions


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
    # Stages that hold much and compute little hand large blocks back as they free them; the
    # encoder and the base model's batches run without (``large_blocks_returned``).
    with timer("read"), reporter.step("Reading dataset"), large_blocks_returned():
        source = load_source(dataset, settings)
        release_freed_memory()  # the file's bytes and its cells as text, before the split's large arrays
    run = RunDir(out)
    run.check(source.directory)
    with timer("split"), reporter.step("Splitting"), large_blocks_returned():
        usable = usable_interactions(source)
        source = source.split_off()  # before the split copies the usable rows into its parts: the file's rows are not read again
        split = split_interactions(usable.inter, source.uid_field, settings.split, settings.seed, settings.train_fraction,
                                   settings.split_method, source.time_field if settings.split_order == "time" else None)
        usable = usable.split_off()
        if "edges" in settings.tasks:
            check_rankable(split.train, source, settings.candidates)
        release_freed_memory()
    for warning in usable.warnings(source):
        reporter.warn(warning)

    with run.claimed(source.directory, fresh), reporter.running():
        without_pool, plan, pools = 0, None, None
        if "edges" in settings.tasks:
            with timer("candidates"):
                pools, plan = _candidates(run, source, split, settings, reporter)
                release_freed_memory()  # what the base model's stage left in the heap: 0.46 GB at 10^6 users
        # The prompt data after the base model, which needs the training split alone, so that it
        # does not sit beside RecBole's dataset and model.
        with timer("prompt_data"), large_blocks_returned():
            data = build_prompt_data(source, split.train, settings, pools)
            del pools
            user_ids = split.users(source.uid_field)  # for the .user file
            if settings.split_order != "time":  # only sequence files read the parts' ids and times: the parts' own are copied by line
                split.let_go(*filter(None, (source.uid_field, source.iid_field, source.time_field)))
            release_freed_memory()
        if "edges" in settings.tasks:
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
        with _load_encoder(settings, run, reporter, timer) as encoder, Journal(run.journal) as journal, contextlib.ExitStack() as files:
            # Nothing reads the split's parts until their own files are written: they wait on disk while the
            # tasks run and the other files are written, which need only its users.
            with split.set_aside(run.state):
                with timer("item_text_embedding"):
                    item_vectors = encoder.encode([describe(data.item_text[i]) for i in item_ids], reporter, "Embedding item text")
                provider = provider_factory(settings, dataclasses.replace(context, item_vectors=item_vectors))
                augmented = AugmentedData(candidates=data.candidates or None, vectors={"itemtextemb": (item_ids, item_vectors)})
                index = index_answers(journal)
                _warn_about_journal(run, provider, index, reporter)
                outputs = Outputs(run.staging, source, settings, augmented, encoder, reporter, files)
                with contextlib.closing(provider):  # stops a managed server on success, error and Ctrl-C
                    for name in settings.tasks:
                        task = TASKS[name](data)
                        sink, sink_stage = outputs.sink(task)
                        counts[name] = run_task(task, provider, journal, index, reporter, timer, settings.chunk_size, sink, sink_stage)
                        counts[name].update(outputs.finish(task))
                        release_freed_memory()  # the last chunk's jobs and answers
                        if name == "items":
                            with timer("items_embedding"):
                                outputs.embed_items()
                            with timer("attribute_embedding"):
                                _embed_each_attribute(augmented, settings.item_attributes, encoder, reporter)
                with timer("write"), reporter.step("Writing dataset"), large_blocks_returned():
                    written = write_features(run.staging, run.out, source, user_ids, augmented, settings.item_attributes,
                                             settings.user_profile, sequences=settings.split_order == "time",
                                             label_threshold=settings.label_threshold)
                    release_freed_memory()  # before the parts are read back
            with timer("write_interactions"), reporter.step("Writing interactions"), large_blocks_returned():
                written = write_interactions(run.staging, source, split, sequences=settings.split_order == "time") + written
        inputs = {**usable.manifest(), "users_without_candidate_pool": without_pool}
        manifest = _manifest(source, settings, provider, encoder, split, inputs, plan, counts, timer, written, index.unusable)
        commit(run.staging, run.out, written, manifest)
    return manifest


def _estimate(provider: Provider, data, run: RunDir, settings: Settings) -> dict[str, Any]:
    """What the run would still send: finished answers in the journal are not counted again."""
    index = index_answers(Journal(run.journal))
    tasks = {name: estimate(TASKS[name](data), provider, index, settings.chunk_size) for name in settings.tasks}
    costs = [t["cost_usd"] for t in tasks.values()]
    return {"model": settings.model, "tasks": tasks, "cost_usd": None if None in costs else round(sum(costs), 6)}


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
    return CachedEncoder(encoder, None if settings.embedding_model == "local" else Journal(run.embeddings), spill_dir=run.state)


def _candidates(run: RunDir, source: SourceDataset, split: Split, settings: Settings, reporter: Reporter) -> tuple[Pools, BaseModelPlan]:
    """Rank once per (split, base model plan): a re-run reuses the pools its answers were built on."""
    plan = plan_base_model(settings.candidate_model, settings.candidate_epochs, settings.candidate_config, len(split.train))
    identity = [plan.model, settings.candidates, plan.epochs, plan.config, settings.seed]
    identity += [] if plan.optimizer == ADAM else [plan.optimizer]  # a plan trained as RecBole trains keeps its caches' names
    fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True).encode())
    for field in (source.uid_field, source.iid_field):  # all the base model sees: no validation or test interaction
        digest_rows(fingerprint, split.train[field])
    cache = run.state / f"candidates-{fingerprint.hexdigest()[:16]}.json"
    if cache.is_file():
        with cache.open(encoding="utf-8") as cached:
            return Pools.read_json(cached), plan
    from .candidates.ranking import rank_candidates  # torch: imported once needed, so a mistake is reported at once

    ids = split.train[[source.uid_field, source.iid_field]]  # all the model reads; the parts wait on disk while it trains and ranks
    run.state.mkdir(parents=True, exist_ok=True)  # a scratch run (``prompts render``) has none yet
    with split.set_aside(run.state):
        ranked = rank_candidates(ids, run.workspace, source.uid_field, source.iid_field, plan, settings.candidates, settings.seed, reporter.stage)
    write_text_atomically(cache, ranked.write_json)
    return ranked, plan


def _embed_each_attribute(augmented: AugmentedData, attributes: list[str], encoder: CachedEncoder, reporter: Reporter) -> None:
    """One vector per stated value of each generated attribute, the value alone: the reference's
    reading (one embedding per attribute column). Repeated values (a country) are encoded once."""
    for attribute in attributes:
        stated = {item: record[attribute] for item, record in augmented.attributes.items() if record.get(attribute)}
        vectors = encoder.encode(list(stated.values()), reporter, f"Embedding {attribute.replace('_', ' ')}")
        augmented.vectors[attribute_suffix(attribute)] = (list(stated), vectors)


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
