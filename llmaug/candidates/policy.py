"""What ``candidate_model: auto`` trains, chosen by the size of the training split.

RecBole's LightGCN propagates the whole graph for every batch, so an epoch costs batches x edges
and grows with the square of the data: 16 s for ten epochs on ml-100k, over 30 minutes for *one*
epoch at 100k users / 2.4 M interactions. BPR's epoch grows linearly; with a few dozen batches an
epoch and a learning rate to match, it ranks at least as well as LightGCN on ml-100k (held-out
items among the candidates: docs/results/scale/). So small data keeps the paper's LightGCN, and
large data gets BPR, trained sparse: a step costs what its batch looks up, not the whole
embedding table, so batches stay bounded however many users there are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

AUTO = "auto"
LIGHTGCN_LIMIT = 250_000  # training interactions up to which `auto` keeps LightGCN (10 epochs: ~2 min)
LARGE_BATCH = 65_536  # the most rows a batch of the large-data plan holds (~50 MB of tensors in BPR)
LARGE_LEARNING_RATE = 0.01  # Adam at batch 65,536 with RecBole's 0.001 barely moves in 10 epochs


@dataclass(frozen=True)
class BaseModelPlan:
    """``sparse``: the embedding tables get sparse gradients and SparseAdam, which updates the rows
    a batch looked up and no other (RecBole's own training is dense Adam: every step reads and
    writes every row, which at 1M users made each step cost the whole table)."""

    model: str
    epochs: int
    config: dict[str, Any] = field(default_factory=dict)
    sparse: bool = False


def plan_base_model(model: str, epochs: int, config: dict[str, Any], train_interactions: int) -> BaseModelPlan:
    """The base model to train; keys the user set in ``candidate_config`` always win."""
    if model != AUTO:
        return BaseModelPlan(model, epochs, dict(config))
    if train_interactions <= LIGHTGCN_LIMIT:
        return BaseModelPlan("LightGCN", epochs, dict(config))
    return large_data_plan(epochs, config, train_interactions)


def large_data_plan(epochs: int, config: dict[str, Any], train_interactions: int) -> BaseModelPlan:
    """Sparse BPR with ~32 batches an epoch, at most ``LARGE_BATCH`` rows each, and a learning
    rate to match (public so that its quality can be measured on a small dataset too:
    benchmarks/bench_candidates.py)."""
    batch = min(LARGE_BATCH, _power_of_two_below(train_interactions // 32))
    return BaseModelPlan("BPR", epochs, {"train_batch_size": batch, "learning_rate": LARGE_LEARNING_RATE, **config}, sparse=True)


def _power_of_two_below(n: int) -> int:
    return 1 << max(11, n.bit_length() - 1)
