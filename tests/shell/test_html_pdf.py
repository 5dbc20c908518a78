"""Portal PDFs fetch nothing: every URL in a document is refused, and rendering goes on.

WeasyPrint 70 changed its URL-fetcher interface (a plain function crashed the renderer with
``AttributeError: _fail_on_errors``); this runs the real renderer against a real HTTP server
on the loopback and a ``file:`` URL.
"""

from __future__ import annotations

import http.server
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest

from portal.documents.html_pdf import html_to_pdf


class _Recorder(http.server.BaseHTTPRequestHandler):
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.end_headers()
        self.wfile.write(b"body { color: red }")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    paths: ClassVar[list[str]] = []
    handler = type("Handler", (_Recorder,), {"paths": paths})
    httpd = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", paths
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_urls_in_a_document_are_refused_and_the_pdf_is_still_made(
    server: tuple[str, list[str]],
) -> None:
    base, paths = server
    html = (
        f'<html><head><link rel="stylesheet" href="{base}/style.css"></head>'
        f'<body><p>Statement</p><img src="{base}/photo.png"><img src="file:///etc/hostname">'
        f'<p style="background: url({base}/bg.png)">x</p></body></html>'
    )
    pdf = html_to_pdf(html)
    assert pdf.startswith(b"%PDF-")
    assert paths == []  # nothing was fetched


_COUNTING = """
import ctypes.util
searched = []
search = ctypes.util.find_library
def counting(name):
    searched.append(name)
    return search(name)
ctypes.util.find_library = counting
"""
_LOAD = """
from portal.documents.html_pdf import html_to_pdf, load_weasyprint
weasyprint = load_weasyprint()
print(len(searched), weasyprint.__name__, ctypes.util.find_library is counting)
print(html_to_pdf("<p>Statement</p>")[:5].decode())
"""


def _import_in_a_fresh_python(prelude: str) -> list[str]:
    """Run ``prelude``, then :func:`load_weasyprint`, in a new interpreter that counts the
    calls of ``ctypes.util.find_library``; the words it prints."""
    script = _COUNTING + textwrap.dedent(prelude) + _LOAD
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.split()


def test_weasyprint_loads_its_libraries_without_a_library_search() -> None:
    """Each search runs ldconfig, gcc and ld: dozens of subprocesses per document worker."""
    assert _import_in_a_fresh_python("") == ["0", "weasyprint", "True", "%PDF-"]


def test_a_library_only_the_search_finds_is_still_loaded() -> None:
    """Where the linker does not load a soname as given, the import is done again with
    ctypes' search (here: Pango's soname refused once, so its first import fails)."""
    prelude = """
        import cffi.api
        dlopen = cffi.api.FFI.dlopen
        def refusing(self, name, *args, **kwargs):
            if name == "libpango-1.0.so.0":
                raise OSError("not by this name here")
            return dlopen(self, name, *args, **kwargs)
        cffi.api.FFI.dlopen = refusing
        """
    searched, name, restored, pdf = _import_in_a_fresh_python(prelude)[-4:]
    assert int(searched) > 0 and (name, restored, pdf) == ("weasyprint", "True", "%PDF-")
