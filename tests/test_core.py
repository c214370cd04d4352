"""The pure core: answer validation, placeholders, JSON extraction, the journal, prompt rendering."""

from __future__ import annotations

import json

import pytest

from llmaug.candidates.order import consensus, display_orders
from llmaug.config import load_settings
from llmaug.errors import ConfigError
from llmaug.journal import Journal
from llmaug.records import clean_text, describe
from llmaug.rendering import PromptRenderer
from llmaug.tasks import AnswerError, EdgeTask, ItemAttributeTask, Job, json_object
from llmaug.prompt_data import PromptData


def edge_job() -> Job:
    return Job("edges", "u1", {"history": [], "candidates": []}, candidates=("i1", "i2", "i3"), history=frozenset({"i9"}))


@pytest.mark.parametrize(
    "answer, problem",
    [
        ('{"liked": 4, "disliked": 1}', "not a candidate number"),
        ('{"liked": 0, "disliked": 1}', "not a candidate number"),
        ('{"liked": 2, "disliked": 2}', "two different"),
        ('{"liked": "two", "disliked": 1}', "liked"),
        ('{"liked": 1}', "disliked"),
        ('{"liked": 1, "disliked": 2, "why": "x"}', "why"),
        ("I would pick the second one.", "no JSON object"),
    ],
)
def test_edge_answers_must_name_two_offered_candidates(answer, problem):
    with pytest.raises(AnswerError, match=problem):
        EdgeTask.validate(None, edge_job(), answer)


def test_a_valid_edge_answer_maps_numbers_to_item_ids_even_inside_prose():
    record = EdgeTask.validate(None, edge_job(), 'Sure! ```json\n{"liked": 3, "disliked": 1}\n```')
    assert (record["liked"], record["disliked"], record["shown"]) == ("i3", "i1", [3, 1])


def votes_data(order: str, votes: int, pool=("a", "b", "c", "d", "e")) -> PromptData:
    settings = load_settings(overrides={"candidate_order": order, "votes": votes})
    items = {i: {"title": i.upper()} for i in (*pool, "h")}
    return PromptData(settings, None, items, {"u1": ["h"], "u2": ["h"]}, {}, {"u1": list(pool), "u2": list(pool)})


def test_shuffled_votes_show_each_pool_in_orders_of_their_own_and_answers_map_back_to_items():
    jobs = EdgeTask(votes_data("shuffled", 3)).jobs()
    assert [(j.entity, j.vote) for j in jobs] == [("u1", 0), ("u1", 1), ("u1", 2), ("u2", 0), ("u2", 1), ("u2", 2)]
    for job in jobs:
        # What the prompt lists is the pool in the job's order, and the order is a permutation of the ranks.
        assert sorted(job.order) == [1, 2, 3, 4, 5]
        assert job.candidates == tuple("abcde"[rank - 1] for rank in job.order)
        assert [c["title"] for c in job.context["candidates"]] == [c.upper() for c in job.candidates]
    u1 = jobs[:3]
    assert len({j.candidates[0] for j in u1}) == 3  # every vote puts another candidate on the first line
    assert u1[0].order != jobs[3].order  # users get orders of their own
    assert u1[0].context["history"] is u1[1].context["history"]  # the votes share their prompt's history part
    record = EdgeTask(votes_data("shuffled", 3)).validate(u1[1], {"liked": 1, "disliked": 5})
    assert (record["liked"], record["disliked"]) == (u1[1].candidates[0], u1[1].candidates[4])
    assert record["order"] == list(u1[1].order) and record["shown"] == [1, 5]


def test_a_vote_keeps_its_order_whatever_the_run_asks_besides():
    three = EdgeTask(votes_data("shuffled", 3)).jobs()
    one = EdgeTask(votes_data("shuffled", 1)).jobs()
    assert [j.order for j in one] == [three[0].order, three[3].order]  # asking more votes re-asks no earlier one
    assert [j.order for j in EdgeTask(votes_data("shuffled", 3)).jobs()] == [j.order for j in three]
    ranked = EdgeTask(votes_data("ranked", 1)).jobs()
    assert [j.candidates for j in ranked] == [tuple("abcde")] * 2
    assert display_orders(2, "shuffled", 0, "u", 3)[2] in {(1, 2), (2, 1)}  # two candidates: two orders, then repeats


def test_votes_need_orders_of_their_own():
    with pytest.raises(ConfigError, match="candidate_order: shuffled"):
        load_settings(overrides={"candidate_order": "ranked", "votes": 3})


@pytest.mark.parametrize("picks, expected", [
    ([(0, "a", "b"), (1, "a", "c"), (2, "d", "b")], ("a", "b", 2 / 3)),
    ([(2, "c", "d"), (0, "a", "b"), (1, "b", "a")], ("a", "b", 1 / 3)),  # no majority: the earliest vote's picks
    ([(0, "a", "b")], ("a", "b", 1 / 3)),                                # two votes of three were invalid
    ([(0, "a", "b"), (1, "a", "b"), (2, "a", "b")], ("a", "b", 1.0)),
])
def test_the_edge_is_the_majority_and_its_agreement_the_weaker_picks_share(picks, expected):
    edge = consensus(picks, asked=3)
    assert (edge.liked, edge.disliked, edge.agreement) == pytest.approx(expected)


def test_majorities_that_like_and_dislike_one_item_make_no_edge():
    assert consensus([(0, "a", "b"), (1, "a", "c"), (2, "c", "a"), (3, "d", "a")], asked=4) is None
    assert consensus([], asked=3) is None


def test_sequences_are_each_target_with_the_items_before_it_in_time_order():
    import pandas as pd

    from llmaug.sequences import sequence_parts
    from llmaug.split import Split

    def rows(*triples):
        return pd.DataFrame(triples, columns=["u", "i", "t"])

    split = Split(train=rows(("a", "x", "3"), ("a", "w", "1"), ("a", "y", "2"), ("b", "z", "5")),
                  valid=rows(("a", "v", "4")), test=rows(("a", "q", "9"), ("b", "p", "6")))
    parts = sequence_parts(split, "u", "i", "t", max_length=3)
    as_tuples = {part: list(frame.itertuples(index=False, name=None)) for part, frame in parts.items()}
    assert list(parts["train"].columns) == ["u", "i", "i_list"]
    assert as_tuples == {
        "train": [("a", "y", "w"), ("a", "x", "w y")],  # w (t=1) starts a's sequence: nothing before it to predict from
        "valid": [("a", "v", "w y x")],
        "test": [("a", "q", "y x v"), ("b", "p", "z")],  # the list keeps the three latest
    }


def test_a_split_set_aside_is_on_disk_meanwhile_and_reads_back_as_it_was(tmp_path):
    import pandas as pd

    from llmaug.split import split_interactions

    users, items = ["u1", "u2", "u3"] * 20, [f"i{k % 7}" for k in range(60)]
    inter = pd.DataFrame({"u": users, "i": items, "t": [float(k) if k % 9 else float("nan") for k in range(60)]},
                         index=pd.RangeIndex(2, 62))
    split = split_interactions(inter, "u", [0.8, 0.1, 0.1], seed=3)
    before = {name: frame.copy() for name, frame in split.parts().items()}
    with split.set_aside(tmp_path):
        assert split.train is split.valid is split.test is None
        assert not list(tmp_path.iterdir())  # unlinked: gone with the process, however it ends
    for name, frame in split.parts().items():
        pd.testing.assert_frame_equal(frame, before[name], check_exact=True)
    assert split.train["u"].iloc[0] is split.test["u"][split.test["u"] == split.train["u"].iloc[0]].iloc[0]  # one str per id, as read
    with pytest.raises(KeyError), split.set_aside(tmp_path):
        raise KeyError("the base model failed")
    assert split.train is None and not list(tmp_path.iterdir())


def test_placeholders_are_not_knowledge():
    assert [clean_text(v) for v in ("Unknown", "N/A", " none. ", "-", "", None, "not specified")] == [None] * 7
    assert clean_text(["Drama", "unknown", "Crime"]) == "Drama, Crime"
    assert clean_text("Jean\tRenoir\n") == "Jean Renoir"
    assert describe({"director": None, "country": "France"}) == "country: France"


def test_json_object_skips_braces_that_are_not_json():
    assert json_object('Use {curly} braces: {"a": 1}') == {"a": 1}
    with pytest.raises(AnswerError):
        json_object("{not json at all")


def test_journal_keeps_the_latest_entry_and_survives_a_torn_line(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal(path) as journal:
        journal.append({"key": "a", "status": "error"})
        journal.append({"key": "b", "status": "accepted"})
    with path.open("a") as fh:
        fh.write('{"key": "c", "sta')
    reopened = Journal(path)
    assert set(reopened.entries()) == {"a", "b"} and reopened.skipped_lines == 1
    with reopened:
        reopened.append({"key": "a", "status": "accepted"})
    entries = Journal(path).entries()
    assert entries["a"]["status"] == "accepted" and len(entries) == 2
    assert path.read_text().splitlines()[-1] == json.dumps({"key": "a", "status": "accepted"})


def test_rendering_is_sandboxed_and_strict(tmp_path):
    settings = load_settings()
    data = PromptData(settings, None, {"i1": {"title": "{{ 7*7 }} {% raw %}", "year": "1999"}}, {}, {})
    task = ItemAttributeTask(data)
    (job,) = task.jobs()
    messages = PromptRenderer(None, "movie").render(task, job)
    assert "Movie: {{ 7*7 }} {% raw %}" in messages[1]["content"]
    assert json.loads(messages[1]["content"].splitlines()[-1])["title"] == "ItemAttributes"

    (tmp_path / "items.jinja").write_text("{% block user %}{{ item.__class__.__mro__ }}{% endblock %}")
    from llmaug.errors import ConfigError

    with pytest.raises(ConfigError, match="unsafe"):
        PromptRenderer(tmp_path, "movie").render(task, job)


@pytest.mark.parametrize(
    "model, api_base, self_hosted, mode",
    [
        ("openai/gpt-4o-mini", None, False, "json_schema"),          # litellm's table says yes
        ("openai/my-finetune", None, False, "off"),                   # unknown and hosted: the prompt alone
        ("openai/gemma", "http://127.0.0.1:8089/v1", True, "json_schema"),  # any OpenAI-compatible server
        ("hosted_vllm/Qwen2.5-7B", "http://127.0.0.1:8000/v1", True, "json_schema"),
        ("ollama_chat/llama3.1", None, True, "json_schema"),
    ],
)
def test_auto_structured_output_reaches_self_hosted_servers(model, api_base, self_hosted, mode):
    from llmaug.providers.llm import import_litellm
    from llmaug.providers.servers import is_self_hosted
    from llmaug.providers.structured import resolve_mode

    litellm = import_litellm()
    assert is_self_hosted(litellm, model, api_base) is self_hosted
    assert resolve_mode("auto", litellm, model, api_base) == mode
    assert resolve_mode("off", litellm, model, api_base) == "off"


@pytest.mark.parametrize(
    "message, refused",
    [
        ("Unable to generate parser for this template. Automatic parser generation failed: JSON schema error at #", True),  # llama.cpp
        ("Unsupported parameter: 'response_format' is not supported with this model.", True),  # OpenAI
        ("litellm.UnsupportedParamsError: ollama does not support parameters: {'response_format': ...}", True),
        ("Grammar compilation failed", True),  # vLLM / xgrammar
        ("request (520 tokens) exceeds the available context size (512 tokens)", False),
        ("Invalid value for 'temperature'", False),
    ],
)
def test_a_refused_response_format_is_told_from_other_bad_requests(message, refused):
    from llmaug.providers.structured import rejects_format

    assert rejects_format(message) is refused


def test_edge_schema_offers_exactly_the_candidate_numbers():
    schema = EdgeTask.answer_schema(None, edge_job())
    assert schema["properties"]["liked"]["enum"] == schema["properties"]["disliked"]["enum"] == [1, 2, 3]
    assert "enum" not in EdgeTask.schema.model_json_schema()["properties"]["liked"]  # the shared schema is untouched
