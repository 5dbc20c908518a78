"""Canonical JSON: one text, and so one hash, for one value.

Used wherever a hash must be recomputable later (the audit chain, decision
input snapshots). The form is what ``json.dumps`` gives with sorted keys,
``separators=(",", ":")``, ``ensure_ascii=False`` and ``allow_nan=False``,
after these conversions:

- ``datetime`` (timezone-aware only) -> ``"YYYY-MM-DDTHH:MM:SS.ffffff+00:00"``,
  always in UTC and always with microseconds, so equal instants give equal text;
- ``date`` -> ``"YYYY-MM-DD"``;
- tuples -> arrays; ``str``/``int``/``float`` subclasses (e.g. ``StrEnum``) -> their plain value.

Everything else is refused with :class:`NotCanonical`: unknown types (bytes,
sets, Decimal, arbitrary objects), non-string keys (``{1: ...}`` would collide
with ``{"1": ...}``), NaN and infinities, naive datetimes, strings that are not
valid Unicode (lone surrogates cannot be encoded as UTF-8) and cycles. Strings
are not Unicode-normalised: the text hashed is the text given.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime

__all__ = ["NotCanonical", "canonical_json", "canonical_json_bytes", "sha256_hex"]


class NotCanonical(TypeError, ValueError):
    """A value has no canonical JSON form.

    Both a ``TypeError`` (unknown types, as ``json`` raises) and a ``ValueError``
    (bad values such as NaN, as ``json`` raises), so either ``except`` works.
    """


def canonical_json(value: object) -> str:
    """Return the canonical JSON text of ``value`` (see the module docstring)."""
    return json.dumps(
        _plain(value, "$", set()),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        check_circular=False,  # _plain already refused cycles
    )


def canonical_json_bytes(value: object) -> bytes:
    """The UTF-8 encoding of :func:`canonical_json`, the bytes that get hashed."""
    return canonical_json(value).encode("utf-8")


def sha256_hex(data: str | bytes) -> str:
    """Lowercase hex SHA-256 of ``data``; text is hashed as UTF-8."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def format_datetime(value: datetime) -> str:
    """The canonical text of an aware datetime: UTC, microseconds, ``+00:00``."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise NotCanonical("naive datetime has no canonical form; use a timezone-aware UTC value")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _text(value: str, where: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NotCanonical(f"{where}: string is not valid Unicode ({exc.reason})") from None
    return str.__str__(value)


def _plain(value: object, where: str, active: set[int]) -> object:
    """Convert ``value`` to plain JSON types, refusing anything without one meaning."""
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        return _text(value, where)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotCanonical(f"{where}: {value!r} is not allowed in JSON")
        return float(value)
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple):
        if id(value) in active:
            raise NotCanonical(f"{where}: value contains itself")
        active.add(id(value))
        try:
            if isinstance(value, Mapping):
                return _plain_mapping(value, where, active)
            return [_plain(item, f"{where}[{i}]", active) for i, item in enumerate(value)]
        finally:
            active.discard(id(value))
    raise NotCanonical(
        f"{where}: values of type {type(value).__name__} have no canonical JSON form"
    )


def _plain_mapping(
    value: Mapping[object, object], where: str, active: set[int]
) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise NotCanonical(f"{where}: key {key!r} is not a string")
        name = _text(key, where)
        result[name] = _plain(item, f"{where}.{name}", active)
    return result
