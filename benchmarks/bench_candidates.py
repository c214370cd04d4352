"""Candidate pools side by side: time to train and rank, and how often a user's held-out items
(validation + test split) are among their candidates, for several base-model plans in one run.

    python benchmarks/bench_candidates.py [--dataset ml-100k] [--plans auto,BPR-large,BPR] [--json FILE]

A plan is ``auto`` (what llmaug chooses for this dataset), ``large`` (the rule ``auto`` follows
above its size limit, applied here whatever the size: the same batches per epoch, learning rate
and sparse training, so the quality check for large data runs on real data), ``large-dense``
(the same with RecBole's dense Adam, as the rule trained until issue 26) or any RecBole model
name with RecBole's defaults. ``--batch N`` sets every plan's batch size.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path


def plan_for(name: str, train_interactions: int, settings, batch: int | None):
    from llmaug.candidates.policy import large_data_plan, plan_base_model

    config = {"train_batch_size": batch} if batch else {}
    if name in ("large", "large-dense"):
        return dataclasses.replace(large_data_plan(settings.candidate_epochs, config, train_interactions), sparse=name == "large")
    return plan_base_model(name, settings.candidate_epochs, config, train_interactions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--plans", default="auto,large,Pop")
    parser.add_argument("--batch", type=int, help="every plan's train_batch_size")
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
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.plans.split(","):  # as llmaug does: the base model sees the training split only
            plan = plan_for(name, len(split.train), settings, args.batch)
            started = time.perf_counter()
            ids = split.train[[source.uid_field, source.iid_field]]  # each plan its own: the model takes them out of the frame
            ranked = rank_candidates(ids, Path(scratch) / source.name, source.uid_field, source.iid_field, plan, settings.candidates, settings.seed)
            seconds = time.perf_counter() - started
            hits = [len(held_out.get(user, set()) & set(pool)) for user, pool in ranked.items()]
            total_held = sum(len(held_out.get(user, ())) for user in ranked)
            rows.append({"plan": name, "model": plan.model, "epochs": plan.epochs, "config": plan.config, "sparse": plan.sparse,
                         "seconds": round(seconds, 1),
                         "users": len(ranked), "users_with_a_held_out_candidate": round(sum(h > 0 for h in hits) / len(ranked), 4),
                         "held_out_recall": round(sum(hits) / max(total_held, 1), 4)})
    print(f"{args.dataset}: {len(split.train):,} training interactions, {settings.candidates} candidates per user")
    print(f"{'plan':12} {'model':9} {'config':52} {'seconds':>8} {'users hit':>10} {'recall':>8}")
    for row in rows:
        print(f"{row['plan']:12} {row['model']:9} {json.dumps(row['config']):52} {row['seconds']:8.1f} "
              f"{row['users_with_a_held_out_candidate']:10.4f} {row['held_out_recall']:8.4f}")
    if args.json:
        args.json.write_text(json.dumps({"dataset": args.dataset, "train_interactions": len(split.train), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
