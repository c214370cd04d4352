"""What ``Split.set_aside`` costs on a large split: seconds to write and read the parts, and the
memory the write adds while it runs (resident memory sampled every 10 ms around it).

The synthetic dataset of ``bench_scale`` at the given size is read and split as ``llmaug augment``
does; the dataset is generated into ``--scratch`` once and reused.

    python benchmarks/bench_set_aside.py [--users 1M] [--scratch DIR]
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
from pathlib import Path

from bench_scale import catalogue_size, parse_size
from synthetic import write_synthetic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="1M")
    parser.add_argument("--scratch", type=Path, help="where the dataset goes (default: a temporary directory)")
    args = parser.parse_args()

    from llmaug.config import load_settings
    from llmaug.dataset import load_source
    from llmaug.input.usable import usable_interactions
    from llmaug.monitor.timer import Timer, rss_bytes
    from llmaug.split import split_interactions

    users = parse_size(args.users)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="llmaug-set-aside-"))
    name = f"synthetic{users}"
    if not (scratch / name).exists():
        write_synthetic(scratch, users, catalogue_size(users), name=name)
    settings = load_settings()
    source = load_source(str(scratch / name), settings)
    usable = usable_interactions(source)
    source = source.split_off()
    split = split_interactions(usable.inter, source.uid_field, settings.split, settings.seed)
    usable = usable.split_off()

    timer = Timer(sample_seconds=0.01)
    before = rss_bytes()
    aside = split.set_aside(scratch)
    with timer("write"):
        aside.__enter__()  # the write and the read-back timed apart: the block between them is the rest of a run
    while_aside = rss_bytes()
    with timer("read back"):
        aside.__exit__(None, None, None)
    rows = sum(len(frame) for frame in split.parts().values())
    gb = 2**30
    print(f"{rows:,} rows in the parts; resident before {before / gb:.2f} GB; "
          f"{_pickled_bytes(split.parts()) / rows:.1f} bytes a row on disk")
    print(f"write {timer.wall['write']:.1f} s, peak {timer.peak_rss_mb['write'] / 1024:.2f} GB "
          f"(+{timer.peak_rss_mb['write'] / 1024 - before / gb:.2f} GB); while set aside {while_aside / gb:.2f} GB")
    print(f"read back {timer.wall['read back']:.1f} s, peak {timer.peak_rss_mb['read back'] / 1024:.2f} GB; after {rss_bytes() / gb:.2f} GB")


def _pickled_bytes(parts: dict) -> int:
    """The size of the parts as ``set_aside`` writes them, counted as they are written."""

    class Counter:
        size = 0

        def write(self, data) -> None:
            self.size += memoryview(data).nbytes  # protocol 5 hands large arrays over as buffers

    counter = Counter()
    pickle.dump(tuple(parts.values()), counter, protocol=pickle.HIGHEST_PROTOCOL)
    return counter.size


if __name__ == "__main__":
    main()
