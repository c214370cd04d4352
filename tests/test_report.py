"""`llmaug report`: figures checked on runs whose right answer is known by construction, and the
page checked in headless Chromium as a reader sees it, with no network request."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from browser import Chromium
from conftest import invoke_llmaug
from llm_server import Behaviour, LoopbackLLM, good_answer, prompt_schema
from tiny_dataset import BOOKS_CONFIG, make_books

from llmaug.atomic import float_seq, write_atomic_file, write_text_atomically
from llmaug.candidates.order import display_orders
from llmaug.journal import Journal
from llmaug.report.figures import compute_figures
from llmaug.report.graph import gini, graph_statistics, interactions, percentiles
from llmaug.report.run import load_run
from llmaug.report.stats import wilson

MODEL = "openai/known"
USERS, ITEMS, POOL = 40, 60, 10
GENRES = ["drama"] * 20 + ["comedy"] * 10 + [None] * 10  # the profiles' liked_genre, user by user


# -- a run built in the test, where every right answer is known ------------------------------------
class KnownRun:
    """A run directory in the layout `llmaug augment` writes, with users, held-out items, pools and
    answers chosen here, so each figure's right value follows from the construction."""

    def __init__(self, root: Path, provider: str, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.dir = root / "known"
        self.users = [f"u{k}" for k in range(USERS)]
        items = [f"i{k}" for k in range(ITEMS)]
        self.train, self.held, self.pools, self.liked, self.disliked = {}, {}, {}, {}, {}
        for user in self.users:
            chosen = rng.sample(items, 5 + 4 + POOL)
            self.train[user], self.held[user] = chosen[:5], chosen[5:9]
            in_pool = rng.randint(1, 3)  # held-out items among the candidates
            pool = self.held[user][:in_pool] + chosen[9 : 9 + POOL - in_pool]
            rng.shuffle(pool)
            self.pools[user] = pool
            if provider == "oracle":  # liked: always a held-out candidate; disliked: never
                self.liked[user] = rng.choice([i for i in pool if i in self.held[user]])
                self.disliked[user] = rng.choice([i for i in pool if i not in self.held[user]])
            else:  # "top-two": the base recommender's first two, as Gemma 3 270M answered
                self.liked[user], self.disliked[user] = pool[0], pool[1]
        self._write(items)

    def _write(self, items: list[str]) -> None:
        name, types = self.dir.name, {"user_id": "token", "item_id": "token"}
        valid = [(u, i) for u in self.users for i in self.held[u][:2]]
        test = [(u, i) for u in self.users for i in self.held[u][2:]]
        for part, rows in (("train", [(u, i) for u in self.users for i in self.train[u]]), ("valid", valid), ("test", test)):
            write_atomic_file(self.dir / f"{name}.{part}.inter", pd.DataFrame(rows, columns=list(types)), types)
        write_atomic_file(self.dir / f"{name}.candidates",
                          pd.DataFrame({"user_id": self.users, "candidates": [" ".join(self.pools[u]) for u in self.users]}),
                          {"user_id": "token", "candidates": "token_seq"})
        write_atomic_file(self.dir / f"{name}.item", pd.DataFrame({"item_id": items, "title": [f"Title {i}" for i in items]}),
                          {"item_id": "token", "title": "token_seq"})
        # One-hot item embeddings; the first 20 users' profiles point at their held-out items
        # (AUC 1), the others' at a direction no item has (every score ties: AUC 0.5).
        eye = np.eye(ITEMS + 1, dtype=np.float32)
        profiles = [eye[[items.index(i) for i in self.held[u]]].sum(0) if k < 20 else eye[ITEMS] for k, u in enumerate(self.users)]
        write_atomic_file(self.dir / f"{name}.itemtextemb", pd.DataFrame({"tid": items, "item_text_emb": float_seq(eye[:ITEMS])}),
                          {"tid": "token", "item_text_emb": "float_seq"})
        write_atomic_file(self.dir / f"{name}.useremb", pd.DataFrame({"uid": self.users, "user_profile_emb": float_seq(np.stack(profiles))}),
                          {"uid": "token", "user_profile_emb": "float_seq"})
        write_text_atomically(self.dir / "recbole.yaml", yaml.safe_dump({"USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id"}))
        with Journal(self.dir / ".llmaug" / "journal.jsonl") as journal:
            for k, user in enumerate(self.users):
                journal.append(entry("edges", user, "accepted", {"liked": self.liked[user], "disliked": self.disliked[user]},
                                     tokens=(100, 10), cost=0.001))
                journal.append(entry("users", user, "accepted", {"liked_genre": GENRES[k], "preferred_era": None}))
            for k, item in enumerate(items):
                journal.append(entry("items", item, "accepted", {"director": f"director {k % 3}" if k % 2 else None}))
        manifest = {
            "model": MODEL, "provider": "litellm", "created": "2026-01-01T00:00:00", "llmaug_version": "test",
            "source": {"name": "known"}, "embedding_model": "one-hot", "cost_usd": 0.04,
            "llm": {"structured_output_used": "json_schema", "structured_output_fallback": None},
            "split": {"train": 5 * USERS, "valid": len(valid), "test": len(test)},
            "tasks": {task: {"requested": n, "from_earlier_run": 0} for task, n in (("edges", USERS), ("users", USERS), ("items", ITEMS))},
            "timings_s": {"task_edges": 12.5},
            "settings": {"fields": {"title": "title"}, "user_profile": ["liked_genre", "preferred_era"],
                         "item_attributes": ["director"], "candidate_model": "Pop", "train_fraction": 1.0},
        }
        write_text_atomically(self.dir / "manifest.json", json.dumps(manifest))


def entry(task: str, entity: str, status: str, record=None, model: str = MODEL, error=None, raw=None, reasks: int = 0,
          tokens: tuple[int, int] = (0, 0), cost: float = 0.0) -> dict:
    """A journal line as the pipeline writes it."""
    return {"key": f"{task}-{entity}-{model}", "task": task, "entity": entity, "model": model, "request_hash": "h",
            "status": status, "record": record, "error": error, "raw": raw, "reasks": reasks,
            "input_tokens": tokens[0], "output_tokens": tokens[1], "cost": cost}


@pytest.mark.parametrize("provider", ["oracle", "top-two"])
def test_edge_figures_on_a_run_whose_right_answer_is_known(tmp_path, provider):
    known = KnownRun(tmp_path, provider)
    edges = compute_figures(load_run(known.dir))["edges"]
    users = known.users
    held_at = lambda u, item: item in known.held[u]  # noqa: E731
    random_rate = np.mean([sum(held_at(u, i) for i in known.pools[u]) / POOL for u in users])
    top_rate = np.mean([held_at(u, known.pools[u][0]) for u in users])
    liked_rate = np.mean([held_at(u, known.liked[u]) for u in users])
    disliked_rate = np.mean([held_at(u, known.disliked[u]) for u in users])
    if provider == "oracle":
        assert (liked_rate, disliked_rate) == (1.0, 0.0)

    assert edges["users"] == USERS and edges["pool_size"] == POOL
    picks, baselines = edges["picks"], edges["baselines"]
    assert picks["liked"]["rate"] == pytest.approx(liked_rate) and picks["disliked"]["rate"] == pytest.approx(disliked_rate)
    assert baselines["random"]["rate"] == pytest.approx(random_rate)
    assert baselines["top_ranked"]["rate"] == pytest.approx(top_rate)
    assert picks["liked"]["minus_random"]["mean"] == pytest.approx(liked_rate - random_rate)
    assert picks["liked"]["minus_top_ranked"]["mean"] == pytest.approx(liked_rate - top_rate)
    for figure in (picks["liked"], picks["disliked"], baselines["random"], baselines["top_ranked"]):
        low, high = figure["ci"]
        assert 0 <= low <= figure["rate"] <= high <= 1 and high - low < 0.5
    if provider == "oracle":  # a perfect pick's interval ends at 1 and lies above chance
        assert picks["liked"]["ci"][1] == 1.0 and picks["liked"]["minus_random"]["ci"][0] > 0
        assert picks["disliked"]["ci"][0] == 0.0 and picks["disliked"]["minus_random"]["ci"][1] < 0
    else:  # the same item as the top-ranked baseline for every user: no difference at all
        assert picks["liked"]["minus_top_ranked"] == {"mean": 0.0, "ci": [0.0, 0.0]}

    # Answers from before orders were recorded were shown the pool ranked: displayed line = rank.
    liked_at = Counter(known.pools[u].index(known.liked[u]) for u in users)
    for shares in (edges["positions"], edges["ranks"]):
        assert shares["liked"] == pytest.approx([liked_at[k] / USERS for k in range(POOL)])
        assert shares["uniform"] == pytest.approx([1 / POOL] * POOL)
    assert edges["ranks"]["held_out"][0] == pytest.approx(top_rate)
    assert edges["ceiling"] == 1.0  # every constructed pool holds a held-out item
    assert [(a["agreement"], a["users"]) for a in edges["agreement"]] == [(1.0, USERS)]  # one vote: it agrees with itself


def test_votes_in_shuffled_orders_map_back_to_base_ranks_and_agreement_buckets_the_hits(tmp_path):
    """Three votes per user from an answerer that always names the first and last displayed line
    (a pure position bias): every pick is at line 1, the picks' base ranks are spread, and the
    votes never agree, because each vote puts another candidate on line 1."""
    known = KnownRun(tmp_path, "top-two")
    settings = {"candidate_order": "shuffled", "votes": 3, "seed": 5, "min_agreement": 0.5}
    with Journal(known.dir / ".llmaug" / "journal.jsonl") as journal:
        for user in known.users:
            for vote, order in enumerate(display_orders(POOL, "shuffled", 5, user, 3)):
                pool = known.pools[user]
                record = {"liked": pool[order[0] - 1], "disliked": pool[order[-1] - 1], "shown": [1, POOL], "order": list(order)}
                journal.append({**entry("edges", user, "accepted", record), "key": f"v{vote}-{user}", "vote": vote})
            stale = display_orders(POOL, "shuffled", 6, user, 1)[0]  # another seed's order: not this run's answer
            journal.append({**entry("edges", user, "accepted", {"liked": pool[0], "disliked": pool[1], "shown": [1, 2],
                                                                "order": list(stale)}), "key": f"stale-{user}"})
    manifest_file = known.dir / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["settings"].update(settings)
    manifest_file.write_text(json.dumps(manifest))

    edges = compute_figures(load_run(known.dir))["edges"]
    assert edges["votes"] == {"order": "shuffled", "asked_per_user": 3, "valid": 3 * USERS, "users_without_majority": 0,
                              "min_agreement": 0.5, "written": 0}
    assert edges["positions"]["liked"][0] == 1.0 and edges["positions"]["disliked"][-1] == 1.0
    first = {u: display_orders(POOL, "shuffled", 5, u, 3)[0] for u in known.users}  # no majority: vote 0's picks
    liked_rank = Counter(first[u][0] - 1 for u in known.users)
    assert edges["ranks"]["liked"] == pytest.approx([liked_rank[k] / USERS for k in range(POOL)])
    assert max(edges["ranks"]["liked"]) < 0.5  # mapped back, the line-1 picks are all over the ranking
    hits = sum(known.pools[u][first[u][0] - 1] in known.held[u] for u in known.users)
    assert edges["agreement"] == [{"agreement": pytest.approx(1 / 3), "users": USERS, "liked_hits": hits,
                                   "liked_rate": pytest.approx(hits / USERS), "ci": pytest.approx(wilson(hits, USERS)),
                                   "random": pytest.approx(edges["baselines"]["random"]["rate"])}]
    assert edges["graph"]["augmented_edges"] == 0  # below min_agreement, none written
    assert edges["graph"]["with_augmented"] == edges["graph"]["training"]


def test_graph_statistics_of_a_graph_worked_by_hand():
    # u1: a b c, u2: a b, u3: a. Item degrees a3 b2 c1 d0; user degrees 3, 2, 1.
    users, items = interactions({"u1": ["a", "b", "c"], "u2": ["a", "b"], "u3": ["a", "a"]})
    stats = graph_statistics(users, items, ["a", "b", "c", "d"], least_popular={"c", "d"})
    assert (stats["users"], stats["items"], stats["edges"]) == (3, 4, 6)
    assert stats["density"] == pytest.approx(6 / 12)
    # Gini of (0, 1, 2, 3): sum_i sum_j |x_i - x_j| / (2 n^2 mean) = 20 / (2 * 16 * 1.5)
    assert stats["item_degree_gini"] == pytest.approx(20 / 48)
    assert stats["least_popular_half_share"] == pytest.approx(1 / 6)
    ends = np.array([(3, 3), (3, 2), (3, 1), (2, 3), (2, 2), (1, 3)], dtype=float)  # (user degree, item degree) per edge
    assert stats["degree_assortativity"] == pytest.approx(np.corrcoef(ends[:, 0], ends[:, 1])[0, 1])
    assert gini(np.array([5, 5, 5])) == 0.0
    assert percentiles(pd.Series([0, 1, 2, 3], index=list("dcba")))["a"] == 100.0


def test_profile_and_attribute_figures_on_known_answers(tmp_path):
    figures = compute_figures(load_run(KnownRun(tmp_path, "oracle").dir))
    users = figures["users"]
    genre, era = users["fields"]
    assert (genre["field"], genre["filled"], genre["distinct"], genre["top"]) == ("liked_genre", 30, 2, [["drama", 20], ["comedy", 10]])
    assert genre["fill_rate"] == pytest.approx(30 / USERS) and era["fill_rate"] == 0.0
    assert users["empty_answers"] == 10  # no genre and no era: the whole answer said nothing
    auc = users["auc"]
    assert auc["users"] == USERS
    assert auc["auc"] == pytest.approx((20 * 1.0 + 20 * 0.5) / USERS)
    assert auc["ci"][0] < auc["auc"] < auc["ci"][1]
    assert auc["history_auc"] == pytest.approx(0.5)  # one-hot histories share nothing with held-out items
    (director,) = figures["items"]["fields"]
    assert director["filled"] == ITEMS // 2 and director["distinct"] == 3
    assert figures["held_out"] == {"users": USERS, "interactions": 4 * USERS}


def test_run_figures_count_failures_reasks_and_ignore_other_models(tmp_path):
    known = KnownRun(tmp_path, "oracle")
    with Journal(known.dir / ".llmaug" / "journal.jsonl") as journal:
        journal.append(entry("edges", "u0", "failed", error="liked = 42 is not a candidate number (1..10)",
                             raw='{"liked": 42, "disliked": 1}', reasks=2, tokens=(300, 30)))
        journal.append(entry("edges", "u1", "error", error="request failed after 3 retries: Timeout"))
        journal.append(entry("edges", "u2", "accepted", {"liked": known.liked["u2"], "disliked": known.disliked["u2"]}, reasks=1))
        journal.append(entry("edges", "u3", "accepted", {"liked": known.pools["u3"][0], "disliked": known.pools["u3"][1]}, model="other/model"))
    with (known.dir / ".llmaug" / "journal.jsonl").open("a") as fh:
        fh.write('{"key": "torn')
    figures = compute_figures(load_run(known.dir))
    run, edges = figures["run"], figures["run"]["tasks"]["edges"]
    assert (edges["accepted"], edges["failed"], edges["unanswered"]) == (USERS - 2, 1, 1)
    assert (edges["reasked_answers"], edges["reasks"]) == (2, 3)
    assert edges["input_tokens"] == 100 * (USERS - 3) + 300  # u0's and u1's latest entries replace their first
    assert edges["errors"] == [["liked = N is not a candidate number (N..N)", 1], ["request failed after N retries: Timeout", 1]]
    assert edges["failure_examples"] == [{"entity": "u0", "error": "liked = 42 is not a candidate number (1..10)",
                                          "reasks": 2, "raw": '{"liked": 42, "disliked": 1}'}]
    assert (edges["requested"], edges["seconds"], run["structured_output"]) == (USERS, 12.5, "json_schema")
    assert (run["journal_other_model_entries"], run["journal_unreadable_lines"]) == (1, 1)
    assert figures["edges"]["users"] == USERS - 2  # u3's other-model answer changed nothing
    assert figures["edges"]["picks"]["liked"]["rate"] == 1.0


# -- a real run through the CLI, judged by the CLI, seen in a browser ------------------------------
@pytest.fixture(scope="module")
def llm_run(tmp_path_factory) -> Path:
    """The tiny book dataset augmented through a real OpenAI-compatible server, three votes per user:
    every edge answer names the first and last displayed candidate, some users' answers are always
    invalid (failures with raw answers), and every profile is asked twice (prose first)."""
    root = tmp_path_factory.mktemp("report")
    directory = make_books(root / "data")
    config = root / "books.yaml"
    config.write_text(BOOKS_CONFIG, encoding="utf-8")

    def decide(n, messages):
        if prompt_schema(messages)["title"] == "EdgeChoice":
            return ("ok", json.dumps({"liked": 99, "disliked": 1})) if "Kaos" in messages[1]["content"] else ("ok", None)
        return ("ok", "I think this reader likes poetry!") if n == 1 else ("ok", json.dumps(good_answer(messages)))

    out = root / "shelf"
    with LoopbackLLM(Behaviour(decide=decide)) as server:
        result = invoke_llmaug("augment", "--dataset", str(directory), "--config", str(config), "--out", str(out), "--quiet",
                            "--model", "openai/stub-llm", "--api-base", server.base_url, "--votes", "3",
                            env={"OPENAI_API_KEY": "sk-test"})
    assert result.returncode == 0, result.stderr
    return out


# What must be on screen: the edge charts and table, the profile charts, the attribute table, the
# run table and the user search.
FIGURES = ["#edges svg.chart", "#edge-table", "#agreement-table", "#popularity-table", "#graph-table", "#profiles svg.chart",
           "#attributes table", "#run-table", "#user-search"]


def rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:]]


@pytest.mark.slow
def test_report_command_on_a_real_llm_run(llm_run):
    result = invoke_llmaug("report", str(llm_run), "--quiet")
    assert result.returncode == 0, result.stderr
    page, figures_file = llm_run / "report.html", llm_run / "report.json"
    assert f"wrote {page}" in result.stdout and str(figures_file) in result.stdout
    figures = json.loads(figures_file.read_text(encoding="utf-8"))
    manifest = json.loads((llm_run / "manifest.json").read_text(encoding="utf-8"))
    written = manifest["tasks"]
    tasks = figures["run"]["tasks"]
    for task in ("edges", "users", "items"):
        assert [tasks[task][k] for k in ("requested", "accepted", "failed", "reasks")] == \
               [written[task][k] for k in ("requested", "accepted", "failed", "reasked")]
    assert written["edges"]["failed"] > 0 and written["users"]["reasked"] == 40
    assert all('"liked": 99' in e["raw"] and "99 is not a candidate number" in e["error"] for e in tasks["edges"]["failure_examples"])
    assert figures["run"]["structured_output"] == manifest["llm"]["structured_output_used"]
    # The stub always likes the first displayed candidate and dislikes the last: every pick sits
    # at the list's two ends, each vote shows another candidate first, so no two votes agree.
    edges = figures["edges"]
    assert edges["users"] == written["edges"]["written"]
    assert edges["votes"]["users_without_majority"] == written["edges"]["no_majority"]
    assert [tasks["edges"][k] for k in ("requested", "accepted")] == [3 * 40, edges["votes"]["valid"]]
    assert edges["positions"]["liked"][0] == 1.0 and edges["positions"]["disliked"][-1] == 1.0
    assert max(edges["ranks"]["liked"]) < 1.0
    assert [a["agreement"] for a in edges["agreement"]] == [pytest.approx(1 / 3)]
    augedge = rows(llm_run / f"{llm_run.name}.augedge")
    assert len(augedge) == edges["users"] and {float(a) for *_, a in augedge} == {0.3333}
    assert "edges (" in result.stdout and "held-out share of the liked pick" in result.stdout
    assert "100% of the liked picks come from line 1 of 5 (shuffled order" in result.stdout


@pytest.mark.slow
def test_the_page_in_a_browser_shows_figures_and_a_user_and_requests_nothing(llm_run, tmp_path):
    out = tmp_path / "page" / "report.html"
    assert invoke_llmaug("report", str(llm_run), "--out", str(out), "--quiet").returncode == 0
    figures = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    name = llm_run.name
    pools = {user: pool.split() for user, pool in rows(llm_run / f"{name}.candidates")}
    held = {}
    for part in ("valid", "test"):
        for user, item, *_ in rows(llm_run / f"{name}.{part}.inter"):
            held.setdefault(user, set()).add(item)
    titles = {item: title for item, title, *_ in rows(llm_run / f"{name}.item")}
    edges = {user: (pos, neg) for user, pos, neg, _ in rows(llm_run / f"{name}.augedge")}
    # A user whose candidates include a held-out item, so every kind of mark is on show.
    user = next(u for u in sorted(edges) if held.get(u, set()) & set(pools[u]))

    with Chromium() as browser:
        page = browser.open(out.as_uri())
        shown = page.evaluate("""Object.fromEntries(%s.map(s => [s, [...document.querySelectorAll(s)]
                                 .map(e => e.checkVisibility() && e.getBoundingClientRect().width > 0)]))""" % json.dumps(FIGURES))
        assert all(shown[s] and all(shown[s]) for s in FIGURES), shown
        # hit rates, picks per displayed line, per base rank, held-out per rank, hit rate per agreement
        assert len(shown["#edges svg.chart"]) == 5
        graph = page.evaluate("document.getElementById('graph-table').innerText")
        training = figures["edges"]["graph"]["training"]
        assert f"{training['edges']:,}" in graph and f"{training['item_degree_gini']:.3f}" in graph
        table = page.evaluate("document.getElementById('edge-table').innerText")
        assert f"{100 * figures['edges']['picks']['liked']['rate']:.1f}%" in table
        assert f"{100 * figures['edges']['baselines']['random']['rate']:.1f}%" in table

        page.evaluate("document.getElementById('user-search').focus()")
        page.type(user)  # and Enter: the first match is the user
        view = page.evaluate("""(() => { const v = document.querySelector('#user-view [data-user]');
            return {user: v.dataset.user, visible: v.checkVisibility(), text: v.innerText,
                    pool: [...v.querySelectorAll('ol.candidates li')].map(li => [li.dataset.item,
                           [...li.querySelectorAll('.badge')].map(b => b.textContent)])}; })()""")
        assert view["user"] == user and view["visible"] and f"User {user}" in view["text"]
        liked, disliked = edges[user]
        expected = [[item, [b for b, on in (("liked", item == liked), ("disliked", item == disliked), ("held-out", item in held[user])) if on]]
                    for item in pools[user]]
        assert view["pool"] == expected
        assert titles[pools[user][0]] in view["text"]
        assert page.evaluate("location.hash") == f"#user={user}"
        page.screenshot(tmp_path / "page.png")
        assert page.requests == [] and page.csp_refusals == [] and page.script_errors == []

        # The check can fail: the same page with one image from the network is caught.
        leaky = tmp_path / "page" / "leaky.html"
        leaky.write_text(out.read_text(encoding="utf-8").replace("</body>", '<img src="http://example.invalid/x.png"></body>'),
                         encoding="utf-8")
        caught = browser.open(leaky.as_uri())
        assert caught.requests == ["http://example.invalid/x.png"] and caught.csp_refusals
    assert (tmp_path / "page.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_per_entity_views_are_sampled_past_the_limit_and_say_so(llm_run, tmp_path):
    out = tmp_path / "small.html"
    result = invoke_llmaug("report", str(llm_run), "--out", str(out), "--max-users", "7", "--max-items", "5", "--quiet")
    assert result.returncode == 0, result.stderr
    html = out.read_text(encoding="utf-8")
    assert "A random sample of 7 of 40 users" in html and "A random sample of 5 of 20 items" in html
    data = json.loads(html.split('<script type="application/json" id="report-data">')[1].split("</script>")[0])
    assert len(data["users"]) == 7 and len(data["items"]) == 5
    assert json.loads(out.with_suffix(".json").read_text())["run"]["tasks"]["users"]["accepted"] == 40  # figures: everyone


@pytest.mark.parametrize("make, message", [
    (lambda d: d, "is not a directory"),
    (lambda d: d.mkdir() or d, "is not an llmaug run (no manifest.json)"),
    (lambda d: (d / ".llmaug").mkdir(parents=True) or d, "unfinished llmaug run"),
])
def test_what_is_not_a_finished_run_gets_one_line_and_exit_2(tmp_path, make, message):
    run_dir = make(tmp_path / "not-a-run")
    result = invoke_llmaug("report", str(run_dir))
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "not-a-run" / "report.html").exists()
