"""Work that ``portal worker`` repeats in the background, each in a daemon thread of its own:
the assembly watch, the transparency log's checkpoints, SQLite's planner statistics."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["repeat"]


def repeat(
    task: Callable[[], object],
    interval: float,
    *,
    name: str,
    logger: logging.Logger,
    failure: str,
) -> threading.Event:
    """Run ``task`` now, then every ``interval`` seconds, in a daemon thread called ``name``,
    until the returned event is set (what it returns is ignored). What it raises is logged to
    ``logger`` as ``failure`` (with the traceback) and the next round comes all the same: a
    database hiccup must not end the loop."""
    stop = threading.Event()

    def run() -> None:
        while True:
            try:
                task()
            except Exception:
                logger.exception(failure)
            if stop.wait(interval):
                return

    threading.Thread(target=run, name=name, daemon=True).start()
    return stop
