"""What every page template can use, registered once for the whole app by :mod:`portal.web`.

A blueprint's own context processor adds only the labels of its own pages.
"""

from __future__ import annotations

import re
from typing import Any

from flask import url_for
from flask_login import current_user

from portal.accounts.models import ROLE_LABELS
from portal.authz.permissions import allowed
from portal.documents.fonts import PDF_FONTS
from portal.pages.formatting import fingerprint_groups, when_in
from portal.pages.i18n import Translated, format_size, locale_code
from portal.pages.labels import label
from portal.registry.models import CRITERION_LABELS, FINDING_LABELS


def can(action: str) -> bool:
    """Whether the signed-in user's role may do ``action`` (pages show links and buttons by it;
    the permission guard still checks every request)."""
    return bool(current_user.is_authenticated) and allowed(current_user.role, action)


#: Characters url_for leaves as they are in a path segment (RFC 3986 unreserved): a code made
#: of them needs no quoting, and the link can be put together from a prebuilt one.
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]+\Z")
_MARKER = "rowvalue0marker"


class RowLinks:
    """``url_for(endpoint, **{argument: value})`` for every row of a list: built once for the
    page, then each row's value put in place (url_for costs ~15 us, and a list page made 50-90
    calls). A value that would need quoting still goes through url_for."""

    def __init__(self, endpoint: str, argument: str) -> None:
        self.endpoint, self.argument = endpoint, argument
        values: dict[str, Any] = {argument: _MARKER}
        self.head, found, self.tail = url_for(endpoint, **values).partition(_MARKER)
        if not found:  # a converter changed the marker: nothing to put in place
            self.head = self.tail = ""

    def __call__(self, value: object) -> str:
        text = str(value)
        if self.head and _UNRESERVED.match(text):
            return f"{self.head}{text}{self.tail}"
        values: dict[str, Any] = {self.argument: value}
        return url_for(self.endpoint, **values)


def template_helpers() -> dict[str, Any]:
    """The app-wide template context: ``can``, ``when``, sizes, fingerprints and the labels
    several domains' pages show."""
    return {
        "can": can,
        "row_links": RowLinks,  # {% set link = row_links('x.detail', 'code') %} ... link(row.code)
        "when": when_in(locale_code()),
        "human_size": format_size,  # the locale's digits and unit names
        "fingerprint_groups": fingerprint_groups,
        "role_labels": Translated(ROLE_LABELS),
        "criterion_labels": CRITERION_LABELS,
        "finding_labels": FINDING_LABELS,
        "label": label,  # label('provider_kind', p.kind): portal.pages.labels, one place
        "pdf_fonts": PDF_FONTS,  # the CSS font stacks of templates/*/documents/
    }
