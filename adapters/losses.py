"""Pure loss functions of the adapter: per-triplet BPR, Eq. 7 pruning, Eq. 9 reconstruction error."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_per_triplet(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """-log sigma(y_ui+ - y_ui-) for every triplet, unreduced."""
    return -F.logsigmoid(pos_scores - neg_scores)


def kept_count(n: int, prune_ratio: float) -> int:
    """N = (1 - w4) * |batch|, rounded so that floor(w4 * n) triplets are dropped (at least one kept)."""
    return max(1, n - int(prune_ratio * n))


def pruned_sum(losses: torch.Tensor, prune_ratio: float) -> torch.Tensor:
    """Sum of the smallest (1 - w4) fraction of per-triplet losses (Eq. 7 on the LLM's triplets).

    The largest losses are the likely noise (an LLM pseudo-label the model confidently disagrees
    with) and are dropped. The reference code sorts log-sigmoid scores ascending and keeps the
    head, which keeps the largest losses instead: the opposite of the paper. Only the LLM's
    triplets are candidates: the dataset's own interactions stay in the base model's own loss.
    """
    n = losses.numel()
    keep = kept_count(n, prune_ratio)
    if keep >= n:
        return losses.sum()
    return torch.topk(losses, keep, largest=False, sorted=False).values.sum()


def reconstruction_errors(decoded: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    """(1 - cos(decoded, target))^gamma per row (over the last axis): Eq. 9 before its mean."""
    cos = F.cosine_similarity(decoded, target, dim=-1)
    return (1.0 - cos).clamp_min(0.0).pow(gamma)
