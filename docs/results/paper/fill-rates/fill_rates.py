"""Share of users whose profile answer fills each field (non-null, non-empty), from a journal."""
import json, sys
from pathlib import Path

def rates(journal):
    entries = [json.loads(l) for l in Path(journal).read_text().splitlines() if l.strip()]
    final = {e["key"]: e for e in entries if e["status"] in ("accepted", "failed")}
    accepted = [e["record"] for e in final.values() if e["status"] == "accepted"]
    fields = sorted({k for r in accepted for k in r})
    filled = {f: sum(1 for r in accepted if r.get(f) not in (None, "", [], "unknown", "Unknown")) / len(accepted) for f in fields}
    return len(final), len(accepted), filled

out = {}
for name, journal in zip(sys.argv[1::2], sys.argv[2::2]):
    out[name] = rates(journal)
fields = sorted({f for _, _, r in out.values() for f in r})
print("| prompt set | answered | accepted | " + " | ".join(fields) + " |")
print("|---|---|---|" + "---|" * len(fields))
for name, (n, a, r) in out.items():
    print(f"| {name} | {n} | {a} | " + " | ".join(f"{r.get(f, 0):.0%}" for f in fields) + " |")
