"""The base model's exact top-k ranking (``candidates.ranking._top_unseen``) with several sizes of
score batch, side by side in one run, with glibc's thresholds where a run's ranking finds them:
wall time, user and kernel CPU time, how far resident memory rose above where it started, and
whether every variant gives the same pools.

A score batch is ``SCORES_AT_ONCE`` float32 scores (users x items). At 2^24 (64 MB) a batch is
above glibc's largest mapping threshold (32 MB): it is mapped fresh and its pages faulted in and
zeroed by the kernel every time (a 1M-user run spent ~37% of the ranking's CPU time in the
kernel). Below it, batches come from the heap and reuse its pages. The model is BPR's scoring (a
user's embedding against every item's) over random embeddings, and each user has ~30 random
training items, as in the synthetic scale datasets.

    python benchmarks/bench_ranking.py [--users 100000] [--items 100000] [--exponents 24,23,22,21] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch


class ScoringModel(torch.nn.Module):
    """What ``_top_unseen`` asks of a RecBole model: BPR's ``full_sort_predict``."""

    def __init__(self, users: int, items: int, dimension: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.users = torch.randn(users, dimension, generator=generator)
        self.items = torch.randn(items, dimension, generator=generator)

    def full_sort_predict(self, interaction) -> torch.Tensor:
        return torch.matmul(self.users[interaction["user_id"]], self.items.transpose(0, 1)).view(-1)


class ScoredDataset:
    """What ``_top_unseen`` asks of RecBole's dataset: the id fields, their sizes and tokens."""

    uid_field, iid_field = "user_id", "item_id"

    def __init__(self, users: int, items: int) -> None:
        self.user_num, self.item_num = users, items
        self.field2id_token = {"user_id": np.arange(users).astype(str), "item_id": np.arange(items).astype(str)}

    def id2token(self, field: str, ids: np.ndarray) -> np.ndarray:
        return self.field2id_token[field][ids]


def seen_pairs(users: int, items: int, per_user: int, seed: int = 0) -> np.ndarray:
    """Sorted ``user * items + item`` codes, as ``pair_codes`` gives them; user 0 is RecBole's padding."""
    rng = np.random.default_rng(seed)
    pairs = np.repeat(np.arange(1, users, dtype=np.int64), per_user) * items + rng.integers(1, items, (users - 1) * per_user)
    return np.unique(pairs)


def status_bytes(field: str) -> int:
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), in bytes."""
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(field))


def restart_peak() -> None:
    """The peak resident memory (``VmHWM``) restarts from the present (Linux's ``clear_refs``)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def main() -> None:
    from llmaug.candidates import ranking
    from llmaug.monitor import large_blocks_returned, trim_heap

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dimension", type=int, default=64)
    parser.add_argument("--exponents", default="24,23,22,21", help="score batch sizes as powers of two")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    model, dataset = ScoringModel(args.users, args.items, args.dimension), ScoredDataset(args.users, args.items)
    seen = seen_pairs(args.users, args.items, 30)
    with large_blocks_returned():  # leaves glibc's thresholds where a run's ranking finds them
        pass
    results, first = [], None
    for exponent in (int(e) for e in args.exponents.split(",")):
        ranking.SCORES_AT_ONCE = 1 << exponent
        trim_heap()
        restart_peak()
        resident, before, started = status_bytes("VmRSS"), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        pools = ranking._top_unseen(model, dataset, seen, 10, "cpu", lambda description, total: ranking._Silent())
        wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
        first = pools._ranked if first is None else first
        results.append({"scores_at_once": f"2^{exponent}", "wall_s": round(wall, 2), "user_s": round(after.ru_utime - before.ru_utime, 2),
                        "kernel_s": round(after.ru_stime - before.ru_stime, 2), "peak_rise_mb": (status_bytes("VmHWM") - resident) >> 20,
                        "same_pools": bool(np.array_equal(pools._ranked, first))})
        print(results[-1], flush=True)
        del pools
    base = results[0]["wall_s"]
    print(f"\n{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.users:,} users x {args.items:,} items")
    print(f"{'scores at once':>15}{'wall s':>9}{'user s':>9}{'kernel s':>10}{'peak rise MB':>14}{'speed':>8}  same pools")
    for r in results:
        print(f"{r['scores_at_once']:>15}{r['wall_s']:>9}{r['user_s']:>9}{r['kernel_s']:>10}{r['peak_rise_mb']:>14}{base / r['wall_s']:>7.2f}x  {r['same_pools']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"users": args.users, "items": args.items, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
