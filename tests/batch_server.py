"""The OpenAI Files and Batches endpoints on 127.0.0.1, over the loopback chat server's answers.

A batch moves on each time it is retrieved: validating, in_progress, then (unless ``hold`` is
clear) it ends: every request answered by ``LoopbackLLM.respond``, output lines in a shuffled
order, as the real API does not promise any. Tests script the misbehaviour no real provider
shows on demand: a batch that expires part-way, requests that fail inside a batch, an API that
answers 503 for a while.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Optional

from aiohttp import web

from llm_server import LoopbackLLM


@dataclass
class BatchBehaviour:
    hold: threading.Event = field(default_factory=threading.Event)  # batches end only once this is set
    expire: Callable[[int], bool] = lambda number: False             # this batch (1, 2...) expires with half answered
    fail: Callable[[str], Optional[int]] = lambda custom_id: None    # an HTTP status for this request inside the batch
    flaky_retrieves: int = 0                                         # the first N status requests get HTTP 503
    lost_retrieves: int = 0                                          # the next N status requests are never answered

    def __post_init__(self) -> None:
        self.hold.set()


@dataclass
class LoopbackBatchAPI(LoopbackLLM):
    batch: BatchBehaviour = field(default_factory=BatchBehaviour)
    files: dict = field(default_factory=dict)
    batches: dict = field(default_factory=dict)
    asked: Counter = field(default_factory=Counter)  # custom id -> times it was answered in some batch
    most_open: int = 0                               # the most batches open at once

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files/{id}/content", self._content)
        app.router.add_post("/v1/batches", self._create)
        app.router.add_get("/v1/batches", self._list)
        app.router.add_get("/v1/batches/{id}", self._retrieve)

    def _store(self, content: bytes, filename: str, purpose: str) -> dict:
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = content
        return {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                "filename": filename, "purpose": purpose, "status": "processed"}

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        return web.json_response(self._store(upload.file.read(), upload.filename, form["purpose"]))

    async def _content(self, request: web.Request) -> web.Response:
        return web.Response(body=self.files[request.match_info["id"]], content_type="application/octet-stream")

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        lines = [json.loads(line) for line in self.files[body["input_file_id"]].splitlines() if line.strip()]
        batch_id = f"batch_{len(self.batches) + 1}"
        self.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None, "input_file_id": body["input_file_id"],
            "completion_window": body["completion_window"], "status": "validating", "output_file_id": None, "error_file_id": None,
            "created_at": int(time.time()), "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "metadata": body.get("metadata"), "_lines": lines, "_number": len(self.batches) + 1,
        }
        self.most_open = max(self.most_open, sum(b["status"] in ("validating", "in_progress") for b in self.batches.values()))
        return web.json_response(self._public(batch_id))

    async def _list(self, request: web.Request) -> web.Response:
        ids = list(reversed(self.batches))  # newest first, as OpenAI lists them
        after = request.query.get("after")
        if after:
            ids = ids[ids.index(after) + 1 :]
        limit = int(request.query.get("limit", 20))
        page = ids[:limit]
        return web.json_response({"object": "list", "data": [self._public(i) for i in page], "first_id": page[0] if page else None,
                                  "last_id": page[-1] if page else None, "has_more": len(ids) > limit})

    async def _retrieve(self, request: web.Request) -> web.Response:
        if self.batch.flaky_retrieves:
            self.batch.flaky_retrieves -= 1
            return web.json_response({"error": {"message": "overloaded", "type": "test"}}, status=503)
        if self.batch.lost_retrieves:
            self.batch.lost_retrieves -= 1
            await asyncio.sleep(3600)  # as a request lost with its connection: no answer, no error
        batch = self.batches[request.match_info["id"]]
        if batch["status"] == "validating":
            batch["status"] = "in_progress"
        elif batch["status"] == "in_progress" and self.batch.hold.is_set():
            await self._finish(batch)
        return web.json_response(self._public(batch["id"]))

    async def _finish(self, batch: dict) -> None:
        lines = batch["_lines"]
        expired = self.batch.expire(batch["_number"])
        answered = lines[: len(lines) // 2] if expired else lines
        output, errors = [], []
        for line in answered:
            custom_id = line["custom_id"]
            self.asked[custom_id] += 1
            status = self.batch.fail(custom_id)
            if status is None:
                status, body, _ = await self.respond(line["body"], {})
            else:
                body = {"error": {"message": f"scripted failure {status}", "type": "test"}}
            result = {"id": f"req-{custom_id}", "custom_id": custom_id, "response": {"status_code": status, "body": body}, "error": None}
            (output if status == 200 else errors).append(result)
        for line in lines[len(answered) :]:
            errors.append({"id": f"req-{line['custom_id']}", "custom_id": line["custom_id"], "response": None,
                           "error": {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}})
        random.Random(batch["_number"]).shuffle(output)
        batch["output_file_id"] = self._store(b"".join(json.dumps(r).encode() + b"\n" for r in output), "out.jsonl", "batch_output")["id"] if output else None
        batch["error_file_id"] = self._store(b"".join(json.dumps(r).encode() + b"\n" for r in errors), "err.jsonl", "batch_output")["id"] if errors else None
        batch["request_counts"] = {"total": len(lines), "completed": len(output), "failed": len(errors)}
        batch["status"] = "expired" if expired else "completed"

    def _public(self, batch_id: str) -> dict:
        return {k: v for k, v in self.batches[batch_id].items() if not k.startswith("_")}
