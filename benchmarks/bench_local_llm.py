"""A real LLM server driven by llmaug against the same server driven by a raw client loop.

Both arms send the same ml-100k user-profile prompts (the same messages, sampling and
``response_format`` llmaug sends) to a llama-server serving the bundled Gemma 3 270M with two
slots, two requests in flight. Each arm gets a freshly started server, so neither profits from
the other's cached prompt prefixes. llmaug's arm is ``llmaug augment --tasks users`` end to end;
its rate is taken over its users stage (manifest timings), which includes validation, re-asks and
the journal. The raw loop sends each prompt once and does nothing with the answer.

    python benchmarks/bench_local_llm.py [--users 24] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from llmaug.config import load_settings
from llmaug.dataset import load_source
from llmaug.input.usable import usable_interactions
from llmaug.prompt_data import build_prompt_data
from llmaug.providers.local import LlamaServer, model_path
from llmaug.providers.structured import response_format
from llmaug.rendering import PromptRenderer
from llmaug.split import split_interactions
from llmaug.tasks import TASKS

PARALLEL = 2


def profile_requests(users: int) -> list[dict]:
    """The request bodies llmaug sends for the first ``users`` profiles of ml-100k."""
    settings = load_settings(None, {"limit_users": users})
    source = load_source("ml-100k", settings)
    inter = usable_interactions(source).inter
    split = split_interactions(inter, source.uid_field, settings.split, settings.seed, settings.train_fraction)
    task = TASKS["users"](build_prompt_data(source, split.train, settings))
    renderer = PromptRenderer(settings.prompts, settings.domain)
    sampling = {"temperature": settings.temperature, "top_p": settings.top_p, "max_tokens": settings.max_tokens}
    return [
        {"model": "gemma", "messages": renderer.render(task, job), **sampling,
         "response_format": response_format("json_schema", task.schema.__name__, task.answer_schema(job))}
        for job in task.jobs()
    ]


async def raw_loop(url: str, bodies: list[dict]) -> dict:
    limit = asyncio.Semaphore(PARALLEL)
    usage = {"prompt_tokens": 0, "completion_tokens": 0}

    async def one(client: httpx.AsyncClient, body: dict) -> None:
        async with limit:
            answer = (await client.post(f"{url}/v1/chat/completions", json=body, timeout=600)).json()
        for key in usage:
            usage[key] += answer["usage"][key]

    started = time.perf_counter()
    async with httpx.AsyncClient() as client:
        await asyncio.gather(*(one(client, body) for body in bodies))
    return {"wall_s": time.perf_counter() - started, "requests": len(bodies), **usage}


def llmaug_run(url: str, users: int, scratch: Path) -> dict:
    out = scratch / f"run-{time.monotonic_ns()}"
    command = [sys.executable, "-m", "llmaug", "augment", "--dataset", "ml-100k", "--out", str(out), "--quiet",
               "--tasks", "users", "--limit-users", str(users), "--model", "openai/gemma", "--api-base", f"{url}/v1"]
    subprocess.run(command, check=True, env={**__import__("os").environ, "OPENAI_API_KEY": "unused"})
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["tasks"]["users"]
    return {"wall_s": manifest["timings_s"]["task_users"], "requests": counts["requested"] + counts["reasked"],
            "prompt_tokens": counts["input_tokens"], "completion_tokens": counts["output_tokens"],
            "concurrency": manifest["llm"]["concurrency"], "accepted": counts["accepted"]}


def rates(result: dict) -> dict:
    wall = result["wall_s"]
    return {**result, "requests_per_s": result["requests"] / wall, "prompt_tokens_per_s": result["prompt_tokens"] / wall,
            "completion_tokens_per_s": result["completion_tokens"] / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    bodies = profile_requests(args.users)
    gguf = model_path(load_settings())
    results: dict[str, list[dict]] = {"raw": [], "llmaug": []}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.rounds):
            for arm in ("raw", "llmaug"):
                with LlamaServer(gguf, 8192, PARALLEL, None, [], Path(scratch) / f"{arm}.log") as server:
                    run = asyncio.run(raw_loop(server.url, bodies)) if arm == "raw" else llmaug_run(server.url, args.users, Path(scratch))
                results[arm].append(rates(run))
    print(f"{args.users} user-profile prompts, Gemma 3 270M Q4_K_M, llama-server --parallel {PARALLEL}, {PARALLEL} in flight")
    print(f"{'':<8}{'requests/s':>12}{'prompt tok/s':>14}{'gen tok/s':>11}{'requests':>10}{'wall s':>9}")
    for arm, runs in results.items():
        for r in runs:
            print(f"{arm:<8}{r['requests_per_s']:>12.3f}{r['prompt_tokens_per_s']:>14.1f}{r['completion_tokens_per_s']:>11.1f}"
                  f"{r['requests']:>10}{r['wall_s']:>9.1f}")
    mean = lambda arm, key: sum(r[key] for r in results[arm]) / len(results[arm])  # noqa: E731
    for key in ("requests_per_s", "prompt_tokens_per_s", "completion_tokens_per_s"):
        print(f"llmaug / raw, {key}: {mean('llmaug', key) / mean('raw', key):.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
