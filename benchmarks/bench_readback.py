"""Memory held by the records a run reads back from its journal, per task, all of a task's at
once. Until issue 26 that stayed resident from the end of each task until the dataset was
written; the streaming driver now holds one chunk's (``chunk_size`` entities) at a time.

Point it at the journal of a large run (a 1M-user `bench_scale.py` run leaves one of ~770 MB in
`<scratch>/out1000000/.llmaug/journal.jsonl`); each task is read in a fresh process, so its number
is its own. `--compare REF` also runs the same measurement on another checkout (e.g. a `git
worktree` of an earlier commit), side by side in one run.

    python benchmarks/bench_readback.py JOURNAL [--compare DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

MEASURE = """
import json, sys
from llmaug.journal import Journal, index_answers
from llmaug.monitor.memory import release_freed_memory
from llmaug.monitor.timer import rss_bytes

path, task = sys.argv[1], sys.argv[2]
keys = {}
with open(path, "rb") as fh:
    for line in fh:
        if f'"task": "{task}"'.encode() in line[:300]:
            entry = json.loads(line)
            keys[entry["entity"]] = entry["key"]
index = index_answers(Journal(path))
release_freed_memory()
before = rss_bytes()
records = {entity: answer.record for entity, answer in index.answers(Journal(path), keys).items()}
release_freed_memory()
print(json.dumps({"records": len(records), "held_mb": round((rss_bytes() - before) / 2**20, 1)}))
"""


def measure(checkout: Path, journal: Path, task: str) -> dict:
    result = subprocess.run([sys.executable, "-c", MEASURE, str(journal), task], cwd=checkout,
                            env={"PYTHONPATH": str(checkout)}, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("journal", type=Path)
    parser.add_argument("--compare", type=Path, help="another checkout of llmaug, measured beside this one")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    checkouts = {"this checkout": Path(__file__).resolve().parents[1]}
    if args.compare:
        checkouts[str(args.compare)] = args.compare.resolve()
    results = {name: {task: measure(path, args.journal.resolve(), task) for task in ("edges", "users", "items")}
               for name, path in checkouts.items()}
    print(f"{'task':<8}" + "".join(f"{name:>28}" for name in results))
    for task in [t for t in ("edges", "users", "items") if any(r[t]["records"] for r in results.values())]:
        cells = "".join(f"{r[task]['held_mb']:>16,.0f} MB ({r[task]['records']:,})"[-28:].rjust(28) for r in results.values())
        print(f"{task:<8}{cells}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
