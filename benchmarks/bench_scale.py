"""``llmaug augment`` with every default at growing sizes: wall time and peak memory per stage,
and how each grows with the number of users (the exponent b of time ~ users^b, fitted in log-log).

Datasets are synthetic (benchmarks/synthetic.py: power-law popularity, ~30 interactions per user),
generated into a scratch directory and deleted afterwards; the provider is ``offline``.

    python benchmarks/bench_scale.py [--sizes 10k,100k] [--json FILE] [--scratch DIR]
    python benchmarks/bench_scale.py --sizes 10k,100k,1M --json docs/results/scale/scale.json
    python benchmarks/bench_scale.py --sizes 1M --tasks edges   # without profiles: ~50 min less

Each run is a child process, so peak memory is the run's own (``ru_maxrss`` from ``wait4``); the
per-stage peaks come from the run's manifest (``peak_rss_mb``). Its progress log goes to
``<scratch>/<size>.log``, the same lines a user sees when stderr is not a terminal.

The datasets are generated in a process of their own: a child's ``ru_maxrss`` starts at its
parent's peak (``exec`` keeps the peak of the memory it replaces), and generating 10^6 users' rows
peaks at 2.29 GB, which the 1M runs of the eleventh and twelfth sessions, whose own peaks were
lower, reported as theirs.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import write_synthetic  # noqa: E402

ITEMS = {10_000: 5_000, 100_000: 20_000, 1_000_000: 100_000}  # catalogue size per user count


def parse_size(text: str) -> int:
    text = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * factor)


def catalogue_size(users: int) -> int:
    """The synthetic dataset's item count for ``users``."""
    return ITEMS.get(users, max(1_000, users // 10))


def run_size(users: int, scratch: Path, log: Path, tasks: str) -> dict:
    items = catalogue_size(users)
    started = time.perf_counter()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as generator:
        data = generator.submit(write_synthetic, scratch, users, items, name=f"synthetic{users}").result()
    generated = time.perf_counter() - started
    out = scratch / f"out{users}"
    command = [sys.executable, "-m", "llmaug", "augment", "--dataset", str(data), "--out", str(out), "--tasks", tasks]
    env = {**os.environ, "LLMAUG_PROGRESS_SECONDS": os.environ.get("LLMAUG_PROGRESS_SECONDS", "60")}
    started = time.perf_counter()
    with log.open("w") as stderr:
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if status:
        raise SystemExit(f"llmaug augment failed at {users:,} users (status {status}); see {log}")
    manifest = json.loads((out / "manifest.json").read_text())
    size = {"users": users, "items": items, "interactions": sum(manifest["split"].values()),
            "generate_s": round(generated, 1), "wall_s": round(wall, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "stages_s": manifest["timings_s"], "stages_peak_rss_mb": manifest["peak_rss_mb"], "base_model": manifest["base_model"],
            "embedding_precision": manifest.get("embedding_precision"), "tasks": tasks}
    shutil.rmtree(data)
    shutil.rmtree(out)
    return size


def exponent(sizes: list[dict], value) -> float | None:
    """Least-squares slope of log(value) against log(users); None below two positive points."""
    points = [(math.log(s["users"]), math.log(v)) for s in sizes if (v := value(s)) and v > 0]
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


def table(sizes: list[dict]) -> str:
    stages = list(dict.fromkeys(stage for s in sizes for stage in s["stages_s"]))
    head = f"{'stage':22}" + "".join(f"{s['users']:>12,} users" for s in sizes) + f"{'exponent':>10}"
    lines = [head, "-" * len(head)]
    for stage in stages:
        cells = "".join(f"{s['stages_s'].get(stage, 0):>9.1f} s {s['stages_peak_rss_mb'].get(stage, 0) / 1024:4.1f}G" for s in sizes)
        b = exponent(sizes, lambda s, st=stage: s["stages_s"].get(st))
        lines.append(f"{stage:22}{cells}{'' if b is None else f'{b:10.2f}'}")
    cells = "".join(f"{s['wall_s']:>9.1f} s {s['peak_rss_mb'] / 1024:4.1f}G" for s in sizes)
    b = exponent(sizes, lambda s: s["wall_s"])
    lines.append(f"{'whole command':22}{cells}{'' if b is None else f'{b:10.2f}'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10k,100k", help="user counts, e.g. 10k,100k,1M")
    parser.add_argument("--scratch", type=Path, help="where datasets and runs go (default: a temporary directory)")
    parser.add_argument("--tasks", default="edges,users,items", help="as llmaug augment --tasks (edges alone skips the profiles)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="llmaug-scale-"))
    scratch.mkdir(parents=True, exist_ok=True)
    sizes = []
    for text in args.sizes.split(","):
        users = parse_size(text)
        print(f"{users:,} users: running (progress in {scratch / f'{text}.log'})", flush=True)
        sizes.append(run_size(users, scratch, scratch / f"{text}.log", args.tasks))
        print(f"  {sizes[-1]['wall_s']:.1f} s, peak {sizes[-1]['peak_rss_mb'] / 1024:.2f} GB", flush=True)
    print(f"\n{platform.machine()}, {os.cpu_count()} CPUs; seconds and peak resident memory per stage")
    print(table(sizes))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"cpus": os.cpu_count(), "sizes": sizes}, indent=2) + "\n")


if __name__ == "__main__":
    main()
