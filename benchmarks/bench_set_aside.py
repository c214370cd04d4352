"""What ``Split.set_aside`` costs on a large split: seconds to write and read the parts, and the
memory the write adds while it runs (resident memory sampled every 10 ms around it).

The synthetic dataset of ``bench_scale`` at the given size is read and split as ``llmaug augment``
does; the dataset is generated into ``--scratch`` once and reused.

    python benchmarks/bench_set_aside.py [--users 1M] [--scratch DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from bench_scale import ITEMS, parse_size
from synthetic import write_synthetic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="1M")
    parser.add_argument("--scratch", type=Path, help="where the dataset goes (default: a temporary directory)")
    args = parser.parse_args()

    from llmaug.config import load_settings
    from llmaug.dataset import load_source
    from llmaug.input.usable import usable_interactions
    from llmaug.monitor.timer import rss_bytes
    from llmaug.split import split_interactions

    users = parse_size(args.users)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="llmaug-set-aside-"))
    name = f"synthetic{users}"
    if not (scratch / name).exists():
        write_synthetic(scratch, users, ITEMS.get(users, max(1_000, users // 10)), name=name)
    settings = load_settings()
    source = load_source(str(scratch / name), settings)
    usable = usable_interactions(source)
    source = source.split_off()
    split = split_interactions(usable.inter, source.uid_field, settings.split, settings.seed)
    usable = usable.split_off()

    peak = [rss_bytes()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.01):
            peak[0] = max(peak[0], rss_bytes())

    threading.Thread(target=sample, daemon=True).start()
    before = peak[0]
    started = time.perf_counter()
    with split.set_aside(scratch):
        written = time.perf_counter() - started
        writing_peak, aside = peak[0], rss_bytes()
        peak[0] = aside
        reading = time.perf_counter()
    read = time.perf_counter() - reading
    stop.set()
    rows = sum(len(frame) for frame in split.parts().values())
    gb = 2**30
    print(f"{rows:,} rows in the parts; resident before {before / gb:.2f} GB")
    print(f"write {written:.1f} s, peak {writing_peak / gb:.2f} GB (+{(writing_peak - before) / gb:.2f} GB); "
          f"while set aside {aside / gb:.2f} GB")
    print(f"read back {read:.1f} s, peak {peak[0] / gb:.2f} GB; after {rss_bytes() / gb:.2f} GB")


if __name__ == "__main__":
    main()
