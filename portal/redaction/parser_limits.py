"""Limits around the parsers that read uploaded and imported files.

A small file can be made to cost minutes and gigabytes: a PDF whose few kilobytes of Flate
data inflate to a content stream of millions of operators keeps pdfminer busy for minutes
(its decoded-size limits in :mod:`portal.redaction.leakcheck` bound memory, not time).
:func:`run_bounded` runs such a parse in a child process with a wall-clock limit, a CPU-time
limit and an address-space limit, and turns any overrun into :class:`ParseLimitExceeded`
with a reason a person can read. The child comes from the process's forkserver (never a
plain fork of a process that has threads), with the parsers imported already.

Images: Pillow refuses images of more than :data:`MAX_IMAGE_PIXELS` pixels (its default
only warns between 89 and 179 million); :func:`limit_images` sets this for the process.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import warnings
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

T = TypeVar("T")

#: Wall-clock seconds one file's parse may take.
PARSE_SECONDS = 60
#: Address space the parse may add to the child (beyond what the child starts with).
PARSE_MEMORY = 768 << 20
#: Pixels of one image, at most (about 200 MB decoded as RGBA).
MAX_IMAGE_PIXELS = 50_000_000
#: Modules the forkserver imports once, so a child pays a fork, not the imports; other users
#: of the forkserver add theirs through :func:`forkserver_context`.
PRELOAD = ["portal.redaction.leakcheck", "pdfminer.high_level"]


class ParseLimitExceeded(Exception):
    """The parse was stopped at a limit; the message says which (safe to show)."""


def limit_images() -> None:
    """Make Pillow refuse, not merely warn about, images beyond MAX_IMAGE_PIXELS."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS // 2  # Pillow raises beyond twice this...
    warnings.simplefilter("error", Image.DecompressionBombWarning)  # ...and warns beyond it


def forkserver_context(*modules: str) -> multiprocessing.context.ForkServerContext:
    """The process's one forkserver, preloading ``modules`` and those of every earlier
    caller (what the server imports is fixed when it starts, on first use)."""
    PRELOAD.extend(m for m in modules if m not in PRELOAD)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


def _address_space() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _child(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...], memory: int) -> None:
    limit = _address_space() + memory
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    seconds = PARSE_SECONDS + 1
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    limit_images()
    try:
        outcome: tuple[str, Any] = ("ok", fn(*args))
    except MemoryError:
        outcome = ("memory", None)
    except Exception as exc:  # sent back as it is, re-raised in the caller
        outcome = ("error", exc)
    conn.send(outcome)
    conn.close()


def run_bounded(
    fn: Callable[..., T], *args: Any, seconds: float = PARSE_SECONDS, memory: int = PARSE_MEMORY
) -> T:
    """``fn(*args)`` in a child process within ``seconds`` and ``memory`` bytes; its result,
    or its exception re-raised. ``fn``, the arguments and the result must pickle."""
    context = forkserver_context()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sender, fn, args, memory))
    child.start()
    sender.close()
    try:
        if not receiver.poll(seconds):
            raise ParseLimitExceeded(f"reading it took longer than {seconds:g} s")
        try:
            status, value = receiver.recv()
        except EOFError:
            child.join(1)
            raise ParseLimitExceeded(
                f"the reader stopped (exit code {child.exitcode}): it needed more memory or "
                "time than allowed, or the file crashed it"
            ) from None
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()
    if status == "memory":
        raise ParseLimitExceeded(f"reading it needed more than {memory >> 20} MB of memory")
    if status == "error":
        raise value
    result: T = value
    return result
