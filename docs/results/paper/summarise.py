"""Consolidated tables for docs/results/paper/README.md from the compare runs' results.json."""
import json, statistics, sys
from pathlib import Path
from scipy.stats import ttest_rel

def load(path):
    runs = json.loads(Path(path).read_text())["runs"]
    return {(r["model"], r["variant"], r["seed"]): r["test_result"] for r in runs}

def cell(vals):
    return f"{statistics.fmean(vals):.4f} ± {statistics.stdev(vals):.4f}"

defaults = load(sys.argv[1]); paper = load(sys.argv[2])
seeds = sorted({k[2] for k in defaults})
print("| model | metric | base (Adam) | llmaug defaults | p vs base | base (AdamW) | paper preset | p vs its base | paper preset vs llmaug defaults | p |")
print("|---|---|---|---|---|---|---|---|---|---|")
for model in ["BPR", "LightGCN", "NGCF"]:
    for metric in ["recall@20", "ndcg@20"]:
        b = [defaults[(model, "base", s)][metric] for s in seeds]
        a = [defaults[(model, "adapted", s)][metric] for s in seeds]
        pb = [paper[(model, "base", s)][metric] for s in seeds]
        pa = [paper[(model, "adapted", s)][metric] for s in seeds]
        rel = (statistics.fmean(pa) - statistics.fmean(a)) / statistics.fmean(a)
        print(f"| {model} | {metric} | {cell(b)} | {cell(a)} | {ttest_rel(a, b).pvalue:.2g} | {cell(pb)} | {cell(pa)} | "
              f"{ttest_rel(pa, pb).pvalue:.2g} | {rel:+.1%} | {ttest_rel(pa, a).pvalue:.2g} |")
