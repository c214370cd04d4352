"""Per-epoch training time of an adapted model vs the plain model (issue target: <= 1.3x for LightGCN).

Both variants train on the same augmented directory with the same RecBole settings; runs
alternate (base, adapted, adapted, base, ...) so that background load hits both alike, and the
median over repeats is reported. Validation runs only after the last epoch and is not timed.

    python benchmarks/bench_adapters.py --data runs/ml-100k [--model LightGCN] [--epochs 3] [--repeats 3]
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
    parser.add_argument("--model", default="LightGCN")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra config (YAML values)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    import torch
    import yaml

    from llmaug.training import train

    extra = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    config = {"epochs": args.epochs, "eval_step": args.epochs, **extra}
    times: dict[str, list[float]] = {"base": [], "adapted": []}
    with tempfile.TemporaryDirectory() as out:
        for repeat in range(args.repeats):
            order = ("base", "adapted") if repeat % 2 == 0 else ("adapted", "base")
            for variant in order:
                result = train(args.data, args.model, adapted=variant == "adapted", config_dict=config,
                               out=Path(out), seed=2020 + repeat)
                times[variant].append(result.seconds_per_epoch)
                print(f"repeat {repeat} {variant:<8} {result.seconds_per_epoch:.3f} s/epoch", flush=True)
    base, adapted = statistics.median(times["base"]), statistics.median(times["adapted"])
    device = "cuda: " + torch.cuda.get_device_name() if torch.cuda.is_available() else \
        f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    summary = {
        "model": args.model, "data": str(args.data), "device": device, "epochs": args.epochs,
        "repeats": args.repeats, "config": config, "seconds_per_epoch": times,
        "median_base": base, "median_adapted": adapted, "ratio": adapted / base,
    }
    print(f"{args.model} on {device}: base {base:.3f} s/epoch, adapted {adapted:.3f} s/epoch, "
          f"ratio {adapted / base:.2f}x (target <= 1.3x)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
