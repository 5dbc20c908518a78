"""How pages show values: timestamps, fingerprints, sizes."""

from __future__ import annotations

from datetime import datetime

from markupsafe import Markup, escape

from portal.db import stored_utc
from portal.pages.i18n import format_when
from portal.registry.openpgp import grouped_fingerprint


def when(moment: datetime | None) -> Markup:
    """A ``<time>`` element showing a timestamp as people read it, in UTC (an en dash for none)."""
    if moment is None:
        return Markup("\N{EN DASH}")
    # The machine string comes from the datetime itself (digits, "-", ":", "+", "T"); the
    # human one from the locale's patterns, escaped once. Markup.format would cost ten times
    # as much on lists that show hundreds of timestamps.
    moment = stored_utc(moment)
    machine = moment.isoformat(timespec="seconds")
    human = escape(format_when(moment))  # the locale's digits, month names and order
    return Markup(f'<time datetime="{machine}">{human}</time>')  # noqa: S704 - see above


def fingerprint_groups(fingerprint: str) -> str:
    """``"ABCD1234..."`` -> ``"ABCD 1234 ..."`` with a wider gap in the middle, as gpg does."""
    return grouped_fingerprint(fingerprint, middle_gap=True)
