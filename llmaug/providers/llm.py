"""Any LLM litellm can reach, by configuration alone: OpenAI, Azure, Ollama, vLLM, or any
OpenAI-compatible server. litellm does the retries (honouring Retry-After), back-off and timeouts;
its Router adds rpm/tpm limits, fallbacks and replicas (several servers of one model) when they are
configured (only then: it costs about 1.2 ms of CPU per request, a third of a plain call). This module adds concurrency, validation with
re-asks, the request identity used by the journal, and cost."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from typing import Any, Awaitable, Callable, Optional, Sequence

from ..config import Settings
from ..errors import ProviderError
from ..rendering import Messages, PromptRenderer
from ..secrets import redact
from ..tasks import AnswerError, Job, Task
from .base import Emit, Outcome, Provider
from .servers import is_self_hosted, server_slots
from .structured import rejects_format, resolve_mode, response_format

PRIMARY = "llmaug-primary"
API_TIMEOUT = 60.0          # seconds: a hosted API that has not answered by then is stuck
SELF_HOSTED_TIMEOUT = 600.0  # seconds: a CPU server answers slowly but does answer
API_CONCURRENCY = 16

Warn = Callable[[str], None]


def print_warning(message: str) -> None:
    print(message, file=sys.stderr)


def import_litellm():
    """litellm fetches its price map from the internet on import unless told to use its own copy."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


class LiteLLMProvider(Provider):
    def __init__(self, settings: Settings, renderer: PromptRenderer, warn: Warn = print_warning) -> None:
        self.litellm = import_litellm()
        self.settings = settings
        self.model = settings.model    # the run's identity in the journal
        self.target = settings.model   # the litellm model string requests go to
        self.api_base = settings.api_base
        self.api_bases = [settings.api_base, *settings.replicas]  # the model's servers (one None: the provider's own)
        self.api_key: Optional[str] = None
        self.renderer = renderer
        self.warn = warn
        self.sampling = {"temperature": settings.temperature, "top_p": settings.top_p, "max_tokens": settings.max_tokens}
        self.template_hashes: dict[str, str] = {}
        self._messages: dict[tuple[str, str], Messages] = {}
        self._hashes: dict[tuple[str, str], str] = {}
        self.self_hosted = is_self_hosted(self.litellm, self.target, self.api_base)
        self.structured = resolve_mode(settings.structured_output, self.litellm, self.target, self.api_base)
        self.structured_fallback: Optional[str] = None
        # A server the user runs is slow, not broken: a request abandoned at 60 s starts over as a
        # copy queued behind the others, and some servers go on computing the abandoned one.
        self.timeout = settings.timeout or (SELF_HOSTED_TIMEOUT if self.self_hosted else API_TIMEOUT)
        self.concurrency = settings.concurrency or self._server_slots() or API_CONCURRENCY
        self.priced = self._in_price_map()  # asked before a Router registers the model at zero cost
        self.complete = self._client()

    def _server_slots(self) -> Optional[int]:
        """More requests than a self-hosted server has slots only queue there, and time out there;
        a server that does not say gets the API default."""
        if not (self.self_hosted and self.api_base):
            return None
        slots = [server_slots(base) for base in self.api_bases]
        return None if slots == [None] else sum(n or API_CONCURRENCY for n in slots)

    def describe(self) -> dict[str, Any]:
        return {
            "structured_output": self.settings.structured_output,
            "structured_output_used": "off" if self.structured_fallback else self.structured,
            "structured_output_fallback": self.structured_fallback,
            "self_hosted": self.self_hosted,
            "timeout_s": self.timeout,
            "concurrency": self.concurrency,
        }

    def _client(self) -> Callable[..., Awaitable[Any]]:
        s = self.settings
        return self._router() if s.rpm or s.tpm or s.fallbacks or s.replicas else self._direct()

    def _in_price_map(self) -> bool:
        try:
            self.litellm.get_model_info(self.target)
        except Exception:
            return False
        return True

    def _params(self, model: str, api_base: Optional[str] = None) -> dict[str, Any]:
        params: dict[str, Any] = {"model": model, "timeout": self.timeout, **self.sampling}
        if api_base or self.api_base:
            params["api_base"] = api_base or self.api_base
        if self.api_key:
            params["api_key"] = self.api_key
        return params

    def _direct(self) -> Callable[..., Awaitable[Any]]:
        params = {**self._params(self.target), "num_retries": self.settings.num_retries}
        return lambda messages, **extra: self.litellm.acompletion(messages=messages, **params, **extra)

    def _router(self) -> Callable[..., Awaitable[Any]]:
        s = self.settings
        limits = {key: value for key, value in (("rpm", s.rpm), ("tpm", s.tpm)) if value}  # per server
        # Replicas share the primary's name: the Router spreads requests over them and, once one
        # fails, cools it down and retries on the others.
        deployments = [{"model_name": PRIMARY, "litellm_params": {**self._params(self.target, base), **limits}} for base in self.api_bases]
        for k, model in enumerate(s.fallbacks, start=1):
            deployments.append({"model_name": f"llmaug-fallback-{k}", "litellm_params": {**self._params(model), **limits}})
        fallbacks = [{PRIMARY: [f"llmaug-fallback-{k}" for k in range(1, len(s.fallbacks) + 1)]}] if s.fallbacks else []
        try:
            router = self.litellm.Router(model_list=deployments, num_retries=s.num_retries, timeout=self.timeout, fallbacks=fallbacks)
        except Exception as exc:  # litellm raises plain exceptions for a malformed model list
            raise ProviderError(f"cannot set up model '{s.model}': {redact(str(exc))}".splitlines()[0]) from None
        return lambda messages, **extra: router.acompletion(model=PRIMARY, messages=messages, **extra)

    def messages(self, task: Task, job: Job) -> Messages:
        key = (task.name, *job.slot)
        if key not in self._messages:
            self._messages[key] = self.renderer.render(task, job)
            self.template_hashes[task.name] = self.renderer.template_hash(task.name)
        return self._messages[key]

    def request_hash(self, task: Task, job: Job) -> str:
        """Of the request as configured: a run that fell back to no ``response_format`` keeps the
        keys, so its answers count as finished for the next run, which would fall back the same way."""
        key = (task.name, *job.slot)
        if key not in self._hashes:
            payload = json.dumps([self.messages(task, job), self.model, self.sampling, self._response_format(task, job)], sort_keys=True)
            self._hashes[key] = hashlib.sha256(payload.encode()).hexdigest()[:16]
        return self._hashes[key]

    def _response_format(self, task: Task, job: Job) -> Optional[dict[str, Any]]:
        return response_format(self.structured, task.schema.__name__, task.answer_schema(job))

    def estimate(self, task: Task, jobs: Sequence[Job]) -> tuple[int, int, Optional[float]]:
        count = self.litellm.token_counter
        input_tokens = sum(count(model=self.target, messages=self.messages(task, job)) for job in jobs)
        output_tokens = self.settings.output_tokens_estimate.get(task.name, self.settings.max_tokens) * len(jobs)
        if not self.priced:  # a local or self-hosted model: litellm has no price for it
            return input_tokens, output_tokens, None
        return input_tokens, output_tokens, self.price(input_tokens, output_tokens)

    def price(self, input_tokens: int, output_tokens: int) -> float:
        """What these tokens cost at the rate requests are sent at (live API here)."""
        prompt_cost, completion_cost = self.litellm.cost_per_token(model=self.target, prompt_tokens=input_tokens, completion_tokens=output_tokens)
        return float(prompt_cost + completion_cost)

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

        async def worker() -> None:
            while not queue.empty():
                job = queue.get_nowait()
                emit(await self._ask(task, job))

        fatal: list[BaseException] = []
        try:
            async with asyncio.TaskGroup() as group:  # a fatal error in one worker cancels the others
                for _ in range(min(self.concurrency, len(jobs))):
                    group.create_task(worker())
        except* ProviderError as errors:
            fatal.extend(errors.exceptions)
        if fatal:  # raised here, not inside except*: Python < 3.11.4 wraps that in an ExceptionGroup
            raise fatal[0] from None

    async def _ask(self, task: Task, job: Job) -> Outcome:
        litellm = self.litellm
        messages = list(self.messages(task, job))
        outcome = Outcome(job, self.request_hash(task, job))
        attempt = 0
        while attempt <= self.settings.max_reasks:
            response_format = None if self.structured_fallback else self._response_format(task, job)
            extra = {"response_format": response_format} if response_format else {}
            try:
                response = await self.complete(messages, **extra)
            except (litellm.ContextWindowExceededError, litellm.ContentPolicyViolationError) as exc:
                # About this one request, not the run: asking again would get the same refusal.
                outcome.error = f"{type(exc).__name__}: {_first_line(exc)}"
                return outcome
            except (litellm.AuthenticationError, litellm.PermissionDeniedError, litellm.NotFoundError, litellm.BadRequestError) as exc:
                if response_format and isinstance(exc, litellm.BadRequestError) and rejects_format(str(exc)):
                    self._fall_back(exc)
                    continue  # the same attempt, asked the way the prompt alone describes
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
            choice = response.choices[0]
            follow_up = self.judge(task, job, outcome, choice.message.content or "", choice.finish_reason)
            if follow_up is None:
                return outcome
            if attempt < self.settings.max_reasks:
                outcome.reasks += 1
                messages += follow_up
            attempt += 1
        return outcome

    def judge(self, task: Task, job: Job, outcome: Outcome, text: str, finish_reason: Optional[str]) -> Optional[Messages]:
        """Validate an answer into ``outcome``: ``None`` once accepted, else the turns that re-ask
        with the error (the caller decides whether re-asks are left)."""
        try:
            outcome.record = task.validate(job, text)
            outcome.error = None
            return None
        except AnswerError as exc:
            cut = f" (the answer was cut off at max_tokens={self.settings.max_tokens})" if finish_reason == "length" else ""
            outcome.error, outcome.raw = f"{exc}{cut}", redact(text)
            return [
                {"role": "assistant", "content": text},
                {"role": "user", "content": f"That answer is invalid: {exc}. Reply again with only the corrected JSON object."},
            ]

    def _fall_back(self, exc: BaseException) -> None:
        if self.structured_fallback is None:  # requests in flight may all be refused; say it once
            self.structured_fallback = _first_line(exc)
            self.warn(f"llmaug: warning: {self.model} refused response_format ({self.structured}); "
                      f"asking with the prompt's format section only: {self.structured_fallback}")


def _first_line(exc: BaseException) -> str:
    return redact(str(exc)).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
