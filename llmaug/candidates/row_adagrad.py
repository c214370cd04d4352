"""Row-wise Adagrad for the large-data base model's embedding tables: one number of state a row.

Adam keeps two moments as large as the table: at 10^6 users and 64 dimensions, 0.56 GB beside the
0.28 GB table, and ten times that at 10^7. Row-wise Adagrad, the optimizer large recommender
embedding tables are commonly trained with, keeps each row's running sum of mean squared
gradients, and steps the rows a batch looked up by the learning rate over its square root.
"""

from __future__ import annotations

from typing import Iterable

import torch


class RowAdagrad(torch.optim.Optimizer):
    """Takes sparse gradients only (``nn.Embedding(sparse=True)``): a step reads and writes the
    rows the batch looked up, as SparseAdam's does."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, eps: float = 1e-10) -> None:
        super().__init__(params, {"lr": lr, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            for table in group["params"]:
                if table.grad is None:
                    continue
                if not table.grad.is_sparse:
                    raise RuntimeError("RowAdagrad takes sparse gradients: build the embedding with sparse=True")
                grad = table.grad.coalesce()  # a row looked up twice in the batch is one row of summed gradient
                rows, values = grad.indices()[0], grad.values()
                state = self.state[table]
                if not state:
                    state["sum"] = torch.zeros(table.shape[0], dtype=table.dtype, device=table.device)
                squares = state["sum"]
                squares.index_add_(0, rows, values.pow(2).mean(dim=1))
                table.index_add_(0, rows, values / (squares[rows].sqrt() + group["eps"]).unsqueeze(1), alpha=-group["lr"])
