"""The ``llmaug`` command. Commands are thin: parse flags, call one library function, print.

Heavy libraries (torch, RecBole, litellm) are imported inside commands so ``--help`` stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import click

from . import __version__
from .errors import LlmaugError


class LlmaugGroup(click.Group):
    """Turns every ``LlmaugError`` into one line on stderr and exit code 2; Ctrl-C into exit 130."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LlmaugError as exc:
            click.echo(f"llmaug: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("\nllmaug: interrupted. Finished answers are saved; run the same command again to continue.", err=True)
            sys.exit(130)


@click.group(cls=LlmaugGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="llmaug")
def main() -> None:
    """Augment a recommendation dataset with an LLM (LLMRec, WSDM'24) and train RecBole models on it.

    \b
    Start with the offline provider (no network, no key):
      llmaug augment --dataset ml-100k --out runs/ml-100k
    Then load runs/ml-100k with RecBole (see runs/ml-100k/recbole.yaml).
    """


def _csv(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[list[str]]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@main.command()
@click.option("--dataset", required=True, metavar="NAME|DIR", help="A RecBole atomic dataset directory, or a dataset RecBole ships (ml-100k).")
@click.option("--out", required=True, type=click.Path(path_type=Path), metavar="DIR",
              help="Output directory; becomes a RecBole dataset named after its basename. Re-running into it continues the run.")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="YAML with any setting (field roles, domain, attributes...); flags override it.")
@click.option("--model", metavar="M", help="Answer provider: 'offline' (default, no LLM).")
@click.option("--candidates", type=int, metavar="N", help="Candidate pool size |C| per user (default 10).")
@click.option("--tasks", callback=_csv, metavar="LIST", help="Comma-separated subset of edges,users,items (default: all).")
@click.option("--limit-users", type=int, metavar="N", help="Augment only the first N users (trials, cost control).")
@click.option("--limit-items", type=int, metavar="N", help="Augment only the first N items.")
@click.option("--train-fraction", type=float, metavar="F", help="Keep this share of each user's training interactions (sparse regime).")
@click.option("--seed", type=int, metavar="S", help="Seed for the split and the base recommender (default 2024).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def augment(dataset: str, out: Path, config_file: Optional[Path], quiet: bool, **flags) -> None:
    """Augment a dataset: split it, rank candidates, ask the provider, write a RecBole dataset.

    \b
    Steps: split (RecBole ratio split, seeded) -> candidates from a base RecBole model trained on
    the training split -> edges / user profiles / item attributes -> validated records (journaled
    in OUT/.llmaug, so a re-run repeats nothing) -> embeddings -> RecBole atomic files in OUT.

    \b
    Examples:
      llmaug augment --dataset ml-100k --out runs/ml-100k
      llmaug augment --dataset data/books --config books.yaml --out runs/books --tasks edges,users
    """
    from .config import load_settings
    from .pipeline import augment as run_augment
    from .progress import Reporter

    settings = load_settings(config_file, {k.replace("-", "_"): v for k, v in flags.items()})
    reporter = Reporter(enabled=not quiet)
    manifest = run_augment(dataset, out, settings, reporter)
    _print_summary(out, manifest)


def _print_summary(out: Path, manifest: dict) -> None:
    name = out.resolve().name
    for task, c in manifest["tasks"].items():
        click.echo(f"{task:>6}: {c['accepted']:,} accepted, {c['failed']:,} failed of {c['requested']:,} requested"
                   f" ({c['from_earlier_run']:,} from an earlier run)", err=True)
    click.echo(f"RecBole dataset written to {out.resolve()} (dataset name '{name}', cost ${manifest['cost_usd']:.4f})")
    click.echo(f"Train on it: llmaug train --data {out} --model LightGCN    (or RecBole with {out}/recbole.yaml)")
