"""The offline provider: answers all three tasks from the training data alone, with no network.

It is a no-LLM baseline for trying the pipeline end to end, not a substitute for an LLM: it can
only restate what the data already says, and leaves empty what it cannot know.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ..prompt_data import PromptData
from ..tasks import AnswerError, Job, Task
from .base import Emit, Outcome, Provider

VERSION = "offline-1"
CHUNK = 8192


class OfflineProvider(Provider):
    model = "offline"

    def __init__(self, data: PromptData, item_index: dict[str, int], item_vectors: Optional[np.ndarray]) -> None:
        self.data = data
        self.item_index = item_index
        self.item_vectors = None if item_vectors is None else torch.as_tensor(item_vectors)
        self._genres = self._genre_table()

    def request_hash(self, task: Task, job: Job) -> str:
        return f"{VERSION}:{job.fingerprint()}"

    async def run(self, task: Task, jobs: Sequence[Job], emit: Emit) -> None:
        answer = {"edges": self._edges, "users": self._profiles, "items": self._attributes}[task.name]
        for start in range(0, len(jobs), CHUNK):  # a chunk at a time: 1M users' candidate vectors are 15 GB
            chunk = jobs[start : start + CHUNK]
            for job, answered in zip(chunk, answer(chunk)):
                outcome = Outcome(job, self.request_hash(task, job))
                try:
                    outcome.record = task.validate(job, answered)
                except AnswerError as exc:
                    outcome.error, outcome.raw = str(exc), repr(answered)
                emit(outcome)

    def _history_matrix(self, jobs: Sequence[Job]) -> torch.Tensor:
        """Jobs x items, 1 where the job's user trained on the item (repeats add up)."""
        rows, cols = [], []
        for row, job in enumerate(jobs):
            items = [self.item_index[i] for i in self.data.histories[job.entity]]
            rows.extend([row] * len(items))
            cols.extend(items)
        shape = (len(jobs), len(self.item_index))
        return torch.sparse_coo_tensor(torch.tensor([rows, cols]), torch.ones(len(rows)), shape, check_invariants=False).coalesce()

    # -- edges: nearest and farthest candidate to the mean of the user's history, in text space ---
    def _edges(self, jobs: Sequence[Job]) -> list[dict[str, int]]:
        if not jobs:
            return []
        vectors = self.item_vectors
        taste = torch.sparse.mm(self._history_matrix(jobs), vectors)
        taste = torch.nn.functional.normalize(taste, dim=1)
        candidates = torch.tensor([[self.item_index[i] for i in job.candidates] for job in jobs])
        similarity = torch.einsum("ud,ucd->uc", taste, vectors[candidates])
        liked, disliked = similarity.argmax(1) + 1, similarity.argmin(1) + 1
        return [{"liked": int(a), "disliked": int(b)} for a, b in zip(liked, disliked)]

    # -- user profiles: genre statistics of the training history against the catalogue -----------
    def _genre_table(self) -> tuple[list[str], torch.Tensor, np.ndarray]:
        """Genre names, the items x genres indicator (rows in ``item_index`` order), catalogue shares."""
        per_item = {item: text.get("genre", "").split() for item, text in self.data.item_text.items()}
        names = sorted({g for genres in per_item.values() for g in genres})
        column = {g: k for k, g in enumerate(names)}
        item_genres = torch.zeros(len(self.item_index), len(names))
        for item, genres in per_item.items():
            for genre in genres:
                item_genres[self.item_index[item], column[genre]] += 1
        catalogue = item_genres.sum(0).double().numpy()
        return names, item_genres, catalogue / max(catalogue.sum(), 1)

    def _profiles(self, jobs: Sequence[Job]) -> list[dict[str, Any]]:
        names, item_genres, catalogue_share = self._genres
        fields = self.data.settings.user_profile
        genre_counts = torch.sparse.mm(self._history_matrix(jobs), item_genres).double().numpy() if jobs else []
        answers = []
        for job, counts in zip(jobs, genre_counts):
            history = self.data.histories[job.entity]
            profile: dict[str, Any] = {f: job.context["demographics"].get(f) for f in fields}
            if counts.sum() > 0 and "liked_genre" in profile:
                lift = (counts / counts.sum()) / np.maximum(catalogue_share, 1e-12)
                seen = np.flatnonzero(counts >= max(2, 0.05 * counts.sum()))
                liked = seen[np.argsort(-lift[seen], kind="stable")][:3]
                profile["liked_genre"] = [names[g] for g in liked]
                if "disliked_genre" in profile:
                    common = np.flatnonzero(catalogue_share >= 0.02)
                    disliked = common[np.argsort(lift[common], kind="stable")][:2]
                    profile["disliked_genre"] = [names[g] for g in disliked if g not in liked]
            if "preferred_era" in profile:
                profile["preferred_era"] = self._era(history)
            answers.append(profile)
        return answers

    def _era(self, history: list[str]) -> str | None:
        years = [self.data.item_text[i].get("year", "")[:4] for i in history]
        years = [int(y) for y in years if y.isdigit()]
        if not years:
            return None
        decade, _ = Counter(y // 10 * 10 for y in years).most_common(1)[0]
        return f"{decade}s"

    # -- item attributes: only what the item's own columns say --------------------------------------
    def _attributes(self, jobs: Sequence[Job]) -> list[dict[str, Any]]:
        items = self.data.source.items.set_index(self.data.source.iid_field)
        known = [a for a in self.data.settings.item_attributes if a in items.columns]
        return [{a: (items.at[job.entity, a] if a in known else None) for a in self.data.settings.item_attributes} for job in jobs]
