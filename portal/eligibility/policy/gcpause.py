"""Pause Python's cyclic garbage collector while a snapshot or an evaluation is built.

Both build hundreds of thousands of small tuples for a large request. CPython's cyclic
collector runs full passes over every tracked object as their number grows, which costs a
third of the time of a 100,000-item check; none of these objects form reference cycles, so
nothing is lost by collecting afterwards. Reference counting still frees memory as usual.
The collector is re-enabled on exit only if it was enabled on entry.

On the way out, the objects made during the pause join the oldest generation untraversed
(``gc.freeze()`` then ``gc.unfreeze()``): re-enabling the collector would otherwise start with
passes over all of them (a tenth of a large check), only to find them alive. They are
still collected, if ever they form cycles, by the next full collection. When something else
froze objects (e.g. a server before forking), that is left alone and the pause ends as a plain
re-enable.
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
            if gc.get_freeze_count() == 0:
                gc.freeze()  # every tracked object to the permanent generation, untraversed
                gc.unfreeze()  # and back, into the oldest generation
            gc.enable()
