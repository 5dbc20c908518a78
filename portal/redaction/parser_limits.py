"""Limits around the parsers that read uploaded and imported files.

A small file can be made to cost minutes and gigabytes: a PDF whose few kilobytes of Flate
data inflate to a content stream of millions of operators keeps pdfminer busy for minutes
(its decoded-size limits in :mod:`portal.redaction.leakcheck` bound memory, not time).
:func:`run_bounded` runs such a parse in a child process with a wall-clock limit, a CPU-time
limit and an address-space limit, and turns any overrun into :class:`ParseLimitExceeded`
with a reason a person can read. The child comes from the process's forkserver (never a
plain fork of a process that has threads), with the parsers imported already.

:func:`stream_bounded` does the same for work that yields one result after another (the
pages of a PDF rendered by pdfium): the time limit applies between two results, the memory
limit to the whole child, so a long document is not cut short while one page that renders
forever, or a content stream that inflates to gigabytes, is.

Images: Pillow refuses images of more than :data:`MAX_IMAGE_PIXELS` pixels (its default
only warns between 89 and 179 million); :func:`limit_images` sets this for the process.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import warnings
from collections.abc import Callable, Generator, Iterable
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


def _limit(memory: int, cpu_seconds: float | None) -> None:
    limit = _address_space() + memory
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if cpu_seconds is not None:
        seconds = int(cpu_seconds) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    limit_images()


def _child(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...], memory: int) -> None:
    _limit(memory, PARSE_SECONDS)
    try:
        outcome: tuple[str, Any] = ("ok", fn(*args))
    except MemoryError:
        outcome = ("memory", None)
    except Exception as exc:  # sent back as it is, re-raised in the caller
        outcome = ("error", exc)
    conn.send(outcome)
    conn.close()


def _stream_child(
    conn: Connection, fn: Callable[..., Iterable[Any]], args: tuple[Any, ...], memory: int
) -> None:
    _limit(memory, None)  # the caller bounds the time between two results
    try:
        for item in fn(*args):
            conn.send(("item", item))
        outcome: tuple[str, Any] = ("done", None)
    except MemoryError:
        outcome = ("memory", None)
    except BrokenPipeError:  # the caller stopped listening
        return
    except Exception as exc:  # sent back as it is, re-raised in the caller
        outcome = ("error", exc)
    conn.send(outcome)
    conn.close()


def _receive(receiver: Connection, child: Any, seconds: float) -> tuple[str, Any]:
    """The child's next message within ``seconds``; ParseLimitExceeded when none comes."""
    if not receiver.poll(seconds):
        raise ParseLimitExceeded(f"reading it took longer than {seconds:g} s")
    try:
        message: tuple[str, Any] = receiver.recv()
    except EOFError:
        child.join(1)
        raise ParseLimitExceeded(
            f"the reader stopped (exit code {child.exitcode}): it needed more memory or "
            "time than allowed, or the file crashed it"
        ) from None
    return message


def _end(receiver: Connection, child: Any) -> None:
    receiver.close()
    if child.is_alive():
        child.kill()
    child.join()


def _outcome(status: str, value: Any, memory: int) -> Any:
    if status == "memory":
        raise ParseLimitExceeded(f"reading it needed more than {memory >> 20} MB of memory")
    if status == "error":
        raise value
    return value


def run_bounded(
    fn: Callable[..., T],
    *args: Any,
    seconds: float = PARSE_SECONDS,
    memory: int = PARSE_MEMORY,
    preload: tuple[str, ...] = (),
) -> T:
    """``fn(*args)`` in a child process within ``seconds`` and ``memory`` bytes; its result,
    or its exception re-raised. ``fn``, the arguments and the result must pickle;
    ``preload``: modules the forkserver imports (when it starts)."""
    context = forkserver_context(*preload)
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sender, fn, args, memory))
    child.start()
    sender.close()
    try:
        status, value = _receive(receiver, child, seconds)
    finally:
        _end(receiver, child)
    result: T = _outcome(status, value, memory)
    return result


def stream_bounded(
    fn: Callable[..., Iterable[T]],
    *args: Any,
    seconds: float = PARSE_SECONDS,
    memory: int = PARSE_MEMORY,
    preload: tuple[str, ...] = (),
) -> Generator[T, None, None]:
    """Each item of ``fn(*args)``, made in a child process within ``memory`` bytes, at most
    ``seconds`` apart; its exception re-raised. The child is killed when the iterator is
    closed or dropped (use ``contextlib.closing`` to close it at once). ``fn``, the
    arguments and the items must pickle; ``preload``: modules the forkserver imports."""
    context = forkserver_context(*preload)
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_stream_child, args=(sender, fn, args, memory))
    child.start()
    sender.close()
    try:
        while True:
            status, value = _receive(receiver, child, seconds)
            if status != "item":
                _outcome(status, value, memory)
                return
            item: T = value
            yield item
    finally:
        _end(receiver, child)
