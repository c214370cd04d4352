"""The three augmentations (paper §3.1-3.2): what each asks, about whom, and what answer is valid.

A task turns ``PromptData`` into ``Job``s (one request each) and judges answers; providers only
produce answers, so an offline answer and an LLM answer pass the very same checks.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Collection, Iterable, Optional

from pydantic import BaseModel, ValidationError

from .candidates.order import display_orders
from .prompt_data import PromptData
from .records import EdgeChoice, describe, text_record


class AnswerError(ValueError):
    """An answer that breaks its schema or names something it was not offered."""


@dataclass(frozen=True)
class Job:
    """One request: the entity it is about and everything a prompt or provider may use."""

    task: str
    entity: str
    context: dict[str, Any]
    candidates: tuple[str, ...] = ()  # as displayed, first line first
    history: Collection[str] = ()  # the user's training items: the data's own list, not a copy per job
    vote: int = 0  # which of the user's edge votes (``votes`` > 1 asks each user's pool in several orders)
    order: tuple[int, ...] = ()  # the base-model rank (1 = best) of each displayed candidate

    @property
    def slot(self) -> tuple[str, int]:
        """What one answer is about: the entity, and for edges the vote."""
        return self.entity, self.vote

    def fingerprint(self) -> str:
        """Stable hash of what the job shows; a changed dataset or candidate list changes it."""
        payload = json.dumps([self.task, self.entity, self.context], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def json_object(text: str) -> Any:
    """The first JSON object in an answer: models wrap JSON in prose or code fences."""
    start = text.find("{")
    while start != -1:
        try:
            return json.JSONDecoder().raw_decode(text, start)[0]
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
    raise AnswerError("the answer holds no JSON object")


def _parse(schema: type[BaseModel], answer: Any) -> BaseModel:
    try:
        return schema.model_validate(json_object(answer) if isinstance(answer, str) else answer)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise AnswerError(f"{where + ': ' if where else ''}{problem['msg']}") from None


@lru_cache(maxsize=None)
def _json_schema(schema: type[BaseModel]) -> dict[str, Any]:
    return schema.model_json_schema()


@lru_cache(maxsize=None)
def _numbered_choice_schema(offered: int) -> dict[str, Any]:
    schema = copy.deepcopy(_json_schema(EdgeChoice))
    for role in ("liked", "disliked"):
        schema["properties"][role]["enum"] = list(range(1, offered + 1))
    return schema


class Task:
    name: ClassVar[str]
    entity_kind: ClassVar[str]

    def __init__(self, data: PromptData) -> None:
        self.data = data

    @property
    def schema(self) -> type[BaseModel]:
        raise NotImplementedError

    jobs_per_entity = 1  # requests per entity; the edge task asks each user's pool once per vote

    def entities(self) -> list[str]:
        """Whom the task asks about, in the order the driver takes them a chunk at a time."""
        raise NotImplementedError

    def jobs(self, entities: Optional[Iterable[str]] = None) -> list[Job]:
        """The requests about ``entities`` (every entity by default): the driver builds them a chunk
        at a time, as each job carries its prompt's context."""
        return self._jobs(self.entities() if entities is None else entities)

    def _jobs(self, entities: Iterable[str]) -> list[Job]:
        raise NotImplementedError

    def validate(self, job: Job, answer: Any) -> dict[str, Any]:
        """Return the record to store, or raise ``AnswerError`` saying what is wrong."""
        return _parse(self.schema, answer).model_dump()

    def answer_schema(self, job: Job) -> dict[str, Any]:
        """The JSON schema of a valid answer to ``job``: shown in its prompt and, where the server
        decodes under a grammar, sent as ``response_format``."""
        return _json_schema(self.schema)

    def embed_text(self, job: Job, record: dict[str, Any]) -> Optional[str]:
        """Text to encode as this record's feature vector; ``None`` when the task has no feature."""
        return None

    def _history_context(self, user: str) -> list[dict[str, str]]:
        recent = self.data.histories[user][-self.data.settings.history_items :]
        return [self.data.item_text[i] for i in recent]


class EdgeTask(Task):
    """P_UI: pick a liked and a disliked item among the base recommender's candidates."""

    name = "edges"
    entity_kind = "user"
    schema = EdgeChoice

    @property
    def jobs_per_entity(self) -> int:
        return self.data.settings.votes

    def entities(self) -> list[str]:
        return [user for user in self.data.users() if self.data.candidates.get(user)]

    def _jobs(self, entities: Iterable[str]) -> list[Job]:
        settings, item_text = self.data.settings, self.data.item_text
        jobs = []
        for user in entities:
            pool = self.data.candidates[user]
            history = self._history_context(user)  # one list for every vote: the prompts share their prefix
            orders = display_orders(len(pool), settings.candidate_order, settings.seed, user, settings.votes)
            for vote, order in enumerate(orders):
                shown = tuple(pool[rank - 1] for rank in order)
                context = {"history": history, "candidates": [item_text[i] for i in shown]}
                jobs.append(Job(self.name, user, context, shown, self.data.histories[user], vote, order))
        return jobs

    def validate(self, job: Job, answer: Any) -> dict[str, Any]:
        choice = _parse(EdgeChoice, answer)
        offered = len(job.candidates)
        for role, number in (("liked", choice.liked), ("disliked", choice.disliked)):
            if not 1 <= number <= offered:
                raise AnswerError(f"{role} = {number} is not a candidate number (1..{offered})")
        if choice.liked == choice.disliked:
            raise AnswerError("liked and disliked must be two different candidates")
        liked, disliked = job.candidates[choice.liked - 1], job.candidates[choice.disliked - 1]
        if liked in job.history or disliked in job.history:
            raise AnswerError("the chosen item is already in the user's training history")
        # The displayed numbers and the order they index: what the report maps back to base-model ranks.
        return {"liked": liked, "disliked": disliked, "shown": [choice.liked, choice.disliked], "order": list(job.order)}

    def answer_schema(self, job: Job) -> dict[str, Any]:
        # The offered numbers as an enum: a model decoding under this schema cannot name an item
        # it was not offered (liked != disliked is beyond JSON schema and left to validation).
        return _numbered_choice_schema(len(job.candidates))


class UserProfileTask(Task):
    """P_U: a profile (age, gender, liked genres...) from the user's training history."""

    name = "users"
    entity_kind = "user"

    @property
    def schema(self) -> type[BaseModel]:
        return text_record("UserProfile", tuple(self.data.settings.user_profile))

    def entities(self) -> list[str]:
        return self.data.users()

    def _jobs(self, entities: Iterable[str]) -> list[Job]:
        return [
            Job(self.name, user, {"history": self._history_context(user), "demographics": self.data.demographics.get(user, {})})
            for user in entities
        ]

    def embed_text(self, job: Job, record: dict[str, Any]) -> Optional[str]:
        return describe(record) or None


class ItemAttributeTask(Task):
    """P_I: attributes the dataset lacks (director, country, language...) from the item's text."""

    name = "items"
    entity_kind = "item"

    @property
    def schema(self) -> type[BaseModel]:
        return text_record("ItemAttributes", tuple(self.data.settings.item_attributes))

    def entities(self) -> list[str]:
        return self.data.items()

    def _jobs(self, entities: Iterable[str]) -> list[Job]:
        return [Job(self.name, item, {"item": self.data.item_text[item]}) for item in entities]

    def embed_text(self, job: Job, record: dict[str, Any]) -> Optional[str]:
        # The item's own text anchors the vector; stated attributes add to it, unknown ones don't.
        return "; ".join(part for part in (describe(job.context["item"]), describe(record)) if part)


TASKS: dict[str, type[Task]] = {t.name: t for t in (EdgeTask, UserProfileTask, ItemAttributeTask)}
