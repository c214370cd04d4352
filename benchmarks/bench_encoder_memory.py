"""The bundled encoder's peak memory and speed by token budget per batch, side by side in one run.

Texts mimic profiles with a long tail: 97% of 15-45 words, 3% of 100-400 words (cut at the
encoder's 256 tokens). Every budget runs in a fresh process, so each peak is its own; the
unlimited row is what llmaug did before batches were budgeted (256 texts whatever their length).

    python benchmarks/bench_encoder_memory.py [--texts 8000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

BUDGETS = {"256 texts, unlimited": 10**9, "4,096 tokens": 4096, "8,192 tokens (default)": 8192, "16,384 tokens": 16384}


def measure(texts: int, budget: int) -> dict[str, float]:
    import random

    import numpy as np

    from llmaug.embedding import LocalEncoder

    random.seed(0)
    words = "drama comedy thriller director enjoys classic films from the nineties action romance sci-fi documentary".split()
    lengths = [random.randint(15, 45) if random.random() > 0.03 else random.randint(100, 400) for _ in range(texts)]
    corpus = [" ".join(random.choice(words) for _ in range(k)) for k in lengths]
    encoder = LocalEncoder(tokens_per_batch=budget)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    vectors = encoder.encode(corpus)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"texts_per_s": len(corpus) / seconds, "added_mb": peak - loaded, "checksum": float(np.abs(vectors).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=8000)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child process: one budget
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.texts, args.one)))
        return
    rows = []
    for name, budget in BUDGETS.items():
        out = subprocess.run([sys.executable, __file__, "--texts", str(args.texts), "--one", str(budget)],
                             check=True, capture_output=True, text=True).stdout
        rows.append({"budget": name, **json.loads(out.strip().splitlines()[-1])})
    print(f"{args.texts} texts, 3% at the 256-token limit")
    print(f"{'batch budget':26} {'texts/s':>8} {'peak added (MB)':>16}")
    for row in rows:
        print(f"{row['budget']:26} {row['texts_per_s']:8.0f} {row['added_mb']:16.0f}")
    if args.json:
        args.json.write_text(json.dumps({"texts": args.texts, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
