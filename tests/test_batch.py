"""`llmaug augment --batch` against the OpenAI Files and Batches endpoints served on 127.0.0.1
(tests/batch_server.py), pointed at as a user points it at OpenAI: `--model openai/gpt-4o-mini`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from batch_server import BatchBehaviour, LoopbackBatchAPI
from conftest import LLMAUG, invoke_llmaug
from llm_server import Behaviour
from tiny_dataset import BOOKS_CONFIG

from llmaug.candidates.order import display_orders

pytestmark = pytest.mark.slow  # every test here runs llmaug end to end against a server

KEY = "sk-test-batch-5a4b3c2d1e0f"
MODEL = "openai/gpt-4o-mini"  # priced in litellm's map, so batch cost is checked too


@pytest.fixture
def server():
    with LoopbackBatchAPI() as api:
        yield api


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "batch.yaml"
    # On the loopback a call unanswered in 10 s is lost (a dropped connection): retried, not awaited for litellm's 600 s.
    path.write_text(BOOKS_CONFIG + "batch_poll_seconds: 0.05\nbatch_max_requests: 15\ntimeout: 10\n")
    return path


def command(server, books, config, out: Path, *extra: str) -> list[str]:
    return [*LLMAUG, "augment", "--dataset", str(books[0]), "--config", str(config), "--out", str(out), "--quiet",
            "--model", MODEL, "--api-base", server.base_url, "--batch", *extra]


def augment(server, books, config, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return invoke_llmaug(*command(server, books, config, out, *extra)[len(LLMAUG):], env={"OPENAI_API_KEY": KEY})


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def batch_rate() -> tuple[float, float]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    info = litellm.get_model_info(MODEL)
    return info["input_cost_per_token_batches"], info["output_cost_per_token_batches"]


def test_every_task_goes_through_batches_within_the_file_limit_and_is_priced_at_the_batch_rate(server, books, config, tmp_path):
    out = tmp_path / "shelf"
    config.write_text(config.read_text() + "batch_max_open: 2\nvotes: 2\n")
    result = augment(server, books, config, out)
    assert result.returncode == 0, result.stderr
    tasks = manifest(out)["tasks"]
    assert (tasks["edges"]["accepted"], tasks["users"]["accepted"], tasks["items"]["accepted"]) == (80, 40, 20)
    assert len(server.requests) == 140 and max(server.asked.values()) == 1  # no live call, each request once
    assert len(server.batches) == 6 + 3 + 2  # 80 edge votes, 40 profiles and 20 items in files of at most 15
    assert all(b["request_counts"]["total"] <= 15 for b in server.batches.values())
    assert server.most_open == 2  # batch_max_open: the third file waits for a slot
    assert server.requests[0]["body"]["model"] == "gpt-4o-mini" and "response_format" in server.requests[0]["body"]
    # Output lines came back shuffled; each answer still reached its own user and vote. The stub
    # names the first and last line: two votes never agree on liked, so the edge is vote 0's picks.
    edges = (out / "shelf.augedge").read_text(encoding="utf-8").splitlines()[1:]
    pools = dict(line.split("\t") for line in (out / "shelf.candidates").read_text(encoding="utf-8").splitlines()[1:])
    assert len(edges) == 40
    seed = manifest(out)["settings"]["seed"]
    for user, pos, neg, agreement in (line.split("\t") for line in edges):
        first = display_orders(5, "shuffled", seed, user, 2)[0]
        assert (pos, neg, agreement) == (pools[user].split()[first[0] - 1], pools[user].split()[first[-1] - 1], "0.5")
    rate_in, rate_out = batch_rate()
    for counts in tasks.values():
        expected = counts["input_tokens"] * rate_in + counts["output_tokens"] * rate_out
        assert counts["cost_usd"] == pytest.approx(expected, rel=1e-4, abs=1e-6) and counts["cost_usd"] > 0
    assert manifest(out)["llm"]["batch"] is True
    ledger = (out / ".llmaug" / "batches.jsonl").read_text().splitlines()
    assert sum("created" in json.loads(line) for line in ledger) == 11
    assert not any((out / ".llmaug" / "batch-requests").iterdir())  # collected: the prompts are not kept


def test_an_expired_batch_and_failed_requests_are_counted_and_only_they_are_asked_again(server, books, config, tmp_path):
    failing = {}

    def fail(custom_id: str):
        return failing.get(custom_id)

    server.batch = BatchBehaviour(expire=lambda number: number == 1, fail=fail)
    out = tmp_path / "partly"
    # The first two requests of the second (non-expiring) batch get a 500 and a 400 inside it.
    original_finish = server._finish

    async def finish(batch):
        if not failing and batch["_number"] == 2:
            ids = [line["custom_id"] for line in batch["_lines"]]
            failing.update({ids[0]: 500, ids[1]: 400})
        await original_finish(batch)

    server._finish = finish
    result = augment(server, books, config, out, "--tasks", "items")
    assert result.returncode == 0, result.stderr
    counts = manifest(out)["tasks"]["items"]
    # Batch 1 (15 requests) expired with 7 answered; batch 2 (5) answered all but a 500 and a 400.
    assert counts["requested"] == 20 and counts["accepted"] == 7 + 3
    assert counts["failed"] == 1 and counts["unanswered"] == 8 + 1
    assert any("expired" in e for e in counts["unanswered_errors"]) and any("500" in e for e in counts["unanswered_errors"])
    assert "unanswered requests are asked again" in result.stderr
    asked_first = dict(server.asked)

    server.batch = BatchBehaviour()
    server._finish = original_finish
    again = augment(server, books, config, out, "--tasks", "items")
    assert again.returncode == 0, again.stderr
    counts = manifest(out)["tasks"]["items"]
    assert counts["accepted"] == 19 and counts["failed"] == 1 and counts["unanswered"] == 0
    asked_again = {k: n - asked_first.get(k, 0) for k, n in server.asked.items() if n > asked_first.get(k, 0)}
    assert len(asked_again) == 9  # the 8 expired and the 500; neither the answered nor the 400 again


def test_invalid_answers_are_reasked_in_a_further_batch_with_the_error(server, books, config, tmp_path):
    server.behaviour = Behaviour(decide=lambda n, messages: ("ok", "I think the first one.") if n == 1 else ("ok", None))
    server.batch.flaky_retrieves = 2  # a passing 503 while following is retried, not fatal
    server.batch.lost_retrieves = 1   # and so is a status request never answered, once its timeout is up
    out = tmp_path / "reasked"
    config.write_text(config.read_text().replace("timeout: 10", "timeout: 1"))
    started = time.monotonic()
    result = augment(server, books, config, out, "--tasks", "items")
    assert time.monotonic() - started < 60  # not litellm's default 600 s
    assert result.returncode == 0, result.stderr
    counts = manifest(out)["tasks"]["items"]
    assert counts["accepted"] == 20 and counts["reasked"] == 20
    assert len(server.batches) == 2 + 2  # the first answers, then their re-asks
    reask = next(r["body"]["messages"] for r in server.requests if len(r["body"]["messages"]) > 2)
    assert reask[-2]["content"] == "I think the first one." and "invalid" in reask[-1]["content"]
    assert {c.rsplit("-r", 1)[-1] for c in server.asked if "-r" in c} == {"1"}
    assert server.batch.flaky_retrieves == server.batch.lost_retrieves == 0


def test_a_killed_run_resumes_its_batches_and_creates_none_twice(server, books, config, tmp_path):
    server.batch.hold.clear()  # batches stay in progress until the driver is killed
    out = tmp_path / "killed"
    process = subprocess.Popen(command(server, books, config, out), env={**os.environ, "OPENAI_API_KEY": KEY},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(server.batches) < 3:  # the edge task's three batches exist
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert len(server.batches) == 3 and not (out / "manifest.json").exists()
    # The worst moment: killed after the provider created a batch, before the ledger said so.
    ledger = out / ".llmaug" / "batches.jsonl"
    lines = ledger.read_text().splitlines()
    created = [line for line in lines if '"created"' in line]
    ledger.write_text("\n".join(line for line in lines if line != created[-1]) + "\n")

    server.batch.hold.set()
    resumed = augment(server, books, config, out)
    assert resumed.returncode == 0, resumed.stderr
    tasks = manifest(out)["tasks"]
    assert (tasks["edges"]["accepted"], tasks["users"]["accepted"], tasks["items"]["accepted"]) == (40, 40, 20)
    assert len(server.batches) == 8 and max(server.asked.values()) == 1
    shas = [b["metadata"]["llmaug_requests"] for b in server.batches.values()]
    assert len(set(shas)) == len(shas)


def test_dry_run_shows_the_batch_price_and_batch_needs_a_batch_api(server, books, config, tmp_path):
    def total(result):
        assert result.returncode == 0, result.stderr
        return float(result.stdout.split("total cost: $")[1])

    priced = ("--quiet", "--model", MODEL, "--dry-run", "--tasks", "users,items")  # no base model to train
    live = invoke_llmaug("augment", "--dataset", str(books[0]), "--config", str(config), "--out", str(tmp_path / "a"), *priced)
    batch = invoke_llmaug("augment", "--dataset", str(books[0]), "--config", str(config), "--out", str(tmp_path / "b"), *priced, "--batch")
    assert total(batch) == pytest.approx(total(live) / 2, abs=1e-4) and total(batch) > 0  # printed to 4 decimals
    assert server.requests == [] and server.batches == {}
    for model in ("offline", "ollama_chat/llama3.1"):
        refused = invoke_llmaug("augment", "--dataset", str(books[0]), "--config", str(config), "--out", str(tmp_path / "c"),
                             "--quiet", "--model", model, "--batch")
        assert refused.returncode == 2 and "--batch" in refused.stderr and "Traceback" not in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and not (tmp_path / "c").exists()
