"""How pages show values: timestamps, fingerprints, sizes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial

from markupsafe import Markup, escape

from portal.db import stored_utc
from portal.pages.i18n import DEFAULT_LOCALE, format_when, locale_code
from portal.registry.openpgp import grouped_fingerprint


def when(moment: datetime | None, code: str | None = None) -> Markup:
    """A ``<time>`` element showing a timestamp as people read it, in UTC (an en dash for none),
    in the language ``code`` (default: this request's; :func:`when_in` fixes it per page)."""
    if moment is None:
        return Markup("\N{EN DASH}")
    # The machine string comes from the datetime itself (digits, "-", ":", "+", "T"); the
    # human one from the locale's patterns, escaped once. Markup.format would cost ten times
    # as much on lists that show hundreds of timestamps.
    moment = stored_utc(moment)
    machine = moment.isoformat(timespec="seconds")  # YYYY-MM-DDTHH:MM:SS+00:00
    if (code or locale_code()) == DEFAULT_LOCALE:  # format_when's English: date and minute
        human = f"{machine[:10]} {machine[11:16]} UTC"
    else:
        human = escape(format_when(moment))  # the locale's digits, month names and order
    return Markup(f'<time datetime="{machine}">{human}</time>')  # noqa: S704 - see above


def when_in(code: str) -> Callable[[datetime | None], Markup]:
    """:func:`when` in the language ``code``: a page's templates ask for the language once,
    not once per timestamp (a list shows a hundred)."""
    return partial(when, code=code)


def fingerprint_groups(fingerprint: str) -> str:
    """``"ABCD1234..."`` -> ``"ABCD 1234 ..."`` with a wider gap in the middle, as gpg does."""
    return grouped_fingerprint(fingerprint, middle_gap=True)
