"""Each user's training sequence, as a sequential model reads it, for scoring the LLM's triplets.

A sequential recommender has no user representation of its own: it encodes a user as the
sequence of items the user interacted with. The LLM's triplet (u, i+, i-) is therefore scored on
u's whole training sequence -- the one that predicts u's validation item -- rebuilt here from
RecBole's training rows (each target with the items before it): the latest row of a user, its
list and its target, the latest ``width`` items of them.
"""

from __future__ import annotations

import torch


def training_sequences(dataset, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """([n_users, width] item ids, right-padded with 0; [n_users] lengths, 0 for a user with no row)."""
    feat = dataset.inter_feat
    users = feat[dataset.uid_field].long()
    targets = feat[dataset.iid_field].long()
    lists = feat[dataset.item_id_list_field].long()[:, :width]
    lengths = feat[dataset.item_list_length_field].long().clamp(max=width)
    rows = torch.arange(len(users))
    # A user's latest row has the longest list; among lists cut at the width, the last row.
    key = lengths * len(users) + rows
    latest = torch.full((dataset.user_num,), -1, dtype=torch.long).scatter_reduce(0, users, key, "amax")
    has = latest >= 0
    picked = latest[has] % len(users)

    history = torch.zeros(len(picked), width + 1, dtype=torch.long)
    history[:, : lists.shape[1]] = lists[picked]
    n = lengths[picked]
    history[torch.arange(len(picked)), n] = targets[picked]  # the target after its list
    full = n + 1 > width  # drop the oldest item of a list that had no room left
    history[full, :-1] = history[full, 1:]
    sequences = torch.zeros(dataset.user_num, width, dtype=torch.long)
    sequences[has] = history[:, :width]
    counts = torch.zeros(dataset.user_num, dtype=torch.long)
    counts[has] = (n + 1).clamp(max=width)
    return sequences, counts
