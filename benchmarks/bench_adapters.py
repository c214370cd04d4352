"""Per-epoch training time of adapted models vs the plain models, side by side in one run.

Both variants train on the same augmented directory with the same RecBole settings; runs
alternate (base, adapted, adapted, base, ...) so that background load hits both alike, and the
median over repeats is reported. Validation runs only after the last epoch and is not timed.

    python benchmarks/bench_adapters.py --data runs/ml-100k [--models LightGCN,NCL] [--epochs 3] [--repeats 3]
    python benchmarks/bench_adapters.py --data runs/ml-100k --models BPR,LightGCN,SGL --epochs 1 --device cuda

On a CUDA machine the second line is the GPU check: every adapter tensor must live on the model's
device (a stray CPU tensor fails the run), and it reports the per-epoch cost of each adapted model.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("runs/ml-100k"), help="an llmaug augment output directory")
    parser.add_argument("--models", default="LightGCN", help="comma-separated RecBole model names")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra config (YAML values)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    import torch
    import yaml

    from llmaug.training import train

    extra = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here")
    config = {"epochs": args.epochs, "eval_step": args.epochs, "num_clusters": 100,
              "use_gpu": args.device == "cuda", **extra}
    device = "cuda: " + torch.cuda.get_device_name() if args.device == "cuda" else \
        f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    models = {}
    with tempfile.TemporaryDirectory() as out:
        for model in args.models.split(","):
            times: dict[str, list[float]] = {"base": [], "adapted": []}
            for repeat in range(args.repeats):
                order = ("base", "adapted") if repeat % 2 == 0 else ("adapted", "base")
                for variant in order:
                    result = train(args.data, model, adapted=variant == "adapted", config_dict=config,
                                   out=Path(out), seed=2020 + repeat)
                    times[variant].append(result.seconds_per_epoch)
                    print(f"{model} repeat {repeat} {variant:<8} {result.seconds_per_epoch:.3f} s/epoch", flush=True)
            base, adapted = statistics.median(times["base"]), statistics.median(times["adapted"])
            models[model] = {"seconds_per_epoch": times, "median_base": base, "median_adapted": adapted,
                             "ratio": adapted / base}
    summary = {"data": str(args.data), "device": device, "epochs": args.epochs, "repeats": args.repeats,
               "config": config, "models": models}
    print(f"per-epoch seconds on {device} (median of {args.repeats}):")
    print(f"{'model':<12} {'base':>8} {'adapted':>8} {'ratio':>6}")
    for model, m in models.items():
        print(f"{model:<12} {m['median_base']:>8.3f} {m['median_adapted']:>8.3f} {m['ratio']:>5.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
