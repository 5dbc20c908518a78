"""Blob store throughput against a raw baseline measured in the same run.

The baseline is what the disk and Python can do at best: copy the same bytes
with ``shutil.copyfileobj`` and fsync. The blob store also hashes (sha256, in a
thread that reads the bytes back as they are written) and renames atomically; its
ratio to the baseline is the figure to watch. A third side, sha256 alone (reading the
same file and hashing it, nothing written), is the put's floor where the disk writes
faster than sha256 runs. Both copying sides start each run after an ``os.sync()``, so
neither pays for what the other wrote or deleted (on a filesystem mounted with
``discard``, the commit after deleting the other side's copy trims it), and they take
turns going first. Printed: wall and CPU seconds of each side and the ratios,
each as min / median of the runs (CPU seconds hold on a shared machine, wall
seconds do not), the load average before and after, and the peak Python memory.

    .venv/bin/python bench/blobstore.py [--mb 512] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from portal.storage import FileBlobStore, file_sha256


def _make_source(path: Path, size_mb: int) -> None:
    block = os.urandom(1024 * 1024)
    with path.open("wb") as out:
        for i in range(size_mb):
            out.write(i.to_bytes(8, "big") + block[8:])


def _cpu() -> float:
    """CPU seconds (user + system) of this process, all its threads."""
    times = os.times()
    return times.user + times.system


def _timed(work: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of ``work``."""
    cpu, start = _cpu(), time.perf_counter()
    work()
    return time.perf_counter() - start, _cpu() - cpu


def _raw_copy(source: Path, target: Path) -> None:
    with source.open("rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)
        dst.flush()
        os.fsync(dst.fileno())


def _store_put(source: Path, store: FileBlobStore) -> None:
    with source.open("rb") as src:
        store.put_stream(src)


def _min_median(values: list[float]) -> str:
    return f"{min(values):6.2f} / {statistics.median(values):6.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=512, help="size of the test file in MiB")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-blob-") as tmp:
        root = Path(tmp)
        source = root / "source.bin"
        _make_source(source, args.mb)
        os.sync()
        raw: list[tuple[float, float]] = []
        put: list[tuple[float, float]] = []
        peak = [0]

        def raw_side(run: int) -> None:
            copy = root / f"copy-{run}.bin"
            raw.append(_timed(lambda: _raw_copy(source, copy)))
            copy.unlink()

        def put_side(run: int) -> None:
            store = FileBlobStore(root / f"store-{run}")
            tracemalloc.start()
            put.append(_timed(lambda: _store_put(source, store)))
            peak[0] = max(peak[0], tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            shutil.rmtree(root / f"store-{run}")

        # The put's floor where the disk outruns the hash: read and hash, nothing written.
        hashed = [_timed(lambda: file_sha256(source)) for _ in range(args.runs)]
        for run in range(args.runs):
            # Each side starts on a quiet disk (what the other deleted is discarded and its
            # journal committed first), and they take turns going first.
            for side in (raw_side, put_side) if run % 2 == 0 else (put_side, raw_side):
                os.sync()
                side(run)
    wall_ratios = [p[0] / r[0] for p, r in zip(put, raw, strict=True)]
    cpu_ratios = [p[1] / r[1] for p, r in zip(put, raw, strict=True)]
    print(f"file size            {args.mb} MiB, {args.runs} runs (min / median)")
    print(f"raw copy + fsync     wall {_min_median([r[0] for r in raw])} s, "
          f"CPU {_min_median([r[1] for r in raw])} s")  # fmt: skip
    print(f"blob store put       wall {_min_median([p[0] for p in put])} s, "
          f"CPU {_min_median([p[1] for p in put])} s (sha256 + fsync + atomic rename)")  # fmt: skip
    print(f"throughput           raw {args.mb / min(r[0] for r in raw):8.1f} MiB/s, "
          f"put {args.mb / min(p[0] for p in put):8.1f} MiB/s (best)")  # fmt: skip
    print(
        f"ratio put/raw wall   {_min_median(wall_ratios)}  (per run: "
        + " ".join(f"{value:.2f}" for value in wall_ratios)
        + ")"
    )
    print(f"ratio put/raw CPU    {_min_median(cpu_ratios)}")
    hash_wall, hash_cpu = [h[0] for h in hashed], [h[1] for h in hashed]
    print(f"sha256 alone         wall {_min_median(hash_wall)} s, "
          f"CPU {_min_median(hash_cpu)} s (read + hash, nothing written)")  # fmt: skip
    hash_ratios = [h[0] / r[0] for h, r in zip(hashed, raw, strict=True)]
    print(f"ratio sha256/raw wall {_min_median(hash_ratios)}  (the put's floor: it hashes every "
          "byte, which no copy can hide when the disk is faster than the hash)")  # fmt: skip
    print(f"peak Python memory   {peak[0] / 1024 / 1024:8.2f} MiB")
    after = os.getloadavg()
    print("load average         before " + " ".join(f"{v:.2f}" for v in load_before)
          + ", after " + " ".join(f"{v:.2f}" for v in after))  # fmt: skip


if __name__ == "__main__":
    main()
