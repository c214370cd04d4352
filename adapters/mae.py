"""Masked feature autoencoder (LLMRec Eqs. 8-9), done the way the paper describes it.

Each step picks a random subset of the nodes that carry an augmented feature, replaces their
feature with the mask token, encodes them with the same projection and graph propagation the
model uses (so a masked node sees its neighbours' unmasked features), decodes back to d_LLM and
scores L_FR = mean (1 - cos)^gamma against the stored feature.

Departures from the reference code, on purpose: the decoder and token are submodules of the
model, so RecBole's optimizer (built from ``model.parameters()``) steps them; the decoder's
LeakyReLU has slope 0.2 (the reference used 1.0, an identity); masking builds new tensors and
never writes into the stored features; nothing is masked outside training.

Where the masked features go is a knob (``llmaug_mask_in_forward``). llmaug's default keeps them
inside L_FR: a masked node is encoded with its own feature replaced by the token and its
neighbours' left as they are, and the representations the model's own loss sees stay unmasked.
The paper's reading (§3.3.2: masking "is to reduce the model's sensitivity to features"; the
reference masks in the forward pass whose representations BPR scores) masks the step's nodes
before propagation, so the model's loss and L_FR both see the masked graph. Propagation is
linear, so that is the stored projection plus the propagated change at the masked rows:
mean_l Â^l (ΔF W), a sparse product over the graph per step rather than a re-propagation of
every feature.

Speed: features that share an encoder group and a d_LLM are masked, encoded and decoded together
with batched matmuls, padded to the longest feature; each masks a fixed share of its rows per
step (a uniform random subset of that size), so the padding is known up front.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .features import FeatureEncoder, linear_init, self_weight
from .losses import reconstruction_errors

NOT_PRESENT = 2.0  # a sampling score above every torch.rand draw: never among the smallest


def _with_ones(x: torch.Tensor) -> torch.Tensor:
    """Append a constant-1 column, so the last row of a stacked weight acts as its bias."""
    return F.pad(x, (0, 1), value=1.0)


class _MaskedGroup(nn.Module):
    """The masked features of one encoder group and one d_LLM, stacked along a leading axis."""

    def __init__(self, features, encoder: FeatureEncoder, node_self_weight: np.ndarray, mask_ratio, learnable):
        super().__init__()
        names = [f.name for f in features]
        rows, width = max(f.values.shape[0] for f in features), features[0].values.shape[1]
        self.group = encoder.slot[names[0]][0]
        stored = torch.zeros(len(features), rows, width)
        present = torch.zeros(len(features), rows, dtype=torch.bool)
        own_weight = torch.zeros(len(features), rows)
        for m, f in enumerate(features):
            n, offset = f.values.shape[0], encoder.offset(f.name)
            stored[m, :n], present[m, :n] = f.values, f.present
            own_weight[m, :n] = torch.from_numpy(node_self_weight[offset:offset + n]).float()
        bases = [encoder.basis(name) for name in names]
        basis = torch.stack(bases) if bases[0] is not None else None  # same d_LLM: all or none reduced
        masked = [max(1, round(mask_ratio * int(p.sum()))) if p.any() else 0 for p in present]
        real = torch.arange(max(masked))[None, :] < torch.tensor(masked)[:, None]  # [M, k]: a row, not padding
        mean = (stored * present.unsqueeze(2)).sum(dim=1) / present.sum(dim=1, keepdim=True).clamp_min(1)
        # Buffers derive from the dataset, not from training: not persistent.
        buffers = {
            "stored": stored, "present": present, "own_weight": own_weight,
            "reduced": stored @ basis if basis is not None else stored,
            "positions": torch.tensor([encoder.slot[name][1] for name in names]),
            "offsets": torch.tensor([encoder.offset(name) for name in names]).unsqueeze(1),
            "feature": torch.arange(len(features)).unsqueeze(1),
            "real": real.float(),
        }
        for key, value in buffers.items():
            self.register_buffer(key, value, persistent=False)
        self.register_buffer("basis", basis, persistent=False)
        self.masked, self.count = max(masked), sum(masked)
        if learnable:
            self.token = nn.Parameter(mean)
        else:
            self.register_buffer("token", mean)
        dim = encoder.dim
        self.hidden = linear_init((len(features), dim + 1, dim), dim)
        self.output = linear_init((len(features), dim + 1, width), dim)

    def choose(self) -> torch.Tensor:
        """[M, k] own-side rows to mask: row m starts with a uniform random sample, without
        replacement, of feature m's present rows, of its fixed size (the rest is padding)."""
        scores = torch.rand(self.present.shape, device=self.present.device).masked_fill(~self.present, NOT_PRESENT)
        return scores.topk(self.masked, dim=1, largest=False).indices  # sorted: the real ones come first

    def token_change(self, rows: torch.Tensor) -> torch.Tensor:
        """[M, k, width]: token - F_v at each of ``rows`` (in the projection's input space), 0 on padding."""
        token = self.token if self.basis is None else torch.bmm(self.token.unsqueeze(1), self.basis).squeeze(1)
        return (token.unsqueeze(1) - self.reduced[self.feature, rows]) * self.real.unsqueeze(2)

    def node_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """[M, k] node indices (users first, then items) of own-side ``rows``."""
        return rows + self.offsets

    def encode_masked(self, encoder: FeatureEncoder, rows: torch.Tensor) -> torch.Tensor:
        """[M, k, dim]: what the encoder makes of each of ``rows`` with its own feature replaced by
        the mask token and its neighbours' features left as they are (before normalisation)."""
        # Propagated input with the node's own share replaced by the token, neighbours unmasked:
        # P_v + c_v (token - F_v), on the encoder's stacked weights (bias column included).
        own = self.own_weight[self.feature, rows].unsqueeze(2) * self.token_change(rows)
        inputs = encoder.propagated(self.group)[self.positions.unsqueeze(1), self.node_rows(rows)] + F.pad(own, (0, 1))
        return torch.bmm(inputs, self.weights(encoder))

    def weights(self, encoder: FeatureEncoder) -> torch.Tensor:
        """[M, width + 1, dim]: the encoder's projection of each masked feature (bias row last)."""
        return encoder.weights[self.group].index_select(0, self.positions)

    def loss(self, encoder: FeatureEncoder, gamma: float, rows: torch.Tensor | None = None,
             projected: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, int]:
        """(L_FR over this group's masked rows, how many rows were masked): a fresh mask, or the
        step's ``rows`` read from the masked forward's ``projected``."""
        if projected is None:
            rows = self.choose()
            hidden = self.encode_masked(encoder, rows)
        else:
            hidden = projected[self.group][self.positions.unsqueeze(1), self.node_rows(rows)]
        decoded = torch.bmm(_with_ones(F.leaky_relu(torch.bmm(_with_ones(hidden), self.hidden), 0.2)), self.output)
        errors = reconstruction_errors(decoded, self.stored[self.feature, rows], gamma)
        return (errors * self.real).sum() / self.count, self.count  # padding rows weigh 0


def _sparse(adjacency) -> torch.Tensor:
    coo = adjacency.tocoo()
    indices = torch.from_numpy(np.vstack([coo.row, coo.col])).long()
    return torch.sparse_coo_tensor(indices, torch.from_numpy(coo.data).float(), coo.shape, check_invariants=True).coalesce()


class MaskedFeatureAutoencoder(nn.Module):
    def __init__(self, features, encoder: FeatureEncoder, adjacency, layers: int, mask_ratio: float,
                 gamma: float, mask_token: str = "learnable", in_forward: bool = False):
        super().__init__()
        self.gamma, self.layers = gamma, layers
        nodes = encoder.n_users + encoder.n_items
        if in_forward and layers:
            self.register_buffer("adjacency", _sparse(adjacency), persistent=False)
        self.step: tuple[list, list[torch.Tensor]] | None = None  # (rows per group, projection) of the step's masked forward
        weights = self_weight(adjacency, layers) if layers else np.ones(nodes)
        together: dict[tuple[int, int], list] = {}
        for f in features:
            together.setdefault((encoder.slot[f.name][0], f.values.shape[1]), []).append(f)
        self.groups = nn.ModuleList(
            _MaskedGroup(members, encoder, weights, mask_ratio, mask_token == "learnable")
            for members in together.values()
        )

    def masked_projection(self, encoder: FeatureEncoder) -> list[torch.Tensor]:
        """The encoder's ``projected()`` with a fresh mask applied before propagation: every masked
        node's feature is the token, in its own representation and in what its neighbours receive.
        Remembered as the step's, so L_FR reads the same mask."""
        projected = encoder.projected()
        rows = [group.choose() if group.masked else None for group in self.groups]
        for group, chosen in zip(self.groups, rows):
            if chosen is None:
                continue
            change = torch.bmm(group.token_change(chosen), group.weights(encoder)[:, :-1])  # [M, k, dim]; the bias is unchanged
            at_nodes = change.new_zeros(len(group.positions), projected[group.group].shape[1], change.shape[2])
            index = group.node_rows(chosen).unsqueeze(2).expand_as(change)
            projected[group.group] = projected[group.group].index_add(
                0, group.positions, self._propagate(at_nodes.scatter_add(1, index, change))
            )
        self.step = (rows, projected)
        return projected

    def _propagate(self, x: torch.Tensor) -> torch.Tensor:
        """mean over l = 0..layers of Â^l x, for x [M, n_nodes, dim]."""
        if not self.layers:
            return x
        m, n, dim = x.shape
        layer = x.permute(1, 0, 2).reshape(n, m * dim)
        total = layer
        for _ in range(self.layers):
            layer = torch.sparse.mm(self.adjacency, layer)
            total = total + layer
        return (total / (self.layers + 1)).reshape(n, m, dim).permute(1, 0, 2)

    def loss(self, encoder: FeatureEncoder) -> torch.Tensor | None:
        """L_FR over all masked nodes of all masked features: the step's mask where the forward
        pass drew one, else a fresh one."""
        rows, projected = self.step if self.step is not None else ([None] * len(self.groups), None)
        parts = [group.loss(encoder, self.gamma, chosen, projected)
                 for group, chosen in zip(self.groups, rows) if group.masked]
        if not parts:
            return None
        count = sum(n for _, n in parts)
        return sum(loss * n for loss, n in parts) / count
