"""A small dataset unlike ml-100k: other field names, no .user file, unicode titles."""

from __future__ import annotations

import random
from pathlib import Path

TITLES = ["Über den Wolken", "東京物語", "Cien años de soledad", "Война и мир", "L'Étranger", "Ἰλιάς", "Der Prozeß",
          "Het Achterhuis", "Kaos {{ 7*7 }}", "Pan Tadeusz", "Bűn és bűnhődés", "Don Quijote", "Så länge vi lever",
          "Smärtans dal", "Çalıkuşu", "Ζορμπάς", "Ficciones", "Pedro Páramo", "Rayuela", "Nada"]
TAGS = ["novel", "poetry", "history", "fantasy", "classic", "drama"]
AUTHORS = ["Ana Ruiz", "Björn Öst", "Chen Jing", "Dora Lessing", "Émile Roux"]


def make_books(root: Path, name: str = "bücher-shelf", users: int = 40, seed: int = 3, time_column: str = "when",
               rating_column: str = "score") -> Path:
    """``time_column`` "when" and ``rating_column`` "score" are no timestamp and no rating to llmaug
    (neither name says so); name them "timestamp" and "rating" for a dataset with them."""
    rng = random.Random(seed)
    directory = root / name
    directory.mkdir(parents=True)
    rows = [f"reader:token\tbook:token\t{rating_column}:float\t{time_column}:float"]
    for u in range(users):
        for b in rng.sample(range(len(TITLES)), rng.randint(5, 12)):
            rows.append(f"r{u}\tb{b}\t{rng.randint(1, 5)}\t{1_600_000_000 + rng.randint(0, 10**7)}")
    (directory / f"{name}.inter").write_text("\n".join(rows) + "\n", encoding="utf-8")
    # ``author`` is also an item attribute the LLM is asked for: the offline provider answers it
    # from this column, so the per-attribute vectors have values (four books share each author).
    items = ["book:token\tname:token_seq\tpublished:token\ttags:token_seq\tauthor:token"]
    for b, title in enumerate(TITLES):
        items.append(f"b{b}\t{title}\t{1850 + 7 * b}\t{' '.join(rng.sample(TAGS, 2))}\t{AUTHORS[b % len(AUTHORS)]}")
    (directory / f"{name}.item").write_text("\n".join(items) + "\n", encoding="utf-8")
    return directory


BOOKS_CONFIG = """\
domain: book
fields:
  title: name
  year: published
  genre: tags
  user_demographics: []
item_attributes: [author, original_language]
user_profile: [liked_genre, disliked_genre, preferred_era, favourite_author]
candidates: 5
candidate_epochs: 2
"""
