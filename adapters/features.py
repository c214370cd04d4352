"""Side features: load them from a RecBole dataset, project, propagate, incorporate (LLMRec §3.3).

    f_k   = propagate(dropout(Linear_k(F_k)))           one matrix per feature k
    term  = sum_k f_k / ||f_k||_2                       added, scaled by w1, to the base model's
                                                        final user and item representations

A user feature (e.g. the LLM user profile) fills the user rows of its node matrix and an item
feature the item rows; LightGCN-style propagation over the training graph then gives the other
side collaborative context (a user gets the mean attributes of the items it interacted with).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmaug.errors import DatasetError

USER, ITEM = "user", "item"


@dataclass
class SideFeature:
    name: str
    side: str  # USER or ITEM
    values: torch.Tensor  # [n_users or n_items, d_llm], row = RecBole internal id, row 0 = padding
    present: torch.Tensor  # bool, rows that carry a feature (all-zero rows are "no record")


def _side_of(field: str, config) -> str | None:
    users = {config["USER_ID_FIELD"], *(config["alias_of_user_id"] or [])}
    items = {config["ITEM_ID_FIELD"], *(config["alias_of_item_id"] or [])}
    return USER if field in users else ITEM if field in items else None


def load_side_features(config, dataset, names) -> list[SideFeature]:
    """Read the configured preloaded-weight matrices, aligned with RecBole's internal ids."""
    preload = config["preload_weight"] or {}
    features = []
    fields = config["llmaug_feature_fields"] or {}
    for name in names:
        field = fields[name]
        side = _side_of(field, config)
        if field not in preload or side is None:
            raise DatasetError(
                f"feature {name!r} needs field {field!r} in the dataset's preload_weight and in "
                f"alias_of_user_id/alias_of_item_id (see docs/FORMAT.md); the dataset config has "
                f"preload_weight={dict(preload)}. Remove {name!r} from llmaug_features to go without it."
            )
        values = torch.as_tensor(np.asarray(dataset.get_preload_weight(field)), dtype=torch.float32)
        expected = dataset.user_num if side == USER else dataset.item_num
        if values.shape[0] != expected:
            raise DatasetError(
                f"feature {name!r} has {values.shape[0]} rows, the dataset has {expected} {side}s"
            )
        present = values.abs().sum(dim=1) > 0
        features.append(SideFeature(name, side, values, present))
    return features


def normalized_adjacency(dataset, device) -> torch.Tensor:
    """D^-1/2 A D^-1/2 of the bipartite training graph, users first, as a torch sparse tensor."""
    n_users, n_items = dataset.user_num, dataset.item_num
    inter = dataset.inter_matrix(form="coo").astype(np.float32)
    inter.data[:] = 1.0
    n = n_users + n_items
    rows = np.concatenate([inter.row, inter.col + n_users])
    cols = np.concatenate([inter.col + n_users, inter.row])
    adj = sp.coo_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, n)).tocsr()
    adj.data[:] = 1.0  # duplicate interactions count once
    degree = np.asarray(adj.sum(axis=1)).ravel() + 1e-7
    scale = sp.diags(np.power(degree, -0.5))
    norm = (scale @ adj @ scale).tocoo()
    index = torch.from_numpy(np.vstack([norm.row, norm.col]).astype(np.int64))
    values = torch.from_numpy(norm.data.astype(np.float32))
    return torch.sparse_coo_tensor(index, values, (n, n)).coalesce().to(device)


class FeatureEncoder(nn.Module):
    """Linear + dropout per feature, shared propagation, per-feature L2 normalisation, sum."""

    def __init__(self, features, n_users, n_items, dim, dropout, layers, adjacency):
        super().__init__()
        self.names = [f.name for f in features]
        self.sides = {f.name: f.side for f in features}
        self.n_users, self.n_items, self.dim, self.layers = n_users, n_items, dim, layers
        for f in features:
            # Not persistent: the features come from the dataset, not from the checkpoint.
            self.register_buffer(f"stored_{f.name}", f.values.clone(), persistent=False)
            self.register_buffer(f"present_{f.name}", f.present.clone(), persistent=False)
        self.projections = nn.ModuleDict(
            {f.name: nn.Linear(f.values.shape[1], dim) for f in features}
        )
        self.dropout = nn.Dropout(dropout)
        self.adjacency = adjacency  # a sparse tensor: not a buffer (DDP cannot broadcast sparse buffers)

    def stored(self, name: str) -> torch.Tensor:
        return getattr(self, f"stored_{name}")

    def present(self, name: str) -> torch.Tensor:
        return getattr(self, f"present_{name}")

    def forward(self, inputs: dict[str, torch.Tensor]):
        """Return (user_term [n_users, dim], item_term [n_items, dim], hidden).

        ``inputs`` maps each feature name to its (possibly masked) [n_side, d_llm] matrix.
        ``hidden[name]`` is the propagated, unnormalised encoding of that feature's own side,
        which the MAE decodes.
        """
        blocks = {USER: [], ITEM: []}
        for name in self.names:
            projected = self.projections[name](inputs[name])
            projected = self.dropout(projected) * self.present(name).unsqueeze(1).to(projected.dtype)
            own, other = (USER, ITEM) if self.sides[name] == USER else (ITEM, USER)
            blocks[own].append(projected)
            n_other = self.n_users if other == USER else self.n_items
            blocks[other].append(projected.new_zeros(n_other, self.dim))
        nodes = torch.cat([torch.cat(blocks[USER], dim=1), torch.cat(blocks[ITEM], dim=1)], dim=0)
        nodes = self._propagate(nodes)
        per_feature = torch.split(nodes, self.dim, dim=1)
        term = sum(F.normalize(h, dim=1) for h in per_feature)
        hidden = {}
        for name, h in zip(self.names, per_feature):
            hidden[name] = h[: self.n_users] if self.sides[name] == USER else h[self.n_users :]
        user_term, item_term = torch.split(term, [self.n_users, self.n_items], dim=0)
        return user_term, item_term, hidden

    def _propagate(self, nodes: torch.Tensor) -> torch.Tensor:
        if self.layers == 0:
            return nodes
        if self.adjacency.device != nodes.device:
            self.adjacency = self.adjacency.to(nodes.device)
        layer, total = nodes, nodes
        for _ in range(self.layers):
            layer = torch.sparse.mm(self.adjacency, layer)
            total = total + layer
        return total / (self.layers + 1)
