"""What the augmented edges do to the interaction graph, and whether the picks favour popular items.

The figures a reproducibility study of LLMRec reports before and after augmentation (density, Gini
of item degree, degree assortativity), plus the share of edges reaching the least popular half of
the catalogue: an augmentation that only adds edges to already popular items makes the graph more
skewed, which a recommender then learns.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd


def interactions(train: dict[str, list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """The training graph's edges as two aligned token arrays (users, items): no tuple per edge."""
    lengths = np.fromiter((len(items) for items in train.values()), dtype=np.int64, count=len(train))
    users = np.repeat(np.array(list(train), dtype=object), lengths)
    items = np.array([i for items in train.values() for i in items], dtype=object)
    return users, items


def degrees(items: np.ndarray, catalogue: Sequence[str]) -> pd.Series:
    """Interactions per catalogue item (0 for an item nobody interacted with)."""
    return pd.Series(items).value_counts().reindex(pd.Index(catalogue, dtype=object), fill_value=0)


def percentiles(item_degree: pd.Series) -> pd.Series:
    """Each item's popularity percentile in the catalogue: 0 the least trained on, 100 the most (ties share)."""
    return item_degree.rank(method="average", pct=True) * 100


def graph_statistics(users: np.ndarray, items: np.ndarray, catalogue: Sequence[str], least_popular: set[str]) -> dict[str, Any]:
    """Of a bipartite user-item graph given as aligned (user, item) token arrays, repeats counted once."""
    item_index = pd.Index(catalogue, dtype=object)
    item_codes = item_index.get_indexer(items)
    user_codes, user_tokens = pd.factorize(users)
    known = item_codes >= 0
    pairs = np.unique(user_codes[known].astype(np.int64) * len(item_index) + item_codes[known])
    user_codes, item_codes = pairs // len(item_index), pairs % len(item_index)
    user_degree = np.bincount(user_codes, minlength=len(user_tokens))
    item_degree = np.bincount(item_codes, minlength=len(item_index))
    count = len(pairs)
    in_tail = item_index.isin(list(least_popular))
    return {
        "users": int(len(user_tokens)),
        "items": int(len(item_index)),
        "edges": int(count),
        "density": count / (len(user_tokens) * len(item_index)) if count else 0.0,
        "item_degree_gini": gini(item_degree),
        "least_popular_half_share": float(in_tail[item_codes].mean()) if count else 0.0,
        "degree_assortativity": _pearson(user_degree[user_codes], item_degree[item_codes]),
    }


def gini(values: np.ndarray) -> float:
    """0 when every item has the same degree, towards 1 when a few items hold every edge."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    total = ordered.sum()
    if total == 0:
        return 0.0
    n = len(ordered)
    return float((2 * np.arange(1, n + 1) - n - 1) @ ordered / (n * total))


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    """Degree assortativity of a bipartite graph: the correlation, over edges, of the degrees of
    their two ends (negative: heavy users reach unpopular items and light users popular ones)."""
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])
