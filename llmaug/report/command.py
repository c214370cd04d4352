"""``llmaug report``: a thin click command over ``llmaug.report.page.write_report``.

Registered on the ``llmaug`` group with ``main.add_command``; pandas and numpy are imported only
when the command runs, so ``llmaug --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import click


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path), metavar="RUN_DIR")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="The HTML page (default RUN_DIR/report.html); the figures go next to it as JSON (FILE with .json).")
@click.option("--max-users", type=int, default=5000, show_default=True, metavar="N",
              help="The per-user view shows a random sample of N users past N; the figures always use every user.")
@click.option("--max-items", type=int, default=5000, show_default=True, metavar="N", help="The same for the per-item view.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def report_command(run_dir: Path, out: Optional[Path], max_users: int, max_items: int, quiet: bool) -> None:
    """Judge an augmentation before training on it: one self-contained HTML page and a JSON.

    \b
    RUN_DIR is a finished `llmaug augment` output. Figures, computed from it alone in seconds:
      edges      how often the LLM's liked / disliked pick is one of the user's held-out
                 (validation + test) items, against a random and the top-ranked candidate of
                 the same pools, with 95% intervals; share of picks per displayed line (position
                 bias) and per base-model rank; with --votes, hit rate per agreement level;
                 popularity of the picks; the training graph with and without the edges
                 (density, Gini of item degree, share to the least popular half, assortativity)
      profiles,  fill rate, distinct and most common values per field, empty answers; for
      attributes profiles, an AUC: does the profile embedding rank held-out items first?
      the run    requests, failures (with raw answers), re-asks, tokens, cost, time, and the
                 structured-output mode, per task
    Held-out interactions are only read here, to evaluate; nothing of them enters the dataset.
    The page also has a searchable view per user (history, ranked candidates, picks, held-out
    items, profile) and per item (attributes). It needs no network to view.

    \b
    Example:
      llmaug report runs/ml-100k
      llmaug report runs/ml-100k --out /tmp/ml-100k.html
    """
    from ..progress import Reporter
    from .page import write_report

    report = write_report(run_dir, out, max_users, max_items, Reporter(enabled=not quiet))
    _print_summary(report.figures)
    click.echo(f"wrote {report.html} (figures: {report.json})")


def _print_summary(figures: dict[str, Any]) -> None:
    edges = figures["edges"]
    if edges:
        share = lambda f: f"{100 * f['rate']:.1f}% [{100 * f['ci'][0]:.1f}, {100 * f['ci'][1]:.1f}]"  # noqa: E731
        picks, base = edges["picks"], edges["baselines"]
        click.echo(f"edges ({edges['users']:,} users): held-out share of the liked pick {share(picks['liked'])}, "
                   f"disliked pick {share(picks['disliked'])}; random candidate {share(base['random'])}, "
                   f"top-ranked {share(base['top_ranked'])}")
        spread = edges["positions"]["liked"]
        click.echo(f"position bias: {100 * max(spread):.0f}% of the liked picks come from line {spread.index(max(spread)) + 1} "
                   f"of {edges['pool_size']} ({edges['votes']['order']} order; uniform: {100 / edges['pool_size']:.0f}%)")
    auc = (figures["users"] or {}).get("auc", {})
    if "auc" in auc:
        click.echo(f"profiles: AUC {auc['auc']:.3f} [{auc['ci'][0]:.3f}, {auc['ci'][1]:.3f}] "
                   f"(training-history embedding {auc['history_auc']:.3f})")
