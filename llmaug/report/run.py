"""A finished ``llmaug augment`` directory, read back: the split, the candidate pools, the answers
in the journal and the embedding files. Reading only; the run is never modified.

The answers come from the journal rather than from the atomic files because only the journal
keeps what a judge needs besides the accepted records: failures, their raw answers, re-asks,
tokens and cost, and answers to tasks a later run left out of the dataset.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import yaml

from ..candidates.order import RANKED, Consensus, consensus, display_orders
from ..dataset import read_atomic
from ..errors import DatasetError, OutputError
from ..journal import Journal
from ..run_dir import RunDir
from ..writer import embedding_file


@dataclass(frozen=True)
class Vote:
    """One accepted edge answer: a user's vote-th order and the picks made under it."""

    user: str
    vote: int
    liked: str
    disliked: str
    shown: tuple[int, int]  # displayed numbers of the picks (1 = first line)


@dataclass
class Run:
    directory: Path
    manifest: dict[str, Any]
    uid_field: str
    iid_field: str
    train: dict[str, list[str]]                 # user -> training items, in file order
    held_out: dict[str, set[str]]               # user -> validation + test items (evaluation only)
    candidates: dict[str, list[str]]            # user -> C_u, best first
    answers: dict[str, dict[tuple[str, int], dict[str, Any]]]  # task -> (entity, vote) -> latest entry of the run's model
    items: pd.DataFrame                         # the .item file as text
    other_models: int                           # journal entries of other models, ignored
    unreadable_lines: int

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def settings(self) -> dict[str, Any]:
        return self.manifest.get("settings", {})

    @property
    def votes_asked(self) -> int:
        return int(self.settings.get("votes") or 1)

    @cached_property
    def edge_votes(self) -> tuple[dict[str, list[Vote]], int]:
        """Each user's accepted votes among those the run asks, and how many answers name an item
        outside the user's pool (a journal from other pools), left out."""
        votes: dict[str, list[Vote]] = {}
        outside = 0
        for (user, vote), entry in self.answers.get("edges", {}).items():
            if vote >= self.votes_asked or entry["status"] != "accepted":
                continue
            record, pool = entry["record"], self.candidates.get(user, [])
            if record["liked"] not in pool or record["disliked"] not in pool:
                outside += 1
                continue
            # An answer from before orders were recorded was shown the pool ranked.
            shown = record.get("shown") or [pool.index(record["liked"]) + 1, pool.index(record["disliked"]) + 1]
            votes.setdefault(user, []).append(Vote(user, vote, record["liked"], record["disliked"], tuple(shown)))
        return votes, outside

    @cached_property
    def edges(self) -> dict[str, Optional[Consensus]]:
        """user -> the majority of its votes, as augment computed it; ``None`` where there is none."""
        return {user: consensus([(v.vote, v.liked, v.disliked) for v in picks], self.votes_asked)
                for user, picks in self.edge_votes[0].items()}

    def file(self, suffix: str) -> Path:
        return self.directory / f"{self.name}.{suffix}"

    def vectors(self, suffix: str) -> Optional[dict[str, np.ndarray]]:
        """id -> vector from one of the run's embedding files; ``None`` if the run wrote none."""
        path = self.file(suffix)
        if not path.is_file():
            return None
        id_field, vector_field, _ = embedding_file(suffix)
        frame = _read(path).frame
        return {key: np.array(cell.split(), dtype=np.float32) for key, cell in zip(frame[id_field], frame[vector_field])}

    @cached_property
    def item_text(self) -> dict[str, dict[str, str]]:
        """item -> what a prompt showed of it (title, year, genre), by the run's field roles."""
        roles = {role: column for role, column in self.settings.get("fields", {}).items()
                 if isinstance(column, str) and column in self.items.columns}
        rows = self.items[[self.iid_field, *roles.values()]].to_numpy().tolist()
        return {row[0]: {role: value for role, value in zip(roles, row[1:]) if value} for row in rows}


def load_run(directory: Path) -> Run:
    """Read a finished run, or say in one line why ``directory`` cannot be judged."""
    run_dir = RunDir(directory)
    out = run_dir.out
    if not out.is_dir():
        raise OutputError(f"{directory} is not a directory")
    manifest_path = out / "manifest.json"
    if not manifest_path.is_file():
        if run_dir.state.is_dir():
            raise OutputError(f"{directory} is an unfinished llmaug run (no manifest.json yet): "
                              "run the same `llmaug augment` command again to finish it")
        raise OutputError(f"{directory} is not an llmaug run (no manifest.json)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        fields = yaml.safe_load((out / "recbole.yaml").read_text(encoding="utf-8"))
        uid_field, iid_field = fields["USER_ID_FIELD"], fields["ITEM_ID_FIELD"]
    except (OSError, ValueError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise OutputError(f"{directory} is not a readable llmaug run: {exc}".splitlines()[0]) from None
    if not run_dir.journal.is_file():
        raise OutputError(f"{run_dir.journal} is missing: the report reads every answer from the run's journal")
    name = out.name
    parts = {part: _read(out / f"{name}.{part}.inter").frame for part in ("train", "valid", "test")}
    train = _grouped(parts["train"], uid_field, iid_field)
    held_out: dict[str, set[str]] = defaultdict(set)
    for part in ("valid", "test"):
        for user, items in _grouped(parts[part], uid_field, iid_field).items():
            held_out[user].update(items)
    pools_path = out / f"{name}.candidates"
    candidates = {}
    if pools_path.is_file():
        pools = _read(pools_path).frame
        candidates = dict(zip(pools["user_id"], (cell.split() for cell in pools["candidates"])))
    answers, other_models, unreadable = _answers(Journal(run_dir.journal), manifest.get("model"), manifest.get("settings", {}))
    items = _read(out / f"{name}.item").frame
    return Run(out, manifest, uid_field, iid_field, train, dict(held_out), candidates, answers, items, other_models, unreadable)


def _read(path: Path):
    if not path.is_file():
        raise OutputError(f"{path} is missing: not a complete llmaug run")
    try:
        return read_atomic(path)
    except DatasetError as exc:
        raise OutputError(str(exc)) from None


def _grouped(frame: pd.DataFrame, key: str, value: str) -> dict[str, list[str]]:
    return {k: list(v) for k, v in frame.groupby(key, sort=False)[value]}


def _answers(journal: Journal, model: Optional[str], settings: dict[str, Any]) -> tuple[dict[str, dict[tuple[str, int], dict[str, Any]]], int, int]:
    """The latest entry per task, entity and vote among the run's model's entries: what the last run
    used. An edge answer shown another order than the run's settings give is a run's with other
    settings, reused by none since: left out."""
    answers: dict[str, dict[tuple[str, int], dict[str, Any]]] = defaultdict(dict)
    other = 0
    order_setting, seed, votes = settings.get("candidate_order", RANKED), settings.get("seed", 0), int(settings.get("votes") or 1)
    orders: dict[tuple[str, int], list[tuple[int, ...]]] = {}

    def shown_in_this_run(user: str, vote: int, order: list[int]) -> bool:
        if vote >= votes:
            return False
        if (user, len(order)) not in orders:
            orders[user, len(order)] = display_orders(len(order), order_setting, seed, user, votes)
        return tuple(order) == orders[user, len(order)][vote]

    for entry in journal.history():
        if entry.get("model") != model:
            other += 1
            continue
        slot, order = (entry["entity"], entry.get("vote", 0)), (entry.get("record") or {}).get("order")
        if order and not shown_in_this_run(*slot, order):
            continue
        answers[entry["task"]][slot] = entry
    return dict(answers), other, journal.skipped_lines
