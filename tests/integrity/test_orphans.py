"""A killed assembler leaves no processes behind (issue 19): its document worker, forked from it
for one package (issue 23), exits as soon as it is gone. Before issue 19, a `portal worker`
killed with SIGKILL left the worker, the forkserver and the resource tracker for good."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portal.packages.assembly.document_worker import document_pool

ASSEMBLER = """
import os, sys, time
from portal.packages.assembly.document_worker import document_pool

if __name__ == "__main__":
    with document_pool() as pool:
        print(pool.submit(time.sleep, 120).pid, flush=True)  # the document worker's pid
        time.sleep(120)
"""


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_document_worker_ends_with_a_killed_assembler(tmp_path: Path) -> None:
    script = tmp_path / "assembler.py"
    script.write_text(ASSEMBLER)
    assembler = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, start_new_session=True
    )
    worker = 0
    try:
        assert assembler.stdout is not None
        worker = int(assembler.stdout.readline())
        assert _parent(worker) == assembler.pid  # forked from it: no forkserver between
        assert _running(worker)

        os.kill(assembler.pid, signal.SIGKILL)  # the assembler alone, as the OOM killer does
        assembler.wait(10)

        deadline = time.monotonic() + 15
        while _running(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(worker), "the document worker outlived its assembler"
    finally:
        if worker and _running(worker):
            os.kill(worker, signal.SIGKILL)
        if assembler.poll() is None:
            assembler.kill()
            assembler.wait()


def test_a_document_worker_exits_once_it_has_answered() -> None:
    """The worker is forked for its work and gone when the answer is in: it holds copies of
    the assembler's file descriptors (another package's gpg pipes among them), and a worker
    that stayed would keep those gpg processes from seeing the end of their input."""
    with document_pool() as pool:
        worker = pool.submit(os.getpid)
        pid = worker.result()
        assert pid == worker.pid != os.getpid()
        deadline = time.monotonic() + 15
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(pid)
        failing = pool.submit(int, "not a number")
        with pytest.raises(ValueError, match="invalid literal"):
            failing.result()


def test_a_document_worker_that_never_answers_is_stopped_at_the_time_limit() -> None:
    """A renderer stuck for good would hold the assembling thread for good: past the limit
    the worker is killed and the assembly gets an error it reports (the package fails)."""
    with document_pool() as pool:
        stuck = pool.submit(time.sleep, 120)
        pid = stuck.pid
        assert pid is not None and _running(pid)
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="no answer within 1 s and was stopped"):
            stuck.result(timeout=1)
        assert time.monotonic() - started < 60
        assert not _running(pid)
        quick = pool.submit(os.getpid)
        assert quick.result(timeout=60) == quick.pid  # an answer in time is returned as before
