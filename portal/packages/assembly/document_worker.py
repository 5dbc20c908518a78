"""The package documents, made in a worker process while the payload streams.

Rendering the transmittal letter (WeasyPrint) and the custody log (ReportLab) is pure-Python
work that grows with the number of items (seconds for hundreds). In a thread of the
assembling process it would hold the GIL and starve the threads that stream the payload into
gpg (every 1 MiB chunk waits for the GIL several times: a 1 GB package took 46 s instead of
8); in a process of its own it uses the other core. The worker is forked from a
``forkserver`` that has the documents module (and so WeasyPrint and ReportLab) imported
already, so each package pays a fork, not the imports; the server is started on first use,
never at import time.

The worker also leak-checks the PDFs it made (text extraction is the slow part); the small
manifest and its signature are checked by the caller.

Memory: the forkserver and the worker hold about 80 MB (PSS) between them, plus what a
rendering needs; it grows with the number of items, never with the payload's size. The usual
multiprocessing rule applies: a script that assembles packages needs the
``if __name__ == "__main__":`` guard (the ``portal`` console script, gunicorn and pytest have
it), since the worker imports the main module again.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Literal

from portal.packages.assembly.facts import ItemEntry, PackageFacts
from portal.redaction.leakcheck import LeakReport, check_files
from portal.redaction.parser_limits import forkserver_context

__all__ = ["document_pool", "render_and_check", "warm_up"]


def _forkserver() -> multiprocessing.context.ForkServerContext:
    # shared with the parser limits (portal.redaction.parser_limits): one server, both preloads
    return forkserver_context("portal.packages.assembly.documents", __name__)


def document_pool() -> ProcessPoolExecutor:
    """One worker (the letter, then the log), forked from the (shared, lazily started)
    forkserver. One, not two: a second renderer would compete with gpg for the cores and
    double the memory, while one already finishes within the stream for a typical package.
    The worker exits with the process that made the pool (see :func:`_exit_with`)."""
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=_forkserver(),
        initializer=_exit_with,
        initargs=(os.getpid(),),
    )


def _exit_with(pid: int) -> None:
    """In the document worker: exit as soon as process ``pid`` (the assembler) has ended.

    A worker whose assembler was killed (SIGKILL, the OOM killer) would otherwise wait for a
    task forever — it holds both ends of its own task queue, so no end-of-file ever comes —
    and keep the forkserver and the resource tracker alive with it (issue 19: three orphans
    per killed ``portal worker``). Its parent is the forkserver, so PR_SET_PDEATHSIG cannot
    say it; a pidfd (Linux 5.3+) becomes readable when ``pid`` ends, else it is polled."""

    def watch() -> None:
        try:
            handle = os.pidfd_open(pid)
        except (AttributeError, OSError):  # an older kernel: look every second
            while _alive(pid):
                time.sleep(1)
        else:
            select.select([handle], [], [])
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-assembler", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's (the pid was reused): end all the same
        return False
    return True


def warm_up() -> None:
    """Start the forkserver now, with its imports (1 to 2 s), instead of on the first package:
    for ``portal worker``, which exists to assemble packages."""
    from multiprocessing import forkserver

    _forkserver()
    forkserver.ensure_running()


def render_and_check(
    kind: Literal["letter", "log"],
    document: tuple[str, Path],
    facts: PackageFacts,
    items: Sequence[ItemEntry],
    templates_dir: Path,
    terms: Sequence[tuple[str, str]],
) -> tuple[str, LeakReport | None]:
    """Write the transmittal letter or the custody log to the file ``document`` gives as
    (bag path, file); its title and leak report (None when there are no terms). Raises what
    the renderers raise (DocumentError, OSError, ValueError).

    The title comes back from here so that the assembling process never imports the
    documents module (WeasyPrint, ReportLab: a second of imports and tens of MB)."""
    from portal.packages.assembly import documents

    _path, dest = document
    if kind == "letter":
        documents.render_transmittal_letter(facts, items, dest, templates_dir=templates_dir)
        title = documents.LETTER_TITLE
    else:
        documents.render_custody_log(facts, items, dest)
        title = documents.CUSTODY_LOG_TITLE
    return title, check_files([document], terms) if terms else None
