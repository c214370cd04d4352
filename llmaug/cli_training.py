"""``llmaug train`` and ``llmaug compare``: thin click commands over llmaug.training / llmaug.compare.

Registered on the ``llmaug`` group with ``main.add_command``; heavy imports stay inside the
commands so ``llmaug --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path

import click

from .errors import ConfigError

DEFAULT_MODELS = "BPR,LightGCN,NGCF,SGL"


def _overrides(ctx, param, values) -> dict:
    """``--set key=value`` pairs, values parsed as YAML (``--set epochs=20 --set llmaug_features=[item_text]``)."""
    import yaml

    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


_data = click.option("--data", required=True, type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
                     help="An `llmaug augment` output directory (it holds recbole.yaml).")
_config = click.option("--config", "config_files", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
                       metavar="FILE", help="RecBole YAML (model, training or llmaug_* adapter keys); repeatable.")
_preset = click.option("--preset", metavar="NAME",
                       help="paper: where llmaug's adapter departs from LLMRec as published, the paper's reading "
                            "(Eq. 7 pruning over E u E_A, masked features in the forward pass, one feature per "
                            "generated attribute, AdamW); before --config and --set. docs/PAPER.md lists every departure.")
_set = click.option("--set", "overrides", multiple=True, callback=_overrides, metavar="KEY=VALUE",
                    help="One RecBole/adapter config key, e.g. --set epochs=50; repeatable; wins over --config.")


def _with_preset(preset: str | None, config_files: tuple) -> list[Path]:
    if preset is None:
        return list(config_files)
    from .adapters.settings import preset_file  # torch: imported once a command runs

    return [preset_file(preset), *config_files]


@click.command("train")
@_data
@click.option("--model", required=True, metavar="NAME", help="A RecBole model: general (BPR, LightGCN, NGCF, SGL...) or sequential (SASRec, GRU4Rec, SASRecF...) adapted; any model plain with --base; context-aware ones (DeepFM...) always plain, on the LLM's fields (README: support matrix).")
@_preset
@_config
@click.option("--base", is_flag=True, help="Train the plain model, without the adapter.")
@click.option("--seed", type=int, default=2020, show_default=True)
@_set
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
              help="Where checkpoints and the result JSON go (default DIR/trained).")
@click.option("--nproc", type=int, default=1, show_default=True,
              help="Distributed training over this many local processes (gloo on CPU, NCCL on GPUs).")
@click.option("--quiet", is_flag=True, help="No progress bars or per-epoch log.")
def train_command(data, model, preset, config_files, base, seed, overrides, out, nproc, quiet):
    """Train one model (adapted, or plain with --base) and print its test metrics.

    \b
    The model is selected on the validation split (RecBole early stopping) and the best
    checkpoint is evaluated once on the test split (Recall/NDCG/Precision @10/20/50).
    Example:
      llmaug train --data runs/ml-100k --model LightGCN --set epochs=50
      llmaug train --data runs/ml-100k --model LightGCN --preset paper
    """
    from recbole.utils import ModelType

    from .training import model_class, train

    if nproc < 1:
        raise ConfigError("--nproc must be at least 1")
    adapted = not base
    if adapted and model_class(model).type == ModelType.CONTEXT:
        click.echo(f"{model} is context-aware: trained plain, with the LLM's attributes and profile fields as its features "
                   f"(the adapter adds nothing to it; README: support matrix)", err=True)
        adapted = False
    result = train(data, model, adapted=adapted, seed=seed, config_files=_with_preset(preset, config_files), config_dict=overrides,
                   out=out, nproc=nproc, show_progress=not quiet, verbose=not quiet)
    click.echo(f"{result.model} ({result.variant}, seed {result.seed}): {result.epochs} epochs, best epoch "
               f"{result.best_epoch}, {result.seconds_per_epoch:.2f} s/epoch; valid {result.valid_metric} "
               f"{result.best_valid_score:.4f}")
    for metric, value in result.test_result.items():
        click.echo(f"  test {metric:<13} {value:.4f}")
    click.echo(f"saved {Path(result.checkpoint).parent.parent / 'results'}")


@click.command("compare")
@_data
@click.option("--models", default=DEFAULT_MODELS, show_default=True, metavar="LIST", help="Comma-separated model names.")
@click.option("--seeds", type=int, default=5, show_default=True, metavar="N", help="Seeds per model (paired base/adapted).")
@click.option("--ablations", is_flag=True, help="Add Table 3's rows (w/o-u-i, w/o-u, w/o-u&i, w/o-prune, w/o-QC), then llmaug's own "
                                                  "(w/o item attributes, w/o MAE), each tested against the full adapter.")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
              help="Writes report.md, gains.png, results.json; a re-run reuses finished runs trained with the same "
                   "--set, --config and --preset contents and dataset.")
@_preset
@_config
@_set
@click.option("--quiet", is_flag=True, help="No progress bar.")
def compare_command(data, models, seeds, ablations, out, preset, config_files, overrides, quiet):
    """Base vs adapted for every model and seed: report.md with mean ± std, gains and paired t-tests.

    \b
    Example:
      llmaug compare --data runs/ml-100k --models BPR,LightGCN,NGCF,SGL --seeds 5 --out runs/compare
      llmaug compare --data runs/ml-100k --models LightGCN --ablations --preset paper --out runs/table3
    """
    from .compare import compare

    names = [m.strip() for m in models.split(",") if m.strip()]
    report = compare(data, names, seeds, out, ablations=ablations, config_files=_with_preset(preset, config_files),
                     config_dict=overrides, show_progress=not quiet)
    click.echo(f"wrote {report}")
