"""A small OpenAI-compatible server on 127.0.0.1 standing in for an LLM provider in tests.

It answers /v1/chat/completions and /v1/embeddings like vLLM would, counts requests per prompt,
records every request's headers and body, and can misbehave on purpose (429, 500, hangs, prose,
answers naming items that were not offered). Runs in a thread so a CLI subprocess can call it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Optional

from aiohttp import web

CANDIDATE_LINE = re.compile(r"^\s*\[(\d+)\]", re.M)


def first_user(messages: list[dict]) -> int:
    return next(k for k, m in enumerate(messages) if m["role"] == "user")


def prompt_key(messages: list[dict]) -> str:
    """Identify a request by its messages up to the first user turn (a re-ask appends to them)."""
    return hashlib.sha256(json.dumps(messages[: first_user(messages) + 1], sort_keys=True).encode()).hexdigest()[:16]


def good_answer(messages: list[dict]) -> dict:
    """A valid answer to whichever llmaug task the prompt is."""
    schema = prompt_schema(messages)
    if schema["title"] == "EdgeChoice":
        numbers = [int(n) for n in CANDIDATE_LINE.findall(messages[first_user(messages)]["content"])]
        return {"liked": numbers[0], "disliked": numbers[-1]}
    return {name: f"stub {name}" for name in schema["properties"]}


def prompt_schema(messages: list[dict]) -> dict:
    """The answer's JSON schema, which every llmaug prompt carries on a line of its own."""
    for line in messages[first_user(messages)]["content"].splitlines():
        if line.startswith('{"'):
            return json.loads(line)
    raise ValueError("no JSON schema in the prompt")


@dataclass
class Behaviour:
    """What the server does with a request; a test swaps in its own ``decide``."""

    latency: float = 0.0
    failing_models: frozenset = frozenset()  # requests for these models always get HTTP 500
    refuse_response_format: bool = False     # a server without structured output: 400 naming it
    # decide(request_number_for_this_prompt, messages) -> ("ok", answer_text) | (status, body) | ("hang", seconds)
    decide: Optional[Callable[[int, list[dict]], tuple]] = None


@dataclass
class LoopbackLLM:
    behaviour: Behaviour = field(default_factory=Behaviour)
    host: str = "127.0.0.1"
    port: int = 0
    per_prompt: Counter = field(default_factory=Counter)
    requests: list[dict] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        status, payload, headers = await self.respond(await request.json(), dict(request.headers))
        return web.json_response(payload, status=status, headers=headers)

    async def respond(self, body: dict, headers: dict) -> tuple[int, dict, Optional[dict]]:
        """(HTTP status, JSON body, extra headers) for one chat completion request."""
        messages = body["messages"]
        key = prompt_key(messages)
        self.per_prompt[key] += 1
        self.requests.append({"headers": headers, "body": body, "key": key})
        if self.behaviour.latency:
            await asyncio.sleep(self.behaviour.latency)
        if body.get("model") in self.behaviour.failing_models:
            verdict = (500, f"model {body['model']} is broken")
        elif self.behaviour.refuse_response_format and "response_format" in body:
            verdict = (400, "Unsupported parameter: 'response_format' is not supported with this model.")
        elif self.behaviour.decide:
            verdict = self.behaviour.decide(self.per_prompt[key], messages)
        else:
            verdict = ("ok", None)
        if verdict[0] == "hang":
            await asyncio.sleep(verdict[1])
            verdict = ("ok", None)
        if verdict[0] != "ok":
            status, payload, *extra = verdict
            return status, {"error": {"message": payload, "type": "test"}}, extra[0] if extra else None
        content = verdict[1] if verdict[1] is not None else json.dumps(good_answer(messages))
        prompt_tokens = sum(len(m["content"]) for m in messages if isinstance(m.get("content"), str)) // 4
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "stub"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(content) // 4,
                      "total_tokens": prompt_tokens + len(content) // 4},
        }, None

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        self.requests.append({"headers": dict(request.headers), "body": body, "key": "embeddings"})
        data = []
        for k, text in enumerate(texts):
            digest = hashlib.sha256(str(text).encode()).digest()
            data.append({"object": "embedding", "index": k, "embedding": [b / 255 - 0.5 for b in digest[:16]]})
        return web.json_response({"object": "list", "data": data, "model": body.get("model", "stub"),
                                  "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)}})

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)

    def start(self) -> "LoopbackLLM":
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            app = web.Application(client_max_size=64 * 2**20)
            self.routes(app)
            runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.host, self.port, backlog=1024)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]
            self._runner = runner
            ready.set()
            self._loop.run_forever()
            pending = asyncio.all_tasks(self._loop)  # handlers still sleeping in a "hang"
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(runner.cleanup())

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> "LoopbackLLM":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
