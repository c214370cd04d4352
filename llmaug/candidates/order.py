"""The order a prompt shows a user's candidate pool in, and the answers' consensus across orders.

LLMs choosing from a list favour its first lines (position bias): shown best first, a pick of the
top candidate cannot be told from agreement with the base recommender. A shuffled order makes the
displayed position and the base model's rank independent, and a pick made under several orders
(votes) is what the LLM prefers whatever the order.

Orders are drawn from (seed, user) alone, so a user's k-th vote shows the same order in every run,
whatever other users the run holds: a resumed run asks the same prompts, a changed seed or order
setting changes exactly the prompts it touches.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

RANKED = "ranked"


def display_orders(pool_size: int, order: str, seed: int, user: str, votes: int) -> list[tuple[int, ...]]:
    """Per vote, the base-model rank (1 = best) of each displayed candidate, first line first.

    Shuffled orders come from one seeded stream per user; each vote takes the next order that
    puts a candidate on the first line no earlier vote put there (while any is left), and repeats
    no earlier order (while any is left), so k votes of a model that always answers "line 1" name k
    different items and agree on nothing. A vote's order depends on the earlier votes' alone:
    asking more votes later keeps the orders already asked.
    """
    if order == RANKED:
        return [tuple(range(1, pool_size + 1))] * votes
    digest = hashlib.blake2b(f"{seed}\x1f{user}".encode(), digest_size=8).digest()
    rng = np.random.default_rng(int.from_bytes(digest, "little"))
    orders: list[tuple[int, ...]] = []
    possible = math.factorial(pool_size) if pool_size < 10 else None  # 10! and more: never exhausted here
    while len(orders) < votes:
        candidate = tuple((rng.permutation(pool_size) + 1).tolist())
        new_first = len(orders) >= pool_size or candidate[0] not in {o[0] for o in orders}
        new_order = (possible is not None and len(orders) >= possible) or candidate not in orders
        if new_first and new_order:
            orders.append(candidate)
    return orders


@dataclass(frozen=True)
class Consensus:
    """The majority picks of one user's votes; ``agreement`` is the triplet's confidence."""

    liked: str
    disliked: str
    liked_votes: int
    disliked_votes: int
    asked: int  # votes asked, valid or not: an invalid vote agrees with nothing

    @property
    def agreement(self) -> float:
        """The share of asked votes behind the weaker of the two picks."""
        return min(self.liked_votes, self.disliked_votes) / self.asked


def consensus(picks: Iterable[tuple[int, str, str]], asked: int) -> Optional[Consensus]:
    """Majority of the valid votes' (vote, liked, disliked); ``None`` if no vote was valid or the
    majorities name one item both liked and disliked. Ties go to the pick of the earliest vote."""
    picks = sorted(picks)
    if not picks:
        return None
    liked, liked_votes = _majority(p[1] for p in picks)
    disliked, disliked_votes = _majority(p[2] for p in picks)
    if liked == disliked:
        return None
    return Consensus(liked, disliked, liked_votes, disliked_votes, asked)


def _majority(values: Iterable[str]) -> tuple[str, int]:
    counts = Counter(values)  # insertion order = vote order, and most_common keeps it among ties
    return counts.most_common(1)[0]
