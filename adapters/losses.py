"""Pure loss functions of the adapter: per-triplet BPR, noise pruning (LLMRec §3.3, Eq. 7), Eq. 9
reconstruction error."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Which per-triplet losses pruning drops.
LARGEST, SMALLEST = "largest_losses", "smallest_losses"


def bpr_per_triplet(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """-log sigma(y_ui+ - y_ui-) for every triplet, unreduced."""
    return -F.logsigmoid(pos_scores - neg_scores)


def kept_count(n: int, prune_ratio: float) -> int:
    """N = (1 - w4) * n, rounded so that floor(w4 * n) triplets are dropped (at least one kept)."""
    return max(1, n - int(prune_ratio * n))


def pruned(losses: torch.Tensor, prune_ratio: float, drops: str = LARGEST) -> torch.Tensor:
    """The per-triplet losses that pruning keeps: all but the floor(w4 * n) ``drops`` ones.

    Eq. 7 as published is -SortAscend(log sigma(y+ - y-))[0:N]: log sigma ascending puts the most
    negative values, the *largest* losses, first, and the first N are kept; §3.3 says the same
    ("the largest values before minus are discarded"), and the reference code's ``prune_loss``
    (main.py) does exactly this. That is ``drops=SMALLEST``. llmaug's default, ``drops=LARGEST``,
    is its own choice: the section's motivation (a confidently wrong pseudo-label has a large
    loss and gradient) argues for dropping those, as noise-robust training usually does.
    """
    n = losses.numel()
    keep = kept_count(n, prune_ratio)
    if keep >= n:
        return losses
    return torch.topk(losses, keep, largest=drops == SMALLEST, sorted=False).values


def reconstruction_errors(decoded: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    """(1 - cos(decoded, target))^gamma per row (over the last axis): Eq. 9 before its mean."""
    cos = F.cosine_similarity(decoded, target, dim=-1)
    return (1.0 - cos).clamp_min(0.0).pow(gamma)
