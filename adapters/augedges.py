"""The LLM-made BPR triplets E_A (``<name>.augedge``), mapped to RecBole's internal ids."""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd
import torch

from llmaug.errors import DatasetError

log = logging.getLogger(__name__)

COLUMNS = ("user_id:token", "pos_item_id:token", "neg_item_id:token")


def augedge_path(config, path: str | None = None) -> str:
    return path or os.path.join(config["data_path"], f"{config['dataset']}.augedge")


def _to_ids(dataset, field: str, tokens: pd.Series) -> np.ndarray:
    """Internal ids, or -1 for tokens RecBole does not know (e.g. filtered-out users)."""
    known = dataset.field2token_id[field]
    return tokens.map(lambda t: known.get(t, -1)).to_numpy(dtype=np.int64)


def load_augmented_edges(config, dataset, path: str | None = None) -> torch.Tensor:
    """A [n, 3] LongTensor of (user, pos_item, neg_item) internal ids.

    Rows naming an unknown user or item, or with pos == neg, carry no usable signal and are
    skipped (and counted in the log).
    """
    path = augedge_path(config, path)
    if not os.path.isfile(path):
        raise DatasetError(
            f"augmented edges file {path} not found; set llmaug_aug_edge_ratio: 0 to train "
            f"without augmented edges, or llmaug_augedge_file to point at it"
        )
    table = pd.read_csv(path, sep=config["field_separator"] or "\t", dtype=str)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DatasetError(f"{path}: missing columns {missing} (expected {list(COLUMNS)})")
    users = _to_ids(dataset, dataset.uid_field, table[COLUMNS[0]])
    pos = _to_ids(dataset, dataset.iid_field, table[COLUMNS[1]])
    neg = _to_ids(dataset, dataset.iid_field, table[COLUMNS[2]])
    keep = (users > 0) & (pos > 0) & (neg > 0) & (pos != neg)
    if (~keep).any():
        log.warning("%s: skipped %d of %d triplets (unknown ids or pos == neg)", path, (~keep).sum(), len(keep))
    edges = np.stack([users[keep], pos[keep], neg[keep]], axis=1)
    return torch.from_numpy(edges)


def sample_edges(edges: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` triplets drawn uniformly with replacement (RecBole's seed drives torch's RNG)."""
    if count <= 0 or edges.shape[0] == 0:
        return edges[:0]
    index = torch.randint(edges.shape[0], (count,), device=edges.device)
    return edges[index]
