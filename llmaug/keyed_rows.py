"""Per-user data held as arrays, found by the user's token: what the prompts need of a million
users without a Python object (and a dict entry) per user."""

from __future__ import annotations

from typing import Iterator, Optional

import numpy as np
import pandas as pd


class KeyedRows:
    """A row number per token: a hash index over one array of tokens (~40 B a token, where a dict
    entry and the object it points to took a few hundred). Subclasses add ``__getitem__`` and
    ``collections.abc.Mapping`` does the rest; iteration keeps the tokens' order. The index (and
    the tokens as Python strings, for an array of numpy strings) is made when first asked: RecBole's
    token-to-id mapping of 10^6 users is never asked while the base model trains."""

    def __init__(self, tokens: np.ndarray) -> None:
        self._tokens = tokens
        self._index: Optional[pd.Index] = None

    def _keys(self) -> pd.Index:
        if self._index is None:
            self._index = pd.Index(self._tokens, dtype=object)
        return self._index

    def _row(self, token: str) -> int:
        return self._keys().get_loc(token)  # KeyError for a token not there, as a dict's

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._tokens)
