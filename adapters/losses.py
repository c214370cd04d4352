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


def pruned_mean(losses: torch.Tensor, prune_ratio: float) -> torch.Tensor:
    """Mean of the smallest (1 - w4) fraction of per-triplet losses (Eq. 7 as written).

    The largest losses are the likely noise (an LLM pseudo-label the model confidently disagrees
    with) and are dropped. The reference code sorts log-sigmoid scores ascending and keeps the
    head, which keeps the largest losses instead: the opposite of the paper.
    """
    n = losses.numel()
    keep = kept_count(n, prune_ratio)
    if keep >= n:
        return losses.mean()
    kept = torch.topk(losses, keep, largest=False, sorted=False).values
    return kept.mean()


def pruned_mean_of_part(losses: torch.Tensor, start: int, prune_ratio: float) -> torch.Tensor:
    """Mean over ``losses[:start]`` (all kept) and the smallest (1 - w4) share of ``losses[start:]``.

    Eq. 7 restricted to the augmented triplets: only the LLM's pseudo-labels are candidates for
    noise; the dataset's own interactions are always kept.
    """
    head, tail = losses[:start], losses[start:]
    if tail.numel() == 0:
        return head.mean()
    keep = kept_count(tail.numel(), prune_ratio)
    kept = torch.topk(tail, keep, largest=False, sorted=False).values if keep < tail.numel() else tail
    return (head.sum() + kept.sum()) / (head.numel() + kept.numel())


def reconstruction_errors(decoded: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    """(1 - cos(decoded, target))^gamma per row (over the last axis): Eq. 9 before its mean."""
    cos = F.cosine_similarity(decoded, target, dim=-1)
    return (1.0 - cos).clamp_min(0.0).pow(gamma)
