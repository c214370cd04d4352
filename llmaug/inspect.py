"""Showing a prompt exactly as a run would send it, without running anything."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .config import Settings
from .dataset import load_source
from .errors import DatasetError
from .pipeline import _candidates, _interactions_with_known_items
from .progress import quiet_reporter
from .prompt_data import build_prompt_data
from .rendering import Messages, PromptRenderer
from .run_dir import RunDir
from .split import split_interactions
from .tasks import TASKS


def render_messages(dataset: str, settings: Settings, task_name: str, entity: str) -> Messages:
    source = load_source(dataset, settings)
    inter, _ = _interactions_with_known_items(source)
    split = split_interactions(inter, source.uid_field, settings.split, settings.seed, settings.train_fraction)
    data = build_prompt_data(source, split.train, settings)
    known = data.item_text if TASKS[task_name].entity_kind == "item" else data.histories
    if entity not in known:
        raise DatasetError(f"no {TASKS[task_name].entity_kind} '{entity}' in {source.name} (training split)")
    if task_name == "edges":
        with tempfile.TemporaryDirectory() as scratch:
            # The same seed and settings give the same pools a run would rank.
            data.candidates.update(_candidates(RunDir(Path(scratch) / source.name), source, split, settings, quiet_reporter()))
    task = TASKS[task_name](data)
    job = next(j for j in task.jobs() if j.entity == entity)
    return PromptRenderer(settings.prompts, settings.domain).render(task, job)
