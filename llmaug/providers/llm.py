"""Any LLM litellm can reach, by configuration alone: OpenAI, Azure, Ollama, vLLM, or any
OpenAI-compatible server. litellm's Router does the retries (honouring Retry-After), back-off,
rpm/tpm limits and fallbacks; this module adds concurrency, validation with re-asks and cost."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from typing import Any, Optional, Sequence

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
        self.priced = self._in_price_map()  # asked before the Router registers the model at zero cost
        self.router = self._router()

    def _in_price_map(self) -> bool:
        try:
            self.litellm.get_model_info(self.model)
        except Exception:
            return False
        return True

    def _router(self):
        s = self.settings
        deployments = []
        for k, model in enumerate([s.model, *s.fallbacks]):
            params: dict[str, Any] = {"model": model, "timeout": s.timeout, **self.sampling}
            if s.api_base:
                params["api_base"] = s.api_base
            if s.rpm:
                params["rpm"] = s.rpm
            if s.tpm:
                params["tpm"] = s.tpm
            deployments.append({"model_name": PRIMARY if k == 0 else f"llmaug-fallback-{k}", "litellm_params": params})
        fallbacks = [{PRIMARY: [d["model_name"] for d in deployments[1:]]}] if s.fallbacks else []
        try:
            return self.litellm.Router(model_list=deployments, num_retries=s.num_retries, timeout=s.timeout, fallbacks=fallbacks)
        except Exception as exc:  # litellm raises plain exceptions for a malformed model list
            raise ProviderError(f"cannot set up model '{s.model}': {redact(str(exc))}".splitlines()[0]) from None

    def messages(self, task: Task, job: Job) -> Messages:
        key = (task.name, job.entity)
        if key not in self._messages:
            self._messages[key] = self.renderer.render(task, job)
            self.template_hashes[task.name] = self.renderer.template_hash(task.name)
        return self._messages[key]

    def request_hash(self, task: Task, job: Job) -> str:
        payload = json.dumps([self.messages(task, job), self.model, self.sampling, self._response_format(task)], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def _response_format(self, task: Task) -> Optional[dict[str, Any]]:
        """Constrained decoding where litellm says the model supports a JSON schema; else the prompt's
        own format section and validation do the work."""
        try:
            supported = self.litellm.supports_response_schema(model=self.model)
        except Exception:
            supported = False
        if not supported:
            return None
        return {"type": "json_schema", "json_schema": {"name": task.schema.__name__, "schema": task.schema.model_json_schema()}}

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
                response = await self.router.acompletion(model=PRIMARY, messages=messages, **extra)
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
            outcome.cost += _cost(litellm, response)
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


def _cost(litellm, response) -> float:
    """litellm's price map; 0 for local models and servers it has no price for."""
    try:
        return float(litellm.completion_cost(completion_response=response) or 0.0)
    except Exception:
        return 0.0
