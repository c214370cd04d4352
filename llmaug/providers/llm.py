"""Any LLM litellm can reach, by configuration alone: OpenAI, Azure, Ollama, vLLM, or any
OpenAI-compatible server. litellm does the retries (honouring Retry-After), back-off and timeouts;
its Router adds rpm/tpm limits and fallbacks when they are configured (only then: it costs about
1.2 ms of CPU per request, a third of a plain call). This module adds concurrency, validation with
re-asks, the request identity used by the journal, and cost."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from typing import Any, Awaitable, Callable, Optional, Sequence

from ..config import Settings
from ..errors import ProviderError
from ..rendering import Messages, PromptRenderer
from ..secrets import redact
from ..tasks import AnswerError, Job, Task
from .base import Emit, Outcome, Provider

PRIMARY = "llmaug-primary"


def import_litellm():
    """litellm fetches its price map from the internet on import unless told to use its own copy."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


class LiteLLMProvider(Provider):
    def __init__(self, settings: Settings, renderer: PromptRenderer) -> None:
        self.litellm = import_litellm()
        self.settings = settings
        self.model = settings.model
        self.renderer = renderer
        self.sampling = {"temperature": settings.temperature, "top_p": settings.top_p, "max_tokens": settings.max_tokens}
        self.template_hashes: dict[str, str] = {}
        self._messages: dict[tuple[str, str], Messages] = {}
        self._hashes: dict[tuple[str, str], str] = {}
        self._formats: dict[str, Optional[dict[str, Any]]] = {}
        self.priced = self._in_price_map()  # asked before a Router registers the model at zero cost
        self.complete = self._router() if settings.rpm or settings.tpm or settings.fallbacks else self._direct()

    def _in_price_map(self) -> bool:
        try:
            self.litellm.get_model_info(self.model)
        except Exception:
            return False
        return True

    def _params(self, model: str) -> dict[str, Any]:
        params: dict[str, Any] = {"model": model, "timeout": self.settings.timeout, **self.sampling}
        if self.settings.api_base:
            params["api_base"] = self.settings.api_base
        return params

    def _direct(self) -> Callable[..., Awaitable[Any]]:
        params = {**self._params(self.model), "num_retries": self.settings.num_retries}
        return lambda messages, **extra: self.litellm.acompletion(messages=messages, **params, **extra)

    def _router(self) -> Callable[..., Awaitable[Any]]:
        s = self.settings
        deployments = []
        for k, model in enumerate([s.model, *s.fallbacks]):
            limits = {key: value for key, value in (("rpm", s.rpm), ("tpm", s.tpm)) if value}
            deployments.append({"model_name": PRIMARY if k == 0 else f"llmaug-fallback-{k}", "litellm_params": {**self._params(model), **limits}})
        fallbacks = [{PRIMARY: [d["model_name"] for d in deployments[1:]]}] if s.fallbacks else []
        try:
            router = self.litellm.Router(model_list=deployments, num_retries=s.num_retries, timeout=s.timeout, fallbacks=fallbacks)
        except Exception as exc:  # litellm raises plain exceptions for a malformed model list
            raise ProviderError(f"cannot set up model '{s.model}': {redact(str(exc))}".splitlines()[0]) from None
        return lambda messages, **extra: router.acompletion(model=PRIMARY, messages=messages, **extra)

    def messages(self, task: Task, job: Job) -> Messages:
        key = (task.name, job.entity)
        if key not in self._messages:
            self._messages[key] = self.renderer.render(task, job)
            self.template_hashes[task.name] = self.renderer.template_hash(task.name)
        return self._messages[key]

    def request_hash(self, task: Task, job: Job) -> str:
        key = (task.name, job.entity)
        if key not in self._hashes:
            payload = json.dumps([self.messages(task, job), self.model, self.sampling, self._response_format(task)], sort_keys=True)
            self._hashes[key] = hashlib.sha256(payload.encode()).hexdigest()[:16]
        return self._hashes[key]

    def _response_format(self, task: Task) -> Optional[dict[str, Any]]:
        """Constrained decoding where litellm says the model supports a JSON schema; else the prompt's
        own format section and validation do the work."""
        if task.name not in self._formats:
            try:
                supported = self.litellm.supports_response_schema(model=self.model)
            except Exception:
                supported = False
            schema = {"name": task.schema.__name__, "schema": task.schema.model_json_schema()}
            self._formats[task.name] = {"type": "json_schema", "json_schema": schema} if supported else None
        return self._formats[task.name]

    def estimate(self, task: Task, jobs: Sequence[Job]) -> tuple[int, int, Optional[float]]:
        count = self.litellm.token_counter
        input_tokens = sum(count(model=self.model, messages=self.messages(task, job)) for job in jobs)
        output_tokens = self.settings.output_tokens_estimate.get(task.name, self.settings.max_tokens) * len(jobs)
        if not self.priced:  # a local or self-hosted model: litellm has no price for it
            return input_tokens, output_tokens, None
        prompt_cost, completion_cost = self.litellm.cost_per_token(
            model=self.model, prompt_tokens=input_tokens, completion_tokens=output_tokens
        )
        return input_tokens, output_tokens, float(prompt_cost + completion_cost)

    def _cost(self, response: Any) -> float:
        """The cost litellm already computed for this response; 0 for unpriced (local) models."""
        if not self.priced:
            return 0.0
        hidden = getattr(response, "_hidden_params", None) or {}
        return float(hidden.get("response_cost") or 0.0)

    async def run(self, task: Task, jobs: Sequence[Job], emit: Emit) -> None:
        queue: asyncio.Queue[Job] = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)
        response_format = self._response_format(task)

        async def worker() -> None:
            while not queue.empty():
                job = queue.get_nowait()
                emit(await self._ask(task, job, response_format))

        try:
            async with asyncio.TaskGroup() as group:  # a fatal error in one worker cancels the others
                for _ in range(min(self.settings.concurrency, len(jobs))):
                    group.create_task(worker())
        except* ProviderError as fatal:
            raise fatal.exceptions[0] from None

    async def _ask(self, task: Task, job: Job, response_format: Optional[dict[str, Any]]) -> Outcome:
        litellm = self.litellm
        messages = list(self.messages(task, job))
        outcome = Outcome(job, self.request_hash(task, job))
        extra = {"response_format": response_format} if response_format else {}
        for attempt in range(self.settings.max_reasks + 1):
            try:
                response = await self.complete(messages, **extra)
            except (litellm.ContextWindowExceededError, litellm.ContentPolicyViolationError) as exc:
                # About this one request, not the run: asking again would get the same refusal.
                outcome.error = f"{type(exc).__name__}: {_first_line(exc)}"
                return outcome
            except (litellm.AuthenticationError, litellm.PermissionDeniedError, litellm.NotFoundError, litellm.BadRequestError) as exc:
                raise ProviderError(f"{self.model}: {type(exc).__name__}: {_first_line(exc)}") from None
            except (litellm.APIError, litellm.APIConnectionError, litellm.Timeout, litellm.RateLimitError,
                    litellm.ServiceUnavailableError, litellm.InternalServerError) as exc:
                outcome.error = f"request failed after {self.settings.num_retries} retries: {type(exc).__name__}: {_first_line(exc)}"
                outcome.retryable = True
                return outcome
            usage = getattr(response, "usage", None)
            outcome.input_tokens += getattr(usage, "prompt_tokens", 0) or 0
            outcome.output_tokens += getattr(usage, "completion_tokens", 0) or 0
            outcome.cost += self._cost(response)
            text = response.choices[0].message.content or ""
            try:
                outcome.record = task.validate(job, text)
                outcome.error = None
                return outcome
            except AnswerError as exc:
                outcome.error, outcome.raw = str(exc), redact(text)
                if attempt < self.settings.max_reasks:
                    outcome.reasks += 1
                    messages += [
                        {"role": "assistant", "content": text},
                        {"role": "user", "content": f"That answer is invalid: {exc}. Reply again with only the corrected JSON object."},
                    ]
        return outcome


def _first_line(exc: BaseException) -> str:
    return redact(str(exc)).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
