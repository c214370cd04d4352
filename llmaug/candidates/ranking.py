"""Candidate pools C_u: a base RecBole model trained on the training split ranks all items.

The reference code never shipped this step; here it is any RecBole general recommender with
``full_sort_predict``, trained on the training split only, so no validation or test interaction
can reach a candidate list.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Callable, Optional, Protocol

import numpy as np
import pandas as pd
import torch

from ..errors import ConfigError
from ..monitor import large_blocks_returned, trim_heap
from ..recbole_compat import quiet_recbole, recbole_config
from .policy import ADAM, ROW_ADAGRAD, SPARSE_ADAM, BaseModelPlan
from .pools import Pools
from .recbole_data import PairSampler, TrainingSplit, pair_codes, permutation_batched
from .row_adagrad import RowAdagrad


class Progress(Protocol):
    def advance(self, steps: int = 1) -> None: ...

    def describe(self, detail: str) -> None: ...


NewStage = Callable[[str, Optional[int]], Progress]


class _Silent:
    def advance(self, steps: int = 1) -> None:
        pass

    def describe(self, detail: str) -> None:
        pass


def rank_candidates(
    train: pd.DataFrame,
    workspace: Path,
    uid_field: str,
    iid_field: str,
    plan: BaseModelPlan,
    size: int,
    seed: int,
    new_stage: NewStage = lambda description, total: _Silent(),
) -> Pools:
    """Return, per user token, the ``size`` best-scored item tokens the user has not trained on
    (no entry for a user who has not trained on that many).

    Only ``train``'s user and item columns reach the model, and they are taken out of the frame
    (``TrainingSplit``: RecBole's integer ids replace them). ``workspace`` is the directory RecBole
    is pointed at (named like the dataset); nothing is read from it. ``new_stage(description,
    total)`` gets a progress handle for loading, each training batch and each ranked user: on a
    large dataset each of these takes minutes.
    """
    from recbole.utils import ModelType, get_model, init_seed

    try:
        model_class = get_model(plan.model)
    except (ValueError, ImportError):  # an unknown name makes RecBole import its optional lightgbm/xgboost models
        raise ConfigError(f"candidate_model '{plan.model}' is not a RecBole model") from None
    with quiet_recbole():
        loading = new_stage(f"Loading for {plan.model}", 1)
        workspace.mkdir(parents=True, exist_ok=True)  # RecBole would try to download a dataset whose directory is missing
        config = base_model_config(plan, workspace, uid_field, iid_field, seed)
        if config["MODEL_TYPE"] not in (ModelType.GENERAL, ModelType.TRADITIONAL):  # Pop, ItemKNN, EASE: general, fitted without a loss
            raise ConfigError(f"candidate_model '{plan.model}' is not a general recommender; candidates need one that ranks "
                              "every item for a user (e.g. LightGCN, BPR, Pop)")
        with large_blocks_returned():  # RecBole's dataset and its copies; the batches then run without
            init_seed(seed, True)
            train_data, sampler = _train_loader(config, TrainingSplit(config, train))
            init_seed(seed, True)
            model = model_class(config, train_data.dataset).to(config["device"])
        loading.advance()
        trainable = any(p.requires_grad for p in model.parameters())  # Pop, ItemKNN: fitted while built
        if trainable:
            training = new_stage(f"Training {plan.model}", plan.epochs * len(train_data))
            _fit(model, train_data, plan.epochs, _optimizers(model, float(config["learning_rate"]), plan.optimizer), training)
        seen = sampler.used_ids if sampler else pair_codes(train_data.dataset)  # the sampler's, when it has them
        pools = _top_unseen(model, train_data.dataset, seen, size, config["device"], new_stage)
    # Torch's first optimizer leaves the model in a reference cycle (a lazy import's frames refer,
    # through their callers, to it). Left to the cyclic collector, the model, loader and dataset
    # (1-2 GB at 10^6 users) would stay while the caller reads the split back into memory; and
    # the heap they leave is handed back first, or the split's arrays come on top of it. Not
    # ``release_freed_memory``: it sets aside (``gc.freeze``) what survives, and what this frame and
    # its callers still hold would then never be collected (0.46 GB more to the end of a 1M run).
    del model, train_data, sampler, seen
    gc.collect()
    trim_heap()
    return pools


def base_model_config(plan: BaseModelPlan, workspace: Path, uid_field: str, iid_field: str, seed: int):
    """The base model's RecBole ``Config``: the user's ``candidate_config`` over llmaug's settings."""
    return recbole_config(plan.model, workspace, {
        "benchmark_filename": ["train", "valid", "test"],
        "seed": seed,
        "reproducibility": True,
        "epochs": plan.epochs,
        "normalize_all": False,
        "USER_ID_FIELD": uid_field,
        "ITEM_ID_FIELD": iid_field,
        "load_col": {"inter": [uid_field, iid_field]},
        "additional_feat_suffix": None,
        "preload_weight": None,
        **plan.config,
    })


def _train_loader(config, dataset: TrainingSplit) -> tuple[torch.utils.data.DataLoader, Optional[PairSampler]]:
    """RecBole's ``data_preparation`` for the training part alone, with ``PairSampler`` and
    batches cut from a permutation tensor; and the sampler (None for a model without negatives)."""
    from recbole.data.utils import get_dataloader

    train = dataset.build()[0]
    args = config["train_neg_sample_args"]
    sampler = None
    if args["distribution"] != "none":
        sampler = PairSampler(["train"], [train], args["distribution"], args["alpha"]).set_phase("train")
    return permutation_batched(get_dataloader(config, "train"))(config, train, sampler, shuffle=config["shuffle"]), sampler


def _optimizers(model: torch.nn.Module, learning_rate: float, optimizer: str) -> list[torch.optim.Optimizer]:
    """Adam over every parameter, as RecBole trains; or row-wise Adagrad or SparseAdam over the
    embedding tables (switched to sparse gradients: a batch's gradient is the rows it looked up)
    and Adam over anything else. A model whose loss reads a whole table (a norm of ``weight``)
    would give that table a dense gradient, which both refuse; the large-data plan's BPR reads rows only."""
    if optimizer == ADAM:
        return [torch.optim.Adam(model.parameters(), lr=learning_rate)]
    tables = [module for module in model.modules() if isinstance(module, torch.nn.Embedding) and module.weight.requires_grad]
    for table in tables:
        table.sparse = True
    in_tables = {id(table.weight) for table in tables}
    others = [p for p in model.parameters() if p.requires_grad and id(p) not in in_tables]
    sparse = {ROW_ADAGRAD: RowAdagrad, SPARSE_ADAM: torch.optim.SparseAdam}[optimizer]
    optimizers: list[torch.optim.Optimizer] = [sparse([table.weight for table in tables], lr=learning_rate)]
    return optimizers + ([torch.optim.Adam(others, lr=learning_rate)] if others else [])


def _fit(model: torch.nn.Module, train_data, epochs: int, optimizers: list[torch.optim.Optimizer], progress: Progress) -> None:
    """A bare training loop: RecBole's Trainer would also write tensorboard logs into the cwd."""
    model.train()
    for epoch in range(epochs):
        progress.describe(f"epoch {epoch + 1}/{epochs}")
        for interaction in train_data:
            interaction = interaction.to(model.device)
            for optimizer in optimizers:
                optimizer.zero_grad()
            loss = model.calculate_loss(interaction)
            loss = sum(loss) if isinstance(loss, tuple) else loss
            loss.backward()
            for optimizer in optimizers:
                optimizer.step()
            progress.advance()
    for optimizer in optimizers:  # the last batch's gradients: ranking reads none
        optimizer.zero_grad()


# Scores ranked at once: a batch's float32 scores are ~16 MB whatever the catalogue (512 users
# at a time were 205 MB over 10^5 items, a spike above everything training held). Below glibc's
# 32 MB mapping threshold a batch comes from the heap and the next one reuses its pages: at 64 MB
# each was mapped apart and faulted in and zeroed again (~37% of the ranking's CPU time in the
# kernel at 10^6 users), and keeping 64 MB blocks on the heap instead fragmented it, +130 MB
# resident at 10^6 users. 16 MB batches ranked fastest of 2 to 64 MB (benchmarks/bench_ranking.py).
SCORES_AT_ONCE = 1 << 22


@torch.no_grad()
def _top_unseen(model, train_dataset, seen: np.ndarray, size: int, device, new_stage: NewStage,
                batch_users: Optional[int] = None) -> Pools:
    """``seen``: the training pairs as ``pair_codes`` gives them; ``batch_users`` by default as
    many users as ``SCORES_AT_ONCE`` scores allow."""
    from recbole.data.interaction import Interaction

    model.eval()
    uid_field, iid_field = train_dataset.uid_field, train_dataset.iid_field
    n_items = train_dataset.item_num
    first_seen = np.searchsorted(seen, np.arange(train_dataset.user_num + 1, dtype=np.int64) * n_items)
    seen_count = np.diff(first_seen)
    # A pool holds unseen items only: a user who has seen all but a few items gets none.
    users_with_pool = np.flatnonzero((seen_count > 0) & (n_items - 1 - seen_count >= size))
    ranked = np.zeros((len(users_with_pool), size), dtype=np.int32)
    batch_users = batch_users or max(1, SCORES_AT_ONCE // n_items)
    ranking = new_stage("Ranking candidates", len(users_with_pool))
    for start in range(0, len(users_with_pool), batch_users):
        users = users_with_pool[start : start + batch_users]
        scores = model.full_sort_predict(Interaction({uid_field: torch.as_tensor(users)}).to(device))
        scores = scores.view(len(users), n_items).float()
        counts = seen_count[users]
        rows = np.repeat(np.arange(len(users)), counts)
        at = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(first_seen[users], counts)
        columns = seen[at] - np.repeat(users.astype(np.int64) * n_items, counts)
        scores[torch.as_tensor(rows, device=scores.device), torch.as_tensor(columns, device=scores.device)] = -torch.inf
        scores[:, 0] = -torch.inf  # RecBole's padding item
        ranked[start : start + len(users)] = torch.topk(scores, size, dim=1).indices.cpu().numpy()
        del scores  # else the next batch's scores are computed beside this one's: two batches held
        ranking.advance(len(users))
    return Pools(train_dataset.id2token(uid_field, users_with_pool), train_dataset.field2id_token[iid_field], ranked)
