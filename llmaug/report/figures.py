"""The report's figures, from the run directory alone: do the edge picks beat chance, do profiles
and attributes say anything, what did the run take.

Held-out interactions (validation + test) appear here only as the yardstick: a liked pick should
be among them more often than a random candidate, a disliked pick less often. Every baseline is
computed on the same users and the same candidate pools as the picks, so the comparison is paired.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Optional

import numpy as np

from .graph import degrees, graph_statistics, interactions, percentiles
from .run import Run, Vote
from .stats import mean_interval, wilson

AUC_USERS = 5000      # profiles scored for the AUC; more users change it by less than its interval
AUC_NEGATIVES = 100   # random unseen items per user each held-out item is ranked against
TOP_VALUES = 5
FAILURE_EXAMPLES = 3
RAW_CHARS = 400
SEED = 0


def compute_figures(run: Run) -> dict[str, Any]:
    users = field_figures(run, "users", run.settings.get("user_profile"))
    if users is not None:
        users["auc"] = profile_auc(run)
    return {
        "run": run_figures(run),
        "held_out": {
            "users": sum(1 for items in run.held_out.values() if items),
            "interactions": sum(len(items) for items in run.held_out.values()),
        },
        "edges": edge_figures(run),
        "users": users,
        "items": field_figures(run, "items", run.settings.get("item_attributes")),
    }


# -- edges -----------------------------------------------------------------------------------------
def edge_figures(run: Run) -> Optional[dict[str, Any]]:
    """Hit rates of the edges (each user's majority over votes) against a random and the
    top-ranked candidate; where the votes' picks fall by displayed position and by base-model rank;
    whether agreement predicts a hit; the picks' popularity; the graph with and without the edges."""
    votes, outside = run.edge_votes
    edges, no_majority = [], 0
    for user, edge in run.edges.items():
        if edge is None:
            no_majority += 1
        else:
            pool = run.candidates[user]
            edges.append((user, pool, pool.index(edge.liked), pool.index(edge.disliked), edge.agreement))
    if not edges:
        return None
    n, width = len(edges), max(len(pool) for _, pool, *_ in edges)
    held = np.zeros((n, width), dtype=bool)     # the k-th candidate of user u is held-out
    offered = np.zeros((n, width), dtype=bool)  # user u was offered a k-th candidate
    for u, (user, pool, *_) in enumerate(edges):
        offered[u, : len(pool)] = True
        held[u, : len(pool)] = [item in run.held_out.get(user, ()) for item in pool]
    everyone = np.arange(n)
    liked_at = np.array([e[2] for e in edges])
    disliked_at = np.array([e[3] for e in edges])
    agreement = np.array([e[4] for e in edges])
    random = held.sum(1) / offered.sum(1)       # a uniformly random candidate's expected hit
    top = held[:, 0].astype(float)
    random_rate, random_ci = mean_interval(random)
    liked_hits = held[everyone, liked_at]
    minimum = float(run.settings.get("min_agreement") or 0.0)
    written = [(user, pool[liked]) for user, pool, liked, _, a in edges if a >= minimum]
    return {
        "users": n,
        "pool_size": width,
        "picks_not_in_pool": outside,
        "ceiling": float(held.any(1).mean()),  # users with at least one held-out candidate
        "picks": {
            role: _pick(held[everyone, at], random, top)
            for role, at in (("liked", liked_at), ("disliked", disliked_at))
        },
        "baselines": {
            "random": {"rate": random_rate, "ci": random_ci},
            "top_ranked": {"hits": int(top.sum()), "rate": float(top.mean()), "ci": wilson(int(top.sum()), n)},
        },
        "votes": {"order": run.settings.get("candidate_order", "ranked"), "asked_per_user": run.votes_asked,
                  "valid": sum(len(p) for p in votes.values()), "users_without_majority": no_majority,
                  "min_agreement": minimum, "written": len(written)},
        "positions": _positions(votes, run.candidates, width),
        "ranks": {
            "liked": (np.bincount(liked_at, minlength=width) / n).tolist(),
            "disliked": (np.bincount(disliked_at, minlength=width) / n).tolist(),
            "uniform": (offered / offered.sum(1, keepdims=True)).mean(0).tolist(),
            "held_out": (held.sum(0) / np.maximum(offered.sum(0), 1)).tolist(),
        },
        "agreement": [
            {"agreement": float(level), "users": int(chosen.sum()), "liked_hits": int(liked_hits[chosen].sum()),
             "liked_rate": float(liked_hits[chosen].mean()), "ci": wilson(int(liked_hits[chosen].sum()), int(chosen.sum())),
             "random": float(random[chosen].mean())}
            for level in np.unique(agreement) for chosen in [agreement == level]
        ],
        **_popularity_and_graph(run, edges, written),
    }


def _positions(votes: dict[str, list[Vote]], pools: dict[str, list[str]], width: int) -> dict[str, list[float]]:
    """Share of votes picking each displayed line: flat when the order does not sway the LLM."""
    shown = np.array([v.shown for picks in votes.values() for v in picks]) - 1
    sizes = np.array([len(pools[v.user]) for picks in votes.values() for v in picks])
    uniform = (np.arange(width)[None, :] < sizes[:, None]) / sizes[:, None]
    return {
        "liked": (np.bincount(shown[:, 0], minlength=width) / len(shown)).tolist(),
        "disliked": (np.bincount(shown[:, 1], minlength=width) / len(shown)).tolist(),
        "uniform": uniform.mean(0).tolist(),
    }


def _popularity_and_graph(run: Run, edges: list, written: list[tuple[str, str]]) -> dict[str, Any]:
    catalogue = list(run.item_text)
    users, items = interactions(run.train)
    degree = degrees(items, catalogue)
    percentile = percentiles(degree).to_dict()
    pooled = np.array([percentile[i] for _, pool, *_ in edges for i in pool])
    popularity = {"pool": mean_interval(pooled)}
    for role, at in (("liked", 2), ("disliked", 3)):
        popularity[role] = mean_interval(np.array([percentile[e[1][e[at]]] for e in edges]))
    least_popular = set(degree.sort_values(kind="stable").index[: len(catalogue) // 2])
    added_users = np.array([user for user, _ in written], dtype=object)
    added_items = np.array([item for _, item in written], dtype=object)
    return {
        "popularity": {role: {"mean_percentile": mean, "ci": ci} for role, (mean, ci) in popularity.items()},
        "graph": {
            "training": graph_statistics(users, items, catalogue, least_popular),
            "with_augmented": graph_statistics(np.concatenate([users, added_users]), np.concatenate([items, added_items]),
                                               catalogue, least_popular),
            "augmented_edges": len(written),
        },
    }


def _pick(hits: np.ndarray, random: np.ndarray, top: np.ndarray) -> dict[str, Any]:
    rate = float(hits.mean())
    return {
        "hits": int(hits.sum()),
        "rate": rate,
        "ci": wilson(int(hits.sum()), len(hits)),
        "lift_over_random": rate / random.mean() if random.mean() else None,
        "minus_random": _paired(hits - random),
        "minus_top_ranked": _paired(hits - top),
    }


def _paired(differences: np.ndarray) -> dict[str, Any]:
    mean, ci = mean_interval(differences)
    return {"mean": mean, "ci": ci}


# -- profiles and attributes -----------------------------------------------------------------------
def field_figures(run: Run, task: str, fields: Optional[list[str]]) -> Optional[dict[str, Any]]:
    """Per field: how often it is stated, how varied, the commonest values. Placeholders ("unknown",
    "n/a"...) were stored as empty by validation, so they count as not stated."""
    records = [e["record"] for e in run.answers.get(task, {}).values() if e["status"] == "accepted"]
    if not records:
        return None
    names = fields or list(records[0])
    per_field = []
    for name in names:
        values = Counter(r.get(name) for r in records if r.get(name))
        filled = sum(values.values())
        per_field.append({
            "field": name,
            "filled": filled,
            "fill_rate": filled / len(records),
            "distinct": len(values),
            "top": [[value, count] for value, count in values.most_common(TOP_VALUES)],
        })
    empty = sum(not any(r.get(name) for name in names) for r in records)
    return {"answers": len(records), "empty_answers": empty, "empty_share": empty / len(records), "fields": per_field}


def profile_auc(run: Run) -> dict[str, Any]:
    """How well the profile embedding ranks a user's held-out items above random unseen items
    (cosine with the item-text embedding, the same encoder's space), against the mean text
    embedding of the user's training history as a reference."""
    profiles, items = run.vectors("useremb"), run.vectors("itemtextemb")
    if profiles is None or items is None:
        missing = run.file("useremb" if profiles is None else "itemtextemb").name
        return {"unavailable": f"the run wrote no {missing}"}
    item_ids = list(items)
    index = {item: k for k, item in enumerate(item_ids)}
    matrix = _unit(np.stack([items[i] for i in item_ids]))
    rng = np.random.default_rng(SEED)
    users = sorted(u for u in profiles if run.held_out.get(u))
    sampled = len(users) > AUC_USERS
    if sampled:
        users = sorted(rng.choice(users, AUC_USERS, replace=False).tolist())
    by_profile, by_history = [], []
    for user in users:
        positives = [index[i] for i in run.held_out[user] if i in index]
        history = [index[i] for i in run.train.get(user, ()) if i in index]
        unseen = np.setdiff1d(np.arange(len(item_ids)), positives + history)
        if not positives or not len(unseen) or not history:
            continue
        negatives = rng.choice(unseen, min(AUC_NEGATIVES, len(unseen)), replace=False)
        by_profile.append(_auc(matrix @ _unit(profiles[user]), positives, negatives))
        by_history.append(_auc(matrix @ _unit(matrix[history].mean(0)), positives, negatives))
    if not by_profile:
        return {"unavailable": "no user has a profile embedding, held-out items and a training history"}
    auc, ci = mean_interval(np.array(by_profile))
    history_auc, history_ci = mean_interval(np.array(by_history))
    return {"users": len(by_profile), "sampled": sampled, "negatives_per_user": AUC_NEGATIVES,
            "auc": auc, "ci": ci, "history_auc": history_auc, "history_ci": history_ci}


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1)


def _auc(scores: np.ndarray, positives: list[int], negatives: np.ndarray) -> float:
    """P(a held-out item outscores a random unseen one), ties counting half."""
    pos, neg = scores[positives][:, None], scores[negatives][None, :]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


# -- the run ---------------------------------------------------------------------------------------
def run_figures(run: Run) -> dict[str, Any]:
    manifest = run.manifest
    llm = manifest.get("llm") or {}
    written = manifest.get("tasks", {})
    tasks = {task: _task_figures(run, task, written.get(task), manifest.get("timings_s", {}).get(f"task_{task}"))
             for task in dict.fromkeys([*written, *run.answers])}
    settings = run.settings
    return {
        "name": run.name,
        "source": manifest.get("source", {}).get("name"),
        "created": manifest.get("created"),
        "llmaug_version": manifest.get("llmaug_version"),
        "provider": manifest.get("provider"),
        "model": manifest.get("model"),
        "embedding_model": manifest.get("embedding_model"),
        "structured_output": llm.get("structured_output_used"),
        "structured_output_fallback": llm.get("structured_output_fallback"),
        "llm": llm,
        "cost_usd": manifest.get("cost_usd"),
        "split": manifest.get("split"),
        "train_fraction": settings.get("train_fraction"),
        "candidate_model": (manifest.get("base_model") or {}).get("model") or settings.get("candidate_model"),
        "tasks_written": list(written),
        "journal_other_model_entries": run.other_models,
        "journal_unreadable_lines": run.unreadable_lines,
        "tasks": tasks,
    }


def _task_figures(run: Run, task: str, written: Optional[dict], seconds: Optional[float]) -> dict[str, Any]:
    entries = list(run.answers.get(task, {}).values())
    status = Counter(e["status"] for e in entries)
    failures = [e for e in entries if e["status"] == "failed"]
    errors = Counter(re.sub(r"\d+", "N", e["error"]) for e in entries if e["status"] != "accepted" and e.get("error"))
    return {
        "in_dataset": written is not None,
        "requested": written["requested"] if written else None,
        "from_earlier_run": written.get("from_earlier_run") if written else None,
        "accepted": status["accepted"],
        "failed": status["failed"],
        "unanswered": status["error"],
        "reasked_answers": sum(1 for e in entries if e.get("reasks")),
        "reasks": sum(e.get("reasks", 0) for e in entries),
        "input_tokens": sum(e.get("input_tokens", 0) for e in entries),
        "output_tokens": sum(e.get("output_tokens", 0) for e in entries),
        "cost_usd": round(sum(e.get("cost", 0.0) for e in entries), 6),
        "seconds": seconds,
        "errors": [[message, count] for message, count in errors.most_common(TOP_VALUES)],
        "failure_examples": [
            {"entity": e["entity"], "error": e["error"], "reasks": e.get("reasks", 0), "raw": (e.get("raw") or "")[:RAW_CHARS]}
            for e in failures[:FAILURE_EXAMPLES]
        ],
    }
