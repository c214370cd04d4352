"""Synthetic RecBole atomic datasets of any size, shaped like a real catalogue: power-law item
popularity, ~30 interactions per user, titles, years, genres and demographics like ml-100k's.

Generated on demand (never committed): 1M users take about a minute and 0.9 GB on disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

GENRES = ("Action Adventure Animation Children's Comedy Crime Documentary Drama Fantasy Film-Noir Horror "
          "Musical Mystery Romance Sci-Fi Thriller War Western").split()
WORDS = ("night river house last blue city love war star dark road king summer secret little lost man woman "
         "day world heart fire time home story game ghost island dream stone wild golden").split()
OCCUPATIONS = "student engineer writer artist doctor lawyer educator programmer retired salesman other".split()


def write_synthetic(root: Path, users: int, items: int, per_user: int = 30, seed: int = 0, name: str = "synthetic") -> Path:
    """Write ``root/name/name.{inter,item,user}`` and return the dataset directory."""
    rng = np.random.default_rng(seed)
    directory = Path(root) / name
    directory.mkdir(parents=True, exist_ok=True)

    # Popularity ~ rank^-0.8 over a shuffled catalogue; each user's items are distinct.
    popularity = 1.0 / np.arange(1, items + 1) ** 0.8
    popularity = rng.permutation(popularity / popularity.sum())
    counts = np.minimum(5 + rng.poisson(per_user - 5, users), items - 1)
    user = np.repeat(np.arange(users, dtype=np.int64), counts)
    item = rng.choice(items, size=len(user), p=popularity)
    pairs = np.unique(user * items + item)
    user, item = pairs // items, pairs % items
    timestamp = 880_000_000 + rng.permutation(len(pairs)) * 7
    rating = rng.integers(1, 6, len(pairs))
    inter = pd.DataFrame({"user_id:token": user, "item_id:token": item, "rating:float": rating, "timestamp:float": timestamp})
    inter.to_csv(directory / f"{name}.inter", sep="\t", index=False, chunksize=1_000_000)

    words = np.array(WORDS, dtype=object)
    titles = [f"{a.title()} {b.title()} {k}" for k, (a, b) in enumerate(words[rng.integers(0, len(WORDS), (items, 2))])]
    genre_count = rng.integers(1, 4, items)
    genre_rows = rng.integers(0, len(GENRES), (items, 3))
    genres = [" ".join(dict.fromkeys(GENRES[g] for g in row[:n])) for row, n in zip(genre_rows, genre_count)]
    pd.DataFrame({
        "item_id:token": np.arange(items),
        "movie_title:token_seq": titles,
        "release_year:token": rng.integers(1930, 2024, items),
        "class:token_seq": genres,
    }).to_csv(directory / f"{name}.item", sep="\t", index=False)

    pd.DataFrame({
        "user_id:token": np.arange(users),
        "age:float": rng.integers(15, 75, users),
        "gender:token": rng.choice(["M", "F"], users),
        "occupation:token": rng.choice(OCCUPATIONS, users),
    }).to_csv(directory / f"{name}.user", sep="\t", index=False)
    return directory
