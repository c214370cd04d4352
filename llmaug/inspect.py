"""Showing a prompt exactly as a run would send it, without running anything."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from .config import Settings
from .dataset import load_source
from .errors import DatasetError
from .input.usable import check_rankable, usable_interactions
from .pipeline import _candidates
from .progress import quiet_reporter
from .prompt_data import build_prompt_data
from .rendering import Messages, PromptRenderer
from .run_dir import RunDir
from .split import split_interactions
from .tasks import TASKS


def render_messages(dataset: str, settings: Settings, task_name: str, entity: str) -> Messages:
    source = load_source(dataset, settings)
    inter = usable_interactions(source).inter
    split = split_interactions(inter, source.uid_field, settings.split, settings.seed, settings.train_fraction)
    if task_name == "edges":
        check_rankable(split.train, source, settings.candidates)
    data = build_prompt_data(source, split.train, settings)
    known = data.item_text if TASKS[task_name].entity_kind == "item" else data.histories
    if entity not in known:
        raise DatasetError(f"no {TASKS[task_name].entity_kind} '{entity}' in {source.name} (training split)")
    if task_name == "edges":
        with tempfile.TemporaryDirectory() as scratch:
            # The same seed and settings give the same pools a run would rank.
            pools, _plan = _candidates(RunDir(Path(scratch) / source.name), source, split, settings, quiet_reporter())
            data = dataclasses.replace(data, candidates=pools)
        if entity not in data.candidates:
            raise DatasetError(f"user '{entity}' has fewer than {settings.candidates} items they have not interacted with, so no candidate pool")
    task = TASKS[task_name](data)
    job = task.jobs([entity])[0]
    return PromptRenderer.for_settings(settings).render(task, job)
