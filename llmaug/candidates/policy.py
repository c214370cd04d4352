"""What ``candidate_model: auto`` trains, chosen by the size of the training split.

RecBole's LightGCN propagates the whole graph for every batch, so an epoch costs batches x edges
and grows with the square of the data: 16 s for ten epochs on ml-100k, over 30 minutes for *one*
epoch at 100k users / 2.4 M interactions. BPR's epoch grows linearly; with a few dozen batches an
epoch and a learning rate to match, it ranks at least as well as LightGCN on ml-100k (held-out
items among the candidates: docs/results/scale/). So small data keeps the paper's LightGCN, and
large data gets BPR, trained sparse: a step costs what its batch looks up, not the whole
embedding table, so batches stay bounded however many users there are, and with row-wise Adagrad,
whose state is one number a row where Adam's is two tables' worth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

AUTO = "auto"
LIGHTGCN_LIMIT = 250_000  # training interactions up to which `auto` keeps LightGCN (10 epochs: ~2 min)
LARGE_BATCH = 65_536  # the most rows a batch of the large-data plan holds (~50 MB of tensors in BPR)
ADAM, SPARSE_ADAM, ROW_ADAGRAD = "adam", "sparse_adam", "row_adagrad"
# The large plan's learning rate by optimizer, the best of those tried on ml-100k (docs/results/scale/):
# Adam at batch 65,536 with RecBole's 0.001 barely moves in 10 epochs.
LARGE_LEARNING_RATE = {ROW_ADAGRAD: 0.05, SPARSE_ADAM: 0.01, ADAM: 0.01}


@dataclass(frozen=True)
class BaseModelPlan:
    """``optimizer``: ``adam`` is RecBole's own training, dense: every step reads and writes every
    row, which at 1M users made each step cost the whole table. ``row_adagrad`` (the large plan's)
    and ``sparse_adam`` give the embedding tables sparse gradients, so that a step updates the rows
    its batch looked up and no other; row-wise Adagrad keeps a number a row beside the table,
    SparseAdam two moments as large as the table (0.56 GB at 10^6 users)."""

    model: str
    epochs: int
    config: dict[str, Any] = field(default_factory=dict)
    optimizer: str = ADAM


def plan_base_model(model: str, epochs: int, config: dict[str, Any], train_interactions: int) -> BaseModelPlan:
    """The base model to train; keys the user set in ``candidate_config`` always win."""
    if model != AUTO:
        return BaseModelPlan(model, epochs, dict(config))
    if train_interactions <= LIGHTGCN_LIMIT:
        return BaseModelPlan("LightGCN", epochs, dict(config))
    return large_data_plan(epochs, config, train_interactions)


def large_data_plan(epochs: int, config: dict[str, Any], train_interactions: int, optimizer: str = ROW_ADAGRAD) -> BaseModelPlan:
    """BPR with ~32 batches an epoch, at most ``LARGE_BATCH`` rows each, and a learning rate to
    match (public, and with the other optimizers, so that its quality can be measured on a small
    dataset too: benchmarks/bench_candidates.py)."""
    batch = min(LARGE_BATCH, _power_of_two_below(train_interactions // 32))
    config = {"train_batch_size": batch, "learning_rate": LARGE_LEARNING_RATE[optimizer], **config}
    return BaseModelPlan("BPR", epochs, config, optimizer)


def _power_of_two_below(n: int) -> int:
    return 1 << max(11, n.bit_length() - 1)
