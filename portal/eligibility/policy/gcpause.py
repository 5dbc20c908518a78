"""Pause Python's cyclic garbage collector while a snapshot or an evaluation is built.

Both build hundreds of thousands of small tuples for a large request. CPython's cyclic
collector runs full passes over every tracked object as their number grows, which costs a
third of the time of a 100,000-item check; none of these objects form reference cycles, so
nothing is lost by collecting afterwards. Reference counting still frees memory as usual.
The collector is re-enabled on exit only if it was enabled on entry.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused_gc"]


@contextmanager
def paused_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
