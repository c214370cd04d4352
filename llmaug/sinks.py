"""Where each task's validated records go, a chunk at a time, as the driver hands them over:
edges and user vectors straight into their atomic files in the staging directory, profiles into
a staging file the ``.user`` file is joined from, item attributes (one per item, not per user)
into memory. Nothing held here grows with the users."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from .atomic import AtomicRows
from .candidates.order import consensus
from .config import Settings
from .dataset import SourceDataset
from .driver import Accepted, Sink
from .embedding import CachedEncoder
from .progress import Reporter
from .tasks import Task
from .writer import PROFILE_ROWS, AugmentedData, embedding_file

EDGE_TYPES = {"user_id": "token", "pos_item_id": "token", "neg_item_id": "token", "agreement": "float"}


class Outputs:
    """The sinks of one run's tasks, writing into ``staging``; ``files`` discards what is half
    written if the run fails (the journal keeps the answers, so a re-run rewrites it)."""

    def __init__(self, staging: Path, source: SourceDataset, settings: Settings, augmented: AugmentedData, encoder: CachedEncoder,
                 reporter: Reporter, files: contextlib.ExitStack) -> None:
        self.staging, self.source, self.settings = staging, source, settings
        self.augmented, self.encoder, self.reporter, self.files = augmented, encoder, reporter, files
        self._open: dict[str, AtomicRows] = {}
        self._edge_counts: dict[str, int] = {}
        self._item_texts: dict[str, str] = {}

    def sink(self, task: Task) -> tuple[Sink, Optional[str]]:
        """The task's sink, and the timer stage its work counts in (``None``: the task's own)."""
        if task.name == "edges":
            self._edge_counts = dict.fromkeys(("users_answered", "no_majority", "below_min_agreement", "written"), 0)
            self._rows("augedge", EDGE_TYPES)
            return self._edges, None
        if task.name == "users":
            self._rows(PROFILE_ROWS, {self.source.uid_field: "token", **{f"profile_{p}": "token" for p in self.settings.user_profile}})
            id_field, vector_field, _ = embedding_file("useremb")
            self._rows("useremb", {id_field: "token", vector_field: "float_seq"})
            embedding = self.reporter.stage("Embedding users", total=len(task.entities()))
            return lambda entities, accepted: self._profiles(task, entities, accepted, embedding), "users_embedding"
        return lambda entities, accepted: self._attributes(task, accepted), None

    def finish(self, task: Task) -> dict[str, Any]:
        """Put the task's files in place; what the manifest counts of its output."""
        if task.name == "edges":
            self.augmented.edges_written = self._close("augedge")
            return {"votes": self.settings.votes, **self._edge_counts}
        if task.name == "users":
            if self._close(PROFILE_ROWS):
                self.augmented.profiles = self.staging / PROFILE_ROWS
            if self._close("useremb"):
                self.augmented.vectors["useremb"] = None  # written: the writer leaves it as it is
        return {}

    def embed_items(self) -> None:
        """The items' vectors, each item's text with its attributes: per item, so kept until here."""
        ids, texts = list(self._item_texts), list(self._item_texts.values())
        self.augmented.vectors["itememb"] = (ids, self.encoder.encode(texts, self.reporter, "Embedding items"))
        self._item_texts = {}

    # -- the sinks ---------------------------------------------------------------------------
    def _edges(self, entities: list[str], accepted: Accepted) -> None:
        """One edge per user: the majority of its valid votes (the one answer, with a single vote),
        kept if its agreement reaches ``min_agreement``; what was left out is counted. A user's
        votes are all in one chunk, as chunks are cut by user."""
        votes: dict[str, list[tuple[int, str, str]]] = {}
        for job, record in accepted:
            votes.setdefault(job.entity, []).append((job.vote, record["liked"], record["disliked"]))
        rows = []
        counts = self._edge_counts
        counts["users_answered"] += len(votes)
        for user, picks in votes.items():
            edge = consensus(picks, self.settings.votes)
            if edge is None:
                counts["no_majority"] += 1
            elif edge.agreement < self.settings.min_agreement:
                counts["below_min_agreement"] += 1
            else:
                rows.append((user, edge.liked, edge.disliked, round(edge.agreement, 4)))
        counts["written"] += len(rows)
        self._open["augedge"].frame(pd.DataFrame(rows, columns=list(EDGE_TYPES)))

    def _profiles(self, task: Task, entities: list[str], accepted: Accepted, embedding) -> None:
        fields = self.settings.user_profile
        frame = pd.DataFrame([[job.entity, *(record.get(f) for f in fields)] for job, record in accepted],
                             columns=list(self._open[PROFILE_ROWS].types))
        self._open[PROFILE_ROWS].frame(frame)
        pairs = [(job.entity, task.embed_text(job, record)) for job, record in accepted]
        pairs = [(user, text) for user, text in pairs if text]
        embedding.advance(len(entities) - len(pairs))  # users without a profile text have no vector
        if pairs:
            users, texts = zip(*pairs)
            self._open["useremb"].vectors(users, self.encoder.encode_chunk(list(texts), embedding))

    def _attributes(self, task: Task, accepted: Accepted) -> None:
        self.augmented.attributes.update((job.entity, record) for job, record in accepted)
        self._item_texts.update((job.entity, text) for job, record in accepted if (text := task.embed_text(job, record)))

    # -- files -------------------------------------------------------------------------------
    def _rows(self, suffix: str, types: dict[str, str]) -> None:
        name = suffix if suffix == PROFILE_ROWS else f"{self.staging.name}.{suffix}"
        rows = AtomicRows(self.staging / name, types)
        self.files.callback(rows.discard)
        self._open[suffix] = rows

    def _close(self, suffix: str) -> bool:
        return self._open.pop(suffix).close()
