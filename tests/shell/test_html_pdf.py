"""Portal PDFs fetch nothing: every URL in a document is refused, and rendering goes on.

WeasyPrint 70 changed its URL-fetcher interface (a plain function crashed the renderer with
``AttributeError: _fail_on_errors``); this runs the real renderer against a real HTTP server
on the loopback and a ``file:`` URL.
"""

from __future__ import annotations

import http.server
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
