"""The fuzzer (docs/BAD-INPUTS.md): random but plausible atomic datasets, mutated the ways files go
wrong (headers, rows, encodings, config), and one invariant. llmaug either finishes and plain
RecBole loads what it wrote, or exits 2 with one line and leaves --out and the dataset as they
were: never a traceback, never a hang.

A few examples run with the suite; the long run is

    LLMAUG_FUZZ_EXAMPLES=400 python -m pytest -q tests/test_fuzz_inputs.py --hypothesis-show-statistics
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import invoke_llmaug
from outcome import load_with_recbole, tree

pytestmark = pytest.mark.slow  # each example runs llmaug end to end on a generated dataset

EXAMPLES = int(os.environ.get("LLMAUG_FUZZ_EXAMPLES", "8"))
HANG = 300  # seconds; a run of these sizes takes a few
NAME = "fz"

HEADERS = {
    "inter": ["user_id:token", "item_id:token", "rating:float", "timestamp:float"],
    "item": ["item_id:token", "title:token_seq", "year:token", "genre:token_seq"],
    "user": ["user_id:token", "age:token", "gender:token"],
}
# Tokens real files hold by accident: what pandas reads as missing, RecBole's padding, quotes,
# separators RecBole splits on, non-ASCII, stray spaces.
ODD_TOKENS = ["NA", "null", "", "[PAD]", '"q"', "a:b", "x y", " u", "é1", "東", "#1", "0", "-1", "nan1"]
ODD_NUMBERS = ["", "nan", "4.5", "1e3", "five", "3,5", " 2", "inf"]
WORDS = ["the", "Night", "Über", "東京物語", "it's", 'say "hi"', "😀", "a:b", "&", "{{ 7*7 }}", "-", "x\x0by", "l\u2028m", "...", "Ⅻ"]
ODD_TITLES = ['"Heroes" (1996)', '"', "W" * 131_072, "W" * 131_073, "#"]


class Mess:
    """How much goes wrong in one example: at level 0 nothing, at 3 often. Hypothesis shrinks a
    failure towards level 0, the plainest dataset that still fails."""

    def __init__(self, draw) -> None:
        self.draw = draw
        self.level = draw(st.integers(0, 3))

    def odd(self, rarity: int) -> bool:
        """True about once in ``rarity / level`` draws. The trigger is a middle value: hypothesis
        draws the ends of a range far more often than their share, and shrinks towards 0."""
        if not self.level:
            return False
        top = max(1, rarity // self.level)
        return self.draw(st.integers(0, top)) == (top + 1) // 2

    def pick(self, plain: str, odd: list[str], rarity: int) -> str:
        return self.draw(st.sampled_from(odd)) if self.odd(rarity) else plain


# -- mutations of the files, as {suffix: [header fields, row fields...]} ----------------------------
def _untyped_field(files, draw):
    header = files[draw(st.sampled_from(sorted(files)))][0]
    k = draw(st.integers(0, len(header) - 1))
    header[k] = header[k].split(":")[0] + draw(st.sampled_from(["", ":tokn", ":float", ":token_seq", ":token:x"]))


def _ragged_row(files, draw):
    rows = files[draw(st.sampled_from(sorted(files)))]
    if len(rows) > 1:
        row = rows[draw(st.integers(1, len(rows) - 1))]
        if draw(st.booleans()):
            row.append("extra")
        else:
            row.pop()


def _repeated_rows(files, draw):
    rows = files[draw(st.sampled_from(sorted(files)))]
    if len(rows) > 1:
        rows.extend(draw(st.lists(st.sampled_from(rows[1:]), min_size=1, max_size=3)))


def _forgotten_items(files, draw):
    rows = files["item"]
    del rows[1 : 1 + draw(st.integers(1, max(1, len(rows) - 1)))]


def _header_only(files, draw):
    del files[draw(st.sampled_from(sorted(files)))][1:]


def _user_with_every_item(files, draw):
    items = {row[0] for row in files["item"][1:]}
    files["inter"].extend([["everyone", item, "3", "1600000000"] for item in sorted(items)])


def _unknown_items(files, draw):
    files["inter"].extend([[row[0], f"gone{k}", "3", "1600000000"] for k, row in enumerate(files["inter"][1:3])])


ROW_MUTATIONS: list[Callable] = [_untyped_field, _ragged_row, _repeated_rows, _forgotten_items, _header_only,
                                 _user_with_every_item, _unknown_items]


def _encode(lines: list[str], mess: Mess) -> bytes:
    """The file's bytes, sometimes as a Windows editor, an old tool or a broken copy left them."""
    ending = mess.pick("\n", ["\r\n", "\r\n", "\r"], 8)
    text = ending.join(lines) + mess.pick(ending, ["", ending * 2], 8)
    data = (mess.pick("", ["\ufeff"], 8) + text).encode("latin-1" if mess.odd(60) else "utf-8", "replace")
    if mess.odd(60):
        at = mess.draw(st.integers(0, len(data)))
        data = data[:at] + mess.draw(st.sampled_from([b"\0", b"\r", b"\xff", b"\n\n", b"\t"])) + data[at:]
    return data


@st.composite
def datasets(draw) -> dict:
    mess = Mess(draw)
    users = [mess.pick(f"u{k}", ODD_TOKENS, 40) for k in range(draw(st.integers(2, 9)))]
    items = [mess.pick(f"i{k}", ODD_TOKENS, 40) for k in range(draw(st.integers(3, 12)))]
    text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join)
    files = {suffix: [list(header)] for suffix, header in HEADERS.items()}
    for user in users:
        for item in draw(st.lists(st.sampled_from(items), min_size=1, max_size=len(items))):
            files["inter"].append([user, item, mess.pick(str(draw(st.integers(1, 5))), ODD_NUMBERS, 150),
                                   str(1_600_000_000 + draw(st.integers(0, 10**6)))])
    for item in items:
        files["item"].append([item, mess.pick(draw(text), ODD_TITLES, 40), mess.pick("1999", ["", "199x", "NA"], 10), draw(text)])
    for user in users:
        if not mess.odd(10):
            files["user"].append([user, mess.pick("24", ["", "NA"], 10), draw(st.sampled_from(["F", "M"]))])
    if not draw(st.booleans()):
        del files["user"]
    if mess.level:
        for mutate in draw(st.lists(st.sampled_from(ROW_MUTATIONS), max_size=mess.level - 1, unique=True)):
            mutate(files, draw)
    encoded = {suffix: _encode(["\t".join(row) for row in rows], mess) for suffix, rows in files.items()}
    if mess.odd(30):
        encoded[draw(st.sampled_from(sorted(encoded)))] = draw(st.sampled_from([b"", b"\n", b"\xef\xbb\xbf"]))  # a failed export
    title = mess.pick("title", ["year", "genre", "rating", "item_id", "missing"], 20)
    config = (f"domain: thing\nfields: {{title: {title}, year: year, genre: genre, user_demographics: [age, gender]}}\n"
              f"item_attributes: [maker]\nuser_profile: [liked_genre, era]\ncandidate_epochs: 1\n"
              f"candidates: {draw(st.sampled_from([2, 3, 5, 8]))}\n")
    if mess.odd(10):
        config += "split: [0.2, 0.4, 0.4]\n"
    flags = ["--train-fraction", "0.3"] if mess.odd(10) else []
    flags += draw(st.sampled_from([[], [], ["--tasks", "edges"], ["--tasks", "users,items"]]))
    return {"files": encoded, "config": config, "flags": flags}


@pytest.mark.timeout(0)  # pytest-timeout would bound all examples together; each run has its own HANG
@settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(datasets())
def test_llmaug_finishes_or_says_why_in_one_line(case: dict) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        directory = root / NAME
        directory.mkdir()
        for suffix, data in case["files"].items():
            (directory / f"{NAME}.{suffix}").write_bytes(data)
        config = root / "config.yaml"
        config.write_text(case["config"], encoding="utf-8")
        out = root / "out"
        dataset_before = tree(directory)
        # In this process (the CLI's own entry point; an exception shows as its traceback in stderr):
        # a hang dumps every thread's stack and ends the worker, which fails the test.
        faulthandler.dump_traceback_later(HANG, exit=True)
        try:
            result = invoke_llmaug("augment", "--dataset", str(directory), "--config", str(config), "--out", str(out), "--quiet",
                                   *case["flags"])
        finally:
            faulthandler.cancel_dump_traceback_later()
        assert "Traceback" not in result.stderr, result.stderr
        assert tree(directory) == dataset_before
        if result.returncode == 2:
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("llmaug: error: "), result.stderr
            assert not out.exists(), f"{lines[0]} left {sorted(tree(out) or {})}"
            event("exit 2: " + _gist(lines[0]))
            return
        assert result.returncode == 0, result.stderr
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        with contextlib.chdir(root):
            dataset = load_with_recbole(out)
        assert len(dataset.inter_feat) == sum(manifest["split"].values())
        event("exit 0" + (" with warnings" if "llmaug: warning:" in result.stderr else ""))


def _gist(line: str) -> str:
    """The kind of error, without the file name, line number or value that vary per example."""
    words = [w for w in line.removeprefix("llmaug: error: ").split() if not any(c.isdigit() for c in w) and "'" not in w and NAME not in w]
    return " ".join(words[:6])
