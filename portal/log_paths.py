"""Paths as logs may show them: secret path segments replaced, query strings dropped.

An enrolment link (``/enrol/<token>``) is a credential until it is used, so neither the
development server's access log (``portal run``), gunicorn's (gunicorn.conf.py) nor the
portal's own error lines may write it out. Query strings go too (they may carry search
terms, which can name people).
"""

from __future__ import annotations

import logging
import re

#: Path segments that are secrets: /enrol/<token>... -> /enrol/[token]...
_SECRET_SEGMENT = re.compile(r"(/enrol/)[^/\s?#\"]+")
_QUERY = re.compile(r"\?[^\s\"#]*")
REDACTED = r"\1[token]"


def loggable_path(text: str) -> str:
    """``text`` (a path, a request line or a whole log line) without secrets or queries."""
    return _SECRET_SEGMENT.sub(REDACTED, _QUERY.sub("", text))


class SecretPathFilter(logging.Filter):
    """Rewrites each record of a logger (e.g. werkzeug's access log) through
    :func:`loggable_path` before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = loggable_path(record.getMessage())
        record.args = None
        return True


def hide_secret_paths(logger_name: str = "werkzeug") -> None:
    """Install :class:`SecretPathFilter` on ``logger_name`` once."""
    target = logging.getLogger(logger_name)
    if not any(isinstance(f, SecretPathFilter) for f in target.filters):
        target.addFilter(SecretPathFilter())
