"""What the page's per-user and per-item views show, as compact JSON the page's script renders.

A large run would make a page no browser opens, so past ``max_users`` / ``max_items`` the views
hold a seeded random sample (the page says so); the figures always use every user and item.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from .run import Run

LIST_CAP = 100  # items shown per user list (history, held-out); the page gives the full count
SEED = 0


def _natural(token: str) -> tuple[int, Any]:
    return (0, int(token)) if token.isdigit() else (1, token)


def _sample(ids: list[str], limit: int) -> list[str]:
    ids = sorted(ids, key=_natural)
    if len(ids) <= limit:
        return ids
    keep = np.random.default_rng(SEED).choice(len(ids), limit, replace=False)
    return [ids[k] for k in sorted(keep)]


def _filled(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if v}


def _problem(entry: dict[str, Any]) -> dict[str, Any]:
    return {"status": entry["status"], "error": entry.get("error"), "raw": (entry.get("raw") or "")[:400]}


def entity_views(run: Run, max_users: int, max_items: int) -> dict[str, Any]:
    edges, profiles, attributes = (run.answers.get(t, {}) for t in ("edges", "users", "items"))
    all_users = list(dict.fromkeys([*run.train, *run.candidates]))
    all_items = list(run.item_text)
    users: dict[str, dict[str, Any]] = {}
    for user in _sample(all_users, max_users):
        history, held = run.train.get(user, []), sorted(run.held_out.get(user, ()), key=_natural)
        view: dict[str, Any] = {"h": history[:LIST_CAP], "hn": len(history), "v": held[:LIST_CAP], "vn": len(held),
                                "c": run.candidates.get(user, [])}
        edge = run.edges.get(user)
        if edge is not None:
            view.update({"l": edge.liked, "d": edge.disliked, **({"a": round(edge.agreement, 3)} if run.votes_asked > 1 else {})})
        elif (user, 0) in edges:  # no majority, or no valid vote: the first vote's word on it
            entry = edges[user, 0]
            view.update({"ep": _problem(entry) if entry["status"] != "accepted" else {"status": "no majority across the votes"}})
        if user in profiles:
            entry = profiles[user]
            view.update({"p": _filled(entry["record"])} if entry["status"] == "accepted" else {"pp": _problem(entry)})
        users[user] = view
    offered, liked, disliked = Counter(), Counter(), Counter()
    for pool in run.candidates.values():
        offered.update(pool)
    for edge in filter(None, run.edges.values()):
        liked[edge.liked] += 1
        disliked[edge.disliked] += 1
    items: dict[str, dict[str, Any]] = {}
    for item in _sample(all_items, max_items):
        view = {"n": [offered[item], liked[item], disliked[item]]}
        if item in attributes:
            entry = attributes[item]
            view.update({"a": _filled(entry["record"])} if entry["status"] == "accepted" else {"ap": _problem(entry)})
        items[item] = view
    shown = {i for v in users.values() for key in ("h", "v", "c") for i in v[key]} | set(items)
    return {
        "users": users,
        "items": items,
        "users_total": len(all_users),
        "items_total": len(all_items),
        "text": {i: run.item_text.get(i, {}) for i in sorted(shown, key=_natural)},
    }
