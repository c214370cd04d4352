"""Per-user data held as arrays, found by the user's token: what the prompts need of a million
users without a Python object (and a dict entry) per user."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd


class KeyedRows:
    """A row number per token: a hash index over one array of tokens (~40 B a token, where a dict
    entry and the object it points to took a few hundred). Subclasses add ``__getitem__`` and
    ``collections.abc.Mapping`` does the rest; iteration keeps the tokens' order."""

    def __init__(self, tokens: np.ndarray) -> None:
        self._tokens = pd.Index(tokens, dtype=object)

    def _row(self, token: str) -> int:
        return self._tokens.get_loc(token)  # KeyError for a token not there, as a dict's

    def __iter__(self) -> Iterator[str]:
        return iter(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)
