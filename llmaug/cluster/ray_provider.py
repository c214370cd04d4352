"""The live LLM provider spread over a Ray cluster, for jobs one machine's cores cannot keep up with.

Each Ray actor builds the same provider from the run's settings and answers shards of the pending
jobs: it renders, calls the model and validates, so the driver only hands out shards and journals
the outcomes coming back (the journal has one writer, as on one machine). A shard is small, so an
actor that dies loses only its shard's requests in flight; the shard goes to another actor. A
killed driver loses the shards out at the time, and the same command resumes from the journal.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import warnings
from collections import deque
from typing import Any, Optional, Sequence

from ..config import Settings
from ..errors import ConfigError, LlmaugError, ProviderError
from ..providers.base import Emit, Outcome, Provider
from ..providers.llm import LiteLLMProvider
from ..prompt_data import PromptData
from ..rendering import PromptRenderer
from ..tasks import TASKS, Job, Task
from .address import find_target
from .own_ray import OwnRay

SHARDS_PER_ACTOR = 2  # one being answered, one waiting: an actor never idles between shards
FORWARDED = re.compile(r"[A-Z0-9_]*_(API_KEY|API_BASE|API_VERSION|BASE_URL|ORGANIZATION|PROJECT)$|LITELLM_[A-Z0-9_]+$")
LOST_SHARD_LIMIT = 3  # a shard whose actor died this often points at the cluster, not at bad luck
RESTART_LIMIT = 20  # readiness asked this often of a restarting actor, RESTART_WAIT_S apart
RESTART_WAIT_S = 0.5


def import_ray():
    try:
        with warnings.catch_warnings():  # ray 2.6 imports pkg_resources, which warns on every run
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
            import ray
    except ImportError:
        raise ConfigError("--ray needs ray: pip install \"ray[default]\" (RecBole installs ray 2.6.3)") from None
    return ray


class _Asker:
    """A Ray actor: the run's provider, answering whole shards."""

    def __init__(self, settings: Settings, environment: dict[str, str]) -> None:
        os.environ.update(environment)  # this process is the actor's own
        self.provider = LiteLLMProvider(settings, PromptRenderer(settings.prompts, settings.domain))
        # Rendering and judging a job need the job and the settings alone, not the dataset.
        settings_only = PromptData(settings=settings, source=None, item_text={}, histories={}, demographics={})
        self.tasks = {name: task(settings_only) for name, task in TASKS.items()}

    async def answer(self, task_name: str, jobs: list[Job]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        await self.provider.run(self.tasks[task_name], jobs, outcomes.append)
        return outcomes


class RayProvider(Provider):
    def __init__(self, settings: Settings, local: LiteLLMProvider) -> None:
        self.settings = settings
        self.local = local  # request identity and estimates, which must match the actors' exactly
        self.model = local.model
        self.ray = import_ray()
        self._own: Optional[OwnRay] = None  # --ray local
        self._joined = False  # a cluster someone else started
        self._actors: list[Any] = []
        self._start_s = 0.0  # joining or starting Ray and its actors, counted in the first task's time
        self._workers = 0

    def request_hash(self, task: Task, job: Job) -> str:
        return self.local.request_hash(task, job)

    def estimate(self, task: Task, jobs: Sequence[Job]) -> tuple[int, int, Optional[float]]:
        return self.local.estimate(task, jobs)

    @property
    def template_hashes(self) -> dict[str, str]:
        return self.local.template_hashes

    def describe(self) -> dict[str, Any]:
        return {**self.local.describe(), "ray_address": self.settings.ray_address, "ray_actors": self._workers,
                "shard_size": self._shard_size(), "ray_start_s": round(self._start_s, 2)}

    def _shard_size(self) -> int:
        return self.local.concurrency * 2

    def _start(self) -> None:
        started = time.perf_counter()
        ray = self.ray
        if not ray.is_initialized():  # else the caller's own Ray, used and left as it is
            target = find_target(self.settings.ray_address)  # again: minutes of base-model training since the first check
            if target is None:
                self._own = OwnRay(ray)
            else:
                try:
                    ray.init(address=target.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
                except (ConnectionError, RuntimeError, ValueError) as exc:  # not a Ray there, a version apart
                    raise ProviderError(f"cannot join Ray at '{target.address}' ({target.source}): {exc}".splitlines()[0]) from None
                self._joined = True
        workers = self.settings.ray_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        # The actors read keys where the provider does, from their environment: on a cluster that is
        # the workers', so the driver's provider variables travel with them as an argument. Not as
        # Ray's runtime_env, whose agent writes its variables into its log.
        keys = {name: value for name, value in os.environ.items() if FORWARDED.match(name)}
        actor = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(_Asker)
        self._actors = [actor.remote(self.settings, keys) for _ in range(workers)]
        self._workers = workers
        self.ray.get([a.__ray_ready__.remote() for a in self._actors])
        self._start_s = time.perf_counter() - started

    async def run(self, task: Task, jobs: Sequence[Job], emit: Emit) -> None:
        if not jobs:
            return
        if not self._actors:
            self._start()
        ray = self.ray
        actor_lost = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError)
        size = self._shard_size()
        shards = deque((list(jobs[k : k + size]), 0) for k in range(0, len(jobs), size))
        working: dict[Any, tuple[tuple[list[Job], int], Any]] = {}  # a shard out, and the actor answering it
        probes: dict[Any, tuple[Any, int]] = {}  # a dead actor's readiness asked, and how often it failed
        idle: set[Any] = set()

        def hand_out(actor: Any, count: int = 1) -> None:
            for _ in range(count):
                if not shards:
                    idle.add(actor)
                    return
                shard = shards.popleft()
                working[actor.answer.remote(task.name, shard[0])] = (shard, actor)
            idle.discard(actor)

        def probe(actor: Any, failed: int) -> None:
            if actor not in {a for a, _ in probes.values()}:
                probes[actor.__ray_ready__.remote()] = (actor, failed)

        for actor in self._actors:
            hand_out(actor, SHARDS_PER_ACTOR)
        while working or (shards and probes):
            done, _ = await asyncio.to_thread(ray.wait, [*working, *probes], num_returns=1)
            if done[0] in probes:
                actor, failed = probes.pop(done[0])
                try:
                    await asyncio.to_thread(ray.get, done[0])
                except actor_lost:
                    if failed + 1 >= RESTART_LIMIT:
                        raise ProviderError(f"a Ray actor did not come back after {RESTART_LIMIT} tries") from None
                    await asyncio.sleep(RESTART_WAIT_S)
                    probe(actor, failed + 1)
                else:
                    hand_out(actor, SHARDS_PER_ACTOR)
                continue
            (shard, lost), actor = working.pop(done[0])
            try:
                outcomes = await asyncio.to_thread(ray.get, done[0])
            except ray.exceptions.RayTaskError as exc:  # the provider's own error (a bad key...): the run stops with it
                cause = getattr(exc, "cause", None)
                raise (cause if isinstance(cause, LlmaugError) else ProviderError(f"a Ray actor failed: {exc}".splitlines()[0])) from None
            except actor_lost as exc:
                if lost + 1 >= LOST_SHARD_LIMIT:
                    raise ProviderError(f"Ray actors died {LOST_SHARD_LIMIT} times on one shard: {exc}".splitlines()[0]) from None
                # Its requests in flight are lost. The shard goes to a live actor; this one gets work again
                # once it answers after its restart (sent to it now, the shard could fail on the dead process).
                shards.appendleft((shard, lost + 1))
                probe(actor, 0)
                for waiting in list(idle):
                    hand_out(waiting)
                continue
            for outcome in outcomes:  # the driver's identity of each request, whatever a node's templates
                outcome.request_hash = self.local.request_hash(task, outcome.job)
                emit(outcome)
            hand_out(actor)

    def close(self) -> None:
        """Remove llmaug's actors; stop a Ray only if llmaug started it. A joined cluster goes on."""
        for actor in self._actors:
            self.ray.kill(actor)
        self._actors = []
        if self._joined:
            self.ray.shutdown()  # this driver leaves; the cluster's processes are not its own
            self._joined = False
        if self._own is not None:
            self._own.stop()
            self._own = None
