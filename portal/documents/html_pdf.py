"""HTML to PDF with WeasyPrint, fetching nothing.

WeasyPrint is imported on first use, not with this module: importing it costs ~0.4 s of
CPU (its Pango/HarfBuzz bindings), which every web worker would otherwise pay at start and
again each time gunicorn replaces it, although most workers never render a PDF.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["html_to_pdf", "refuse_fetch"]


def refuse_fetch(url: str, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
    """WeasyPrint's URL fetcher for our documents: every URL is refused (the stylesheets
    are inside the templates), so rendering never reaches the network or the disk."""
    raise ValueError(f"a portal PDF fetches nothing ({url[:60]} refused)")


def html_to_pdf(
    html: str, *, finisher: Callable[[Any, Any], None] | None = None, **options: Any
) -> bytes:
    """The PDF of ``html``; ``finisher`` is WeasyPrint's hook to adjust the PDF before it
    is written (e.g. its document information); ``options`` go to ``write_pdf``."""
    import weasyprint

    document = weasyprint.HTML(string=html, url_fetcher=refuse_fetch)
    pdf = document.write_pdf(finisher=finisher, **options)
    if not isinstance(pdf, bytes):  # write_pdf returns the bytes when given no target
        raise RuntimeError("WeasyPrint returned no document")
    return pdf
