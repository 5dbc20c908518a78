"""Burmese typed in Zawgyi becomes Unicode before any view reads the form.

Many Burmese keyboards still produce Zawgyi, a legacy encoding that reuses the Myanmar
code points for other letters: stored as it is, the text shows as the wrong letters in
Unicode fonts, and no search or protected-identifier match finds it. Every posted form
field that holds Myanmar letters goes through the redaction normaliser's detector and
converter (:func:`portal.redaction.normalise.zawgyi_as_unicode`: Google's ``myanmartools``
detects, python-myanmar converts, only runs judged Zawgyi); the user is told, with the
converted text, so they can check it.
"""

from __future__ import annotations

import re

from flask import Flask, flash, request
from flask_babel import gettext
from werkzeug.datastructures import ImmutableMultiDict

__all__ = ["convert_form", "init_burmese_input"]

_MYANMAR = re.compile("[\u1000-\u109f\ua9e0-\ua9ff\uaa60-\uaa7f]")
#: Fields never touched: secrets and tokens are compared byte for byte.
_SKIPPED = re.compile(r"password|confirm|csrf|token|code|secret", re.IGNORECASE)


def convert_form(
    form: ImmutableMultiDict[str, str],
) -> tuple[ImmutableMultiDict[str, str], list[str]]:
    """``form`` with the Zawgyi in its text fields converted, and the converted values."""
    from portal.redaction.normalise import zawgyi_as_unicode

    converted: list[str] = []
    items: list[tuple[str, str]] = []
    for name, value in form.items(multi=True):
        if not _SKIPPED.search(name) and _MYANMAR.search(value):
            unicode = zawgyi_as_unicode(value)
            if unicode != value:
                converted.append(unicode)
                value = unicode
        items.append((name, value))
    return (ImmutableMultiDict(items) if converted else form), converted


def _convert_posted_form() -> None:
    if request.method != "POST" or not request.mimetype.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        return
    form, converted = convert_form(request.form)
    if converted:
        request.form = form  # what every view and WTForms read
        shown = " · ".join(converted)
        flash(
            gettext(
                "Your Burmese text was in Zawgyi; it was converted to Unicode before it was "
                "saved. Please check it reads correctly: %(text)s",
                text=shown[:500],
            ),
            "warning",
        )


def init_burmese_input(app: Flask) -> None:
    """Convert posted Zawgyi after CSRF protection has checked the request."""
    app.before_request(_convert_posted_form)
