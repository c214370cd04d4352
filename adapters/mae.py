"""Masked feature autoencoder (LLMRec Eqs. 8-9), done the way the paper describes it.

Departures from the reference code, on purpose: the decoder is a submodule of the model, so
RecBole's optimizer (built from ``model.parameters()``) steps it; its LeakyReLU has slope 0.2
(the reference used 1.0, an identity); masking builds a new tensor and never writes into the
stored features; nothing is masked outside training.
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
        tokens = {}
        for f in features:
            present = f.values[f.present]
            tokens[f.name] = present.mean(dim=0) if len(present) else f.values.new_zeros(f.values.shape[1])
        if mask_token == "learnable":
            self.tokens = nn.ParameterDict({n: nn.Parameter(t.clone()) for n, t in tokens.items()})
        else:
            self.tokens = {}
            for n, t in tokens.items():
                self.register_buffer(f"token_{n}", t.clone())
        self.decoders = nn.ModuleDict(
            {
                f.name: nn.Sequential(
                    nn.Linear(dim, dim), nn.LeakyReLU(0.2), nn.Linear(dim, f.values.shape[1])
                )
                for f in features
            }
        )

    def token(self, name: str) -> torch.Tensor:
        return self.tokens[name] if name in self.tokens else getattr(self, f"token_{name}")

    def mask(self, name: str, values: torch.Tensor, present: torch.Tensor):
        """A masked copy of ``values`` and the indices of the masked rows (present rows only)."""
        chosen = (torch.rand(values.shape[0], device=values.device) < self.mask_ratio) & present
        masked = torch.where(chosen.unsqueeze(1), self.token(name).to(values.dtype), values)
        return masked, chosen.nonzero(as_tuple=True)[0]

    def loss(self, hidden: dict, masked_rows: dict, targets: dict) -> torch.Tensor:
        """Mean (1 - cos)^gamma over all masked nodes of all masked features."""
        decoded, wanted = [], []
        for name, rows in masked_rows.items():
            decoded.append(self.decoders[name](hidden[name][rows]))
            wanted.append(targets[name][rows])
        if not decoded:
            return next(self.parameters()).sum() * 0.0
        per_node = [
            reconstruction_loss(d, w, self.gamma) * d.shape[0] for d, w in zip(decoded, wanted)
        ]
        count = sum(d.shape[0] for d in decoded)
        return sum(per_node) / max(count, 1)
