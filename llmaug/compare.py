"""Base vs adapted, for several models and seeds, on one augmented dataset: runs, statistics, report.

Every (model, seed) pair trains the plain model and the adapted one on the same split with the
same RecBole hyper-parameters and seed, so the comparison is paired (``scipy.stats.ttest_rel``).
Finished runs are kept as JSON under ``<out>/runs/results`` and are not trained again when the
same comparison is re-run (e.g. after an interruption): same overrides, and the same bytes in the
config files (a preset included) and the dataset's manifest, so an edited config retrains.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from llmaug.errors import ConfigError
from llmaug.training import ADAPTED, BASE, RunResult, run_name

HEADLINE = ("recall@20", "ndcg@20")
METRIC_ORDER = [f"{m}@{k}" for m in ("recall", "ndcg", "precision") for k in (10, 20, 50)]
FIRST_SEED = 2020


def _without(*names: str) -> Callable[[list[str]], dict]:
    return lambda features: {"llmaug_features": [f for f in features if f not in names]}


# Table 3 of the paper, each row as the paper defines it (§4.3), named as the paper names it.
TABLE_3: dict[str, Callable[[list[str]], dict]] = {
    "w/o-u-i": lambda features: {"llmaug_aug_edge_ratio": 0.0},  # no LLM-augmented edges E_A
    "w/o-u": _without("user_profile"),  # no LLM user profiles
    "w/o-u&i": _without("user_profile", "item_attributes"),  # no LLM side information, users' or items'
    "w/o-prune": lambda features: {"llmaug_prune_ratio": 0.0},
    "w/o-QC": lambda features: {"llmaug_prune_ratio": 0.0, "llmaug_mae_weight": 0.0},  # w/o-prune + w/o-MAE
}
# llmaug's own rows, after the paper's: one part each that Table 3 does not remove alone.
LLMAUG_ROWS: dict[str, Callable[[list[str]], dict]] = {
    "llmaug: w/o item attributes": _without("item_attributes"),
    "llmaug: w/o MAE": lambda features: {"llmaug_mae_weight": 0.0},
}
ABLATIONS = {**TABLE_3, **LLMAUG_ROWS}
SIGNIFICANT = 0.05  # two-sided paired t-test over seeds


@dataclass(frozen=True)
class Run:
    model: str
    variant: str
    seed: int
    adapted: bool
    overrides: dict = field(default_factory=dict, hash=False)

    @property
    def slug(self) -> str:
        """The variant as a file-name part without '-': run names split on it (w/o-u&i -> wo_uandi)."""
        return self.variant.replace("llmaug: ", "llmaug_").replace("/", "").replace("&", "and").replace(" ", "_").replace("-", "_")

    @property
    def name(self) -> str:
        return run_name(self.model, self.slug, self.seed)


def plan(models: Iterable[str], seeds: Iterable[int], ablations: bool, features: list[str]) -> list[Run]:
    runs = []
    for model in models:
        for seed in seeds:
            runs.append(Run(model, BASE, seed, False))
            runs.append(Run(model, ADAPTED, seed, True))
            if ablations:
                runs += [Run(model, name, seed, True, make(features)) for name, make in ABLATIONS.items()]
    return runs


def compare(
    data: Path,
    models: list[str],
    seeds: int | list[int],
    out: Path,
    *,
    ablations: bool = False,
    config_files: list[Path] | tuple = (),
    config_dict: dict | None = None,
    show_progress: bool = True,
) -> Path:
    """Train every run that is not already done, then write ``report.md`` and ``gains.png``."""
    from llmaug.training import build_config, train
    from llmaug.recbole_compat import quiet_recbole

    if not models:
        raise ConfigError("--models is empty")
    seed_list = list(range(FIRST_SEED, FIRST_SEED + seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list:
        raise ConfigError("--seeds must be at least 1")
    out = Path(out).resolve()
    with quiet_recbole():
        config = build_config(data, models[0], config_files=config_files, config_dict=config_dict)
    features = list(config["llmaug_features"] or [])
    runs = plan(models, seed_list, ablations, features)
    inputs = _inputs_fingerprint(Path(data), config_files)
    results: list[RunResult] = []
    with _progress(show_progress, len(runs)) as advance:
        for run in runs:
            path = out / "runs" / "results" / f"{run.name}.json"
            overrides = {**(config_dict or {}), **run.overrides}
            if path.is_file():
                done = RunResult.load(path)
                if (done.overrides, done.inputs) == (overrides, inputs):
                    results.append(done)
                    advance(run, None)
                    continue
            result = train(
                data, run.model, adapted=run.adapted, seed=run.seed, config_files=config_files,
                config_dict=overrides, out=out / "runs", variant=run.slug,
                on_epoch=lambda epoch, score, run=run: advance(run, epoch, done=False),
            )
            result.variant, result.inputs = run.variant, inputs
            result.save(path)
            results.append(result)
            advance(run, None)
    meta = {
        "data": str(Path(data).resolve()),
        "manifest": _manifest(Path(data)),
        "seeds": seed_list,
        "protocol": {k: config[k] for k in ("epochs", "stopping_step", "valid_metric", "learner", "learning_rate",
                                               "weight_decay", "train_batch_size", "embedding_size")},
        "adapter": {k: config[k] for k in sorted(config.final_config_dict) if k.startswith("llmaug_")},
        "overrides": dict(config_dict or {}),
    }
    return write_report(results, out, meta)


def _inputs_fingerprint(data: Path, config_files) -> str:
    """What a finished run was trained from besides its overrides: the config files' bytes and the
    dataset's manifest (a re-augmented dataset has a new one)."""
    digest = hashlib.sha256()
    for path in [data / "manifest.json", *map(Path, config_files)]:
        digest.update(path.read_bytes() if path.is_file() else b"-")
    return digest.hexdigest()[:16]


class _progress:
    """A rich progress bar over runs, showing the current run and epoch."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total = enabled, total

    def __enter__(self):
        if not self.enabled:
            return lambda run, epoch, done=True: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description:<44}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), transient=False)
        self.bar.__enter__()
        task = self.bar.add_task("compare", total=self.total)

        def advance(run: Run, epoch, done=True):
            label = f"{run.model} {run.variant} seed {run.seed}"
            if epoch is not None:
                label += f" · epoch {epoch + 1}"
            self.bar.update(task, advance=1 if done else 0, description=label)

        return advance

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.__exit__(*exc)
        return False


def _manifest(data: Path) -> dict:
    path = Path(data) / "manifest.json"
    if not path.is_file():
        return {}
    manifest = json.loads(path.read_text())
    return {k: manifest.get(k) for k in ("provider", "model", "embedding_model", "split") if k in manifest}


# -- statistics (pure) -------------------------------------------------------------------------


@dataclass
class Cell:
    values: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.std:.4f}"


@dataclass
class Gain:
    model: str
    variant: str
    metric: str
    base: Cell
    other: Cell
    relative: float  # (mean other - mean base) / mean base
    p_value: float  # paired t-test over seeds; nan when it is undefined (n < 2 or no variance)
    wins: int  # seeds where other > base
    n: int


def table(results: list[RunResult]) -> dict[tuple[str, str], dict[str, Cell]]:
    """(model, variant) -> metric -> Cell of test values over seeds, seeds in a fixed order."""
    cells: dict[tuple[str, str], dict[str, Cell]] = {}
    for r in sorted(results, key=lambda r: r.seed):
        row = cells.setdefault((r.model, r.variant), {})
        for metric, value in r.test_result.items():
            row.setdefault(metric, Cell([])).values.append(value)
    return cells


def gains(results: list[RunResult], metrics=METRIC_ORDER, against: str = BASE) -> list[Gain]:
    """Each variant other than ``against`` (and base) against ``against`` on the same seeds (paired)."""
    from scipy.stats import ttest_rel

    by_key = {(r.model, r.variant, r.seed): r for r in results}
    out = []
    for model, variant in dict.fromkeys((r.model, r.variant) for r in results):
        if variant in (BASE, against):
            continue
        seeds = sorted(s for (m, v, s) in by_key if m == model and v == variant and (m, against, s) in by_key)
        if not seeds:
            continue
        for metric in metrics:
            base = [by_key[(model, against, s)].test_result[metric] for s in seeds]
            other = [by_key[(model, variant, s)].test_result[metric] for s in seeds]
            p = float("nan")
            if len(seeds) > 1 and any(a != b for a, b in zip(other, base)):
                p = float(ttest_rel(other, base).pvalue)
            mean_base = statistics.fmean(base)
            relative = (statistics.fmean(other) - mean_base) / mean_base if mean_base else float("nan")
            out.append(Gain(model, variant, metric, Cell(base), Cell(other), relative, p,
                            sum(o > b for o, b in zip(other, base)), len(seeds)))
    return out


# -- report -------------------------------------------------------------------------------------


def _p(p: float) -> str:
    return "n/a" if math.isnan(p) else f"{p:.3g}"


def write_report(results: list[RunResult], out: Path, meta: dict) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    cells = table(results)
    models = list(dict.fromkeys(r.model for r in results))
    variants = list(dict.fromkeys(r.variant for r in results))
    headline = [g for g in gains(results, HEADLINE) if g.variant == ADAPTED]
    lines = [f"# llmaug compare: {Path(meta['data']).name}", ""]
    manifest = meta.get("manifest") or {}
    lines += [
        f"- data: `{meta['data']}`" + (f" (provider `{manifest.get('provider')}`, model `{manifest.get('model')}`,"
                                        f" embeddings `{manifest.get('embedding_model')}`)" if manifest else ""),
        f"- split sizes: {manifest.get('split')}" if manifest.get("split") else "- split sizes: n/a",
        f"- seeds: {meta['seeds']} (base and adapted share each seed: paired t-test, two-sided)",
        f"- protocol: {meta['protocol']}; model selection on the validation split, test evaluated once on the best checkpoint",
        f"- overrides: {meta['overrides'] or 'none'}",
        "",
        "## Headline: adapted vs base (test, mean ± std over seeds)",
        "",
        "| model | metric | base | adapted | gain | p | adapted better |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in headline:
        lines.append(f"| {g.model} | {g.metric} | {g.base} | {g.other} | {g.relative:+.1%} | {_p(g.p_value)} | {g.wins}/{g.n} seeds |")
    verdict = []
    for model in models:
        mine = [g for g in headline if g.model == model]
        if mine:
            won = all(g.relative > 0 for g in mine)
            verdict.append(f"- {model}: {'adapted beats base on ' if won else 'adapted does NOT beat base on both of '}"
                           + ", ".join(f"{g.metric} ({g.relative:+.1%}, p={_p(g.p_value)})" for g in mine))
    lines += ["", *verdict, "", "![relative gains](gains.png)", "", "## All metrics (test, mean ± std)", ""]
    header = "| model | variant | " + " | ".join(METRIC_ORDER) + " | epochs | s/epoch |"
    lines += [header, "|" + "---|" * (len(METRIC_ORDER) + 4)]
    by_variant = {(r.model, r.variant): [] for r in results}
    for r in results:
        by_variant[(r.model, r.variant)].append(r)
    for model in models:
        for variant in variants:
            if (model, variant) not in cells:
                continue
            row = cells[(model, variant)]
            rs = by_variant[(model, variant)]
            epochs = statistics.fmean(r.epochs for r in rs)
            seconds = statistics.fmean(r.seconds_per_epoch for r in rs)
            lines.append(f"| {model} | {variant} | " + " | ".join(str(row[m]) for m in METRIC_ORDER if m in row)
                         + f" | {epochs:.1f} | {seconds:.2f} |")
    ablated = gains(results, HEADLINE, against=ADAPTED)  # every variant but base and the full adapter
    if ablated:
        lines += ["", "## Ablations: each row against the full adapter (paired over seeds)", "",
                  "Rows named as in the paper's Table 3 (§4.3) switch off what the paper's row does; rows marked "
                  f"'llmaug:' are llmaug's own. Significant: two-sided paired t-test p < {SIGNIFICANT}.", "",
                  "| model | variant | metric | full adapter | variant | change | p | significant |", "|---|---|---|---|---|---|---|---|"]
        for g in ablated:
            significant = "yes" if g.p_value < SIGNIFICANT else "no"  # nan compares False: not tested, not significant
            lines.append(f"| {g.model} | {g.variant} | {g.metric} | {g.base} | {g.other} | {g.relative:+.1%} | "
                         f"{_p(g.p_value)} | {significant} |")
    lines += ["", "## Adapter settings", "", "```", *(f"{k}: {v}" for k, v in meta["adapter"].items()), "```", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    (out / "results.json").write_text(json.dumps(
        {"meta": meta, "runs": [r.__dict__ for r in results]}, indent=2, sort_keys=True, default=str))
    plot_gains(headline, out / "gains.png", title=Path(meta["data"]).name)
    return report


def plot_gains(headline: list[Gain], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(g.model for g in headline))
    metrics = list(dict.fromkeys(g.metric for g in headline))
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(models), 3.6))
    width = 0.8 / max(len(metrics), 1)
    for j, metric in enumerate(metrics):
        xs, ys, errs, labels = [], [], [], []
        for i, model in enumerate(models):
            g = next((g for g in headline if g.model == model and g.metric == metric), None)
            if g is None:
                continue
            per_seed = [(o - b) / b * 100 for o, b in zip(g.other.values, g.base.values) if b]
            xs.append(i + (j - (len(metrics) - 1) / 2) * width)
            ys.append(g.relative * 100)
            errs.append(statistics.stdev(per_seed) if len(per_seed) > 1 else 0.0)
            labels.append(f"p={_p(g.p_value)}")
        bars = ax.bar(xs, ys, width, yerr=errs, capsize=3, label=metric)
        for bar, label in zip(bars, labels):
            ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom" if bar.get_height() >= 0 else "top", fontsize=7)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(models)), models)
    ax.set_ylabel("adapted vs base, % (mean over seeds)")
    ax.set_title(f"llmaug adapter gain on test · {title}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")  # a one-model chart is narrower than its title
    plt.close(fig)
