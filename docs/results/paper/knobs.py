"""Adapted runs of several `llmaug compare` outputs against a reference one, paired per seed: which
of the preset's two later knobs moves it (the reference: the first preset, pruning and AdamW only),
or which candidate order trains best (../position-bias/). Arguments: the reference's results.json,
then name=results.json pairs."""
import json, statistics, sys
from scipy.stats import ttest_rel

def load(path):
    return {(r["model"], r["variant"], r["seed"]): r["test_result"] for r in json.load(open(path))["runs"]}

first = load(sys.argv[1])
others = dict(arg.split("=", 1) for arg in sys.argv[2:])
others = {name: load(path) for name, path in others.items()}
seeds = sorted({k[2] for k in first})
models = list(dict.fromkeys(k[0] for k in first))
print("| model | metric | reference | " + " | ".join(others) + " |")
print("|---|---|---|" + "---|" * len(others))
for model in models:
    for metric in ["recall@20", "ndcg@20"]:
        before = [first[(model, "adapted", s)][metric] for s in seeds]
        row = f"| {model} | {metric} | {statistics.fmean(before):.4f} |"
        for runs in others.values():
            after = [runs[(model, "adapted", s)][metric] for s in seeds]
            change = (statistics.fmean(after) - statistics.fmean(before)) / statistics.fmean(before)
            row += f" {statistics.fmean(after):.4f} ({change:+.1%}, p {ttest_rel(after, before).pvalue:.2g}) |"
        print(row)
