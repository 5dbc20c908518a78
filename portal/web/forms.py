"""Forms shared by several pages."""

from __future__ import annotations

from flask_wtf import FlaskForm


class TokenForm(FlaskForm):  # type: ignore[misc]
    """A CSRF token and nothing else: button-only forms, and forms whose fields the view
    reads from ``request.form`` itself."""
