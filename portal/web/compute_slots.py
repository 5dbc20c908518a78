"""At most a few requests of one server process run the application at once; the rest wait
their turn, first come, first served.

gunicorn's gthread worker gives each connection a thread (``PORTAL_THREADS``) so that
downloads, which hold a connection for as long as the transfer lasts, do not shut pages out.
Pages, though, are CPU work under one interpreter lock: four threads computing at once in
one process spend CPU handing the lock around, and each page then takes as long as all of
them together. ``bench/load.py`` on PostgreSQL (20 users, 2 cores, four threads a worker)
served about a sixth more pages a second with two requests computing at a time per process
than with four (197-221 pages/s against 175-186, p95 131-142 ms against 156-164).

A slot is held while the application makes the response (the view, its queries, the
template), and given back when the application returns its body: a package file then goes
out (sendfile) without holding one. A request waiting for a slot holds no database
connection, lock or transaction: it has not started. The request body is read while the slot
is held: behind nginx, which buffers uploads (docs/deployment.md), it arrives whole, at
loopback speed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["ComputeSlots"]


class ComputeSlots:
    """WSGI middleware: ``app`` runs for at most ``slots`` requests at once."""

    def __init__(self, app: WSGIApplication, slots: int) -> None:
        if slots < 1:
            raise ValueError("a compute limit needs at least one slot")
        self._app = app
        self.slots = slots
        self._slots = threading.BoundedSemaphore(slots)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        with self._slots:
            return self._app(environ, start_response)
