"""The pure core: answer validation, placeholders, JSON extraction, the journal, prompt rendering."""

from __future__ import annotations

import json

import pytest

from llmaug.config import load_settings
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
    assert record == {"liked": "i3", "disliked": "i1"}


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
