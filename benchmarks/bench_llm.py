"""Throughput of the LLM stage against a loopback OpenAI-compatible server with 100 ms latency.

Compares, in one run and against the same server:
  * `llmaug augment --tasks edges` end to end (subprocess; req/s of its edges stage from the
    manifest, CPU ms/request from the manifest's cpu_s),
  * raw `litellm.acompletion` with the same concurrency and the same prompt,
  * one request at a time (raw litellm),
  * the same `llmaug augment` with `--ray local` and 1, 2... actors (each at that concurrency; the
    stage's rate leaves out starting Ray, which the manifest reports as `ray_start_s`).

    python benchmarks/bench_llm.py [--users 2000] [--concurrency 64] [--latency 0.1] [--ray-workers 1,2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

SERVER = """
import sys, time
sys.path.insert(0, {tests!r})
from llm_server import Behaviour, LoopbackLLM
server = LoopbackLLM(Behaviour(latency={latency})).start()
print(server.port, flush=True)
sys.stdin.read()
"""


def synthetic_dataset(root: Path, users: int, seed: int = 0) -> Path:
    """`users` users over ml-100k's items, 20-60 interactions each, so the edges stage has `users` jobs."""
    from llmaug.input.locate import recbole_example_dir

    bundled = recbole_example_dir() / "ml-100k"
    directory = root / "bench"
    directory.mkdir(parents=True)
    (directory / "bench.item").write_bytes((bundled / "ml-100k.item").read_bytes())
    items = [line.split("\t")[0] for line in (bundled / "ml-100k.item").read_text(encoding="latin-1").splitlines()[1:]]
    rng = random.Random(seed)
    rows = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for u in range(users):
        rows += [f"u{u}\t{i}\t4\t{880000000 + k}" for k, i in enumerate(rng.sample(items, rng.randint(20, 60)))]
    (directory / "bench.inter").write_text("\n".join(rows) + "\n")
    return directory


async def raw_litellm(base_url: str, messages: list, requests: int, concurrency: int) -> tuple[float, float]:
    from llmaug.providers.llm import import_litellm

    litellm = import_litellm()
    limit = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with limit:
            await litellm.acompletion(model="openai/stub-llm", api_base=base_url, api_key="sk-bench", messages=messages,
                                      temperature=0.6, top_p=0.1, max_tokens=512)

    await one()  # warm the client
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one() for _ in range(requests)))
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--sequential", type=int, default=100, help="requests for the one-at-a-time baseline")
    parser.add_argument("--ray-workers", default="1,2", help="actor counts for the --ray rows ('' for none)")
    args = parser.parse_args()

    server = subprocess.Popen([sys.executable, "-c", SERVER.format(tests=str(ROOT / "tests"), latency=args.latency)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    base_url = f"http://127.0.0.1:{server.stdout.readline().strip()}/v1"
    try:
        with tempfile.TemporaryDirectory() as scratch:
            data = synthetic_dataset(Path(scratch), args.users)

            def augment(name: str, *extra: str) -> tuple[dict, float]:
                out = Path(scratch) / name / "bench"
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "llmaug", "augment", "--dataset", str(data), "--out", str(out), "--quiet",
                                "--tasks", "edges", "--model", "openai/stub-llm", "--api-base", base_url,
                                "--concurrency", str(args.concurrency), *extra],
                               check=True, env={**os.environ, "OPENAI_API_KEY": "sk-bench"}, stdout=subprocess.DEVNULL)
                return json.loads((out / "manifest.json").read_text()), time.perf_counter() - started

            manifest, total = augment("plain")
            stage_wall, stage_cpu = manifest["timings_s"]["task_edges"], manifest["cpu_s"]["task_edges"]
            accepted = manifest["tasks"]["edges"]["accepted"]
            ray_rates = {}
            for workers in filter(None, args.ray_workers.split(",")):
                config = Path(scratch) / f"ray{workers}.yaml"
                config.write_text(f"ray_workers: {workers}\n")
                ray, _ = augment(f"ray{workers}", "--ray", "local", "--config", str(config))
                assert ray["tasks"]["edges"]["accepted"] == accepted
                ray_rates[int(workers)] = args.users / (ray["timings_s"]["task_edges"] - ray["llm"]["ray_start_s"])
            from llmaug.config import load_settings
            from llmaug.inspect import render_messages

            messages = render_messages(str(data), load_settings(), "edges", "u0")

        raw_wall, raw_cpu = asyncio.run(raw_litellm(base_url, messages, args.users, args.concurrency))
        seq_wall, _ = asyncio.run(raw_litellm(base_url, messages, args.sequential, 1))
    finally:
        server.stdin.close()
        server.wait(10)

    llmaug_rps, raw_rps, seq_rps = args.users / stage_wall, args.users / raw_wall, args.sequential / seq_wall
    print(f"{args.users} edge requests, concurrency {args.concurrency}, server latency {args.latency * 1000:.0f} ms")
    print(f"llmaug augment (edges stage): {llmaug_rps:7.1f} req/s  {stage_cpu * 1000 / args.users:5.2f} CPU ms/req  "
          f"({accepted} accepted; whole command {total:.1f} s incl. start-up and candidates)")
    print(f"raw litellm.acompletion:      {raw_rps:7.1f} req/s  {raw_cpu * 1000 / args.users:5.2f} CPU ms/req")
    print(f"one request at a time:        {seq_rps:7.1f} req/s")
    for workers, rate in ray_rates.items():
        print(f"--ray local, {workers} actor{'s' if workers > 1 else ' '}:     {rate:7.1f} req/s  ({rate / llmaug_rps:.2f}x llmaug without Ray)")
    print(f"llmaug / raw litellm = {llmaug_rps / raw_rps:.2f}x (target >= 0.8)   llmaug / sequential = {llmaug_rps / seq_rps:.1f}x (target >= 15)")


if __name__ == "__main__":
    main()
