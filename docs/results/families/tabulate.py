"""The tables of README.md here, from run.sh's outputs: each adapted (or LLM-featured) run against
its plain twin of the same seed, mean ± std over the seeds and a paired t-test."""
import json, statistics, sys
from pathlib import Path
from scipy.stats import ttest_rel

runs = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/families")


def row(name, metric, plain, treated):
    mean = statistics.fmean
    change = (mean(treated) - mean(plain)) / mean(plain)
    print(f"| {name} | {metric} | {mean(plain):.4f} ± {statistics.stdev(plain):.4f} | {mean(treated):.4f} ± "
          f"{statistics.stdev(treated):.4f} | {change:+.1%} | {ttest_rel(treated, plain).pvalue:.2g} |")


print("| model | metric | plain | with the LLM's parts | change | p (paired) |")
print("|---|---|---|---|---|---|")
results = {(r["model"], r["variant"], r["seed"]): r["test_result"]
           for compared in sorted(runs.glob("compare-seq*/results.json")) for r in json.loads(compared.read_text())["runs"]}
for model in dict.fromkeys(k[0] for k in results):
    seeds = sorted(s for m, v, s in results if m == model and v == "base")
    for metric in ("recall@20", "ndcg@20"):
        row(f"{model} (adapted)", metric, [results[(model, "base", s)][metric] for s in seeds],
            [results[(model, "adapted", s)][metric] for s in seeds])
for metric in ("auc", "logloss"):
    read = lambda kind, seed: json.loads((runs / f"deepfm-{kind}" / "results" / f"DeepFM-base-seed{seed}.json").read_text())["test_result"][metric]
    row("DeepFM (profile fields)", metric, [read("own", s) for s in range(1, 6)], [read("llm", s) for s in range(1, 6)])
