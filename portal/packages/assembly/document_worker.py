"""The package documents, made in a short-lived worker process while the payload streams.

Rendering the transmittal letter (WeasyPrint) and the custody log (ReportLab) is pure-Python
work that grows with the number of items (about a second for a hundred). In a thread of the
assembling process it would hold the GIL and starve the threads that stream the payload into
gpg (every 1 MiB chunk waits for the GIL several times: a 1 GB package took 46 s instead of
8); in a process of its own it uses the other core.

The worker is *forked* from the assembling process for one package and exits when both
documents are written (issue 23; :class:`Forked`). No process stays resident between
packages (the forkserver this replaced held 55 MB, its resource tracker 7 MB), and the worker
shares the assembler's pages (modules, settings) instead of holding a copy of its own: the
process tree peaks at the assembler plus what the rendering adds. The assembler's objects are
frozen out of the garbage collector while it forks (:func:`gc.freeze`), so the worker's
collections do not write to, and copy, every page of the assembler's heap. The worker is
started before the package's gpg: it would otherwise hold gpg's stdin open, and gpg would not
see the end of the plaintext until the documents were made.

A long-running assembler (``portal worker``) imports the renderers once, when it starts
(:func:`preload_renderers`), so that each worker starts with WeasyPrint and ReportLab's
fonts already in the pages it shares, instead of importing them again for every package
(~0.3 s of CPU a package, most of a small package's document time). The assembler holds
them between packages (~30 MB); it held WeasyPrint anyway after its first redacted text
item (:mod:`portal.redaction.typeset` renders in the assembler).

The caller leak-checks the PDFs with the manifest and its signature (with the parser limits'
forkserver, which belongs to the assembling process). The worker exits with its assembler
even when that is killed (see :func:`_exit_with`).
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from portal.packages.assembly.facts import ItemEntry, PackageFacts

__all__ = ["DocumentPool", "Forked", "document_pool", "preload_renderers", "render"]

T = TypeVar("T")


class Forked(Generic[T]):
    """``fn(*args)`` in a process forked for it, which exits as soon as it has sent the
    result back (or the exception it raised; both must pickle). Short-lived on purpose: a
    fork holds copies of every file descriptor the assembler had open — the gpg pipes of
    another package assembled in another thread among them — and releases them only when it
    exits; one that waited for more work could hold two packages' gpg processes open on each
    other. Forked with the garbage collector's objects frozen (see the module notes)."""

    def __init__(self, fn: Callable[..., T], *args: Any) -> None:
        context = multiprocessing.get_context("fork")
        self._receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_run, args=(sender, os.getpid(), fn, args), name="documents", daemon=True
        )
        gc.freeze()
        try:
            self._process.start()
        finally:
            gc.unfreeze()
            sender.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def result(self, timeout: float | None = None) -> T:
        """Wait for the result; raise what ``fn`` raised, or RuntimeError when the process
        ended without an answer (killed, out of memory) or gave none within ``timeout``
        seconds (it is then stopped: a worker stuck in a renderer would otherwise hold the
        assembling thread for good)."""
        if timeout is not None and not self._receiver.poll(timeout):
            self.end()
            raise RuntimeError(
                f"the document worker gave no answer within {timeout:.0f} s and was stopped"
            )
        try:
            status, value = self._receiver.recv()
        except EOFError:
            self._process.join()
            raise RuntimeError(
                f"the document worker ended without an answer (exit code {self._process.exitcode})"
            ) from None
        if status == "error":
            raise value
        result: T = value
        return result

    def end(self) -> None:
        """Stop the process if it still runs (the package failed meanwhile) and reap it.
        Safe to call again."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._receiver.close()


def _run(conn: Connection, assembler: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """In the forked process: ``fn(*args)``, sent back; exit with the assembler."""
    _exit_with(assembler)
    try:
        outcome: tuple[str, Any] = ("ok", fn(*args))
    except Exception as exc:  # sent back as it is, re-raised in the assembler
        outcome = ("error", exc)
    conn.send(outcome)
    conn.close()


class DocumentPool:
    """Starts the documents' rendering (see :func:`document_pool`)."""

    def __init__(self) -> None:
        self.started: list[Forked[Any]] = []

    def submit(self, fn: Callable[..., T], *args: Any) -> Forked[T]:
        """``fn(*args)`` in a process forked for it (see :class:`Forked`)."""
        forked = Forked(fn, *args)
        self.started.append(forked)
        return forked

    def render(
        self,
        documents: Sequence[tuple[Literal["letter", "log"], Path]],
        facts: PackageFacts,
        items: Sequence[ItemEntry],
        templates_dir: Path,
    ) -> Forked[list[str]]:
        """Render each (kind, file) in one worker, in order; their titles (see
        :func:`render`)."""
        return self.submit(_render_all, documents, facts, items, templates_dir)


def _render_all(
    documents: Sequence[tuple[Literal["letter", "log"], Path]],
    facts: PackageFacts,
    items: Sequence[ItemEntry],
    templates_dir: Path,
) -> list[str]:
    return [render(kind, dest, facts, items, templates_dir) for kind, dest in documents]


@contextmanager
def document_pool() -> Iterator[DocumentPool]:
    """Where the documents' worker is started; when the block ends, a worker still running
    (the package failed meanwhile) is stopped and every worker reaped. One worker for the
    letter and the log, not two: a second renderer would compete with gpg for the cores and
    double the memory, while one already finishes within the stream for a typical package.
    A worker exits with the process that started it (see :func:`_exit_with`)."""
    pool = DocumentPool()
    try:
        yield pool
    finally:
        for forked in pool.started:
            forked.end()


def _exit_with(pid: int) -> None:
    """In the document worker: exit as soon as process ``pid`` (the assembler) has ended.

    A worker whose assembler was killed (SIGKILL, the OOM killer) would otherwise render on
    for nothing, and a pool's worker waited for a task forever (issue 19: orphans per killed
    ``portal worker``). A pidfd (Linux 5.3+) becomes readable when ``pid`` ends, else it is
    polled (unlike PR_SET_PDEATHSIG, this does not depend on which thread of the assembler
    forked it)."""

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


def render(
    kind: Literal["letter", "log"],
    dest: Path,
    facts: PackageFacts,
    items: Sequence[ItemEntry],
    templates_dir: Path,
) -> str:
    """Write the transmittal letter or the custody log to ``dest``; its title. Raises what
    the renderers raise (DocumentError, OSError, ValueError).

    The title comes back from here so that an assembling process that did not preload the
    renderers (``portal package assemble``, the immediate queue of tests) never imports the
    documents module (WeasyPrint, ReportLab: tens of MB it would hold between packages)."""
    from portal.packages.assembly import documents

    if kind == "letter":
        documents.render_transmittal_letter(facts, items, dest, templates_dir=templates_dir)
        return documents.LETTER_TITLE
    documents.render_custody_log(facts, items, dest)
    return documents.CUSTODY_LOG_TITLE


def preload_renderers() -> None:
    """Import what the document worker renders with, in this process, before any worker is
    forked from it (see the module notes): the documents module, WeasyPrint and ReportLab's
    fonts. Fonts that are missing are left for the package to report (its assembly fails
    naming the Debian package to install), as they would be without this."""
    from portal.documents.fonts import FontsMissing, reportlab_fonts
    from portal.documents.html_pdf import load_weasyprint
    from portal.packages.assembly import documents  # noqa: F401 - imported to be shared

    load_weasyprint()
    with contextlib.suppress(FontsMissing):
        reportlab_fonts()
