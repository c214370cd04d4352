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

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn

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


def load_side_features(config, dataset, names, fields: dict[str, str]) -> list[SideFeature]:
    """Read the preloaded-weight matrices of ``names`` (``fields``: name -> id field), aligned with
    RecBole's internal ids."""
    preload = config["preload_weight"] or {}
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


def principal_directions(x: np.ndarray, rank: int) -> np.ndarray:
    """[d, rank]: the top right-singular vectors of x [n, d], as the top eigenvectors of x^T x.

    An SVD of x took 0.7 s for ml-100k's 2,626 x 384 feature (12 s beside other work), and every
    adapted model builds one per feature; the d x d eigenproblem takes a fifth of that. In float64
    the directions agree with the SVD's to 1e-12 (up to sign) while the spectrum is not flat.
    """
    _, vectors = np.linalg.eigh(x.T @ x)  # ascending eigenvalues
    return np.ascontiguousarray(vectors[:, ::-1][:, :rank])


def linear_init(shape: tuple[int, ...], fan_in: int) -> nn.Parameter:
    """nn.Linear's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), for stacked weights."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))


def unit_rows(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """x / max(||x||_2, eps) along the last axis, as F.normalize, in cheaper ops (-40% fwd+bwd on CPU)."""
    return x * x.pow(2).sum(dim=-1, keepdim=True).clamp_min(eps * eps).rsqrt()


def feature_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout with the keep mask drawn as 16 random bits per element.

    torch's CPU dropout draws one Bernoulli sample at a time, about half of what the whole
    feature term costs per training step; one int64 draw gives four 16-bit lanes, so the mask
    costs a quarter of the generator calls. p is thereby rounded to a multiple of 1/65536.
    """
    if not training or p == 0:
        return x
    bits = torch.randint(-(2**63), 2**63 - 1, ((x.numel() + 3) // 4,), dtype=torch.int64, device=x.device)
    lanes = bits.view(torch.int16)[: x.numel()].view(x.shape)
    return x * (lanes >= round(p * 65536) - 32768) * (1.0 / (1.0 - p))


class FeatureEncoder(nn.Module):
    """Per-feature Linear, propagation (precomputed), L2 normalisation, sum, dropout.

    Features of the same input width share one stacked parameter ``weights[g]`` of shape
    [K, width + 1, dim] (the last row is the bias) and are projected with one batched matmul:
    a CPU training step pays per operator call and per optimiser parameter, and K small calls
    cost more than one. The bias rides along as an extra input column holding mean_l Â^l 1.
    """

    def __init__(self, features, n_users, n_items, dim, dropout, layers, adjacency, rank=0):
        super().__init__()
        self.names = [f.name for f in features]
        self.sides = {f.name: f.side for f in features}
        self.n_users, self.n_items, self.dim = n_users, n_items, dim
        n = n_users + n_items
        self.slot: dict[str, tuple[int, int]] = {}  # name -> (group, position in group)
        groups: dict[int, list[torch.Tensor]] = {}  # input width -> propagated inputs
        for f in features:
            own = slice(self.offset(f.name), self.offset(f.name) + f.values.shape[0])
            inputs = np.zeros((n, f.values.shape[1] + 1), dtype=np.float64)
            inputs[own, :-1] = (f.values * f.present.unsqueeze(1)).numpy()
            inputs[own, -1] = f.present.numpy()
            spread = layer_mean(adjacency, inputs, layers)
            if 0 < rank < f.values.shape[1]:
                # Keep the top principal directions of the (frozen) propagated features: the
                # projection then costs rank/d_LLM of the full one per step.
                basis = principal_directions(spread[:, :-1], rank)
                spread = np.concatenate([spread[:, :-1] @ basis, spread[:, -1:]], axis=1)
                self.register_buffer(f"basis_{f.name}", torch.from_numpy(basis).float(), persistent=False)
            width = spread.shape[1] - 1
            group = list(groups).index(width) if width in groups else len(groups)
            members = groups.setdefault(width, [])
            self.slot[f.name] = (group, len(members))
            members.append(torch.from_numpy(spread).float())
        # Buffers, not persistent: they derive from the dataset, not from training.
        for group, members in enumerate(groups.values()):
            self.register_buffer(f"propagated_{group}", torch.stack(members), persistent=False)
        self.weights = nn.ParameterList(
            [linear_init((len(members), width + 1, dim), width) for width, members in groups.items()]
        )
        self.dropout = dropout

    def offset(self, name: str) -> int:
        """Node index of the first own-side row of feature ``name`` (users first, then items)."""
        return 0 if self.sides[name] == USER else self.n_users

    def propagated(self, group: int) -> torch.Tensor:
        """[K, n_nodes, width + 1]: mean_l Â^l [F_k, 1] of every feature in ``group``."""
        return getattr(self, f"propagated_{group}")

    def basis(self, name: str) -> torch.Tensor | None:
        """[d_LLM, rank] principal directions the feature is projected from, or None (full width)."""
        return getattr(self, f"basis_{name}", None)

    def input_width(self, name: str) -> int:
        group, _ = self.slot[name]
        return self.weights[group].shape[1] - 1

    def projected(self) -> list[torch.Tensor]:
        """Per group [K, n_nodes, dim]: every feature's propagated input projected, before normalisation."""
        return [torch.bmm(self.propagated(group), weight) for group, weight in enumerate(self.weights)]

    def forward(self, projected: list[torch.Tensor] | None = None):
        """(user_term [n_users, dim], item_term [n_items, dim]): dropout(sum_k f_k / ||f_k||), from
        ``projected`` where given (the MAE's masked projection) or the stored features."""
        term = None
        for f in projected if projected is not None else self.projected():
            f = unit_rows(f).sum(dim=0)
            term = f if term is None else term + f
        # One dropout on the sum rather than one per feature: the same regulariser at a third
        # of the cost (sampling a dropout mask is a visible share of a CPU training step).
        return torch.split(feature_dropout(term, self.dropout, self.training), [self.n_users, self.n_items], dim=0)
