"""How often an edge pick is one of the user's held-out (validation + test) items, against a
uniformly random candidate. Held-out items are used only here, to evaluate; no prompt saw them.

    python pick_hit_rates.py OUT_DIR [JOURNAL]

OUT_DIR is an `llmaug augment` output (its split and candidate pools); JOURNAL (default: OUT_DIR's
own) gives the picks, so the LLM's answers can be scored on an offline run's identical split.
"""

import csv
import json
import sys
from collections import defaultdict
from pathlib import Path


def rows(path: Path):
    with path.open(encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        yield from reader


out = Path(sys.argv[1])
journal = Path(sys.argv[2]) if len(sys.argv) > 2 else out / ".llmaug" / "journal.jsonl"
held_out = defaultdict(set)
for part in ("valid", "test"):
    for user, item, *_ in rows(out / f"{out.name}.{part}.inter"):
        held_out[user].add(item)
pools = {user: pool.split() for user, pool in rows(out / f"{out.name}.candidates")}
picks = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
picks = [e for e in picks if e["task"] == "edges" and e["status"] == "accepted"]
users = [e["entity"] for e in picks]
rate = lambda hits: f"{sum(hits) / len(hits):.3f}"  # noqa: E731
print(f"{len(picks)} users with an accepted edge answer")
print("liked pick in held-out:   ", rate([e["record"]["liked"] in held_out[e["entity"]] for e in picks]))
print("disliked pick in held-out:", rate([e["record"]["disliked"] in held_out[e["entity"]] for e in picks]))
print("random candidate:         ", rate([sum(i in held_out[u] for i in pools[u]) / len(pools[u]) for u in users]))
for k in range(3):
    print(f"candidate #{k + 1}:              ", rate([pools[u][k] in held_out[u] for u in users]))
