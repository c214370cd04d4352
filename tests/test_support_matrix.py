"""Every recommender RecBole ships, of its four families: adapted with its own objective kept, or
refused in one line.

For a model that adapts, one epoch with RecBole's own Trainer (NCL's E-step included) must give
the base model's loss and scores exactly when every LLMRec part is off, and train with every
part on. General models train on the shared ml-100k dataset, sequential ones on the book dataset
split leave-one-out in time order. The README's support matrix must be what this file checked.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch

from conftest import invoke_llmaug
from llmaug.adapters import adapt
from llmaug.adapters.support import matrix, readme_section, render
from llmaug.recbole_compat import MODEL_FAMILIES
from llmaug.errors import ModelError
from llmaug.recbole_compat import check_model_runs, quiet_recbole
from llmaug.training import build_config, model_class
from tiny_dataset import BOOKS_CONFIG, make_books

ROWS = matrix()
ADAPTED = [r for r in ROWS if r.adapts]
REFUSED = [r for r in ROWS if not r.adapts]
README = Path(__file__).resolve().parents[1] / "README.md"
ALL_OFF = {"llmaug_feature_weight": 0.0, "llmaug_aug_edge_ratio": 0.0, "llmaug_mae_weight": 0.0,
           "llmaug_weight_decay": 0.0}
# ml-100k has 943 users; NCL's default 1000 clusters would not fit (check_model_runs says so).
SMALL = {"epochs": 1, "num_clusters": 50}
# Test-sized networks where a model's own default is most of the suite's time: the check is about
# the objective the adapter keeps, not the model's capacity. ConvNCF's layers halve a 16-wide map to 1.
NARROW = {"ConvNCF": {"embedding_size": 16, "cnn_channels": [1, 8, 8, 8, 8], "cnn_kernels": [2, 2, 2, 2], "cnn_strides": [2, 2, 2, 2]},
          "DGCF": {"n_factors": 2, "n_iterations": 1}, "NNCF": {"num_conv_kernel": 16}}


@pytest.fixture(scope="module")
def books_in_time_order(tmp_path_factory) -> Path:
    """The book dataset, every task, split leave-one-out in time order for sequential models."""
    root = tmp_path_factory.mktemp("sequential")
    config = root / "books.yaml"
    config.write_text(BOOKS_CONFIG, encoding="utf-8")
    out = root / "shelf"
    result = invoke_llmaug("augment", "--dataset", str(make_books(root / "data", time_column="timestamp")), "--config",
                           str(config), "--out", str(out), "--quiet", "--split-method", "leave_one_out", "--split-order", "time")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def one_thread():
    """Sparse matrix products sum in a thread-dependent order; one thread makes runs bit-identical."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def model_config(data: Path, name: str, overrides: dict):
    return build_config(data, name, seed=11, config_dict={**SMALL, **NARROW.get(name, {}), **overrides})


def read_dataset(data: Path, name: str):
    """RecBole's dataset as ``name`` reads it: once per model, as its three runs differ only in the
    model's knobs (each run builds its splits from a copy)."""
    from recbole.data import create_dataset

    with quiet_recbole():
        return create_dataset(model_config(data, name, {}))


def one_epoch(data: Path, read, name: str, adapted: bool, overrides: dict) -> tuple[object, torch.Tensor]:
    """(RecBole's epoch loss, scores of 20 users over all items) after one epoch of RecBole's Trainer."""
    from recbole.data import data_preparation
    from recbole.data.interaction import Interaction
    from recbole.utils import get_trainer, init_seed

    with quiet_recbole():
        config = model_config(data, name, overrides)
        init_seed(11, True)
        train, valid, _ = data_preparation(config, dataset := copy.deepcopy(read))
        check_model_runs(config, dataset)
        init_seed(11, True)
        model = (adapt(model_class(name)) if adapted else model_class(name))(config, train._dataset)
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        losses = []
        epoch = trainer._train_epoch
        trainer._train_epoch = lambda *a, **k: losses.append(epoch(*a, **k)) or losses[-1]
        trainer.fit(train, None, saved=False, show_progress=False)
        model.eval()
        batch = next(iter(valid))[0][:20]  # RecBole's own evaluation rows: users, and a sequential model's sequences
        with torch.no_grad():
            try:
                scores = model.full_sort_predict(batch)
            except NotImplementedError:  # RecBole's evaluator falls back to predict() the same way
                users, items = batch[model.USER_ID], torch.arange(model.n_items)
                scores = model.predict(Interaction({model.USER_ID: users.repeat_interleave(len(items)),
                                                    model.ITEM_ID: items.repeat(len(users))}))
    (loss,) = losses
    return loss, scores.view(len(batch), -1)


def total(loss) -> float:
    return float(sum(loss)) if isinstance(loss, tuple) else float(loss)


@pytest.mark.parametrize("row", REFUSED, ids=[r.model for r in REFUSED])
def test_each_refused_recommender_is_one_line_with_the_reason(row):
    with pytest.raises(ModelError) as refusal:
        adapt(model_class(row.model))
    message = str(refusal.value)
    assert "\n" not in message and message == f"cannot adapt {row.model}: {row.how}"


@pytest.mark.slow
@pytest.mark.parametrize("row", ADAPTED, ids=[r.model for r in ADAPTED])
def test_each_adapted_recommender_keeps_its_own_objective(row, request, one_thread):
    data = request.getfixturevalue("books_in_time_order" if row.family == "sequential" else "augmented_ml100k")
    read = read_dataset(data, row.model)
    base_loss, base_scores = one_epoch(data, read, row.model, False, {})
    off_loss, off_scores = one_epoch(data, read, row.model, True, ALL_OFF)
    assert off_loss == base_loss  # the same floats: the model's own loss, nothing added or re-implemented
    assert torch.equal(off_scores, base_scores)

    on_loss, on_scores = one_epoch(data, read, row.model, True, {})
    assert math.isfinite(total(on_loss))
    if isinstance(base_loss, tuple):  # the model's own loss parts are all there, LLMRec's after them
        assert len(on_loss) == len(base_loss) + 1
    assert not torch.allclose(on_scores, base_scores, atol=1e-4)


def test_the_readme_shows_the_support_matrix_this_file_checks():
    expected = render(ROWS)
    assert readme_section(README.read_text(encoding="utf-8")) == expected, (
        "README.md's support matrix is stale; replace the block between its markers with:\n" + expected
    )


def test_every_recbole_recommender_has_a_row():
    import importlib

    for family, package in MODEL_FAMILIES.items():
        module = importlib.import_module(f"recbole.model.{package}")
        shipped = {name for name in dir(module) if isinstance(getattr(module, name), type)}
        assert {r.model for r in ROWS if r.family == family} == shipped and len(shipped) >= 10
    assert {r.model for r in ADAPTED} >= {"BPR", "LightGCN", "NGCF", "SGL", "NCL", "DGCF", "SimpleX", "ENMF", "SASRec", "GRU4Rec", "SASRecF", "FDSA"}
