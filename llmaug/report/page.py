"""One self-contained HTML page and a JSON of the same figures, for one run.

Self-contained means viewable with no network: styles, script, charts (inline SVG) and the
per-entity data are all inside the file, and the page requests nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Optional

from jinja2 import Environment

from ..atomic import write_text_atomically
from ..errors import ConfigError
from ..progress import Reporter, quiet_reporter
from . import svg
from .figures import compute_figures
from .run import load_run
from .views import entity_views


@dataclass(frozen=True)
class Report:
    html: Path
    json: Path
    figures: dict[str, Any]


def write_report(run_dir: Path, out: Optional[Path] = None, max_users: int = 5000, max_items: int = 5000,
                 reporter: Optional[Reporter] = None) -> Report:
    """Judge the run in ``run_dir``: write ``out`` (default ``RUN_DIR/report.html``) and the figures
    as JSON next to it."""
    if out is not None and Path(out).suffix.lower() == ".json":
        raise ConfigError("--out names the HTML file; the JSON of the figures is written next to it")
    if min(max_users, max_items) < 1:
        raise ConfigError("--max-users and --max-items must be at least 1")
    reporter = reporter or quiet_reporter()
    run = load_run(run_dir)  # a directory that is no finished run fails here, before any output
    with reporter.running():
        stage = reporter.stage("Judging the run", total=2)
        figures = compute_figures(run)
        stage.advance()
        html_path = Path(out) if out is not None else run.directory / "report.html"
        json_path = html_path.with_suffix(".json")
        page = render_page(figures, entity_views(run, max_users, max_items))
        write_text_atomically(json_path, json.dumps(_rounded(figures), indent=1, ensure_ascii=False) + "\n")
        write_text_atomically(html_path, page)
        stage.advance()
    return Report(html_path.resolve(), json_path.resolve(), figures)


def render_page(figures: dict[str, Any], views: dict[str, Any]) -> str:
    template = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True).from_string(
        files("llmaug.report").joinpath("page.html.jinja").read_text(encoding="utf-8"))
    data = json.dumps(views, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    return template.render(f=figures, charts=_charts(figures), verdicts=_verdicts(figures.get("edges")), views=views,
                           data=data, fmt=_fmt, interval=_interval)


def _charts(figures: dict[str, Any]) -> dict[str, str]:
    charts = {}
    edges = figures.get("edges")
    if edges:
        picks, baselines = edges["picks"], edges["baselines"]
        charts["hits"] = svg.bars([
            ("LLM's liked pick", picks["liked"]["rate"], picks["liked"]["ci"], "liked"),
            ("LLM's disliked pick", picks["disliked"]["rate"], picks["disliked"]["ci"], "disliked"),
            ("a random candidate", baselines["random"]["rate"], baselines["random"]["ci"], "baseline"),
            ("the top-ranked candidate", baselines["top_ranked"]["rate"], baselines["top_ranked"]["ci"], "baseline"),
        ])
        labels = [str(k + 1) for k in range(edges["pool_size"])]
        for chart, shares in (("positions", edges["positions"]), ("ranks", edges["ranks"])):
            charts[chart] = svg.columns(labels, [("liked pick", shares["liked"], "liked"), ("disliked pick", shares["disliked"], "disliked")],
                                        ("uniform choice", shares["uniform"]))
        charts["held_by_rank"] = svg.columns(labels, [("candidate is held-out", edges["ranks"]["held_out"], "baseline")])
        charts["agreement"] = svg.bars(
            [(f"agreement {100 * a['agreement']:.0f}%: liked pick", a["liked_rate"], a["ci"], "liked") for a in edges["agreement"]]
            + [("a random candidate (all)", baselines["random"]["rate"], baselines["random"]["ci"], "baseline")])
    for task in ("users", "items"):
        if figures.get(task):
            charts[task] = svg.bars([(f["field"], f["fill_rate"], None, "fill") for f in figures[task]["fields"]], axis_max=1.0)
    auc = (figures.get("users") or {}).get("auc", {})
    if "auc" in auc:
        charts["auc"] = svg.bars([("profile embedding", auc["auc"], auc["ci"], "liked"),
                                  ("training-history embedding", auc["history_auc"], auc["history_ci"], "baseline"),
                                  ("chance", 0.5, None, "chance")], axis_max=1.0, percent=False)
    return charts


def _verdicts(edges: Optional[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One sentence per pick, decided by whether the paired 95% interval excludes zero; ``good``
    when it differs from a random candidate the way it should (liked: more often held-out)."""
    if not edges:
        return {}

    def compare(difference: dict[str, Any], what: str) -> str:
        lo, hi = difference["ci"] or (float("-inf"), float("inf"))
        return (f"more often than {what}" if lo > 0 else f"less often than {what}" if hi < 0
                else f"about as often as {what}")

    verdicts = {}
    for role, good in (("liked", "more"), ("disliked", "less")):
        pick = edges["picks"][role]
        versus_random = compare(pick["minus_random"], "a random candidate")
        versus_top = compare(pick["minus_top_ranked"], "the top-ranked candidate")
        verdicts[role] = {"text": f"The {role} pick is held-out {versus_random}, and {versus_top}.",
                          "good": versus_random.startswith(good)}
    return verdicts


FORMATS = {"share": lambda v: f"{100 * v:.1f}%", "points": lambda v: f"{100 * v:+.1f}", "auc": lambda v: f"{v:.3f}"}


def _fmt(value: Optional[float], kind: str = "share") -> str:
    return "–" if value is None else FORMATS[kind](value)


def _interval(ci: Optional[list[float]], kind: str = "share") -> str:
    return f"[{FORMATS[kind](ci[0])}, {FORMATS[kind](ci[1])}]" if ci else ""


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value
