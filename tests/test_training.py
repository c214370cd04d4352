"""Training adapted and plain RecBole models on a real augmented ml-100k, the way users run it: its
sparse regime (20% of each user's training interactions), where an epoch takes a fifth of the time."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from conftest import invoke_llmaug
from tiny_dataset import BOOKS_CONFIG, make_books

from llmaug.compare import gains, table
from llmaug.errors import ConfigError, ModelError
from llmaug.recbole_compat import quiet_recbole, trusted_checkpoints
from llmaug.training import RunResult, build_config, train

METRICS = {f"{m}@{k}" for m in ("recall", "ndcg", "precision") for k in (10, 20, 50)}
QUICK = {"epochs": 1}


def check_metrics(result: RunResult) -> None:
    assert set(result.test_result) == METRICS and set(result.valid_result) == METRICS
    assert all(0 <= v <= 1 for v in result.test_result.values())


@pytest.mark.slow
@pytest.mark.parametrize("model", ["BPR", "LightGCN", "NGCF", "SGL"])
def test_each_adapted_model_trains_one_epoch_end_to_end(augmented_ml100k, tmp_path, model):
    result = train(augmented_ml100k, model, config_dict=QUICK, out=tmp_path)
    check_metrics(result)
    assert result.epochs == 1 and result.variant == "adapted"
    # one epoch of the adapted model is well above random ranking (recall@20 ~ 0.012 here)
    assert result.test_result["recall@20"] > 0.025
    assert Path(result.checkpoint).is_file()
    assert RunResult.load(tmp_path / "results" / f"{model}-adapted-seed2020.json") == result


def _evaluate_checkpoint(data: Path, checkpoint: str, split: str, seed: int) -> dict:
    """A fresh process-like path: new Config, dataset, model (other seed), RecBole Trainer, checkpoint."""
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    from llmaug.adapters import adapt

    with quiet_recbole():
        config = build_config(data, "LightGCN", seed=seed)
        dataset = create_dataset(config)
        train_data, valid_data, test_data = data_preparation(config, dataset)
        init_seed(seed, True)
        model = adapt(get_model("LightGCN"))(config, train_data._dataset)
        with trusted_checkpoints():
            state = torch.load(checkpoint, map_location="cpu")
        model.load_state_dict(state["state_dict"])
        model.load_other_parameter(state.get("other_parameter"))
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        loader = valid_data if split == "valid" else test_data
        return {k: float(v) for k, v in trainer.evaluate(loader, load_best_model=False).items()}


@pytest.fixture(scope="module")
def lightgcn_run(augmented_ml100k, tmp_path_factory):
    out = tmp_path_factory.mktemp("lightgcn")
    return train(augmented_ml100k, "LightGCN", config_dict={"epochs": 3}, out=out)


@pytest.mark.slow
def test_checkpoint_round_trip_restores_the_adapted_model(augmented_ml100k, lightgcn_run):
    restored = _evaluate_checkpoint(augmented_ml100k, lightgcn_run.checkpoint, "test", seed=12345)
    assert restored == pytest.approx(lightgcn_run.test_result, abs=1e-4)
    assert restored["recall@20"] > 0.05


@pytest.mark.slow
def test_model_selection_reads_validation_never_test(augmented_ml100k, lightgcn_run, tmp_path):
    # Give the test split other targets: if test data took any part in choosing the epoch, the
    # run would change; the validation trajectory must not. Only items already seen in training
    # are moved (rotated by one row), so RecBole assigns every id exactly as before.
    import pandas as pd

    name = augmented_ml100k.name
    data = tmp_path / name
    data.mkdir()
    for f in augmented_ml100k.iterdir():
        if f.is_file() and f.name != f"{name}.test.inter":
            (data / f.name).symlink_to(f)
    test = pd.read_csv(augmented_ml100k / f"{name}.test.inter", sep="\t", dtype=str)
    seen = set(pd.read_csv(augmented_ml100k / f"{name}.train.inter", sep="\t", dtype=str)["item_id:token"])
    movable = test["item_id:token"].isin(seen).to_numpy()
    test.loc[movable, "item_id:token"] = list(test.loc[movable, "item_id:token"].iloc[1:]) + [test.loc[movable, "item_id:token"].iloc[0]]
    test.to_csv(data / f"{name}.test.inter", sep="\t", index=False)
    other = train(data, "LightGCN", config_dict={"epochs": 3}, out=tmp_path / "out")
    assert other.best_epoch == lightgcn_run.best_epoch
    assert other.best_valid_score == lightgcn_run.best_valid_score
    assert other.valid_result == lightgcn_run.valid_result
    assert other.test_result != lightgcn_run.test_result
    # and the selection score is the validation metric of the kept checkpoint
    valid = _evaluate_checkpoint(augmented_ml100k, lightgcn_run.checkpoint, "valid", seed=1)
    assert valid == pytest.approx(lightgcn_run.valid_result, abs=1e-4)
    assert valid[lightgcn_run.valid_metric] == pytest.approx(lightgcn_run.best_valid_score, abs=1e-4)


@pytest.mark.slow
def test_two_process_distributed_training_on_cpu(augmented_ml100k, tmp_path):
    result = train(augmented_ml100k, "LightGCN", config_dict=QUICK, out=tmp_path, nproc=2)
    check_metrics(result)
    assert result.test_result["recall@20"] > 0.025
    assert Path(result.checkpoint).is_file()


# -- commands ---------------------------------------------------------------------------------


def _cli():
    from llmaug.cli import LlmaugGroup, main
    from llmaug.cli_training import compare_command, train_command

    if "train" in main.commands:
        return main
    return LlmaugGroup(commands={"train": train_command, "compare": compare_command})


@pytest.mark.slow
def test_train_command_prints_test_metrics(augmented_ml100k, tmp_path):
    result = CliRunner().invoke(_cli(), ["train", "--data", str(augmented_ml100k), "--model", "BPR", "--base",
                                         "--seed", "3", "--set", "epochs=1", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "BPR (base, seed 3)" in result.output and "test recall@20" in result.output
    assert (tmp_path / "results" / "BPR-base-seed3.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("model, message", [("Pop", "popularity"), ("EASE", "closed-form"), ("NoSuchModel", "NoSuchModel"),
                                            ("SASRec --base", "Augment with --split-method leave_one_out --split-order time")])
def test_train_command_refuses_models_it_cannot_train_in_one_line(augmented_ml100k, tmp_path, model, message):
    result = CliRunner().invoke(_cli(), ["train", "--data", str(augmented_ml100k), "--model", *model.split(), "--quiet",
                                         "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_ncl_trains_adapted_from_the_cli_with_its_own_trainer(augmented_ml100k, tmp_path):
    args = ["train", "--data", str(augmented_ml100k), "--model", "NCL", "--set", "epochs=1", "--quiet",
            "--out", str(tmp_path)]
    # RecBole's default 1000 clusters do not fit 943 users: one line that says what to set
    refused = CliRunner().invoke(_cli(), args)
    assert refused.exit_code == 2 and "num_clusters" in refused.output and "Traceback" not in refused.output
    result = CliRunner().invoke(_cli(), [*args, "--set", "num_clusters=50"])
    assert result.exit_code == 0, result.output
    assert "NCL (adapted, seed 2020): 1 epochs" in result.output and "test recall@20" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("model", ["BPR", "LightGCN", "NGCF"])
def test_the_paper_preset_trains_the_bpr_models(augmented_ml100k, tmp_path, model):
    result = CliRunner().invoke(_cli(), ["train", "--data", str(augmented_ml100k), "--model", model, "--preset", "paper",
                                         "--set", "epochs=1", "--quiet", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "test recall@20" in result.output


@pytest.mark.slow
def test_the_paper_preset_sets_eq7_pruning_and_adamw(augmented_ml100k):
    from llmaug.adapters import preset_file

    with quiet_recbole():
        config = build_config(augmented_ml100k, "LightGCN", config_files=[preset_file("paper")])
    assert (config["learner"], config["weight_decay"]) == ("adamw", 0.01)
    assert (config["llmaug_prune_drops"], config["llmaug_prune_over"], config["llmaug_prune_ratio"]) == ("smallest_losses", "all_triplets", 0.4)


def augmented_books(tmp_path: Path, flags: list[str], **columns: str) -> tuple[Path, Path]:
    """The book dataset made with ``columns`` (make_books' time and rating column names), augmented
    offline with ``flags``: (source directory, output directory)."""
    directory = make_books(tmp_path / "data", **columns)
    config = tmp_path / "books.yaml"
    config.write_text(BOOKS_CONFIG, encoding="utf-8")
    out = tmp_path / "shelf"
    augmented = invoke_llmaug("augment", "--dataset", str(directory), "--config", str(config), "--out", str(out), "--quiet", *flags)
    assert augmented.returncode == 0, augmented.stderr
    return directory, out


@pytest.mark.slow
def test_a_sequential_model_trains_plain_and_adapted_on_the_leave_one_out_split_in_time_order(tmp_path):
    directory, out = augmented_books(tmp_path, ["--split-method", "leave_one_out", "--split-order", "time"],
                                     time_column="timestamp")
    # The test targets are each reader's latest book, after every book of their training sequence.
    inter = pd.read_csv(directory / f"{directory.name}.inter", sep="\t")
    inter.columns = [c.split(":")[0] for c in inter.columns]
    latest = inter.sort_values("timestamp").groupby("reader")["book"].last()
    test = pd.read_csv(out / "shelf.seqtest.inter", sep="\t", dtype=str)
    assert dict(zip(test.iloc[:, 0], test.iloc[:, 1])) == latest.to_dict()
    # RecBole numbers the listed items as it numbers the items, and the adapter scores the LLM's
    # triplets on each reader's whole training sequence: the list that precedes their validation book.
    from recbole.data import create_dataset, data_preparation

    from llmaug.adapters.sequences import training_sequences

    with quiet_recbole():
        config = build_config(out, "SASRec")
        training, _, _ = data_preparation(config, create_dataset(config))
    dataset = training.dataset  # what the model is built with
    sequences, lengths = training_sequences(dataset, 50)
    valid = pd.read_csv(out / "shelf.seqvalid.inter", sep="\t", dtype=str)
    for reader, listed in zip(valid.iloc[:, 0], valid.iloc[:, 2]):
        user = dataset.token2id("reader", reader)
        assert dataset.id2token("book", sequences[user, : lengths[user]]).tolist() == listed.split()
    result = CliRunner().invoke(_cli(), ["train", "--data", str(out), "--model", "SASRec", "--base", "--set", "epochs=1",
                                         "--set", "topk=[5]", "--set", "valid_metric=recall@5", "--quiet", "--out", str(tmp_path / "trained")])
    assert result.exit_code == 0, result.output
    assert "SASRec (base, seed" in result.output and "test recall@5" in result.output
    quick = ["--set", "epochs=1", "--set", "topk=[5]", "--set", "valid_metric=recall@5", "--quiet", "--out", str(tmp_path / "trained")]
    adapted = CliRunner().invoke(_cli(), ["train", "--data", str(out), "--model", "SASRec", *quick])
    assert adapted.exit_code == 0, adapted.output
    assert "SASRec (adapted, seed" in adapted.output and "test recall@5" in adapted.output
    # The feature-aware SASRecF reads the LLM's item attributes, as the generated config selects them.
    config = build_config(out, "SASRecF")
    assert config["selected_features"] == ["attr_author", "attr_original_language"]
    featured = CliRunner().invoke(_cli(), ["train", "--data", str(out), "--model", "SASRecF", "--base", *quick])
    assert featured.exit_code == 0, featured.output
    general = CliRunner().invoke(_cli(), ["train", "--data", str(out), "--model", "BPR", "--base", "--set", "epochs=1",
                                          "--set", "topk=[5]", "--set", "valid_metric=recall@5", "--quiet", "--out", str(tmp_path / "bpr")])
    assert general.exit_code == 0, general.output  # the same split, as general recommenders read it


def test_a_sequential_model_leaves_autograd_anomaly_mode_off():
    """RecBole's sine.py turns anomaly mode on when its package is imported: every later backward
    pass in the process, of any model, then ran several times slower. In a process of its own, so
    the import happens here and not in an earlier test."""
    probe = ("import torch; from llmaug.training import model_class; from llmaug.adapters.support import matrix; "
             "model_class('SASRec'); matrix(); print(torch.is_anomaly_enabled())")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split() == ["False"]


@pytest.mark.slow
def test_a_context_aware_model_trains_plain_on_labels_with_the_llms_attributes_as_features(tmp_path):
    _, out = augmented_books(tmp_path, ["--tasks", "users,items"], rating_column="rating")
    with quiet_recbole():
        context = build_config(out, "DeepFM")
        from recbole.data import create_dataset

        dataset = create_dataset(context)
    # The offline provider states each book's author: a feature of every labelled row, beside the profiles.
    assert {"attr_author", "profile_favourite_author"} <= set(dataset.field2type)
    assert context["threshold"] == {"rating": 4.0} and context["valid_metric"] == "AUC"
    result = CliRunner().invoke(_cli(), ["train", "--data", str(out), "--model", "DeepFM", "--base", "--set", "epochs=1",
                                         "--quiet", "--out", str(tmp_path / "trained")])
    assert result.exit_code == 0, result.output
    assert "DeepFM (base, seed" in result.output and "test auc" in result.output and "test logloss" in result.output
    # Without --base it trains the same plain model, and says why: the adapter adds nothing to a CTR model.
    plain = CliRunner().invoke(_cli(), ["train", "--data", str(out), "--model", "DeepFM", "--set", "epochs=1", "--quiet",
                                        "--out", str(tmp_path / "a")])
    assert plain.exit_code == 0, plain.output
    assert "DeepFM is context-aware: trained plain" in plain.stderr and "DeepFM (base, seed" in plain.stdout


@pytest.mark.slow
def test_per_attribute_item_features_are_one_feature_per_stated_attribute(books, tmp_path):
    from llmaug.adapters import preset_file
    from llmaug.adapters.settings import AdapterSettings

    directory, config = books
    out = tmp_path / "shelf"
    augmented = invoke_llmaug("augment", "--dataset", str(directory), "--config", str(config), "--out", str(out), "--quiet")
    assert augmented.returncode == 0, augmented.stderr
    with quiet_recbole():
        paper = AdapterSettings.from_config(build_config(out, "BPR", config_files=[preset_file("paper")]))
        default = AdapterSettings.from_config(build_config(out, "BPR"))
        with pytest.raises(ConfigError, match="run llmaug augment on it again"):  # a dataset written before the files existed
            AdapterSettings.from_config(build_config(out, "BPR", config_files=[preset_file("paper")],
                                                     config_dict={"llmaug_attribute_fields": None}))
    # Only author has values (no book states an original language), so one attribute feature, masked like the joined one.
    assert paper.features == ("user_profile", "item_attr_author", "item_text")
    assert paper.masked_features == ("user_profile", "item_attr_author")
    assert default.features == ("user_profile", "item_attributes", "item_text")
    result = CliRunner().invoke(_cli(), ["train", "--data", str(out), "--model", "BPR", "--preset", "paper", "--set", "epochs=1", "--set", "topk=[5]", "--set", "valid_metric=recall@5",
                                         "--quiet", "--out", str(tmp_path / "trained")])
    assert result.exit_code == 0, result.output


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["--model", "SGL", "--preset", "paper"], "cannot prune SGL's own triplets"),
    (["--model", "BPR", "--preset", "nope"], "unknown preset 'nope'"),
])
def test_a_preset_that_cannot_apply_is_one_line(augmented_ml100k, tmp_path, args, message):
    result = CliRunner().invoke(_cli(), ["train", "--data", str(augmented_ml100k), *args, "--set", "epochs=1", "--quiet",
                                         "--out", str(tmp_path)])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_compare_command_writes_a_report_and_reuses_finished_runs(augmented_ml100k, tmp_path):
    args = ["compare", "--data", str(augmented_ml100k), "--models", "BPR", "--seeds", "2", "--out", str(tmp_path),
            "--set", "epochs=1", "--quiet"]
    result = CliRunner().invoke(_cli(), args)
    assert result.exit_code == 0, result.output
    report = (tmp_path / "report.md").read_text()
    assert "| BPR | recall@20 |" in report and "| BPR | ndcg@20 |" in report and "2/2 seeds" in report
    assert (tmp_path / "gains.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = sorted((tmp_path / "runs" / "results").glob("*.json"))
    assert len(runs) == 4
    stamps = [p.stat().st_mtime_ns for p in runs]
    assert CliRunner().invoke(_cli(), args).exit_code == 0
    assert [p.stat().st_mtime_ns for p in runs] == stamps  # nothing retrained
    edited = tmp_path / "mine.yaml"  # what a finished run was trained with changed: it is trained again
    edited.write_text("llmaug_feature_weight: 0.3\n")
    assert CliRunner().invoke(_cli(), [*args, "--seeds", "1", "--config", str(edited)]).exit_code == 0
    changed = [p.name for p, before in zip(runs, stamps) if p.stat().st_mtime_ns != before]
    assert changed == ["BPR-adapted-seed2020.json", "BPR-base-seed2020.json"]


def _result(model, variant, seed, recall):
    metrics = {m: recall for m in METRICS}
    return RunResult(model, variant, seed, "recall@20", recall, metrics, metrics, 1, 0, 1.0, "x")


def test_gains_are_paired_over_seeds():
    from scipy.stats import ttest_rel

    base = [0.10, 0.12, 0.11]
    adapted = [0.12, 0.13, 0.115]
    results = [_result("M", "base", s, v) for s, v in enumerate(base)]
    results += [_result("M", "adapted", s, v) for s, v in reversed(list(enumerate(adapted)))]
    g = next(g for g in gains(results) if g.metric == "recall@20")
    assert g.p_value == pytest.approx(ttest_rel(adapted, base).pvalue)
    assert g.relative == pytest.approx((sum(adapted) - sum(base)) / sum(base))
    assert g.wins == 3 and g.n == 3
    assert table(results)[("M", "adapted")]["recall@20"].values == adapted
    single = [_result("M", "base", 0, 0.1), _result("M", "adapted", 0, 0.2)]
    assert math.isnan(next(iter(gains(single))).p_value)


def test_ablations_are_table_3s_rows_each_tested_against_the_full_adapter(tmp_path):
    from scipy.stats import ttest_rel

    from llmaug.compare import plan, write_report

    runs = plan(["M"], [1], True, ["user_profile", "item_attributes", "item_text"])
    assert [r.variant for r in runs] == ["base", "adapted", "w/o-u-i", "w/o-u", "w/o-u&i", "w/o-prune", "w/o-QC",
                                         "llmaug: w/o item attributes", "llmaug: w/o MAE"]
    overrides = {r.variant: r.overrides for r in runs}
    assert overrides["w/o-u&i"] == {"llmaug_features": ["item_text"]}
    assert overrides["w/o-QC"] == {"llmaug_prune_ratio": 0.0, "llmaug_mae_weight": 0.0}
    assert len({r.name for r in runs}) == len({r.slug for r in runs}) == len(runs)  # one result file and checkpoint each
    assert all("-" not in r.slug for r in runs)  # run names are split on '-'


    adapted, without_edges = [0.20, 0.21, 0.23], [0.18, 0.185, 0.20]
    results = [_result("M", "base", s, 0.1) for s in range(3)]
    results += [_result("M", "adapted", s, v) for s, v in enumerate(adapted)]
    results += [_result("M", "w/o-u-i", s, v) for s, v in enumerate(without_edges)]
    meta = {"data": str(tmp_path / "d"), "seeds": [0, 1, 2], "protocol": {}, "overrides": {}, "adapter": {}, "manifest": {}}
    report = write_report(results, tmp_path, meta).read_text()
    row = next(line for line in report.splitlines() if line.startswith("| M | w/o-u-i | recall@20 |"))
    p = ttest_rel(without_edges, adapted).pvalue  # against the full adapter, not the base model
    assert f"| {p:.3g} | {'yes' if p < 0.05 else 'no'} |" in row and "0.2133 ± " in row


def test_model_errors_are_llmaug_errors():
    from llmaug.errors import LlmaugError

    assert issubclass(ModelError, LlmaugError)
