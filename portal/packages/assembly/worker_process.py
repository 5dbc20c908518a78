"""``portal worker`` as a child of ``portal run``: the embedded queue's consumer and the only
process that loads the signing key, so the web process never holds it.

The child is the same command an operator runs in production, started with this Python; it
ends with its parent (``atexit``, and on Linux the parent-death signal, so a killed
``portal run`` does not leave it behind).
"""

from __future__ import annotations

import atexit
import ctypes
import signal
import subprocess
import sys
from collections.abc import Mapping

__all__ = ["start_worker_process", "worker_argv"]

_PR_SET_PDEATHSIG = 1


def worker_argv(workers: int = 1) -> list[str]:
    """The command line of a ``portal worker`` run with this interpreter."""
    return [
        sys.executable,
        "-c",
        "from portal.cli import main; main()",
        "worker",
        "--workers",
        str(workers),
    ]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def start_worker_process(
    env: Mapping[str, str] | None = None, *, workers: int = 1
) -> subprocess.Popen[bytes]:
    """Start ``portal worker`` as a child process (settings from ``env``, default this
    process's environment); it is stopped when this process exits."""
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and command, no shell
        worker_argv(workers),
        env=None if env is None else dict(env),
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )

    def stop() -> None:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()

    atexit.register(stop)
    return child
