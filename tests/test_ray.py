"""`llmaug augment --ray` on real Ray clusters, against the loopback LLM server: actors answer
shards, the driver journals; a killed actor or a killed driver asks again only what was in flight.
Beside a user's own cluster (`ray start --head`, started here in a process group of its own): a
Ray llmaug starts is its own and goes with it, every process; a cluster llmaug joins is left
running, all of it. Nothing here reads the machine's Ray state: each test names its own."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from conftest import LLMAUG, run_llmaug
from llm_server import Behaviour, LoopbackLLM

KEY = "sk-test-ray-0a1b2c3d4e5f"
RAY = str(Path(sys.executable).with_name("ray"))


@pytest.fixture
def server():
    with LoopbackLLM(behaviour=Behaviour(latency=0.05)) as llm:
        yield llm


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def short_dir() -> Path:
    """Ray's socket paths must fit in 107 bytes: pytest's tmp_path is too deep for them."""
    return Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A TMPDIR for the driver: llmaug's own Ray keeps its files under it."""
    root = short_dir()
    yield root
    shutil.rmtree(root, ignore_errors=True)  # after a failure, Ray's processes may still be writing there


@pytest.fixture
def stale_ray_state() -> Iterator[dict[str, str]]:
    """What a `ray start` killed rather than stopped leaves: a current-cluster file naming a closed port."""
    root = short_dir()
    (root / "ray").mkdir()
    (root / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{free_port()}")
    yield {"RAY_TMPDIR": str(root)}
    shutil.rmtree(root)


class UserCluster:
    """A user's own `ray start --head --block`, in a process group of its own."""

    def __init__(self) -> None:
        self.temp_dir = short_dir()
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(self.port), "--num-cpus", "2",
             "--include-dashboard", "false", "--temp-dir", str(self.temp_dir), "--block"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: self._answers() and {"raylet", "gcs_server"} <= {name for _, name in self.members()}, 120)

    def _answers(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True
        return False

    def members(self) -> set[tuple[int, str]]:
        """Its processes: the group's, and whatever names its directory (workers of jobs that joined it)."""
        found = set()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
                if os.getpgid(int(pid)) == self.process.pid or str(self.temp_dir).encode() in command:
                    found.add((int(pid), Path(f"/proc/{pid}/comm").read_text().strip()))
        return found

    def services(self) -> set[int]:
        """What keeps the cluster up (GCS, raylet, agents, monitors): workers come and go as jobs do."""
        return {pid for pid, name in self.members() if not name.startswith("ray::")}

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        for pid, _ in self.members():  # workers outside the group, if Ray gave them one of their own
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def user_cluster() -> Iterator[UserCluster]:
    cluster = UserCluster()
    yield cluster
    cluster.stop()


def command(server, books, out: Path, ray: str, *extra: str) -> list[str]:
    return [*LLMAUG, "augment", "--dataset", str(books[0]), "--config", str(books[1]), "--out", str(out), "--quiet",
            "--model", "openai/stub-llm", "--api-base", server.base_url, "--concurrency", "4", "--ray", ray, *extra]


# The killed driver's runs skip the edges (and so the base model's training): the kill, the
# clean-up and the resume do not depend on the task, and the actors test sends edges through Ray.
NO_EDGES = ("--tasks", "users,items")  # 40 profiles and 20 items: 60 requests


@contextlib.contextmanager
def running(command: list[str], env: dict[str, str], **options) -> Iterator[subprocess.Popen]:
    """A driver that does not outlive its test, whatever the test's outcome."""
    process = subprocess.Popen(command, env={**os.environ, **env, "OPENAI_API_KEY": KEY}, stdout=subprocess.DEVNULL, **options)
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
    """Ray's services (raylet, GCS, dashboard agent, log monitor...) and its workers, anyone's."""
    return pids("site-packages/ray/") | pids("^ray::")


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


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


@pytest.mark.slow
def test_a_killed_driver_takes_its_own_ray_with_it_and_leaves_the_users(user_cluster, stale_ray_state, scratch, server, books, tmp_path):
    """`--ray local` with RAY_ADDRESS naming the user's cluster and a stale current-cluster file:
    llmaug starts a Ray of its own all the same, and removes only that one. One actor: what is
    checked is the driver's Ray, and each actor imports litellm (~8 s of CPU) before it answers."""
    services = user_cluster.services()
    books[1].write_text(books[1].read_text(encoding="utf-8") + "ray_workers: 1\n", encoding="utf-8")
    before = ray_processes()
    env = {**stale_ray_state, "RAY_ADDRESS": user_cluster.address, "TMPDIR": str(scratch)}
    out = tmp_path / "driver"
    with running(command(server, books, out, "local", *NO_EDGES), env, stderr=subprocess.DEVNULL) as driver:
        wait_for(lambda: journal_lines(out) >= 20)
        started = ray_processes() - before - {pid for pid, _ in user_cluster.members()}
        assert started  # a Ray of its own, beside the user's
        assert list(scratch.glob("llmaug-ray-*/session_*"))  # its files in a directory of its own
        written = [p for p in scratch.rglob("*") if p.is_file() and p.stat().st_size < 2**24]
        assert written and not any(KEY in p.read_text(errors="replace") for p in written)  # the key travels in memory
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    wait_for(lambda: not (ray_processes() & started), 60)  # every one of them, not only those Ray ties to the driver
    wait_for(lambda: not list(scratch.glob("llmaug-ray-*")), 30)  # and its directory
    answered = dict(server.per_prompt)

    resumed = run_llmaug(*command(server, books, out, "local", *NO_EDGES)[len(LLMAUG):], env={**env, "OPENAI_API_KEY": KEY})
    assert resumed.returncode == 0, resumed.stderr
    counts = manifest(out)["tasks"]
    assert sum(c["accepted"] for c in counts.values()) == 60 and len(server.per_prompt) == 60
    repeated = [k for k, n in server.per_prompt.items() if n > 1]
    # At most the shards out at the kill (1 actor x 2 shards x 8 requests) are asked again.
    assert len(repeated) <= 16 and all(k in answered for k in repeated)
    assert manifest(out)["llm"]["ray_actors"] == 1
    assert not (ray_processes() - before - {pid for pid, _ in user_cluster.members()})  # the finished run stopped its Ray
    assert not list(scratch.glob("llmaug-ray-*"))
    assert all(alive(pid) for pid in services)  # the user's cluster, every process of it


@pytest.mark.slow
def test_actors_answer_every_request_and_the_joined_cluster_stays_up(user_cluster, stale_ray_state, server, books, tmp_path):
    """`--ray auto` joins the cluster RAY_ADDRESS names; a killed actor loses only its shards; at the
    end llmaug's actors are gone and the cluster runs on, as it was."""
    services = user_cluster.services()
    out = tmp_path / "actors"
    env = {**stale_ray_state, "RAY_ADDRESS": user_cluster.address}
    with running(command(server, books, out, "auto"), env, stderr=subprocess.PIPE, text=True) as driver:
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
    wait_for(lambda: not pids("ray::_Asker"), 30)  # its actors removed
    assert all(alive(pid) for pid in services)  # the cluster was not llmaug's to stop


@pytest.mark.parametrize("flag, message", [
    ("auto", "cannot join Ray at 'auto': 127.0.0.1:{port}, from {file}: nothing listens there (a `ray start` killed, "
             "not stopped, leaves that file; `ray stop` clears it)"),
    ("127.0.0.1:{port}", "cannot join Ray at '127.0.0.1:{port}': nothing listens there"),
    ("ray://127.0.0.1:{port}", "cannot join Ray at 'ray://127.0.0.1:{port}': nothing listens there"),
])
def test_a_cluster_that_is_not_there_is_one_line_within_15_s_and_nothing_written(stale_ray_state, tmp_path, flag, message):
    file = Path(stale_ray_state["RAY_TMPDIR"]) / "ray" / "ray_current_cluster"
    port = file.read_text().split(":")[1]
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_llmaug("augment", "--dataset", "ml-100k", "--out", str(out), "--quiet", "--model", "openai/x", "--api-base",
                        "http://127.0.0.1:9/v1", "--ray", flag.format(port=port), env=stale_ray_state)
    took = time.monotonic() - started
    assert result.returncode == 2 and result.stderr.strip() == "llmaug: error: " + message.format(port=port, file=file)
    assert took < 15 and not out.exists()
