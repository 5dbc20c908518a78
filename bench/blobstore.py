"""Blob store throughput against a raw baseline measured in the same run.

The baseline is what the disk and Python can do at best: copy the same bytes
with ``shutil.copyfileobj`` and fsync. The blob store also hashes (sha256) and
renames atomically; its ratio to the baseline is the figure to watch.

    .venv/bin/python bench/blobstore.py [--mb 512]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

from portal.storage import FileBlobStore


def _make_source(path: Path, size_mb: int) -> None:
    block = os.urandom(1024 * 1024)
    with path.open("wb") as out:
        for i in range(size_mb):
            out.write(i.to_bytes(8, "big") + block[8:])


def _raw_copy(source: Path, target: Path) -> float:
    start = time.perf_counter()
    with source.open("rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)
        dst.flush()
        os.fsync(dst.fileno())
    return time.perf_counter() - start


def _store_put(source: Path, store: FileBlobStore) -> tuple[float, int]:
    tracemalloc.start()
    start = time.perf_counter()
    with source.open("rb") as src:
        store.put_stream(src)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=512, help="size of the test file in MiB")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-blob-") as tmp:
        root = Path(tmp)
        source = root / "source.bin"
        _make_source(source, args.mb)
        raw_times, put_times, peaks = [], [], []
        for run in range(args.runs):
            raw_times.append(_raw_copy(source, root / f"copy-{run}.bin"))
            (root / f"copy-{run}.bin").unlink()
            store = FileBlobStore(root / f"store-{run}")
            elapsed, peak = _store_put(source, store)
            put_times.append(elapsed)
            peaks.append(peak)
            shutil.rmtree(root / f"store-{run}")
        raw, put = min(raw_times), min(put_times)
        print(f"file size            {args.mb} MiB, best of {args.runs} runs")
        print(f"raw copy + fsync     {args.mb / raw:8.1f} MiB/s")
        print(f"blob store put       {args.mb / put:8.1f} MiB/s (sha256 + fsync + atomic rename)")
        print(f"ratio put/raw time   {put / raw:8.2f}x")
        print(f"peak Python memory   {max(peaks) / 1024 / 1024:8.2f} MiB")


if __name__ == "__main__":
    main()
