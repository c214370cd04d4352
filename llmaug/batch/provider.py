"""Asking through the Batch API: pending requests become request files (custom id = journal key),
the files become batches, the batches are followed until they end, and every answer is judged by
the live provider's rules. Invalid answers are re-asked in a further batch, with the error, as
often as ``max_reasks`` allows; requests a batch did not answer (expired, cancelled, failed, 5xx)
are journaled as unanswered, so a re-run asks them again, in a new batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

from ..config import Settings
from ..errors import ProviderError
from ..progress import Stage
from ..rendering import Messages, PromptRenderer
from ..run_dir import BATCH_LEDGER
from ..tasks import Job, Task
from ..providers.base import Emit, Outcome
from ..providers.llm import LiteLLMProvider, Warn, _first_line
from .ledger import Ledger, Submission

ENDPOINT = "/v1/chat/completions"
MAX_FILE_BYTES = 190 * 2**20   # the API takes files up to 200 MB
ENDED = frozenset({"completed", "expired", "cancelled", "failed"})
CONTROL_TIMEOUT_S = 60.0    # a Files/Batches call that moves no file: unanswered by then, it is lost
TRANSFER_TIMEOUT_S = 600.0  # uploading or downloading a batch file (up to 190 MB)
TRANSFERS = ("create_file", "file_content")
Request = tuple[str, Job, Messages, Optional[list]]  # custom id, job, messages, [reasks, tokens in, out, cost] so far
FileLines = tuple[list[bytes], dict[str, list]]       # a request file's lines, and what its re-asks carry
PROVIDERS = frozenset({"openai", "azure"})  # litellm's Files and Batches functions reach these with chat completions


class BatchProvider(LiteLLMProvider):
    def __init__(self, settings: Settings, renderer: PromptRenderer, state_dir: Path, stage: Callable[[str, Optional[float]], Stage], warn: Warn) -> None:
        super().__init__(settings, renderer, warn)
        self.api_model, self.api_provider = self.litellm.get_llm_provider(self.target, api_base=self.api_base)[:2]
        self.ledger = Ledger(state_dir / BATCH_LEDGER)
        self.stage = stage
        self.api = {"custom_llm_provider": self.api_provider, **({"api_base": self.api_base} if self.api_base else {})}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "batch": True, "completion_window": "24h"}

    def price(self, input_tokens: int, output_tokens: int) -> float:
        """The batch rate litellm's price map has for the model (half the live one for OpenAI)."""
        from litellm.cost_calculator import batch_cost_calculator
        from litellm.types.utils import Usage

        usage = Usage(prompt_tokens=input_tokens, completion_tokens=output_tokens, total_tokens=input_tokens + output_tokens)
        return float(sum(batch_cost_calculator(usage, self.target)))

    def chunk_size(self, configured: int) -> Optional[int]:
        # A task whole: chunks in turn would wait up to 24 h each for their own batches, and a
        # re-run follows earlier batches by the task's pending keys.
        return None

    async def run(self, task: Task, jobs: Sequence[Job], emit: Emit) -> None:
        if not jobs:
            return
        pending = {self.journal_key(task, job): job for job in jobs}
        earlier = [s for s in self.ledger.submissions().values() if s.task == task.name and not s.collected]
        followed: list[Submission] = []
        asked: set[str] = set()
        for submission in earlier:
            keys = {_journal_key(i) for i in self.ledger.custom_ids(submission.sha)}
            if keys & pending.keys():
                followed.append(submission)
                asked |= keys
            else:  # its answers were journaled before a kill kept it from being marked collected
                self.ledger.collect([submission.sha])
        # Planned by a run killed before (or just after) creating its batch: the provider may have it.
        unrecorded = {s.sha for s in followed if s.batch_id is None}
        fresh = ((key, job, [*self.messages(task, job)], None) for key, job in pending.items() if key not in asked)
        waiting = _files(self._lines(task, fresh), self.settings.batch_max_requests)
        await self._follow(task, pending, followed, waiting, unrecorded, emit)

    async def _follow(self, task: Task, pending: dict[str, Job], active: list[Submission], waiting: Iterator[FileLines],
                      unrecorded: set[str], emit: Emit) -> None:
        """Keep up to ``batch_max_open`` batches open, writing each file only when its batch is
        created (at 10^8 requests the files would be hundreds of GB); poll them; collect each as
        soon as it ends, planning its re-asks as further batches."""
        stage = self.stage(f"Batch API: {task.name}", None)
        most = self.settings.batch_max_open or float("inf")
        while True:
            created = [s for s in active if s.batch_id is not None]
            for submission in [s for s in active if s.batch_id is None]:
                if len(created) >= most:
                    break
                await self._create(submission, look_first=submission.sha in unrecorded)
                created.append(submission)
            while len(created) < most and (file := next(waiting, None)) is not None:
                (submission,) = self._plan(task, [file], superseded=[])
                await self._create(submission, look_first=False)
                active.append(submission)
                created.append(submission)
            if not active:
                break
            statuses: dict[str, int] = {}
            done = total = 0
            for submission in created:
                batch = await self._call("retrieve_batch", batch_id=submission.batch_id)
                if batch.status not in ENDED:
                    statuses[batch.status] = statuses.get(batch.status, 0) + 1
                    counts = batch.request_counts
                    done += (counts.completed + counts.failed) if counts else 0
                    total += counts.total if counts else submission.requests
                    continue
                active.remove(submission)
                reasks = await self._collect(task, pending, submission, batch, emit)
                if reasks:  # planned now, created when a slot is free
                    active += self._plan(task, list(_files(self._lines(task, reasks), self.settings.batch_max_requests)), [submission.sha])
                else:
                    self.ledger.collect([submission.sha])
            if statuses:
                states = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
                queued = len(active) - sum(statuses.values())
                stage.describe(f"{sum(statuses.values())} batches open ({states}){f', {queued} waiting' if queued else ''}"
                               f" · {done:,}/{total:,} requests answered")
                await asyncio.sleep(self.settings.batch_poll_seconds)
        stage.describe("every batch collected")

    def _plan(self, task: Task, files: list[FileLines], superseded: list[str]) -> list[Submission]:
        """Write request files (custom id = journal key, or with the round for a re-ask) and record
        them, with the submissions they replace, before any batch is made of them."""
        submissions: list[Submission] = []
        for lines, carried in files:
            content = b"".join(lines)
            sha = hashlib.sha256(content).hexdigest()[:32]
            self.ledger.write_requests(sha, content)
            submissions.append(Submission(sha, task.name, len(lines), carried))
        self.ledger.plan(submissions, superseded)
        return submissions

    def _lines(self, task: Task, requests: Iterable[Request]) -> Iterator[tuple[bytes, str, Optional[list]]]:
        for custom_id, job, messages, carried in requests:
            answer_format = self._response_format(task, job)
            body = {"model": self.api_model, "messages": messages, **self.sampling, **({"response_format": answer_format} if answer_format else {})}
            line = json.dumps({"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}, ensure_ascii=False) + "\n"
            yield line.encode("utf-8"), custom_id, carried

    async def _create(self, submission: Submission, look_first: bool) -> None:
        """Create the submission's batch, unless (after a kill) the provider already has it."""
        batch = await self._find(submission.sha) if look_first else None
        if batch is None:
            content = self.ledger.request_file(submission.sha).read_bytes()
            uploaded = await self._call("create_file", file=(f"llmaug-{submission.sha}.jsonl", content), purpose="batch")
            batch = await self._call("create_batch", completion_window="24h", endpoint=ENDPOINT, input_file_id=uploaded.id,
                                     metadata={"llmaug_requests": submission.sha})
        submission.batch_id = batch.id
        self.ledger.created(submission.sha, batch.id)

    async def _find(self, sha: str) -> Optional[Any]:
        after = None
        while True:
            page = await self._call("list_batches", limit=100, **({"after": after} if after else {}))
            batches = list(page.data or [])
            for batch in batches:
                if (batch.metadata or {}).get("llmaug_requests") == sha:
                    return batch
            if not batches or not page.has_more:
                return None
            after = batches[-1].id

    async def _collect(self, task: Task, pending: dict[str, Job], submission: Submission, batch: Any, emit: Emit) -> list[Request]:
        """Journal what an ended batch answered; return the re-asks it calls for."""
        results: dict[str, dict] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):  # an expired batch has both, partly
            if file_id:
                content = await self._call("file_content", file_id=file_id)
                for line in content.content.splitlines():
                    if line.strip():
                        result = json.loads(line)
                        results[result["custom_id"]] = result
        reasks: list[Request] = []
        for custom_id in self.ledger.custom_ids(submission.sha):
            key = _journal_key(custom_id)
            job = pending.get(key)
            if job is None:  # journaled by an earlier run killed while collecting
                continue
            outcome = Outcome(job, self.request_hash(task, job))
            outcome.reasks, outcome.input_tokens, outcome.output_tokens, outcome.cost = submission.carried.get(custom_id, (0, 0, 0, 0.0))
            follow_up = self._judge_result(task, job, outcome, results.get(custom_id), batch)
            if follow_up is not None and outcome.reasks < self.settings.max_reasks:
                outcome.reasks += 1
                carried = [outcome.reasks, outcome.input_tokens, outcome.output_tokens, outcome.cost]
                reasks.append((custom_id, job, follow_up, carried))
            else:
                emit(outcome)
        sent = self.ledger.messages(submission.sha, {custom_id for custom_id, *_ in reasks}) if reasks else {}
        return [(f"{_journal_key(c)}-r{carried[0]}", job, sent[c] + follow_up, carried) for c, job, follow_up, carried in reasks]

    def _judge_result(self, task: Task, job: Job, outcome: Outcome, result: Optional[dict], batch: Any) -> Optional[Messages]:
        """Fill ``outcome`` from one result line; the re-ask turns when the answer was invalid."""
        if result is None:
            outcome.error, outcome.retryable = f"batch {batch.id} ended {batch.status} without answering it{_batch_errors(batch)}", True
            return None
        response = result.get("response") or {}
        status, body = response.get("status_code"), response.get("body") or {}
        choices = body.get("choices") if isinstance(body, dict) else None
        if result.get("error") or status != 200 or not choices:
            error = result.get("error") or (body.get("error") if isinstance(body, dict) else None) or {}
            error = error if isinstance(error, dict) else {"message": str(error)}
            outcome.error = f"batch request failed ({status or error.get('code') or 'no status'}): {error.get('message') or 'no answer'}"[:400]
            # About this request (400: too long, refused): asking again gets the same; anything else may pass.
            outcome.retryable = not (isinstance(status, int) and 400 <= status < 500 and status not in (408, 409, 429))
            return None
        usage = body.get("usage") or {}
        input_tokens, output_tokens = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
        outcome.input_tokens += input_tokens
        outcome.output_tokens += output_tokens
        outcome.cost += self.price(input_tokens, output_tokens) if self.priced else 0.0
        choice = choices[0]
        return self.judge(task, job, outcome, (choice.get("message") or {}).get("content") or "", choice.get("finish_reason"))

    async def _call(self, name: str, **params: Any) -> Any:
        """One Files/Batches call. A passing fault (connection, 429, 5xx) is retried with back-off,
        as a live request would be: following a batch takes hours. Anything else stops the run
        with one line; the ledger keeps what was created."""
        import openai  # litellm's Files/Batches calls let the SDK's own timeout and connection errors through

        litellm = self.litellm
        passing = (litellm.APIConnectionError, litellm.Timeout, litellm.RateLimitError, litellm.ServiceUnavailableError,
                   litellm.InternalServerError, openai.APIConnectionError)
        # litellm waits 600 s by default: a call lost on the way (a dropped connection) would stall
        # the run for ten minutes before its retry. Only moving a batch file may take that long.
        timeout = self.settings.timeout or (TRANSFER_TIMEOUT_S if name in TRANSFERS else CONTROL_TIMEOUT_S)
        for attempt in range(self.settings.num_retries + 1):
            try:
                return await getattr(litellm, f"a{name}")(**params, **self.api, timeout=timeout)
            except Exception as exc:
                if not isinstance(exc, passing) or attempt == self.settings.num_retries:
                    raise ProviderError(f"{self.model} Batch API, {name}: {type(exc).__name__}: {_first_line(exc)}") from None
                await asyncio.sleep(min(2**attempt, 60))


def _journal_key(custom_id: str) -> str:
    """A re-ask's custom id is its journal key with the round appended (ids are unique per batch)."""
    return custom_id.split("-r", 1)[0]


def _batch_errors(batch: Any) -> str:
    errors = getattr(getattr(batch, "errors", None), "data", None) or []
    return f": {errors[0].message}" if errors and getattr(errors[0], "message", None) else ""


def _files(lines: Iterator[tuple[bytes, str, Optional[list]]], most_requests: int) -> Iterator[FileLines]:
    """Request lines cut into files of at most ``most_requests`` lines and ``MAX_FILE_BYTES``."""
    chunk: list[bytes] = []
    carried: dict[str, list] = {}
    size = 0
    for line, custom_id, carry in lines:
        if chunk and (len(chunk) == most_requests or size + len(line) > MAX_FILE_BYTES):
            yield chunk, carried
            chunk, carried, size = [], {}, 0
        chunk.append(line)
        size += len(line)
        if carry is not None:
            carried[custom_id] = carry
    if chunk:
        yield chunk, carried
