"""Forms shared by several pages."""

from __future__ import annotations

from datetime import date

from flask import request
from flask_wtf import FlaskForm


class TokenForm(FlaskForm):  # type: ignore[misc]
    """A CSRF token and nothing else: button-only forms, and forms whose fields the view
    reads from ``request.form`` itself."""


def query_date(name: str, errors: list[str], message: str) -> date | None:
    """The ISO date in query argument ``name`` (None when it is empty); when it is not a
    date, ``message`` is added to ``errors`` and None returned."""
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append(message)
        return None
