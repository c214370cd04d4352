"""Masked feature autoencoder (LLMRec Eqs. 8-9), done the way the paper describes it.

Each step picks a random subset of the nodes that carry an augmented feature, replaces their
feature with the mask token, encodes them with the same projection and graph propagation the
model uses (so a masked node sees its neighbours' unmasked features), decodes back to d_LLM and
scores L_FR = mean (1 - cos)^gamma against the stored feature.

Departures from the reference code, on purpose: the decoder and token are submodules of the
model, so RecBole's optimizer (built from ``model.parameters()``) steps them; the decoder's
LeakyReLU has slope 0.2 (the reference used 1.0, an identity); masking builds new tensors and
never writes into the stored features; nothing is masked outside training.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .losses import reconstruction_loss


class MaskedFeatureAutoencoder(nn.Module):
    def __init__(self, features, dim, mask_ratio, gamma, mask_token="learnable"):
        super().__init__()
        self.names = [f.name for f in features]
        self.mask_ratio, self.gamma = mask_ratio, gamma
        self.learnable = mask_token == "learnable"
        self.tokens = nn.ParameterDict()
        for f in features:
            present = f.values[f.present]
            mean = present.mean(dim=0) if len(present) else f.values.new_zeros(f.values.shape[1])
            if self.learnable:
                self.tokens[f.name] = nn.Parameter(mean.clone())
            else:
                self.register_buffer(f"token_{f.name}", mean.clone())
        self.decoders = nn.ModuleDict(
            {
                f.name: nn.Sequential(
                    nn.Linear(dim, dim), nn.LeakyReLU(0.2), nn.Linear(dim, f.values.shape[1])
                )
                for f in features
            }
        )

    def token(self, name: str) -> torch.Tensor:
        return self.tokens[name] if self.learnable else getattr(self, f"token_{name}")

    def choose(self, present: torch.Tensor) -> torch.Tensor:
        """Indices of a random ``mask_ratio`` share of the rows that carry a feature."""
        chosen = (torch.rand(present.shape[0], device=present.device) < self.mask_ratio) & present
        return chosen.nonzero(as_tuple=True)[0]

    def loss(self, encoder) -> torch.Tensor:
        """L_FR over all masked nodes of all masked features (one fresh mask per call)."""
        total, count = None, 0
        for name in self.names:
            rows = self.choose(encoder.buffer("present", name))
            if rows.numel() == 0:
                continue
            hidden = encoder.encode_masked(name, rows, self.token(name))
            decoded = self.decoders[name](hidden)
            part = reconstruction_loss(decoded, encoder.buffer("stored", name)[rows], self.gamma)
            part = part * rows.numel()
            total = part if total is None else total + part
            count += rows.numel()
        if total is None:
            return None
        return total / count
