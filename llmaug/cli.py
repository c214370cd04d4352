"""The ``llmaug`` command. Commands are thin: parse flags, call one library function, print.

Heavy libraries (torch, RecBole, litellm) are imported inside commands so ``--help`` stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import click

from . import __version__
from .cli_training import compare_command, train_command
from .errors import LlmaugError
from .report.command import report_command


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
    See whether its answers beat chance, in a page with a view per user:
      llmaug report runs/ml-100k
    Then train on it, plain or with the LLMRec adapter:
      llmaug train --data runs/ml-100k --model LightGCN
      llmaug compare --data runs/ml-100k --models BPR,LightGCN --seeds 3 --out runs/compare
    """


main.add_command(train_command)
main.add_command(compare_command)
main.add_command(report_command)


def _csv(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[list[str]]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


_prompt_set = click.option(
    "--prompt-set", type=click.Choice(["llmaug", "reference"]), default=None,
    help="Built-in templates: llmaug's (default) or the LLMRec reference code's wording, JSON answers kept "
         "(its profiling prompt asks for an educated guess where llmaug's allows null). docs/PAPER.md.")


@main.command()
@click.option("--dataset", required=True, metavar="NAME|DIR", help="A RecBole atomic dataset directory, or a dataset RecBole ships (ml-100k).")
@click.option("--out", required=True, type=click.Path(path_type=Path), metavar="DIR",
              help="Output directory; becomes a RecBole dataset named after its basename. Re-running into it continues the run.")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="YAML with any setting (field roles, domain, attributes...); flags override it.")
@click.option("--model", metavar="M",
              help="'offline' (default, no LLM); 'local' (a llama.cpp server llmaug starts and stops, no key: "
                   "pip install \"llmaug[local]\"); or a litellm model string: openai/gpt-4o-mini, azure/<deployment>, "
                   "ollama_chat/llama3.1, hosted_vllm/<name>, openai/<name> with --api-base.")
@click.option("--api-base", metavar="URL", help="Server URL for self-hosted models (vLLM, Ollama, any OpenAI-compatible server).")
@click.option("--temperature", type=float, metavar="T", help="Sampling temperature (default 0.6, the paper's best).")
@click.option("--top-p", type=float, metavar="P", help="Nucleus sampling (default 0.1, the paper's best).")
@click.option("--max-tokens", type=int, metavar="N", help="Answer length limit (default 512).")
@click.option("--timeout", type=float, metavar="SEC",
              help="Per-request timeout before a retry (default 60 s for a hosted API, 600 s for a self-hosted server).")
@click.option("--concurrency", type=int, metavar="N",
              help="Requests in flight (default 16; a llama.cpp server's slot count, read from its /props).")
@click.option("--structured-output", type=click.Choice(["auto", "json_schema", "json_object", "off"]),
              help="Send the answer's JSON schema as response_format (auto: to models litellm knows support it "
                   "and to every self-hosted server; a server that refuses it gets the prompt's format section).")
@click.option("--local-model", type=click.Path(path_type=Path, dir_okay=False), metavar="GGUF",
              help="With --model local: serve this GGUF file instead of the bundled Gemma 3 270M.")
@click.option("--local-context", type=int, metavar="N", help="With --model local: context tokens, shared by the slots (default 8192).")
@click.option("--local-parallel", type=int, metavar="N", help="With --model local: server slots = requests in flight (default 2).")
@click.option("--num-retries", type=int, metavar="N", help="Retries on 429 / 5xx / timeouts, with back-off (default 3).")
@click.option("--max-reasks", type=int, metavar="N", help="Re-ask an invalid answer with its error, at most N times (default 2).")
@click.option("--embedding-model", metavar="M", help="'local' (bundled all-MiniLM-L6-v2, default) or a litellm embedding model.")
@click.option("--prompts", type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
              help="Directory with edges.jinja / users.jinja / items.jinja overriding the built-in templates.")
@_prompt_set
@click.option("--candidates", type=int, metavar="N", help="Candidate pool size |C| per user (default 10).")
@click.option("--candidate-order", type=click.Choice(["shuffled", "ranked"]),
              help="How an edge prompt lists the candidates: shuffled (default; a seeded order per user and vote, "
                   "recorded with each answer) or ranked (the base model's best first, where an LLM's bias to the first "
                   "lines looks like agreement with the base model).")
@click.option("--votes", type=int, metavar="K",
              help="Ask each user's edge prompt K times, each in its own order; the edge is the majority liked and "
                   "disliked pick, and its agreement (the share of votes behind it) goes in the .augedge (default 1).")
@click.option("--min-agreement", type=float, metavar="A",
              help="Write only edges whose picks have at least this share of the votes, e.g. 0.67 with --votes 3 "
                   "(default 0: all); the dropped ones are counted in manifest.json.")
@click.option("--tasks", callback=_csv, metavar="LIST", help="Comma-separated subset of edges,users,items (default: all).")
@click.option("--limit-users", type=int, metavar="N", help="Augment only the first N users (trials, cost control).")
@click.option("--limit-items", type=int, metavar="N", help="Augment only the first N items.")
@click.option("--train-fraction", type=float, metavar="F", help="Keep this share of each user's training interactions (sparse regime).")
@click.option("--split-method", type=click.Choice(["ratio", "leave_one_out"]),
              help="ratio (default: the `split` shares per user) or leave_one_out (each user's last interaction is test, "
                   "the one before it validation): RecBole's RS and LS.")
@click.option("--split-order", type=click.Choice(["random", "time"]),
              help="random (default, seeded) or time (by the timestamp column: what is held out comes after what "
                   "prompts see). Sequential recommenders are evaluated on leave_one_out in time order.")
@click.option("--seed", type=int, metavar="S", help="Seed for the split and the base recommender (default 2024).")
@click.option("--batch", is_flag=True, default=None,
              help="Send through the provider's Batch API (openai/..., azure/...): half price, no rate limits, answers "
                   "within 24 h. Progress is followed here; a killed run resumes the batches it created, never making them twice.")
@click.option("--ray", "ray_address", metavar="ADDRESS",
              help="Spread live requests over Ray actors (render, ask, validate; this process journals): 'local' starts "
                   "a Ray of llmaug's own and removes it at the end; 'auto' joins this machine's cluster (RAY_ADDRESS, "
                   "else the latest `ray start`), ray://head:10001 a remote one. A joined cluster is never stopped.")
@click.option("--dry-run", is_flag=True, help="Render every prompt and estimate requests, tokens and cost; send nothing.")
@click.option("--fresh", is_flag=True, help="Forget the answers journaled in OUT and start over.")
@click.option("--quiet", is_flag=True, help="No progress bars (nor, without a terminal, progress lines).")
def augment(dataset: str, out: Path, config_file: Optional[Path], quiet: bool, dry_run: bool, fresh: bool, **flags) -> None:
    """Augment a dataset: split it, rank candidates, ask the provider, write a RecBole dataset.

    \b
    Steps: split (RecBole ratio split, seeded) -> candidates from a base RecBole model trained on
    the training split -> edges / user profiles / item attributes -> validated records (journaled
    in OUT/.llmaug, so a re-run repeats nothing) -> embeddings -> RecBole atomic files in OUT.

    \b
    Keys come from the provider's usual environment variables (OPENAI_API_KEY, AZURE_API_KEY...),
    never from flags or files. Ctrl-C stops cleanly; the same command resumes.

    \b
    Large datasets: the base model is LightGCN up to 250k training interactions and BPR above, trained
    sparse with row-wise Adagrad in batches of at most 65,536 (candidate_model: auto). While it trains
    and ranks, and from the item text embedding to the write, the split waits on disk in OUT/.llmaug
    (~20 bytes an interaction; an unlinked file, gone once it is read back).
    Without a terminal (a log, CI, nohup) every stage writes a status line every 30 s
    (LLMAUG_PROGRESS_SECONDS) with rate and ETA; manifest.json has time and memory per stage.

    \b
    Examples:
      llmaug augment --dataset ml-100k --out runs/ml-100k
      llmaug augment --dataset ml-100k --out runs/local --model local --limit-users 20
      llmaug augment --dataset ml-100k --out runs/local --model local --votes 3 --min-agreement 0.67
      llmaug augment --dataset ml-100k --out runs/gpt --model openai/gpt-4o-mini --dry-run
      llmaug augment --dataset ml-100k --out runs/gpt --model openai/gpt-4o-mini --batch --dry-run
      llmaug augment --dataset ml-100k --out runs/vllm --model openai/Qwen2.5-7B --api-base http://localhost:8000/v1
      llmaug augment --dataset data/books --config books.yaml --out runs/books --tasks edges,users
    """
    from .config import load_settings
    from .input.locate import resolve_dataset_dir

    resolve_dataset_dir(dataset)  # a wrong name answered before pandas and the pipeline are imported
    settings = load_settings(config_file, flags)
    from .pipeline import augment as run_augment
    from .progress import Reporter

    reporter = Reporter(enabled=not quiet)
    result = run_augment(dataset, out, settings, reporter, fresh=fresh, dry_run=dry_run)
    if dry_run:
        _print_estimate(result)
    else:
        _print_summary(out, result)


def _print_estimate(estimate: dict) -> None:
    click.echo(f"Dry run for {estimate['model']}: nothing was sent.")
    click.echo(f"{'task':<7}{'requests':>10}{'input tokens':>15}{'output tokens (est.)':>22}{'cost (USD)':>12}")
    for task, e in estimate["tasks"].items():
        cost = "unpriced" if e["cost_usd"] is None else f"{e['cost_usd']:.4f}"
        click.echo(f"{task:<7}{e['requests']:>10,}{e['input_tokens']:>15,}{e['output_tokens']:>22,}{cost:>12}")
    total = estimate["cost_usd"]
    click.echo("total cost: " + ("unknown (the model is not in litellm's price map)" if total is None else f"${total:.4f}"))


def _print_summary(out: Path, manifest: dict) -> None:
    name = out.resolve().name
    for task, c in manifest["tasks"].items():
        click.echo(f"{task:>6}: {c['accepted']:,} accepted, {c['failed']:,} failed, {c['unanswered']:,} unanswered"
                   f" of {c['requested']:,} requested ({c['from_earlier_run']:,} from an earlier run, {c['reasked']:,} re-asked)", err=True)
        if c["unanswered"]:
            click.echo(f"        unanswered requests are asked again when you re-run; last error: {c['unanswered_errors'][-1]}", err=True)
        if "votes" in c and (c["votes"] > 1 or c["below_min_agreement"] or c["no_majority"]):
            click.echo(f"        {c['votes']} votes per user: {c['written']:,} edges written, {c['no_majority']:,} users without a "
                       f"majority, {c['below_min_agreement']:,} below min_agreement", err=True)
    click.echo(f"RecBole dataset written to {out.resolve()} (dataset name '{name}', cost ${manifest['cost_usd']:.4f})")
    click.echo(f"Judge its answers first: llmaug report {out}    (do the picks beat chance? a page per user)")
    click.echo(f"Train on it: llmaug train --data {out} --model LightGCN    (or RecBole with {out}/recbole.yaml)")


@main.group()
def prompts() -> None:
    """Inspect the prompt templates."""


@prompts.command("render")
@click.option("--dataset", required=True, metavar="NAME|DIR", help="Dataset, as for augment.")
@click.option("--task", "task_name", required=True, type=click.Choice(["edges", "users", "items"]), help="Which prompt.")
@click.option("--id", "entity", required=True, metavar="ID", help="User id (edges, users) or item id (items), as in the dataset.")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE", help="Config file, as for augment.")
@click.option("--prompts", type=click.Path(path_type=Path, file_okay=False), metavar="DIR", help="Template override directory.")
@_prompt_set
def render(dataset: str, task_name: str, entity: str, config_file: Optional[Path], prompts: Optional[Path], prompt_set: Optional[str]) -> None:
    """Print the exact messages that would be sent for one user or item.

    \b
    Example:
      llmaug prompts render --dataset ml-100k --task edges --id 196
    """
    from .config import load_settings
    from .inspect import render_messages

    settings = load_settings(config_file, {"prompts": prompts, "prompt_set": prompt_set, "tasks": [task_name]})
    for message in render_messages(dataset, settings, task_name, entity):
        click.echo(f"--- {message['role']} ---")
        click.echo(message["content"])
