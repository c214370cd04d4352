"""Print the position-bias evidence table from the `llmaug report` JSON of each condition.

    python docs/results/position-bias/tabulate.py ranked=/tmp/ev24/ranked shuffled=/tmp/ev24/shuffled1 ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def share(figure: dict) -> str:
    low, high = figure["ci"]
    return f"{100 * figure['rate']:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def points(difference: dict) -> str:
    low, high = difference["ci"]
    return f"{100 * difference['mean']:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"


def main(arguments: list[str]) -> None:
    reports = {}  # condition -> its report's edge figures, read once
    for argument in arguments:
        name, directory = argument.split("=", 1)
        reports[name] = json.loads((Path(directory) / "report.json").read_text(encoding="utf-8"))["edges"]
    print("| condition | users with an edge | liked pick held-out | minus random | minus top-ranked | disliked pick held-out "
          "| minus random | liked at line 1 | liked at rank 1 | liked popularity pct (pool) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, edges in reports.items():
        liked, disliked = edges["picks"]["liked"], edges["picks"]["disliked"]
        popularity = edges["popularity"]
        print(f"| {name} | {edges['users']} | {share(liked)} | {points(liked['minus_random'])} | {points(liked['minus_top_ranked'])} "
              f"| {share(disliked)} | {points(disliked['minus_random'])} | {100 * edges['positions']['liked'][0]:.0f}% "
              f"| {100 * edges['ranks']['liked'][0]:.0f}% | {popularity['liked']['mean_percentile']:.1f} "
              f"({popularity['pool']['mean_percentile']:.1f}) |")
    print()
    print("| condition | agreement | users | liked pick held-out | a random candidate |")
    print("|---|---|---|---|---|")
    for name, edges in reports.items():
        for level in edges["agreement"]:
            low, high = level["ci"]
            print(f"| {name} | {100 * level['agreement']:.0f}% | {level['users']} | {100 * level['liked_rate']:.1f}% "
                  f"[{100 * low:.1f}, {100 * high:.1f}] | {100 * level['random']:.1f}% |")
    print()
    print("| condition | graph | edges | density | item-degree Gini | share to the least popular half | degree assortativity |")
    print("|---|---|---|---|---|---|---|")
    for name, edges in reports.items():
        for part in ("training", "with_augmented"):
            g = edges["graph"][part]
            print(f"| {name} | {part.replace('_', ' ')} | {g['edges']:,} | {g['density']:.5f} | {g['item_degree_gini']:.4f} "
                  f"| {100 * g['least_popular_half_share']:.2f}% | {g['degree_assortativity']:.4f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
