"""`llmaug augment` on RecBole's ml-100k, checked through RecBole itself and the files it reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from llmaug.config import load_settings
from llmaug.dataset import load_source
from llmaug.prompt_data import build_prompt_data
from llmaug.split import split_interactions
from llmaug.tasks import TASKS


def read(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    return frame


@pytest.mark.slow
def test_plain_recbole_loads_the_directory_and_trains_bpr(augmented_ml100k, tmp_path, monkeypatch):
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import BPR
    from recbole.trainer import Trainer

    monkeypatch.chdir(tmp_path)  # RecBole's Trainer writes log_tensorboard/ into the cwd
    config = Config(model="BPR", dataset="ml-100k", config_file_list=[str(augmented_ml100k / "recbole.yaml")],
                    config_dict={"epochs": 1, "show_progress": False, "checkpoint_dir": str(tmp_path)})
    config["data_path"] = str(augmented_ml100k)  # RecBole forces its bundled copy for the name ml-100k
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    manifest = json.loads((augmented_ml100k / "manifest.json").read_text())
    train_rows = len(read(augmented_ml100k / "ml-100k.train.inter"))
    assert len(train.dataset.inter_feat) == train_rows == manifest["split"]["train"]
    assert len(valid.dataset.inter_feat) + len(test.dataset.inter_feat) + train_rows == sum(manifest["split"].values())

    users = dataset.get_preload_weight("uid")
    assert users.shape == (dataset.user_num, 384)
    assert int((np.abs(users).sum(1) > 0).sum()) == manifest["tasks"]["users"]["accepted"]
    assert dataset.get_preload_weight("iid").shape == dataset.get_preload_weight("tid").shape == (dataset.item_num, 384)

    model = BPR(config, train.dataset)
    trainer = Trainer(config, model)
    before = model.user_embedding.weight.detach().clone()
    loss, _ = trainer.fit(train, valid, saved=False)
    assert not torch_equal(before, model.user_embedding.weight)
    result = trainer.evaluate(test, load_best_model=False)
    assert 0 < result["recall@10"] <= 1


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


@pytest.mark.slow
def test_manifest_counts_match_the_files(augmented_ml100k):
    manifest = json.loads((augmented_ml100k / "manifest.json").read_text())
    tasks = manifest["tasks"]
    for name in ("edges", "users", "items"):
        assert tasks[name]["accepted"] + tasks[name]["failed"] + tasks[name]["unanswered"] == tasks[name]["requested"]
    assert len(read(augmented_ml100k / "ml-100k.augedge")) == tasks["edges"]["accepted"] == 943
    assert len(read(augmented_ml100k / "ml-100k.useremb")) == tasks["users"]["accepted"]
    # The offline provider cannot know directors: every item's director is empty, and counted.
    items = read(augmented_ml100k / "ml-100k.item")
    assert (items["attr_director"] == "").all()
    assert tasks["items"]["empty_fields"]["director"] == len(items) == 1682
    # A liked genre needs some basis in the (thinned) history: the few users without one are counted.
    users = read(augmented_ml100k / "ml-100k.user")
    unstated = int((users["profile_liked_genre"] == "").sum())
    assert unstated == tasks["users"]["empty_fields"]["liked_genre"] and unstated < len(users) / 10
    assert set(manifest["split"]) >= {"train", "valid", "test"}
    assert manifest["provider"] == "offline"


@pytest.mark.slow
def test_augmented_edges_come_from_each_users_candidates_and_are_unseen(augmented_ml100k):
    train = read(augmented_ml100k / "ml-100k.train.inter")
    seen = set(zip(train["user_id"], train["item_id"]))
    pools = {u: set(c.split()) for u, c in read(augmented_ml100k / "ml-100k.candidates").itertuples(index=False)}
    assert all(len(p) == 10 for p in pools.values())
    assert not any((u, i) in seen for u, pool in pools.items() for i in pool)
    for user, pos, neg, agreement in read(augmented_ml100k / "ml-100k.augedge").itertuples(index=False):
        assert pos != neg and {pos, neg} <= pools[user] and agreement == "1.0"  # one vote agrees with itself


@pytest.mark.slow
def test_base_recommender_gets_the_training_split_as_recbole_would_read_it(augmented_ml100k, tmp_path):
    # The training split reaches the base model as arrays. RecBole reading the written training file
    # (with header-only validation and test files) must give it the same ids in the same order.
    from recbole.data import create_dataset

    from llmaug.candidates.policy import BaseModelPlan
    from llmaug.candidates.ranking import base_model_config
    from llmaug.candidates.recbole_data import TrainingSplit

    workspace = tmp_path / "ml-100k"
    workspace.mkdir()
    train_file = (augmented_ml100k / "ml-100k.train.inter").read_text()
    (workspace / "ml-100k.train.inter").write_text(train_file)
    for part in ("valid", "test"):
        (workspace / f"ml-100k.{part}.inter").write_text(train_file.split("\n", 1)[0] + "\n")
    config = base_model_config(BaseModelPlan("BPR", 1), workspace, "user_id", "item_id", seed=3)
    from_file = create_dataset(config)
    rows = read(augmented_ml100k / "ml-100k.train.inter")
    from_arrays = TrainingSplit(config, rows)
    assert "user_id" not in rows and "item_id" not in rows and "rating" in rows  # RecBole's ids are the only copy left
    assert len(from_arrays.inter_feat) == len(from_file.inter_feat) == len(train_file.splitlines()) - 1
    assert from_arrays.file_size_list == from_file.file_size_list
    for field in ("user_id", "item_id"):
        assert np.array_equal(from_arrays.inter_feat[field].to_numpy(), from_file.inter_feat[field].to_numpy())
        assert list(from_arrays.field2id_token[field]) == list(from_file.field2id_token[field])
        assert from_arrays.field2id_token[field].dtype == from_file.field2id_token[field].dtype
        assert from_arrays.field2token_id[field] == from_file.field2token_id[field]
        # 4 bytes an id where RecBole's take 8, through to the built dataset; each training batch
        # is widened back to RecBole's int64 (test_scale: the loader gives RecBole's batches)
        assert from_arrays.inter_feat[field].dtype == np.int32 and from_file.inter_feat[field].dtype == np.int64
    built = from_arrays.build()[0]
    assert all(built.inter_feat[field].dtype == torch.int32 for field in ("user_id", "item_id"))


def test_prompts_show_only_training_interactions():
    settings = load_settings(overrides={"history_items": 10_000})
    source = load_source("ml-100k", settings)
    split = split_interactions(source.inter.frame, "user_id", settings.split, settings.seed)
    data = build_prompt_data(source, split.train, settings)
    train_items = split.train.groupby("user_id", observed=True)["item_id"].agg(set)
    held_out = pd.concat([split.valid, split.test]).groupby("user_id", observed=True)["item_id"].agg(set)
    title_of = dict(zip(source.items["item_id"], source.items["movie_title"]))
    data.candidates.update({u: [] for u in data.histories})
    for name in ("users", "edges"):
        for job in TASKS[name](data).jobs():
            shown = {item["title"] for item in job.context["history"]}
            assert shown == {title_of[i] for i in train_items[job.entity]}
            assert set(job.history) <= train_items[job.entity]
    # The check above can fail: held-out items exist and are not in the training history.
    assert sum(len(held_out[u] - train_items[u]) for u in held_out.index) > 0


def test_split_is_recbole_ratio_split_and_reproducible():
    from recbole.data.dataset import Dataset

    settings = load_settings()
    inter = load_source("ml-100k", settings).inter.frame
    a = split_interactions(inter.copy(), "user_id", [0.8, 0.1, 0.1], seed=5)
    b = split_interactions(inter.copy(), "user_id", [0.8, 0.1, 0.1], seed=5)
    c = split_interactions(inter.copy(), "user_id", [0.8, 0.1, 0.1], seed=6)
    assert all(a.parts()[k].equals(b.parts()[k]) for k in a.parts())
    assert not a.train.equals(c.train)
    gapped = split_interactions(inter.set_axis(pd.Index(np.asarray(inter.index) * 3 + 1)), "user_id", [0.8, 0.1, 0.1], seed=5)  # rows left out: lines not a range
    assert all(gapped.parts()[k].index.equals(a.parts()[k].index * 3 + 1) and a.parts()[k].index.dtype == np.int32 for k in a.parts())
    merged = pd.concat(a.parts().values())
    assert len(merged) == len(inter) and not merged.duplicated().any()
    sizes = {part: frame.groupby("user_id", observed=True).size() for part, frame in a.parts().items()}
    for user, total in inter.groupby("user_id").size().items():
        first, second = Dataset._calcu_split_ids(None, total, [0.8, 0.1, 0.1])
        assert (sizes["train"].get(user, 0), sizes["valid"].get(user, 0)) == (first, second - first)


def test_leave_one_out_in_time_order_is_recboles_and_holds_out_each_users_latest():
    from recbole.data.dataset import Dataset

    inter = load_source("ml-100k", load_settings()).inter.frame
    split = split_interactions(inter.copy(), "user_id", [0.8, 0.1, 0.1], seed=1, method="leave_one_out", time_field="timestamp")
    when = lambda frame: frame.assign(t=frame["timestamp"].astype(float)).groupby("user_id", observed=True)["t"]  # noqa: E731
    latest_train, valid_time, test_time = when(split.train).max(), when(split.valid).max(), when(split.test).max()
    assert (split.valid.groupby("user_id", observed=True).size() == 1).all() and (split.test.groupby("user_id", observed=True).size() == 1).all()
    assert (valid_time >= latest_train[valid_time.index]).all() and (test_time >= valid_time[test_time.index]).all()
    # RecBole's own leave-one-out (LS valid_and_test) on the same time-ordered rows gives the same parts.
    ordered = inter.assign(t=inter["timestamp"].astype(float)).sort_values("t", kind="stable")
    grouped = [list(rows) for _, rows in ordered.groupby("user_id", sort=False).groups.items()]
    train_rows, valid_rows, test_rows = Dataset._split_index_by_leave_one_out(None, grouped, 2)
    for part, rows in (("train", train_rows), ("valid", valid_rows), ("test", test_rows)):
        assert sorted(split.parts()[part].index) == sorted(rows), part
    sparse = split_interactions(inter.copy(), "user_id", [0.8, 0.1, 0.1], seed=1, train_fraction=0.2, method="leave_one_out",
                                time_field="timestamp")
    assert sparse.test.equals(split.test) and len(sparse.train) < len(split.train) / 4
    # A sparse time-ordered split keeps each user's most recent training rows.
    kept_latest = when(sparse.train).max() == latest_train[when(sparse.train).max().index]
    assert kept_latest.all()


def test_train_fraction_thins_training_only():
    inter = load_source("ml-100k", load_settings()).inter.frame
    full = split_interactions(inter.copy(), "user_id", [0.8, 0.1, 0.1], seed=1)
    sparse = split_interactions(inter.copy(), "user_id", [0.8, 0.1, 0.1], seed=1, train_fraction=0.2)
    assert sparse.valid.equals(full.valid) and sparse.test.equals(full.test)
    assert set(map(tuple, sparse.train.values)) <= set(map(tuple, full.train.values))
    per_user = sparse.train.groupby("user_id", observed=True).size() / full.train.groupby("user_id", observed=True).size()
    assert per_user.between(0.19, 0.35).all()
