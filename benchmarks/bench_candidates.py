"""Candidate pools side by side: time to train and rank, and how often a user's held-out items
(validation + test split) are among their candidates, for several base-model plans in one run.

    python benchmarks/bench_candidates.py [--dataset ml-100k] [--plans auto,large,BPR] [--seeds 1,2,3] [--json FILE]

A plan is ``auto`` (what llmaug chooses for this dataset), ``large`` (the rule ``auto`` follows
above its size limit, applied here whatever the size: the same batches per epoch, learning rate
and sparse row-wise Adagrad, so the quality check for large data runs on real data),
``large-sparse-adam`` (the same with SparseAdam, as the rule trained in issue 26's seventh and
eighth sessions), ``large-dense`` (with RecBole's dense Adam, as the rule trained before) or any
RecBole model name with RecBole's defaults. ``--batch N`` and ``--learning-rate LR`` set every
plan's batch size and learning rate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


LARGE_PLANS = {"large": "row_adagrad", "large-sparse-adam": "sparse_adam", "large-dense": "adam"}


def plan_for(name: str, train_interactions: int, settings, batch: int | None, learning_rate: float | None):
    from llmaug.candidates.policy import large_data_plan, plan_base_model

    config = ({"train_batch_size": batch} if batch else {}) | ({"learning_rate": learning_rate} if learning_rate else {})
    if name in LARGE_PLANS:
        return large_data_plan(settings.candidate_epochs, config, train_interactions, LARGE_PLANS[name])
    return plan_base_model(name, settings.candidate_epochs, config, train_interactions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--plans", default="auto,large,Pop")
    parser.add_argument("--batch", type=int, help="every plan's train_batch_size")
    parser.add_argument("--learning-rate", type=float, help="every plan's learning_rate")
    parser.add_argument("--seeds", help="train each plan once per seed, e.g. 1,2,3 (default: llmaug's seed); the split stays llmaug's")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from llmaug.candidates.ranking import rank_candidates
    from llmaug.config import load_settings
    from llmaug.dataset import load_source
    from llmaug.input.usable import usable_interactions
    from llmaug.split import split_interactions

    settings = load_settings()
    source = load_source(args.dataset, settings)
    usable = usable_interactions(source)
    split = split_interactions(usable.inter, source.uid_field, settings.split, settings.seed, settings.train_fraction)
    held_out: dict[str, set[str]] = {}
    for frame in (split.valid, split.test):
        for user, item in zip(frame[source.uid_field], frame[source.iid_field]):
            held_out.setdefault(user, set()).add(item)
    seeds = [int(seed) for seed in args.seeds.split(",")] if args.seeds else [settings.seed]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.plans.split(","):  # as llmaug does: the base model sees the training split only
            plan = plan_for(name, len(split.train), settings, args.batch, args.learning_rate)
            runs = []
            for seed in seeds:
                started = time.perf_counter()
                ids = split.train[[source.uid_field, source.iid_field]]  # each run its own: the model takes them out of the frame
                ranked = rank_candidates(ids, Path(scratch) / source.name, source.uid_field, source.iid_field, plan, settings.candidates, seed)
                seconds = time.perf_counter() - started
                hits = [len(held_out.get(user, set()) & set(pool)) for user, pool in ranked.items()]
                total_held = sum(len(held_out.get(user, ())) for user in ranked)
                runs.append({"seed": seed, "seconds": round(seconds, 1), "users": len(ranked),
                             "users_with_a_held_out_candidate": round(sum(h > 0 for h in hits) / len(ranked), 4),
                             "held_out_recall": round(sum(hits) / max(total_held, 1), 4)})
            mean = {key: round(statistics.fmean(run[key] for run in runs), 4)
                    for key in ("seconds", "users", "users_with_a_held_out_candidate", "held_out_recall")}
            rows.append({"plan": name, "model": plan.model, "epochs": plan.epochs, "config": plan.config, "optimizer": plan.optimizer,
                         **mean, "held_out_recall_sd": round(statistics.pstdev(run["held_out_recall"] for run in runs), 4), "runs": runs})
    print(f"{args.dataset}: {len(split.train):,} training interactions, {settings.candidates} candidates per user, "
          f"means over {len(seeds)} seed(s)")
    print(f"{'plan':18} {'model':9} {'config':52} {'seconds':>8} {'users hit':>10} {'recall':>8} {'sd':>7}")
    for row in rows:
        print(f"{row['plan']:18} {row['model']:9} {json.dumps(row['config']):52} {row['seconds']:8.1f} "
              f"{row['users_with_a_held_out_candidate']:10.4f} {row['held_out_recall']:8.4f} {row['held_out_recall_sd']:7.4f}")
    if args.json:
        args.json.write_text(json.dumps({"dataset": args.dataset, "train_interactions": len(split.train), "seeds": seeds, "rows": rows},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
