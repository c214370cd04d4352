"""A real LLM: llama.cpp's llama-server serving Gemma 3 270M (both from PyPI, the "local" extra),
driven through the CLI as a user would, both as a server the user runs (`--api-base`) and as the
server llmaug manages itself (`--model local`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

import httpx
import pytest

from conftest import IN_A_TERMINAL, LLMAUG, invoke_llmaug
from llmaug.config import load_settings
from llmaug.inspect import render_messages
from llmaug.providers.local import LlamaServer, model_path

pytestmark = pytest.mark.slow  # every test here runs llmaug end to end against a real LLM server

GEMMA = "local/gemma-3-270m-q4_k_m"
T = TypeVar("T")


# One thread per llama-server: the suite runs two test workers on two cores, and llama.cpp's threads
# spin while they wait, so two servers of two threads each ran these tests 1.7x slower.
SERVER_THREADS = 1


@pytest.fixture
def books(books):
    """The book dataset, its config asking for a one-thread server."""
    directory, config = books
    config.write_text(config.read_text(encoding="utf-8") + f"local_threads: {SERVER_THREADS}\n", encoding="utf-8")
    return directory, config


@pytest.fixture(scope="module")
def gemma_server(tmp_path_factory):
    """A llama-server the test runs, as a user runs theirs: two slots, 4,096 tokens each."""
    with LlamaServer(model_path(load_settings()), context=8192, parallel=2, threads=SERVER_THREADS, extra_args=[],
                     log=tmp_path_factory.mktemp("server") / "server.log") as server:
        yield server


def augment_args(books, out: Path, *extra: str) -> list[str]:
    directory, config = books
    return ["augment", "--dataset", str(directory), "--config", str(config), "--out", str(out), "--quiet", *extra]


def journal(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / ".llmaug" / "journal.jsonl").read_text().splitlines() if line.strip()]


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def llama_servers_under(pid: int) -> set[int]:
    """llama-server processes that are children of ``pid``."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return set()
    return {int(c) for c in children if _comm(int(c)) == "llama-server"}


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def watch(process: subprocess.Popen, until, timeout: float = 300) -> set[int]:
    """Poll while ``process`` runs; return the llama-servers it started. Stops when ``until()``."""
    servers: set[int] = set()
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None and not until():
        servers |= llama_servers_under(process.pid)
        time.sleep(0.1)
    return servers


def watching_children(run: Callable[[], T]) -> tuple[T, set[int]]:
    """``run()`` in this process, and the llama-servers it started as children of this process
    meanwhile (a module's own ``gemma_server`` is not one of them)."""
    ours = llama_servers_under(os.getpid())
    started: set[int] = set()
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            started.update(llama_servers_under(os.getpid()) - ours)
            time.sleep(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        return run(), started
    finally:
        done.set()
        poller.join()


def wait_gone(pids: set[int], seconds: float = 15) -> set[int]:
    deadline = time.time() + seconds
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return {p for p in pids if alive(p)}


def journal_lines(out: Path) -> int:
    path = out / ".llmaug" / "journal.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


def server_token_count(server: LlamaServer, messages: list[dict]) -> int:
    prompt = httpx.post(f"{server.url}/apply-template", json={"messages": messages}, timeout=30).json()["prompt"]
    return len(httpx.post(f"{server.url}/tokenize", json={"content": prompt, "add_special": True}, timeout=30).json()["tokens"])


def test_a_self_hosted_server_gets_the_schema_and_answers_every_request(gemma_server, books, tmp_path):
    """The run that once got 0 of 12 answers (4 users, 4 items): 2 and 2, every default."""
    out = tmp_path / "served"
    result = invoke_llmaug(*augment_args(books, out, "--model", "openai/gemma", "--api-base", f"{gemma_server.url}/v1",
                                         "--limit-users", "2", "--limit-items", "2"), env={"OPENAI_API_KEY": "sk-unused"})
    assert result.returncode == 0, result.stderr
    llm = manifest(out)["llm"]
    assert (llm["structured_output_used"], llm["self_hosted"], llm["timeout_s"], llm["concurrency"]) == ("json_schema", True, 600, 2)
    tasks = manifest(out)["tasks"]
    assert all(t["requested"] == 2 and t["unanswered"] == 0 and t["accepted"] + t["failed"] == 2 for t in tasks.values())
    assert tasks["edges"]["accepted"] >= 1 and tasks["items"]["accepted"] >= 1

    entries = journal(out)
    assert len(entries) == 6
    pools = dict(line.split("\t") for line in (out / "served.candidates").read_text(encoding="utf-8").splitlines()[1:])
    for entry in entries:
        if entry["task"] == "edges" and entry["status"] == "accepted":
            offered, record = pools[entry["entity"]].split(), entry["record"]
            assert record["liked"] in offered and record["disliked"] in offered and record["liked"] != record["disliked"]
            # The model saw the pool shuffled; its numbers map back through the recorded order to base-model ranks.
            assert sorted(record["order"]) == list(range(1, len(offered) + 1))
            ranks = [record["order"][number - 1] for number in record["shown"]]
            assert [offered[rank - 1] for rank in ranks] == [record["liked"], record["disliked"]]
    # Token counts are the server's: its own chat template and tokenizer give the same number.
    settings = load_settings(books[1])
    for entry in [e for e in entries if e["reasks"] == 0 and e["task"] != "edges"][:3]:
        messages = render_messages(str(books[0]), settings, entry["task"], entry["entity"])
        assert entry["input_tokens"] == server_token_count(gemma_server, messages)
        assert entry["output_tokens"] > 0


def test_local_model_serves_a_run_a_kill_9_leaves_no_server_and_resume_repeats_no_finished_request(books, tmp_path):
    """`--model local` starts its server, answers every task and stops it; a kill -9 mid-run takes
    the server with it, and the same command resumes from the journal (one test: each run pays the
    base model, a server start and the requests)."""
    out = tmp_path / "killed"
    command = [*LLMAUG, *augment_args(books, out, "--model", "local", "--limit-users", "2", "--limit-items", "1")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    servers = watch(process, until=lambda: journal_lines(out) >= 2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(servers) == 1 and not wait_gone(servers), "the server outlived llmaug's kill -9"
    before = {e["key"] for e in journal(out)}
    assert 2 <= len(before) < 5 and not (out / "manifest.json").exists()

    resumed, started = watching_children(lambda: invoke_llmaug(*command[len(LLMAUG):]))  # its server must be gone after it too
    assert resumed.returncode == 0, resumed.stderr
    assert len(started) == 1 and not wait_gone(started)
    entries = journal(out)
    final = [e["key"] for e in entries if e["status"] in ("accepted", "failed")]
    assert len(final) == len(set(final)) == 5, "a finished request was asked again"
    m = manifest(out)
    assert sum(t["from_earlier_run"] for t in m["tasks"].values()) >= len(before)
    assert m["model"] == GEMMA and m["llm"]["structured_output_used"] == "json_schema" and m["llm"]["concurrency"] == 2
    assert "--parallel 2" in m["llm"]["server"] and "--host 127.0.0.1" in m["llm"]["server"]
    assert all(e["model"] == GEMMA and e["input_tokens"] > 0 for e in entries)
    assert "RecBole dataset written" in resumed.stdout


def test_a_prompt_over_the_context_window_fails_alone(books, tmp_path):
    """Book edge and profile prompts are 430-550 tokens, item prompts ~220: a 256-token server
    refuses the first two kinds, each as one request's failure, and answers the third."""
    out = tmp_path / "small"
    result = invoke_llmaug(*augment_args(books, out, "--model", "local", "--local-context", "256", "--local-parallel", "1",
                                         "--limit-users", "2", "--limit-items", "2"))
    assert result.returncode == 0, result.stderr
    tasks = manifest(out)["tasks"]
    assert (tasks["edges"]["failed"], tasks["users"]["failed"]) == (2, 2)
    assert tasks["items"]["accepted"] + tasks["items"]["failed"] == 2 and tasks["items"]["accepted"] >= 1
    refused = [e for e in journal(out) if e["task"] in ("edges", "users")]
    assert all("ContextWindowExceededError" in e["error"] and e["reasks"] == 0 for e in refused)


def test_ctrl_c_stops_the_server(books, tmp_path):
    out = tmp_path / "interrupted"
    # Item prompts are the shortest (~220 tokens): the first answer, after which the interrupt comes, is soonest.
    process = subprocess.Popen([*IN_A_TERMINAL, *augment_args(books, out, "--model", "local", "--tasks", "items")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        servers = watch(process, until=lambda: journal_lines(out) >= 1)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130 and "Traceback" not in stderr
    assert len(servers) == 1 and not wait_gone(servers)


def test_an_error_after_the_server_started_stops_it(books, tmp_path):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "items.jinja").write_text("{% block user %}{{ no_such_variable }}{% endblock %}", encoding="utf-8")
    out = tmp_path / "broken"
    result, servers = watching_children(lambda: invoke_llmaug(*augment_args(books, out, "--model", "local", "--tasks", "edges,items",
                                                                             "--limit-users", "1", "--prompts", str(prompts))))
    assert result.returncode == 2 and result.stderr.strip().splitlines() == ["llmaug: error: prompt template items.jinja: 'no_such_variable' is undefined"]
    assert len(servers) == 1 and not wait_gone(servers)
    assert sum(e["status"] == "accepted" for e in journal(out)) >= 1  # the edges answered before the error are kept


def test_a_missing_gguf_is_one_line_before_anything_is_written(books, tmp_path):
    out = tmp_path / "nofile"
    result = invoke_llmaug(*augment_args(books, out, "--model", "local", "--local-model", str(tmp_path / "absent.gguf")))
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "absent.gguf is not a file" in result.stderr and not out.exists()
