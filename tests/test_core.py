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
