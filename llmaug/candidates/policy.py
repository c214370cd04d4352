"""What ``candidate_model: auto`` trains, chosen by the size of the training split.

RecBole's LightGCN propagates the whole graph for every batch, so an epoch costs batches x edges
and grows with the square of the data: 16 s for ten epochs on ml-100k, over 30 minutes for *one*
epoch at 100k users / 2.4 M interactions. BPR's epoch grows linearly; with a few dozen batches an
epoch and a learning rate to match, it ranks at least as well as LightGCN on ml-100k (held-out
items among the candidates: docs/results/scale/). So small data keeps the paper's LightGCN, and
large data gets BPR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

AUTO = "auto"
LIGHTGCN_LIMIT = 250_000  # training interactions up to which `auto` keeps LightGCN (10 epochs: ~2 min)
LARGE_BATCH = 65_536
LARGE_LEARNING_RATE = 0.01  # Adam at batch 65,536 with RecBole's 0.001 barely moves in 10 epochs


@dataclass(frozen=True)
class BaseModelPlan:
    model: str
    epochs: int
    config: dict[str, Any] = field(default_factory=dict)


def plan_base_model(model: str, epochs: int, config: dict[str, Any], train_interactions: int) -> BaseModelPlan:
    """The base model to train; keys the user set in ``candidate_config`` always win."""
    if model != AUTO:
        return BaseModelPlan(model, epochs, dict(config))
    if train_interactions <= LIGHTGCN_LIMIT:
        return BaseModelPlan("LightGCN", epochs, dict(config))
    return large_data_plan(epochs, config, train_interactions)


def large_data_plan(epochs: int, config: dict[str, Any], train_interactions: int) -> BaseModelPlan:
    """BPR with ~32-64 batches an epoch and a learning rate to match (public so that its quality
    can be measured on a small dataset too: benchmarks/bench_candidates.py)."""
    # ~32 batches an epoch up to 65,536; beyond that ~64, because every Adam step updates the whole
    # embedding table (1M users: 1.5 batches/s at 65,536, where 100k users train at 9 batches/s).
    batch = max(min(LARGE_BATCH, _power_of_two_below(train_interactions // 32)), _power_of_two_below(train_interactions // 64))
    return BaseModelPlan("BPR", epochs, {"train_batch_size": batch, "learning_rate": LARGE_LEARNING_RATE, **config})


def _power_of_two_below(n: int) -> int:
    return 1 << max(11, n.bit_length() - 1)
