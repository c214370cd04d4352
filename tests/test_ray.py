"""`llmaug augment --ray` on a real local Ray cluster, against the loopback LLM server: actors
answer shards, the driver journals; a killed actor or a killed driver asks again only what was
in flight, and no Ray process outlives the run that started it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from conftest import LLMAUG, run_llmaug
from llm_server import Behaviour, LoopbackLLM

KEY = "sk-test-ray-0a1b2c3d4e5f"


@pytest.fixture
def server():
    with LoopbackLLM(behaviour=Behaviour(latency=0.05)) as llm:
        yield llm


def command(server, books, out: Path, ray: str) -> list[str]:
    return [*LLMAUG, "augment", "--dataset", str(books[0]), "--config", str(books[1]), "--out", str(out), "--quiet",
            "--model", "openai/stub-llm", "--api-base", server.base_url, "--concurrency", "4", "--ray", ray]


@contextlib.contextmanager
def running(command: list[str], **options) -> Iterator[subprocess.Popen]:
    """A driver that does not outlive its test, whatever the test's outcome."""
    process = subprocess.Popen(command, env={**os.environ, "OPENAI_API_KEY": KEY}, stdout=subprocess.DEVNULL, **options)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def pids(pattern: str) -> set[int]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    return {int(p) for p in found}


def ray_processes() -> set[int]:
    """Ray's services (raylet, GCS, dashboard agent, log monitor...) and its workers."""
    return pids("site-packages/ray/") | pids("^ray::")


def journal_lines(out: Path) -> int:
    journal = out / ".llmaug" / "journal.jsonl"
    return journal.read_text().count("\n") if journal.exists() else 0


def wait_for(condition, seconds: float = 180) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline and not condition():
        time.sleep(0.05)
    assert condition()


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def test_a_killed_driver_takes_its_ray_with_it_and_the_rerun_asks_only_what_was_out(server, books, tmp_path):
    before = ray_processes()
    out = tmp_path / "driver"
    with running(command(server, books, out, "local"), stderr=subprocess.DEVNULL) as driver:
        wait_for(lambda: journal_lines(out) >= 30)
        started = ray_processes() - before
        assert started  # a Ray of its own, started by llmaug
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    wait_for(lambda: not (ray_processes() & started), 60)  # every one of them, not only those Ray ties to the driver
    answered = dict(server.per_prompt)

    resumed = run_llmaug(*command(server, books, out, "local")[len(LLMAUG):], env={"OPENAI_API_KEY": KEY})
    assert resumed.returncode == 0, resumed.stderr
    counts = manifest(out)["tasks"]
    assert sum(c["accepted"] for c in counts.values()) == 100 and len(server.per_prompt) == 100
    repeated = [k for k, n in server.per_prompt.items() if n > 1]
    # At most the shards out at the kill (2 actors x 2 shards x 8 requests) are asked again.
    assert len(repeated) <= 32 and all(k in answered for k in repeated)
    assert not (ray_processes() - before)  # the finished run stopped its Ray, all of it
    assert not any(KEY in p.read_text(errors="replace") for p in Path("/tmp/ray").rglob("*") if p.is_file() and p.stat().st_size < 2**24)


@pytest.fixture
def cluster():
    """A local Ray cluster with 2 CPUs, started by the test; the CLI joins it with --ray auto."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_actors_answer_every_request_and_a_killed_actor_loses_only_its_shards(cluster, server, books, tmp_path):
    out = tmp_path / "actors"
    with running(command(server, books, out, "auto"), stderr=subprocess.PIPE, text=True) as driver:
        wait_for(lambda: journal_lines(out) >= 10 or driver.poll() is not None)
        assert driver.poll() is None, driver.stderr.read()
        actors = pids("ray::_Asker")
        assert len(actors) == 2
        os.kill(min(actors), signal.SIGKILL)
        _, stderr = driver.communicate(timeout=300)
        assert driver.returncode == 0, stderr
    counts = manifest(out)["tasks"]
    assert sum(c["accepted"] for c in counts.values()) == 100 and sum(c["unanswered"] for c in counts.values()) == 0
    assert manifest(out)["llm"]["ray_actors"] == 2 and manifest(out)["llm"]["shard_size"] == 8
    assert len(server.per_prompt) == 100
    assert sum(n - 1 for n in server.per_prompt.values()) <= 16  # the dead actor's two shards at most
    entries = [json.loads(line) for line in (out / ".llmaug" / "journal.jsonl").read_text().splitlines()]
    assert len(entries) == 100 and len({e["key"] for e in entries}) == 100  # journaled once each, by the driver
