"""HTML to PDF with WeasyPrint, fetching nothing.

WeasyPrint is imported on first use, not with this module: importing it costs ~0.4 s of
CPU (its Pango/HarfBuzz bindings), which every web worker would otherwise pay at start and
again each time gunicorn replaces it, although most workers never render a PDF.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from portal.documents.text_map import repair_text_map

__all__ = ["html_to_pdf", "refuse_fetch"]


def refuse_fetch(url: str, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
    """Every URL in a portal document is refused (the stylesheets are inside the templates),
    so rendering never reaches the network or the disk; WeasyPrint skips the resource."""
    raise ValueError(f"a portal PDF fetches nothing ({url[:60]} refused)")


def _refusing_fetcher() -> Any:
    """:func:`refuse_fetch` in the form the installed WeasyPrint expects.

    WeasyPrint 70 calls methods and attributes of a ``URLFetcher`` object (a plain function
    crashes it with ``AttributeError: _fail_on_errors``); earlier versions take a function.
    """
    from weasyprint import urls

    base = getattr(urls, "URLFetcher", None)
    if not isinstance(base, type):
        return refuse_fetch

    class RefusingFetcher(base):  # type: ignore[misc, valid-type]
        def fetch(self, url: str, headers: Any = None) -> Any:
            return refuse_fetch(url)

    return RefusingFetcher(fail_on_errors=False)


def html_to_pdf(
    html: str, *, finisher: Callable[[Any, Any], None] | None = None, **options: Any
) -> bytes:
    """The PDF of ``html``; ``finisher`` is WeasyPrint's hook to adjust the PDF before it
    is written (e.g. its document information); ``options`` go to ``write_pdf``."""
    import weasyprint

    document = weasyprint.HTML(string=html, url_fetcher=_refusing_fetcher())
    pdf = document.write_pdf(finisher=finisher, **options)
    if not isinstance(pdf, bytes):  # write_pdf returns the bytes when given no target
        raise RuntimeError("WeasyPrint returned no document")
    # Burmese syllables drawn as several glyphs would otherwise read back (search, copy, a
    # court's text extraction) as other text than the one printed: see text_map.
    return repair_text_map(pdf)
