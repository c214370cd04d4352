"""Side features: load them from a RecBole dataset, project, propagate, incorporate (LLMRec §3.3).

    f_k   = mean_l Â^l Linear_k(F_k)                     one matrix per feature k, over all nodes
    term  = dropout(sum_k f_k / ||f_k||_2)               added, scaled by w1, to the base model's
                                                         final user and item representations

A user feature (e.g. the LLM user profile) fills the user rows of its node matrix and an item
feature the item rows; LightGCN-style propagation over the training graph (Â = D^-1/2 A D^-1/2,
layer mean as in LightGCN) gives the other side collaborative context -- a user gets the mean
attributes of the items it interacted with.

Propagation is linear and the stored features are frozen, so mean_l Â^l (F W + 1 b) is computed
as (mean_l Â^l F) W + (mean_l Â^l 1) b: the graph part is done once at construction and a
training step only pays for the projection. (Dropout therefore acts after propagation.)
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
    fields = config["llmaug_feature_fields"] or {}
    features = []
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


def normalized_adjacency(dataset) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 of the bipartite training graph, users first (node = user id or n_users + item id)."""
    n_users, n_items = dataset.user_num, dataset.item_num
    inter = dataset.inter_matrix(form="coo")
    n = n_users + n_items
    rows = np.concatenate([inter.row, inter.col + n_users])
    cols = np.concatenate([inter.col + n_users, inter.row])
    adj = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    adj.data[:] = 1.0  # a repeated interaction is one edge
    degree = np.asarray(adj.sum(axis=1)).ravel() + 1e-7
    scale = sp.diags(np.power(degree, -0.5))
    return (scale @ adj @ scale).tocsr()


def layer_mean(adjacency: sp.csr_matrix | None, nodes: np.ndarray, layers: int) -> np.ndarray:
    """mean over l = 0..layers of Â^l @ nodes (LightGCN's layer combination)."""
    total, layer = nodes.copy(), nodes
    for _ in range(layers):
        layer = adjacency @ layer
        total += layer
    return total / (layers + 1)


def self_weight(adjacency: sp.csr_matrix, layers: int) -> np.ndarray:
    """c_v = mean over l of (Â^l)_vv: the share of node v's own input in its propagated feature.

    (Â^l)_vv = sum_j (Â^a)_vj (Â^b)_jv with a + b = l, and Â is symmetric, so only powers up to
    ceil(l / 2) are formed (none beyond Â itself for the default two layers).
    """
    powers = {0: sp.identity(adjacency.shape[0], format="csr"), 1: adjacency}

    def power(k: int) -> sp.csr_matrix:
        if k not in powers:
            powers[k] = (power(k - 1) @ adjacency).tocsr()
        return powers[k]

    total = np.ones(adjacency.shape[0])
    for l in range(1, layers + 1):
        total += np.asarray(power(l // 2).multiply(power(l - l // 2)).sum(axis=1)).ravel()
    return total / (layers + 1)


class FeatureEncoder(nn.Module):
    """Per-feature Linear, propagation (precomputed), L2 normalisation, sum, dropout.

    Features of the same input width are projected together with one batched matmul: a CPU
    training step pays per operator call, and three small calls cost more than one.
    """

    def __init__(self, features, n_users, n_items, dim, dropout, layers, adjacency, rank=0):
        super().__init__()
        self.names = [f.name for f in features]
        self.sides = {f.name: f.side for f in features}
        self.n_users, self.n_items, self.dim, self.layers = n_users, n_items, dim, layers
        n = n_users + n_items
        weights = self_weight(adjacency, layers) if layers else np.ones(n)
        self.groups: list[list[str]] = []  # names sharing one input width, projected together
        self.slot: dict[str, tuple[int, int]] = {}  # name -> (group, position in group)
        widths: dict[int, int] = {}
        propagated: dict[int, list[torch.Tensor]] = {}
        bias_weight: dict[int, list[torch.Tensor]] = {}
        reduced: dict[str, torch.Tensor] = {}
        for f in features:
            offset = 0 if f.side == USER else n_users
            own = slice(offset, offset + f.values.shape[0])
            inputs = np.zeros((n, f.values.shape[1]), dtype=np.float64)
            inputs[own] = (f.values * f.present.unsqueeze(1)).numpy()
            ones = np.zeros((n, 1))
            ones[own] = f.present.numpy()[:, None]
            spread = layer_mean(adjacency, inputs, layers)
            basis = np.eye(f.values.shape[1])
            if 0 < rank < f.values.shape[1]:
                # Keep the top right-singular directions of the (frozen) propagated features:
                # the projection then costs rank/d_LLM of the full one per step.
                basis = np.linalg.svd(spread, full_matrices=False)[2][:rank].T
                spread = spread @ basis
            reduced[f.name] = torch.from_numpy(f.values.numpy().astype(np.float64) @ basis).float()
            self.register_buffer(f"basis_{f.name}", torch.from_numpy(basis).float(), persistent=False)
            width = spread.shape[1]
            if width not in widths:
                widths[width] = len(self.groups)
                self.groups.append([])
                propagated[width], bias_weight[width] = [], []
            self.slot[f.name] = (widths[width], len(self.groups[widths[width]]))
            self.groups[widths[width]].append(f.name)
            propagated[width].append(torch.from_numpy(spread).float())
            bias_weight[width].append(torch.from_numpy(layer_mean(adjacency, ones, layers)).float())
            # Buffers, not persistent: they derive from the dataset, not from training.
            self.register_buffer(f"stored_{f.name}", f.values.clone(), persistent=False)
            self.register_buffer(f"reduced_{f.name}", reduced[f.name], persistent=False)
            self.register_buffer(f"present_{f.name}", f.present.clone(), persistent=False)
            self.register_buffer(f"self_weight_{f.name}", torch.from_numpy(weights[own]).float(), persistent=False)
        for width, group in widths.items():
            self.register_buffer(f"propagated_{group}", torch.stack(propagated[width]), persistent=False)
            self.register_buffer(f"bias_weight_{group}", torch.stack(bias_weight[width]), persistent=False)
        self.projections = nn.ModuleDict(
            {f.name: nn.Linear(self.buffer("basis", f.name).shape[1], dim) for f in features}
        )
        self.dropout = nn.Dropout(dropout)

    def buffer(self, kind: str, name: str) -> torch.Tensor:
        if kind in ("propagated", "bias_weight"):
            group, position = self.slot[name]
            return getattr(self, f"{kind}_{group}")[position]
        return getattr(self, f"{kind}_{name}")

    def forward(self):
        """(user_term [n_users, dim], item_term [n_items, dim]): dropout(sum_k f_k / ||f_k||)."""
        term = None
        for group, names in enumerate(self.groups):
            weight = torch.stack([self.projections[n].weight.T for n in names])  # [K, width, dim]
            bias = torch.stack([self.projections[n].bias for n in names]).unsqueeze(1)  # [K, 1, dim]
            f = torch.baddbmm(
                getattr(self, f"bias_weight_{group}") * bias, getattr(self, f"propagated_{group}"), weight
            )
            f = F.normalize(f, dim=2).sum(dim=0)
            term = f if term is None else term + f
        # One dropout on the sum rather than one per feature: the same regulariser at a third
        # of the cost (sampling a dropout mask is a visible share of a CPU training step).
        return torch.split(self.dropout(term), [self.n_users, self.n_items], dim=0)

    def encode_masked(self, name: str, rows: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        """The propagated encoding of ``rows`` (own-side ids) with each one's own input replaced
        by ``token``, its neighbours unmasked: (P_v + c_v (token - F_v)) W + q_v b."""
        offset = 0 if self.sides[name] == USER else self.n_users
        c = self.buffer("self_weight", name)[rows].unsqueeze(1)
        token = token @ self.buffer("basis", name)
        inputs = self.buffer("propagated", name)[rows + offset] + c * (
            token.unsqueeze(0) - self.buffer("reduced", name)[rows]
        )
        linear = self.projections[name]
        return inputs @ linear.weight.T + self.buffer("bias_weight", name)[rows + offset] * linear.bias
