"""The `llmaug augment` command as a user meets it: other datasets, mistakes, kills and re-runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import LLMAUG, invoke_llmaug, run_llmaug
from tiny_dataset import BOOKS_CONFIG


def dataset_files(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) if out.exists() else []


@pytest.mark.slow
def test_a_differently_shaped_dataset_works_by_config_alone(books, tmp_path, monkeypatch):
    directory, config = books
    out = tmp_path / "runs" / "bücher-aug"
    result = invoke_llmaug("augment", "--dataset", str(directory), "--config", str(config), "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    name = "bücher-aug"
    assert {f"{name}.train.inter", f"{name}.item", f"{name}.user", f"{name}.augedge", f"{name}.useremb",
            f"{name}.itememb", f"{name}.itemtextemb", "recbole.yaml", "manifest.json"} <= set(dataset_files(out))
    item = (out / f"{name}.item").read_text(encoding="utf-8")
    assert "東京物語" in item and "Kaos {{ 7*7 }}" in item
    assert item.splitlines()[0].split("\t")[-2:] == ["attr_author:token", "attr_original_language:token"]
    user = (out / f"{name}.user").read_text(encoding="utf-8").splitlines()
    assert user[0].split("\t")[0] == "reader:token" and len(user) == 41
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tasks"]["users"]["empty_fields"]["favourite_author"] == 40

    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation

    monkeypatch.chdir(tmp_path)
    loaded = Config(model="BPR", dataset=name, config_file_list=[str(out / "recbole.yaml")])
    dataset = create_dataset(loaded)
    train, _, _ = data_preparation(loaded, dataset)
    assert dataset.uid_field == "reader" and dataset.iid_field == "book"
    assert dataset.get_preload_weight("uid").shape == (41, 384)
    assert len(train.dataset.inter_feat) == manifest["split"]["train"]

    # One vector per stated attribute value, the value alone (the paper preset's item features):
    # no book states an original language, so that attribute gets no file.
    assert loaded["llmaug_attribute_fields"] == {"author": "aid_author"}
    assert not (out / f"{name}.itemattremb_original_language").exists()
    by_author = dataset.get_preload_weight("aid_author")
    books = dataset.field2id_token["book"]
    authors = {token: row for token, row in zip(books, by_author) if token != "[PAD]"}
    assert all(np.abs(v).sum() > 0 for v in authors.values())
    assert np.allclose(authors["b0"], authors["b5"]) and not np.allclose(authors["b0"], authors["b1"])  # AUTHORS[b % 5]
    assert not np.allclose(authors["b0"], dataset.get_preload_weight("iid")[dataset.token2id("book", "b0")])


def test_a_role_may_read_the_item_id_column_itself(books, tmp_path):
    """A catalogue keyed by its titles maps the title to the id field (the fuzzer's find: a KeyError)."""
    directory, config = books
    config.write_text(config.read_text(encoding="utf-8").replace("title: name", "title: book"), encoding="utf-8")
    rendered = invoke_llmaug("prompts", "render", "--dataset", str(directory), "--config", str(config), "--task", "items", "--id", "b3")
    assert rendered.returncode == 0, rendered.stderr
    assert "b3" in rendered.stdout and "Война и мир" not in rendered.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "no-such-dataset"], "neither a directory nor a dataset RecBole ships"),
        (["--dataset", "ml-100k", "--tasks", "edges,poems"], "tasks"),
        (["--dataset", "ml-100k", "--candidates", "1"], "candidates"),
        (["--dataset", "ml-100k", "--candidates", "ten"], "'ten' is not a valid integer"),
        (["--dataset", "ml-100k", "--model", "nobody/knows"], "unknown model"),
        (["--dataset", "ml-100k", "--train-fraction", "1.5"], "train_fraction"),
        (["--dataset", "ml-100k", "--no-such-flag"], "No such option"),
        (["--dataset", "ml-100k", "--model", "ollama_chat/llama3.1", "--batch"], "--batch needs a provider with a Batch API"),
        (["--dataset", "ml-100k", "--ray", "local"], "--ray spreads live requests to an LLM service"),
        (["--dataset", "ml-100k", "--model", "openai/gpt-4o-mini", "--batch", "--ray", "local"], "--batch hands the work"),
    ],
)
def test_user_mistakes_get_one_line_exit_2_and_no_files(tmp_path, args, message):
    out = tmp_path / "out"
    result = invoke_llmaug("augment", "--out", str(out), *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_config_mistakes(tmp_path, books):
    directory, _ = books
    bad_field = tmp_path / "bad-field.yaml"
    bad_field.write_text("fields: {title: name, year: printed}\n")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("fields: [unclosed\n")
    unknown_key = tmp_path / "unknown.yaml"
    unknown_key.write_text("fields: {title: name, year: null, genre: null}\ntemprature: 3\n")
    lone_replicas = tmp_path / "replicas.yaml"
    lone_replicas.write_text("replicas: [http://127.0.0.1:8001/v1]\n")
    ranked_votes = tmp_path / "ranked-votes.yaml"
    ranked_votes.write_text("candidate_order: ranked\nvotes: 3\n")
    no_time = tmp_path / "no-time.yaml"
    no_time.write_text(BOOKS_CONFIG + "split_order: time\n")
    for config, message in ((bad_field, "fields.year = 'printed' is not a column"), (bad_yaml, "not valid YAML"),
                            (unknown_key, "temprature"), (tmp_path / "missing.yaml", "cannot read config file"),
                            (lone_replicas, "replicas are further servers of the model at api_base"),
                            (ranked_votes, "votes ask each user's candidates in orders of their own"),
                            (no_time, "has no timestamp column (a float column named like 'timestamp'): use split_order: random")):
        out = tmp_path / "out"
        result = invoke_llmaug("augment", "--dataset", str(directory), "--config", str(config), "--out", str(out))
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert not out.exists()


def test_leave_one_out_holds_out_one_interaction_per_user_in_each_part(tmp_path, books):
    directory, config = books
    out = tmp_path / "loo"
    result = invoke_llmaug("augment", "--dataset", str(directory), "--config", str(config), "--out", str(out), "--quiet",
                           "--tasks", "users", "--split-method", "leave_one_out")
    assert result.returncode == 0, result.stderr
    parts = {part: pd.read_csv(out / f"loo.{part}.inter", sep="\t", dtype=str) for part in ("train", "valid", "test")}
    per_user = {part: frame.iloc[:, 0].value_counts() for part, frame in parts.items()}
    assert set(per_user["valid"]) == set(per_user["test"]) == {1} and len(per_user["test"]) == 40  # every reader has 5+ books
    assert json.loads((out / "manifest.json").read_text())["split"] == {part: len(frame) for part, frame in parts.items()}


def test_refuses_a_foreign_non_empty_out(tmp_path, books):
    directory, config = books
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("do not touch")
    result = invoke_llmaug("augment", "--dataset", str(directory), "--config", str(config), "--out", str(out))
    assert result.returncode == 2 and "not empty" in result.stderr
    assert dataset_files(out) == ["thesis.tex"] and not (out / ".llmaug").exists()


@pytest.mark.slow
def test_killed_run_leaves_no_partial_dataset_and_rerun_finishes(tmp_path, books):
    directory, config = books
    out = tmp_path / "killed"
    command = ["augment", "--dataset", str(directory), "--config", str(config), "--out", str(out), "--quiet"]
    process = subprocess.Popen([*LLMAUG, *command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / ".llmaug" / "base").exists() and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # mid-run: the base recommender is about to train
    process.wait()
    assert (out / ".llmaug").exists() and dataset_files(out) == []

    first = invoke_llmaug(*command)
    assert first.returncode == 0, first.stderr
    files = dataset_files(out)
    assert "manifest.json" in files and "killed.augedge" in files
    snapshot = {f: (out / f).read_bytes() for f in files if f != "manifest.json"}

    again = invoke_llmaug(*command)
    assert again.returncode == 0, again.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(t["from_earlier_run"] == t["requested"] for t in manifest["tasks"].values())
    assert {f: (out / f).read_bytes() for f in snapshot} == snapshot


def test_help_a_wrong_dataset_and_version_are_instant_and_teach(tmp_path):
    """In a process of their own: what is timed is what a user waits for, imports included."""
    started = time.perf_counter()
    result = run_llmaug("augment", "--help")
    assert result.returncode == 0 and "--train-fraction" in result.stdout and "Examples" in result.stdout
    assert time.perf_counter() - started < 2
    started = time.perf_counter()
    wrong = run_llmaug("augment", "--dataset", str(tmp_path / "nonexistent"), "--out", str(tmp_path / "out"))
    assert wrong.returncode == 2 and "is neither a directory nor a dataset RecBole ships" in wrong.stderr
    assert time.perf_counter() - started < 2
    assert run_llmaug("--version").stdout.startswith("llmaug, version")


@pytest.mark.slow
def test_wheel_carries_templates_adapters_and_defaults(tmp_path):
    root = Path(__file__).resolve().parents[1]
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(root)],
                           capture_output=True, text=True, cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("llmaug-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "llmaug/defaults.yaml" in names and "llmaug/adapters/__init__.py" in names
    assert "llmaug/prompts/__init__.py" in names and "llmaug/report/page.html.jinja" in names
    assert "llmaug/batch/provider.py" in names and "llmaug/cluster/ray_provider.py" in names  # every subpackage
    assert "llmaug/adapters/presets/paper.yaml" in names and "llmaug/prompts/reference/users.jinja" in names
    assert not any(n.startswith(("adapters/", "prompts/")) for n in names)


@pytest.mark.parametrize("task, says", [
    ("users", "Please do not fill in 'unknown', but make an educated guess"),
    ("edges", "Please output the index of user's favorite and least favorite book only from candidate"),
    ("items", "You are now a search engine"),
])
def test_the_reference_prompt_set_asks_as_the_reference_code_does_with_a_json_answer(books, task, says):
    directory, config = books
    entity = "b3" if task == "items" else "r1"
    shown = {}
    for prompt_set in ("reference", "llmaug"):
        result = invoke_llmaug("prompts", "render", "--dataset", str(directory), "--config", str(config), "--task", task,
                               "--id", entity, "--prompt-set", prompt_set)
        assert result.returncode == 0, result.stderr
        shown[prompt_set] = result.stdout
    assert says in shown["reference"] and says not in shown["llmaug"]
    assert "JSON schema" in shown["reference"]


@pytest.mark.parametrize("example", sorted(p.name for p in (Path(__file__).parent.parent / "examples").glob("*.yaml")))
def test_every_example_config_is_a_valid_settings_file(example):
    from llmaug.config import load_settings

    settings = load_settings(Path(__file__).parent.parent / "examples" / example)
    assert settings.model  # a typo'd key would have raised: settings forbid unknown keys
