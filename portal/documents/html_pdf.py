"""HTML to PDF with WeasyPrint, fetching nothing.

WeasyPrint is imported on first use, not with this module: importing it costs ~0.4 s of
CPU (its Pango/HarfBuzz bindings), which every web worker would otherwise pay at start and
again each time gunicorn replaces it, although most workers never render a PDF.
:func:`load_weasyprint` imports it without ctypes' library search (see there).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from portal.documents.text_map import repair_text_map

__all__ = ["html_to_pdf", "load_weasyprint", "refuse_fetch"]


@contextmanager
def _no_library_search() -> Iterator[None]:
    import ctypes.util

    search = ctypes.util.find_library
    ctypes.util.find_library = lambda _name: None  # type: ignore[assignment]
    try:
        yield
    finally:
        ctypes.util.find_library = search


def load_weasyprint() -> ModuleType:
    """WeasyPrint, imported with its libraries loaded by their sonames alone.

    For each library WeasyPrint tries a list of names (``libpango-1.0-0``, ``pango-1.0``,
    ..., ``libpango-1.0.so.0``); cffi hands every name the dynamic linker does not load as
    given to ``ctypes.util.find_library``, which on Linux runs ``ldconfig -p`` and, where
    they are installed, ``gcc`` and ``ld``: 26 searches, ~50 subprocesses and 0.2-0.8 s per
    import, in the document worker of every package. The lists hold the sonames, which the
    linker loads directly, so the import skips the search; only where a library is found by
    the search alone (another layout) is the import done again with it.
    """
    loaded = sys.modules.get("weasyprint")
    if loaded is not None:
        return loaded
    try:
        with _no_library_search():
            return importlib.import_module("weasyprint")
    except OSError:
        for name in [name for name in sys.modules if name.partition(".")[0] == "weasyprint"]:
            del sys.modules[name]
        return importlib.import_module("weasyprint")


def refuse_fetch(url: str, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
    """Every URL in a portal document is refused (the stylesheets are inside the templates),
    so rendering never reaches the network or the disk; WeasyPrint skips the resource."""
    raise ValueError(f"a portal PDF fetches nothing ({url[:60]} refused)")


def _refusing_fetcher() -> Any:
    """:func:`refuse_fetch` in the form the installed WeasyPrint expects.

    WeasyPrint 70 calls methods and attributes of a ``URLFetcher`` object (a plain function
    crashes it with ``AttributeError: _fail_on_errors``); earlier versions take a function.
    """
    urls = load_weasyprint().urls
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
    weasyprint = load_weasyprint()
    document = weasyprint.HTML(string=html, url_fetcher=_refusing_fetcher())
    pdf = document.write_pdf(finisher=finisher, **options)
    if not isinstance(pdf, bytes):  # write_pdf returns the bytes when given no target
        raise RuntimeError("WeasyPrint returned no document")
    # Burmese syllables drawn as several glyphs would otherwise read back (search, copy, a
    # court's text extraction) as other text than the one printed: see text_map.
    return repair_text_map(pdf)
