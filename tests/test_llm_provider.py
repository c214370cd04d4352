"""`llmaug augment` against a real OpenAI-compatible HTTP server on 127.0.0.1, pointed at exactly as
a user points it at vLLM: `--model openai/<name> --api-base http://127.0.0.1:<port>/v1`."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import IN_A_TERMINAL, LLMAUG, invoke_llmaug
from llm_server import Behaviour, LoopbackLLM, good_answer, prompt_schema
from tiny_dataset import BOOKS_CONFIG

from llmaug.candidates.order import display_orders

pytestmark = pytest.mark.slow  # every test here runs llmaug end to end against a server

KEY = "sk-test-9f8e7d6c5b4a39281706"


@pytest.fixture
def server():
    with LoopbackLLM() as llm:
        yield llm


def augment(server: LoopbackLLM, books, out: Path, *extra: str, **kwargs) -> subprocess.CompletedProcess:
    directory, config = books
    return invoke_llmaug(
        "augment", "--dataset", str(directory), "--config", str(config), "--out", str(out), "--quiet",
        "--model", "openai/stub-llm", "--api-base", server.base_url, *extra,
        env={"OPENAI_API_KEY": KEY, **kwargs.pop("env", {})}, **kwargs,
    )


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def journal(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / ".llmaug" / "journal.jsonl").read_text().splitlines() if line.strip()]


def test_all_three_tasks_end_to_end_with_the_papers_sampling(server, books, tmp_path):
    out = tmp_path / "shelf"
    result = augment(server, books, out)
    assert result.returncode == 0, result.stderr
    tasks = manifest(out)["tasks"]
    assert tasks["edges"]["accepted"] == tasks["users"]["accepted"] == 40
    assert tasks["items"]["accepted"] == 20
    assert manifest(out)["provider"] == "litellm" and manifest(out)["model"] == "openai/stub-llm"
    assert set(manifest(out)["template_hashes"]) == {"edges", "users", "items"}
    assert len(server.requests) == 100 and max(server.per_prompt.values()) == 1
    body = server.requests[0]["body"]
    assert (body["temperature"], body["top_p"]) == (0.6, 0.1)
    # The server's answers reached the dataset: edges name the first and last candidate as the
    # prompt listed them, in the user's shuffled order (candidates' base ranks, recorded).
    edges = (out / "shelf.augedge").read_text(encoding="utf-8").splitlines()[1:]
    pools = dict(line.split("\t") for line in (out / "shelf.candidates").read_text(encoding="utf-8").splitlines()[1:])
    orders = {e["entity"]: e["record"]["order"] for e in journal(out) if e["task"] == "edges"}
    assert len(edges) == 40 and sum(order[0] == 1 for order in orders.values()) < 20  # not the base model's first
    for user, pos, neg, agreement in (line.split("\t") for line in edges):
        pool, order = pools[user].split(), orders[user]
        assert order == list(display_orders(len(pool), "shuffled", manifest(out)["settings"]["seed"], user, 1)[0])
        assert (pos, neg, agreement) == (pool[order[0] - 1], pool[order[-1] - 1], "1.0")
    assert "stub author" in (out / "shelf.item").read_text(encoding="utf-8")


def test_rate_limits_and_server_errors_are_retried(server, books, tmp_path):
    def flaky(n, messages):
        if n == 1:
            return (429, "slow down", {"Retry-After": "1"})
        if n == 2:
            return (500, "upstream exploded")
        return ("ok", None)

    server.behaviour = Behaviour(decide=flaky)
    out = tmp_path / "flaky"
    started = time.monotonic()
    result = augment(server, books, out, "--tasks", "items", "--num-retries", "3")
    assert result.returncode == 0, result.stderr
    assert manifest(out)["tasks"]["items"]["accepted"] == 20
    assert set(server.per_prompt.values()) == {3}
    assert time.monotonic() - started > 1.0  # Retry-After was honoured


def test_a_hanging_request_times_out_and_is_asked_again(server, books, tmp_path):
    server.behaviour = Behaviour(decide=lambda n, m: ("hang", 30) if n == 1 else ("ok", None))
    out = tmp_path / "hang"
    result = augment(server, books, out, "--tasks", "items", "--timeout", "1", "--num-retries", "2", "--concurrency", "20")
    assert result.returncode == 0, result.stderr
    assert manifest(out)["tasks"]["items"]["accepted"] == 20
    assert set(server.per_prompt.values()) == {2}


def test_requests_that_never_succeed_are_counted_and_asked_again_on_rerun(server, books, tmp_path):
    server.behaviour = Behaviour(decide=lambda n, m: (503, "down for maintenance"))
    out = tmp_path / "down"
    result = augment(server, books, out, "--tasks", "items", "--num-retries", "0")
    assert result.returncode == 0, result.stderr
    counts = manifest(out)["tasks"]["items"]
    assert (counts["accepted"], counts["failed"], counts["unanswered"]) == (0, 0, 20)
    assert "unanswered" in result.stderr
    server.behaviour = Behaviour()
    again = augment(server, books, out, "--tasks", "items", "--num-retries", "0")
    assert again.returncode == 0, again.stderr
    assert manifest(out)["tasks"]["items"]["accepted"] == 20


def test_prose_and_unoffered_items_are_reasked_then_recorded_as_failures(server, books, tmp_path):
    def misbehave(n, messages):
        schema = prompt_schema(messages)
        if schema["title"] == "EdgeChoice":
            user = messages[1]["content"]
            if "Kaos" in user:  # some users: always name an item that was not offered
                return ("ok", json.dumps({"liked": 99, "disliked": 1}))
            return ("ok", json.dumps({"liked": 42, "disliked": 1})) if n == 1 else ("ok", None)
        return ("ok", "I think this reader likes poetry!") if n == 1 else ("ok", "Sure: " + json.dumps(good_answer(messages)))

    server.behaviour = Behaviour(decide=misbehave)
    out = tmp_path / "noisy"
    result = augment(server, books, out, "--tasks", "edges,users", "--max-reasks", "2")
    assert result.returncode == 0, result.stderr
    tasks = manifest(out)["tasks"]
    assert tasks["users"]["accepted"] == 40 and tasks["users"]["reasked"] == 40
    failed = tasks["edges"]["failed"]
    assert failed > 0 and tasks["edges"]["accepted"] == 40 - failed
    failures = [e for e in journal(out) if e["status"] == "failed"]
    assert len(failures) == failed
    assert all("99 is not a candidate number" in e["error"] and '"liked": 99' in e["raw"] for e in failures)
    reask = next(r for r in server.requests if len(r["body"]["messages"]) > 2)["body"]["messages"]
    assert reask[-1]["role"] == "user" and "invalid" in reask[-1]["content"]
    lines = (out / "noisy.augedge").read_text(encoding="utf-8").splitlines()
    assert len(lines) - 1 == tasks["edges"]["accepted"]


def test_a_committed_journal_rebuilds_the_dataset_without_asking_again(server, books, tmp_path):
    first = tmp_path / "first"
    assert augment(server, books, first, "--tasks", "edges,items").returncode == 0
    rebuilt = tmp_path / "rebuilt"
    (rebuilt / ".llmaug").mkdir(parents=True)
    for state in [*first.glob(".llmaug/candidates-*.json"), first / ".llmaug" / "journal.jsonl"]:
        (rebuilt / ".llmaug" / state.name).write_bytes(state.read_bytes())
    server.requests.clear()
    result = augment(server, books, rebuilt, "--tasks", "edges,items")
    assert result.returncode == 0, result.stderr
    assert server.requests == []
    assert (rebuilt / "rebuilt.augedge").read_text(encoding="utf-8") == (first / "first.augedge").read_text(encoding="utf-8")


def test_kill_9_then_resume_repeats_no_finished_request(server, books, tmp_path):
    """Three edge votes per user among the requests: a finished vote is not asked again either.
    Chunks of 7 users: the kill comes in the edges' second chunk, and the resumed run reads the
    first chunk's answers back at their journal offsets."""
    server.behaviour = Behaviour(latency=0.15)
    directory, books_config = books
    config = tmp_path / "chunked.yaml"
    config.write_text(books_config.read_text() + "\nchunk_size: 7\n", encoding="utf-8")
    out = tmp_path / "killed"
    command = [*LLMAUG, "augment", "--dataset", str(directory), "--config", str(config), "--out", str(out), "--quiet",
               "--model", "openai/stub-llm", "--api-base", server.base_url, "--concurrency", "4", "--votes", "3",
               "--min-agreement", "0.5"]
    process = subprocess.Popen(command, env={**os.environ, "OPENAI_API_KEY": KEY}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal_file = out / ".llmaug" / "journal.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not journal_file.exists() or journal_file.read_text().count("\n") < 30):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    with journal_file.open("a") as fh:  # a torn last line, as a kill in mid-write leaves it
        fh.write('{"key": "torn')
    before = [json.loads(line) for line in journal_file.read_text().splitlines()[:-1] if line.strip()]
    assert 30 <= len(before) < 180 and not (out / "manifest.json").exists()
    finished_before = dict(server.per_prompt)

    resumed = invoke_llmaug(*command[len(LLMAUG):], env={"OPENAI_API_KEY": KEY})
    assert resumed.returncode == 0, resumed.stderr
    counts = manifest(out)["tasks"]
    assert sum(t["accepted"] for t in counts.values()) == 180 and counts["edges"]["requested"] == 120
    assert sum(t["from_earlier_run"] for t in counts.values()) >= len(before)
    assert manifest(out)["journal_unreadable_lines"] == 1
    # The stub names the first and last line, and each vote shows another candidate first: no edge
    # has half of its votes behind both picks, and min_agreement 0.5 drops every one, counted.
    edges = counts["edges"]
    assert (edges["written"], edges["no_majority"] + edges["below_min_agreement"]) == (0, 40)
    assert not (out / f"{out.name}.augedge").exists()
    # Every prompt was answered, and at most the few in flight at the kill were sent twice.
    assert len(server.per_prompt) == 180
    repeated = [k for k, n in server.per_prompt.items() if n > 1]
    assert len(repeated) <= 4 and all(k in finished_before for k in repeated)


def test_the_api_key_never_reaches_logs_journal_or_files(server, books, tmp_path):
    server.behaviour = Behaviour(decide=lambda n, m: ("ok", "prose") if n == 1 else ("ok", None))
    out = tmp_path / "secret"
    result = augment(server, books, out, "--tasks", "users,items")
    assert result.returncode == 0, result.stderr
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"  # the key was used...
    assert KEY not in result.stdout + result.stderr                            # ...and written nowhere
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path

    server.behaviour = Behaviour(decide=lambda n, m: (401, f"Incorrect API key provided: {KEY}"))
    denied = augment(server, books, tmp_path / "denied", "--tasks", "items")
    assert denied.returncode == 2 and "Traceback" not in denied.stderr
    assert "AuthenticationError" in denied.stderr and KEY not in denied.stderr
    assert len(denied.stderr.strip().splitlines()) == 1


def test_titles_are_data_not_template_code(server, books, tmp_path):
    out = tmp_path / "inject"
    result = augment(server, books, out, "--tasks", "items")
    assert result.returncode == 0, result.stderr
    sent = [r["body"]["messages"][1]["content"] for r in server.requests]
    assert any("Kaos {{ 7*7 }}" in text for text in sent)
    assert not any("Kaos 49" in text for text in sent)


def test_prompt_override_directory_and_render_command(server, books, tmp_path):
    directory, config = books
    custom = tmp_path / "my-prompts"
    custom.mkdir()
    (custom / "items.jinja").write_text(
        "{% block user %}Tell me about the {{ domain }} '{{ item.title }}'.\n{{ output_schema }}{% endblock %}", encoding="utf-8"
    )
    shown = invoke_llmaug("prompts", "render", "--dataset", str(directory), "--config", str(config), "--task", "items",
                       "--id", "b8", "--prompts", str(custom))
    assert shown.returncode == 0, shown.stderr
    assert "--- user ---\nTell me about the book 'Kaos {{ 7*7 }}'." in shown.stdout and "--- system ---" not in shown.stdout

    out = tmp_path / "custom"
    result = augment(server, books, out, "--tasks", "items", "--prompts", str(custom))
    assert result.returncode == 0, result.stderr
    assert all(r["body"]["messages"][0]["content"].startswith("Tell me about the book") for r in server.requests)

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "items.jinja").write_text("{% block user %}{{ item.title }} {{ no_such_variable }}{% endblock %}")
    failed = augment(server, books, tmp_path / "broken-out", "--tasks", "items", "--prompts", str(broken))
    assert failed.returncode == 2 and "no_such_variable" in failed.stderr and "Traceback" not in failed.stderr


def test_dry_run_estimates_without_sending(server, books, tmp_path):
    out = tmp_path / "dry"
    result = augment(server, books, out, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert server.requests == []
    assert "edges" in result.stdout and "unpriced" in result.stdout and not (out / "manifest.json").exists()

    directory, config = books
    def priced(*extra: str) -> dict[str, list[str]]:
        result = invoke_llmaug("augment", "--dataset", str(directory), "--config", str(config), "--out", str(tmp_path / "priced"),
                               "--quiet", "--model", "openai/gpt-4o-mini", "--dry-run", *extra)
        assert result.returncode == 0, result.stderr
        assert float(result.stdout.split("total cost: $")[1]) > 0
        return {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:5]}

    one, three = priced(), priced("--votes", "3")
    assert int(one["edges"][1]) == 40 and int(one["items"][1]) == 20
    assert int(three["edges"][1]) == 120 and three["items"] == one["items"]  # k votes: k requests per user, k times the cost
    assert float(three["edges"][4]) == pytest.approx(3 * float(one["edges"][4]), rel=0.05)


# llmaug as started from a terminal, where Ctrl-C sends SIGINT to a process whose handler is the
# default. A suite run as a shell background job (`cmd &` in a script) passes SIGINT down
# *ignored*, and Python then never raises KeyboardInterrupt: restore the terminal's default, so
# the test checks llmaug's handling and not how the suite was launched.
def test_ctrl_c_stops_cleanly_and_says_how_to_resume(server, books, tmp_path):
    # Four answers, then every request hangs: the run cannot finish on its own before the
    # interrupt arrives, however slow or fast the machine is.
    served = itertools.count()
    server.behaviour = Behaviour(decide=lambda n, messages: ("ok", None) if next(served) < 4 else ("hang", 120))
    directory, config = books
    out = tmp_path / "interrupted"
    process = subprocess.Popen(
        [*IN_A_TERMINAL, "augment", "--dataset", str(directory), "--config", str(config), "--out", str(out), "--quiet",
         "--model", "openai/stub-llm", "--api-base", server.base_url, "--concurrency", "2"],
        env={**os.environ, "OPENAI_API_KEY": KEY}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    journal_file = out / ".llmaug" / "journal.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not journal_file.exists() or journal_file.read_text().count("\n") < 4):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()  # an ignored Ctrl-C must fail the test, not leave the run hanging
    assert process.returncode == 130
    assert "run the same command again" in stderr and "Traceback" not in stderr
    assert sum(entry["status"] == "accepted" for entry in journal(out)) == 4  # every answer received is kept


def test_a_self_hosted_model_gets_the_schema_with_the_offered_numbers_and_a_patient_timeout(server, books, tmp_path):
    out = tmp_path / "hosted"
    result = augment(server, books, out, "--tasks", "edges,users")
    assert result.returncode == 0, result.stderr
    formats = {r["body"]["response_format"]["json_schema"]["name"]: r["body"]["response_format"] for r in server.requests}
    edge_schema = formats["EdgeChoice"]["json_schema"]["schema"]
    assert edge_schema["properties"]["liked"]["enum"] == edge_schema["properties"]["disliked"]["enum"] == [1, 2, 3, 4, 5]
    profile_schema = formats["UserProfile"]["json_schema"]["schema"]
    assert all(any(o.get("maxLength") for o in field["anyOf"]) for field in profile_schema["properties"].values())
    llm = manifest(out)["llm"]
    assert (llm["structured_output_used"], llm["self_hosted"], llm["timeout_s"], llm["concurrency"]) == ("json_schema", True, 600, 16)


@pytest.mark.parametrize("mode, sent", [("off", None), ("json_object", {"type": "json_object"})])
def test_structured_output_can_be_chosen(server, books, tmp_path, mode, sent):
    out = tmp_path / mode
    result = augment(server, books, out, "--tasks", "items", "--structured-output", mode)
    assert result.returncode == 0, result.stderr
    assert all(r["body"].get("response_format") == sent for r in server.requests)
    assert manifest(out)["llm"]["structured_output_used"] == mode


def test_a_server_that_refuses_response_format_gets_one_warning_and_the_prompt_alone(server, books, tmp_path):
    server.behaviour = Behaviour(refuse_response_format=True)
    out = tmp_path / "plain"
    result = augment(server, books, out, "--tasks", "items,edges", "--concurrency", "4")
    assert result.returncode == 0, result.stderr
    assert all(t["accepted"] == t["requested"] for t in manifest(out)["tasks"].values())
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "refused response_format" in warnings[0] and "not supported" in warnings[0]
    llm = manifest(out)["llm"]
    assert llm["structured_output_used"] == "off" and "not supported" in llm["structured_output_fallback"]
    refused = [r for r in server.requests if "response_format" in r["body"]]
    assert 1 <= len(refused) <= 4  # only the requests in flight when the first refusal came back
    assert len(server.requests) - len(refused) == 60

    server.requests.clear()  # the fallback keeps the journal keys: a re-run asks nothing again
    again = augment(server, books, out, "--tasks", "items,edges")
    assert again.returncode == 0 and server.requests == []


def test_a_priced_model_gets_response_format_and_its_cost_is_counted(server, books, tmp_path):
    out = tmp_path / "priced"
    result = augment(server, books, out, "--tasks", "items", "--model", "openai/gpt-4o-mini")
    assert result.returncode == 0, result.stderr
    body = server.requests[0]["body"]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["title"] == "ItemAttributes"
    counts = manifest(out)["tasks"]["items"]
    assert counts["accepted"] == 20 and counts["input_tokens"] > 0 and counts["cost_usd"] > 0
    assert manifest(out)["cost_usd"] == pytest.approx(counts["cost_usd"])


def test_fallback_model_answers_when_the_primary_keeps_failing(server, books, tmp_path):
    server.behaviour = Behaviour(failing_models=frozenset({"broken-llm"}))
    out = tmp_path / "fallback"
    config = tmp_path / "fallback.yaml"
    config.write_text(BOOKS_CONFIG + "fallbacks: [openai/stub-llm]\nnum_retries: 1\n")
    result = invoke_llmaug("augment", "--dataset", str(books[0]), "--config", str(config), "--out", str(out), "--quiet",
                        "--tasks", "items", "--model", "openai/broken-llm", "--api-base", server.base_url, env={"OPENAI_API_KEY": KEY})
    assert result.returncode == 0, result.stderr
    assert manifest(out)["tasks"]["items"]["accepted"] == 20
    models = {r["body"]["model"] for r in server.requests}
    assert models == {"broken-llm", "stub-llm"}


def test_embeddings_through_litellm_are_journaled_and_not_bought_twice(server, books, tmp_path):
    out = tmp_path / "embedded"
    args = ("--tasks", "users", "--embedding-model", "openai/stub-embedding")
    result = augment(server, books, out, *args)
    assert result.returncode == 0, result.stderr
    vectors = (out / "embedded.useremb").read_text().splitlines()[1:]
    assert len(vectors) == 40 and all(len(v.split("\t")[1].split()) == 16 for v in vectors)
    embedded = [r for r in server.requests if r["key"] == "embeddings"]
    # 20 item texts + the stub's single profile text (identical for every user, so bought once)
    assert sum(len(r["body"]["input"]) for r in embedded) == 20 + 1
    assert manifest(out)["embedding_model"] == "openai/stub-embedding"

    server.requests.clear()
    again = augment(server, books, out, *args)
    assert again.returncode == 0, again.stderr
    assert server.requests == []
    assert (out / "embedded.useremb").read_text().splitlines()[1:] == vectors


def test_a_changed_prompt_reasks_only_what_changed_and_fresh_reasks_all(server, books, tmp_path):
    out = tmp_path / "changed"
    assert augment(server, books, out, "--tasks", "users,items").returncode == 0
    assert len(server.requests) == 60
    custom = tmp_path / "items-only"
    custom.mkdir()
    (custom / "items.jinja").write_text("{% block user %}About '{{ item.title }}':\n{{ output_schema }}{% endblock %}")
    server.requests.clear()
    changed = augment(server, books, out, "--tasks", "users,items", "--prompts", str(custom))
    assert changed.returncode == 0, changed.stderr
    assert len(server.requests) == 20 and all("About '" in r["body"]["messages"][0]["content"] for r in server.requests)
    assert manifest(out)["tasks"]["users"]["from_earlier_run"] == 40

    server.requests.clear()
    fresh = augment(server, books, out, "--tasks", "users,items", "--prompts", str(custom), "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    assert len(server.requests) == 60


def test_a_changed_order_or_more_votes_ask_only_the_new_prompts(server, books, tmp_path):
    out = tmp_path / "orders"
    asked = []
    for flags in (["--votes", "3"], [], ["--candidate-order", "ranked"], ["--votes", "3"]):
        server.requests.clear()
        result = augment(server, books, out, "--tasks", "edges", *flags)
        assert result.returncode == 0, result.stderr
        asked.append(len(server.requests))
    # Three votes; vote 0 alone (its order unchanged: nothing new); ranked (new prompts); the three again.
    assert asked == [120, 0, 40, 0]
    assert manifest(out)["tasks"]["edges"]["from_earlier_run"] == 120


def test_a_prompt_the_model_refuses_fails_alone_without_stopping_the_run(server, books, tmp_path):
    def refuse_kaos(n, messages):
        if "Kaos" in messages[1]["content"]:
            return (400, "This model's maximum context length is 8 tokens. Please reduce the length of the messages.")
        return ("ok", None)

    server.behaviour = Behaviour(decide=refuse_kaos)
    out = tmp_path / "refused"
    result = augment(server, books, out, "--tasks", "items")
    assert result.returncode == 0, result.stderr
    counts = manifest(out)["tasks"]["items"]
    assert (counts["accepted"], counts["failed"]) == (19, 1)
    (failure,) = [e for e in journal(out) if e["status"] == "failed"]
    assert failure["entity"] == "b8" and "ContextWindowExceededError" in failure["error"]


def test_replicas_share_the_work_and_a_failing_one_is_routed_around(server, books, tmp_path):
    """Two servers of one model; the first breaks after its tenth request (HTTP 500 from then on)."""
    broken_after = 10
    server.behaviour = Behaviour(decide=lambda n, m: (500, "replica down") if len(server.requests) > broken_after else ("ok", None))
    with LoopbackLLM() as other:
        config = tmp_path / "replicas.yaml"
        config.write_text(BOOKS_CONFIG + f"replicas: ['{other.base_url}']\nnum_retries: 3\n")
        result = invoke_llmaug("augment", "--dataset", str(books[0]), "--config", str(config), "--out", str(tmp_path / "two"), "--quiet",
                            "--model", "openai/stub-llm", "--api-base", server.base_url, env={"OPENAI_API_KEY": KEY})
        assert result.returncode == 0, result.stderr
        counts = manifest(tmp_path / "two")["tasks"]
        assert sum(c["accepted"] for c in counts.values()) == 100 and sum(c["unanswered"] for c in counts.values()) == 0
        answered_first = {r["key"] for r in server.requests[:broken_after]}
        assert len(server.requests) > broken_after  # it was in use when it broke, and was asked again after
        # Every prompt answered exactly once: the ten by the first server, the rest (its failures too) by the second.
        assert len(answered_first) == broken_after and not answered_first & set(other.per_prompt)
        assert len(answered_first | set(other.per_prompt)) == 100 and max(other.per_prompt.values()) == 1
        assert manifest(tmp_path / "two")["llm"]["concurrency"] == 32  # 16 per server that does not report its slots
