"""The corpus of bad inputs (docs/BAD-INPUTS.md): each case a small dataset or config built here,
and what a user gets for it. A mistake: one line, exit 2, and --out (and the dataset) exactly as
they were. Rows llmaug can safely leave out: a warning, a clean run whose manifest counts them,
and a dataset RecBole loads."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Optional, Sequence, Union

import pandas as pd
import pytest

from conftest import invoke_llmaug
from full_disk import full_disk
from llmaug.errors import ConfigError, DatasetError
from llmaug.input.usable import check_rankable
from llmaug.journal import journal_key
from outcome import load_with_recbole, tree
from tiny_dataset import BOOKS_CONFIG, make_books

NAME = "books"


class Shelf:
    """The tiny book dataset (40 readers, 20 books, no .user), its config, and an --out beside it."""

    def __init__(self, root: Path) -> None:
        self.dir = make_books(root / "data", name=NAME)
        self.config = root / "books.yaml"
        self.config.write_text(BOOKS_CONFIG.replace("candidate_epochs: 2", "candidate_epochs: 1"), encoding="utf-8")
        self.out = root / "out"

    def path(self, suffix: str) -> Path:
        return self.dir / f"{NAME}.{suffix}"

    def lines(self, suffix: str) -> list[str]:
        return self.path(suffix).read_text(encoding="utf-8").split("\n")[:-1]

    def write(self, suffix: str, content: Union[Sequence[str], bytes]) -> None:
        data = content if isinstance(content, bytes) else "".join(line + "\n" for line in content).encode()
        self.path(suffix).write_bytes(data)

    def edit(self, suffix: str, line: int, change: Callable[[list[str]], None]) -> None:
        """Change the tab-separated fields of one line (1 = the header)."""
        lines = self.lines(suffix)
        fields = lines[line - 1].split("\t")
        change(fields)
        lines[line - 1] = "\t".join(fields)
        self.write(suffix, lines)

    def add_user_file(self) -> None:
        self.write("user", ["reader:token\tage:token", *(f"r{u}\t{20 + u}" for u in range(40))])

    def configure(self, old: str, new: str) -> None:
        text = self.config.read_text(encoding="utf-8")
        assert old in text
        self.config.write_text(text.replace(old, new), encoding="utf-8")

    def augment(self, *flags: str, full_disk_at: Optional[str] = None) -> subprocess.CompletedProcess:
        """Run llmaug's CLI in this process; with ``full_disk_at``, on a disk that is full from the
        first write under --out whose path matches that pattern (tests/full_disk.py)."""
        args = ["augment", "--dataset", str(self.dir), "--config", str(self.config), "--out", str(self.out), "--quiet", *flags]
        if full_disk_at is None:
            return invoke_llmaug(*args)
        with full_disk(self.out, full_disk_at):
            return invoke_llmaug(*args)


@pytest.fixture
def shelf(tmp_path) -> Shelf:
    return Shelf(tmp_path)


def _set(index: int, value: str) -> Callable[[list[str]], None]:
    def change(fields: list[str]) -> None:
        fields[index] = value
    return change


def _read_only_parent(s: Shelf) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes through file permissions; '--out under a regular file' is the unwritable --out root meets")
    locked = s.out.parent / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    s.out = locked / "out"


def _out_under_a_file(s: Shelf) -> None:
    notes = s.out.parent / "notes.txt"
    notes.write_text("not a directory")
    s.out = notes / "out"


# (case, how to make it, extra flags, what the one line says)
MISTAKES: list[tuple[str, Callable[[Shelf], None], tuple[str, ...], str]] = [
    ("item id twice with different fields", lambda s: s.write("item", [*s.lines("item"), "b3\tAnother book\t1900\tnovel\tAna Ruiz"]), (),
     "books.item lists book 'b3' twice with different fields (lines 5 and 22)"),
    ("user id twice with different fields", lambda s: (s.add_user_file(), s.write("user", [*s.lines("user"), "r1\t99"])), (),
     "books.user lists reader 'r1' twice with different fields"),
    ("no interaction names a listed item", lambda s: s.write("item", [s.lines("item")[0], *("x" + l for l in s.lines("item")[1:])]), (),
     "none of the"),
    ("empty .inter", lambda s: s.write("inter", b""), (), "books.inter is empty"),
    ("empty .item", lambda s: s.write("item", b""), (), "books.item is empty"),
    ("empty .user", lambda s: s.write("user", b""), (), "books.user is empty"),
    ("header-only .inter", lambda s: s.write("inter", s.lines("inter")[:1]), (), "books.inter has a header but no interactions"),
    ("header-only .item", lambda s: s.write("item", s.lines("item")[:1]), (), "books.item has a header but lists no items"),
    ("header field without a type", lambda s: s.edit("inter", 1, _set(0, "reader")), (), "header field 'reader' has no type"),
    ("header field with a wrong type", lambda s: s.edit("item", 1, _set(0, "book:tokn")), (), "'tokn' is not a RecBole type"),
    ("header names a field twice", lambda s: s.edit("item", 1, _set(2, "name:token")), (), "books.item header names 'name' twice"),
    ("row with more fields than the header", lambda s: s.edit("item", 6, lambda f: f.append("extra")), (),
     "books.item line 6 has 6 tab-separated fields but its header names 5"),
    ("row with fewer fields than the header", lambda s: s.edit("inter", 4, lambda f: f.pop()), (),
     "books.inter line 4 has 3 tab-separated fields but its header names 4"),
    ("bytes that are not UTF-8", lambda s: s.write("item", "\n".join(s.lines("item")).encode("latin-1", "replace") + b"\n"), (),
     "books.item line 2 is not UTF-8 (byte 0xdc)"),
    ("a NUL byte", lambda s: s.edit("inter", 3, _set(2, "4\0")), (), "books.inter line 3 holds a NUL byte"),
    ("a carriage return inside a line", lambda s: s.edit("item", 4, _set(1, "Cien años\rde soledad")), (),
     "books.item line 4 holds a carriage return that ends no line"),
    ("a 1 MB title", lambda s: s.edit("item", 2, _set(1, "W" * 1_000_000)), (), "more than 131,072 characters"),
    ("a title starting with a double quote", lambda s: s.edit("item", 3, _set(1, '"Heroes" (1996)')), (),
     "books.item line 3: name:token_seq starts with a double quote"),
    ("a float column holding text", lambda s: s.edit("inter", 2, _set(2, "five")), (),
     "books.inter line 2: score:float holds 'five', not a number"),
    ("an id RecBole reads as missing", lambda s: s.edit("inter", 2, _set(0, "NA")), (),
     "books.inter line 2: reader 'NA' cannot be an id, RecBole reads it as a missing value"),
    ("item id typed differently from .inter", lambda s: s.edit("item", 1, _set(0, "book:token_seq")), (),
     "books.item declares book:token_seq but books.inter has book:token"),
    ("config: title names a float column", lambda s: (s.edit("item", 1, _set(2, "published:float")), s.configure("title: name", "title: published")),
     (), "fields.title = 'published' is a float column of books.item; it must be token or token_seq"),
    ("config: item_text names a vector", lambda s: (s.write("item", [s.lines("item")[0] + "\tvec:float_seq", *(l + "\t0.1 0.2" for l in s.lines("item")[1:])]),
                                                    s.configure("title: name", "title: name\n  item_text: [vec]")), (),
     "fields.item_text = 'vec' is a float_seq column of books.item"),
    ("config: an unknown base recommender (fails after --out is claimed)", lambda s: (s.out.mkdir(), s.configure("domain: book", "domain: book\ncandidate_model: NoSuchRec")), (),
     "candidate_model 'NoSuchRec' is not a RecBole model"),
    ("catalogue smaller than --candidates", lambda s: None, ("--candidates", "50"), "candidates = 50 but the training split holds only 20 items"),
    ("a single user", lambda s: s.write("inter", [s.lines("inter")[0], *(l for l in s.lines("inter") if l.startswith("r0\t"))]), (),
     "books.inter has usable interactions of one user only ('r0')"),
    (".item knows one of the items", lambda s: s.write("item", s.lines("item")[:2]), (),
     "every user in books.inter has interacted with every item books.item lists (1) (after skipping"),
    ("--out equal to the dataset directory", lambda s: setattr(s, "out", s.dir), (), "overlaps the dataset directory"),
    ("--out inside the dataset directory", lambda s: setattr(s, "out", s.dir / "augmented"), (), "overlaps the dataset directory"),
    ("--out under a regular file", _out_under_a_file, (), "notes.txt is not a directory"),
    ("--out in a read-only directory", _read_only_parent, (), "no permission to write in"),
]


@pytest.mark.parametrize("make, flags, message", [pytest.param(m, f, msg, id=case) for case, m, f, msg in MISTAKES])
def test_a_mistake_gets_one_line_exit_2_and_leaves_everything_as_it_was(shelf, make, flags, message):
    make(shelf)
    out_before, dataset_before = tree(shelf.out), tree(shelf.dir)
    result = shelf.augment(*flags)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmaug: error: "), result.stderr
    assert message in lines[0]
    assert tree(shelf.out) == out_before and tree(shelf.dir) == dataset_before


@pytest.mark.slow
def test_rows_llmaug_can_leave_out_are_skipped_counted_and_announced(shelf, monkeypatch, tmp_path):
    shelf.add_user_file()
    header, *users = shelf.lines("user")
    listed = [u for u in users if not u.startswith(("r38\t", "r39\t"))]
    shelf.write("user", [header, *listed, *listed[:3]])  # three repeated rows; r38 and r39 unlisted
    items = shelf.lines("item")
    shelf.write("item", [*items, items[5], items[5]])  # two repeats of b4's row
    inter = shelf.lines("inter")
    everything = [f"r40\tb{b}\t4\t1600000000" for b in range(20)]  # a reader of every book
    nearly = [f"r41\tb{b}\t4\t1600000000" for b in range(19)]  # trains on 17 books: 3 unseen, fewer than 5 candidates
    shelf.write("inter", [*inter, "r1\tb99\t3\t1600000000", "r2\tb98\t3\t1600000000", *everything, *nearly])  # two unknown books
    result = shelf.augment()
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("llmaug: warning: ")]
    assert warnings == [
        "llmaug: warning: skipped 2 repeated rows of books.item",
        "llmaug: warning: skipped 3 repeated rows of books.user",
        "llmaug: warning: skipped 2 interactions whose item books.item does not list",
        "llmaug: warning: users who have interacted with every item: 1; their 20 interactions are skipped "
        "(RecBole cannot sample a negative item for them)",
        "llmaug: warning: users of books.inter with no row in books.user: 3; their source columns stay empty",
        "llmaug: warning: users with fewer than 5 items they have not interacted with: 1; they get no candidate pool "
        "and no augmented edge",
    ]
    manifest = json.loads((shelf.out / "manifest.json").read_text())
    assert manifest["input"] == {
        "skipped_rows": {"item_duplicate": 2, "user_duplicate": 3, "inter_unknown_item": 2, "inter_user_with_every_item": 20},
        "users_with_every_item": 1, "users_without_user_row": 3, "users_without_candidate_pool": 1,
    }
    out_users = (shelf.out / "out.user").read_text(encoding="utf-8").splitlines()
    assert len(out_users) == 42 and any(line.startswith("r39\t\t") for line in out_users)
    assert len((shelf.out / "out.item").read_text(encoding="utf-8").splitlines()) == 21
    pools = dict(line.split("\t") for line in (shelf.out / "out.candidates").read_text().splitlines()[1:])
    trained = {}
    for line in (shelf.out / "out.train.inter").read_text().splitlines()[1:]:
        reader, book = line.split("\t")[:2]
        trained.setdefault(reader, set()).add(book)
    assert "r41" not in pools and len(pools) == 40
    assert all(len(set(pool.split())) == 5 and not set(pool.split()) & trained[reader] for reader, pool in pools.items())
    monkeypatch.chdir(tmp_path)
    dataset = load_with_recbole(shelf.out)
    assert dataset.user_num == 42 and dataset.item_num == 21  # 41 readers, 20 books, RecBole's padding
    assert len(dataset.inter_feat) == sum(manifest["split"].values()) == len(inter) - 1 + len(nearly)


def test_the_base_recommender_is_not_asked_to_rank_what_it_cannot():
    # Tiny, dense data: too few items to fill a pool, or a user with no item left to sample as a negative.
    source = SimpleNamespace(uid_field="reader", iid_field="book", name=NAME)
    train = pd.DataFrame({"reader": ["r0", "r0", "r0", "r1", "r2"], "book": ["b0", "b1", "b2", "b1", "b2"]})
    with pytest.raises(ConfigError, match="candidates = 4 but the training split holds only 3 items"):
        check_rankable(train, source, 4)
    with pytest.raises(DatasetError, match="user 'r0' has interacted, in the training split, with every item anyone has \\(3\\)"):
        check_rankable(train, source, 2)
    check_rankable(train[train.reader != "r0"], source, 2)


@pytest.mark.slow
def test_a_dataset_too_small_for_any_pool_or_profile_still_gives_what_recbole_loads(tmp_path, monkeypatch):
    # Found by the fuzzer: every user has one unseen item (no pool of 2) and every genre is "the", so
    # no profile says anything; a header-only .useremb made RecBole fail on max() of nothing.
    shelf = Shelf(tmp_path)
    shelf.write("inter", ["reader:token\tbook:token\tscore:float\twhen:float", "r0\tb1\t1\t1", "r0\tb1\t1\t1", "r1\tb0\t1\t1", "r2\tb0\t1\t1"])
    shelf.write("item", ["book:token\tname:token_seq\tpublished:token\ttags:token_seq", "b0\tthe\t1999\tthe", "b1\tthe\t1999\tthe"])
    shelf.configure("user_profile: [liked_genre, disliked_genre, preferred_era, favourite_author]", "user_profile: [liked_genre, favourite_author]")
    result = shelf.augment("--candidates", "2")
    assert result.returncode == 0, result.stderr
    assert "users with fewer than 2 items they have not interacted with: 3;" in result.stderr
    assert not (shelf.out / "out.candidates").exists() and not (shelf.out / "out.useremb").exists()
    monkeypatch.chdir(tmp_path)
    assert len(load_with_recbole(shelf.out).inter_feat) == 4


@pytest.mark.slow
def test_crlf_a_bom_and_a_header_only_user_file_run_cleanly(shelf, monkeypatch, tmp_path):
    shelf.write("inter", "".join(line + "\r\n" for line in shelf.lines("inter")).encode())
    shelf.write("item", b"\xef\xbb\xbf" + shelf.path("item").read_bytes())
    shelf.write("user", ["reader:token\tage:token"])
    result = shelf.augment()
    assert result.returncode == 0, result.stderr
    assert "llmaug: warning: users of books.inter with no row in books.user: 40;" in result.stderr
    train = (shelf.out / "out.train.inter").read_bytes()
    assert b"\r" not in train and train.startswith(b"reader:token\tbook:token\tscore:float\twhen:float\n")
    assert (shelf.out / "out.item").read_bytes().startswith(b"book:token\tname:token_seq")
    monkeypatch.chdir(tmp_path)
    assert load_with_recbole(shelf.out).item_num == 21


@pytest.mark.slow
def test_the_most_lopsided_split_leaves_no_user_without_training_rows(shelf, monkeypatch, tmp_path):
    # RecBole's ratio split gives every user at least one training row, however few rows they have.
    shelf.write("inter", [shelf.lines("inter")[0], *(f"q{u}\tb{(u + k) % 20}\t3\t{1600000000 + k}" for u in range(30) for k in range(1 + u % 3))])
    shelf.configure("domain: book", "domain: book\nsplit: [0.01, 0.5, 0.5]")
    result = shelf.augment("--train-fraction", "0.01", "--candidates", "2")
    assert result.returncode == 0, result.stderr
    train = (shelf.out / "out.train.inter").read_text().splitlines()[1:]
    assert {line.split("\t")[0] for line in train} == {f"q{u}" for u in range(30)}
    monkeypatch.chdir(tmp_path)
    load_with_recbole(shelf.out)


@pytest.mark.slow
def test_a_journal_from_another_model_and_an_older_llmaug(shelf):
    first = shelf.augment()
    assert first.returncode == 0, first.stderr
    state = shelf.out / ".llmaug"
    entries = [json.loads(line) for line in (state / "journal.jsonl").read_text().splitlines()]
    older = []
    for n, entry in enumerate(entries):
        if n < 3:  # beyond use: an accepted answer without its record
            older.append({k: v for k, v in entry.items() if k != "record"})
        else:  # what an older llmaug might have written: no re-ask or token accounting
            older.append({k: v for k, v in entry.items() if k not in ("reasks", "input_tokens", "output_tokens", "cost", "raw")})
    other_model = [{**e, "model": "openai/gpt-4o-mini", "key": journal_key(e["task"], e["entity"], "openai/gpt-4o-mini", e["request_hash"])}
                   for e in entries[:5]]
    (state / "journal.jsonl").write_text("".join(json.dumps(e) + "\n" for e in older + other_model))
    (state / "run.json").write_text(json.dumps({"llmaug": "0.0.9", "source": str(shelf.dir.resolve())}) + "\n")

    again = shelf.augment()
    assert again.returncode == 0, again.stderr
    warnings = [line for line in again.stderr.splitlines() if line.startswith("llmaug: warning: ")]
    assert warnings == [
        f"llmaug: warning: 3 lines of {state / 'journal.jsonl'} are unreadable or not in this llmaug's format; their requests are asked again",
        f"llmaug: warning: {state / 'journal.jsonl'} holds answers from openai/gpt-4o-mini; this run asks offline "
        "and leaves them there for a run with that model",
    ]
    manifest = json.loads((shelf.out / "manifest.json").read_text())
    assert sum(t["from_earlier_run"] for t in manifest["tasks"].values()) == len(entries) - 3
    assert sum(t["requested"] for t in manifest["tasks"].values()) == len(entries)
    assert manifest["journal_unreadable_lines"] == 3
    assert "openai/gpt-4o-mini" in (state / "journal.jsonl").read_text()


def _one_error_line(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmaug: error: cannot write "), result.stderr
    assert all(f in lines[0] for f in ("No space left on device", *fragments)), lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("pattern", ["*", ".llmaug/journal.jsonl"], ids=["at the first write", "at the first answer"])
def test_a_full_disk_before_the_first_answer_leaves_out_as_it_was(shelf, pattern):
    _one_error_line(shelf.augment(full_disk_at=pattern), "--out is left as it was found")
    assert not shelf.out.exists()
    shelf.out.mkdir()
    _one_error_line(shelf.augment(full_disk_at=pattern), "--out is left as it was found")
    assert tree(shelf.out) == {}


@pytest.mark.slow
def test_a_full_disk_after_answers_keeps_them_and_fresh_puts_an_earlier_run_back(shelf):
    late = shelf.augment(full_disk_at=".llmaug/staging/*.user.*")  # the .user file is written once every task is done
    _one_error_line(late, "run the same command again to continue")
    assert (shelf.out / ".llmaug" / "journal.jsonl").stat().st_size > 0 and not (shelf.out / "manifest.json").exists()
    resumed = shelf.augment()
    assert resumed.returncode == 0, resumed.stderr
    manifest = json.loads((shelf.out / "manifest.json").read_text())
    assert all(t["from_earlier_run"] == t["requested"] for t in manifest["tasks"].values())

    finished = tree(shelf.out)
    _one_error_line(shelf.augment("--fresh", full_disk_at=".llmaug/journal.jsonl"), "--out is left as it was found")
    assert tree(shelf.out) == finished
