"""Candidate pools C_u: a base RecBole model trained on the training split ranks all items.

The reference code never shipped this step; here it is any RecBole general recommender with
``full_sort_predict``, trained on the training split only, so no validation or test interaction
can reach a candidate list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from .errors import ConfigError
from .recbole_compat import quiet_recbole, recbole_config

ProgressFn = Callable[[int, int], None]


def _train_only_loader(config, dataset):
    from recbole.data import data_preparation

    train_data, _valid, _test = data_preparation(config, dataset)
    return train_data


def rank_candidates(
    dataset_dir: Path,
    uid_field: str,
    iid_field: str,
    model_name: str,
    size: int,
    epochs: int,
    seed: int,
    extra_config: Optional[dict[str, Any]] = None,
    on_epoch: Optional[ProgressFn] = None,
) -> dict[str, list[str]]:
    """Return, per user token, the ``size`` best-scored item tokens the user has not trained on
    (no entry for a user who has not trained on that many)."""
    from recbole.data import create_dataset
    from recbole.utils import get_model, init_seed

    try:
        model_class = get_model(model_name)
    except (ValueError, ImportError):  # an unknown name makes RecBole import its optional lightgbm/xgboost models
        raise ConfigError(f"candidate_model '{model_name}' is not a RecBole model") from None
    config_dict = {
        "benchmark_filename": ["train", "valid", "test"],
        "seed": seed,
        "reproducibility": True,
        "epochs": epochs,
        "normalize_all": False,
        "USER_ID_FIELD": uid_field,
        "ITEM_ID_FIELD": iid_field,
        "load_col": {"inter": [uid_field, iid_field]},
        "additional_feat_suffix": None,
        "preload_weight": None,
        **(extra_config or {}),
    }
    with quiet_recbole():
        config = recbole_config(model_name, dataset_dir, config_dict)
        init_seed(seed, True)
        dataset = create_dataset(config)
        train_data = _train_only_loader(config, dataset)
        init_seed(seed, True)
        model = model_class(config, train_data.dataset).to(config["device"])
        _fit(model, train_data, epochs, float(config["learning_rate"]), on_epoch)
        return _top_unseen(model, train_data.dataset, size, config["device"])


def _fit(model: torch.nn.Module, train_data, epochs: int, learning_rate: float, on_epoch: Optional[ProgressFn]) -> None:
    """A bare training loop: RecBole's Trainer would also write tensorboard logs into the cwd."""
    if not any(p.requires_grad for p in model.parameters()):
        return  # e.g. Pop, ItemKNN: fitted while the model was built
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    model.train()
    for epoch in range(epochs):
        for interaction in train_data:
            interaction = interaction.to(model.device)
            optimizer.zero_grad()
            loss = model.calculate_loss(interaction)
            loss = sum(loss) if isinstance(loss, tuple) else loss
            loss.backward()
            optimizer.step()
        if on_epoch:
            on_epoch(epoch + 1, epochs)


@torch.no_grad()
def _top_unseen(model, train_dataset, size: int, device, batch_users: int = 512) -> dict[str, list[str]]:
    from recbole.data.interaction import Interaction

    model.eval()
    uid_field, iid_field = train_dataset.uid_field, train_dataset.iid_field
    n_items = train_dataset.item_num
    seen = train_dataset.inter_matrix(form="csr").astype(bool)
    seen_count = np.diff(seen.indptr)
    # A pool holds unseen items only: a user who has seen all but a few items gets none.
    users_with_pool = np.flatnonzero((seen_count > 0) & (n_items - 1 - seen_count >= size))
    ranked: dict[str, list[str]] = {}
    for start in range(0, len(users_with_pool), batch_users):
        users = users_with_pool[start : start + batch_users]
        scores = model.full_sort_predict(Interaction({uid_field: torch.as_tensor(users)}).to(device))
        scores = scores.view(len(users), n_items).float()
        rows = seen[users].tocoo()
        scores[torch.as_tensor(rows.row, device=scores.device), torch.as_tensor(rows.col, device=scores.device)] = -torch.inf
        scores[:, 0] = -torch.inf  # RecBole's padding item
        top = torch.topk(scores, size, dim=1).indices.cpu().numpy()
        user_tokens = train_dataset.id2token(uid_field, users)
        item_tokens = train_dataset.id2token(iid_field, top)
        ranked.update(zip(user_tokens.tolist(), item_tokens.tolist()))
    return ranked
