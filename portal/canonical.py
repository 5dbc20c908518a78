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

__all__ = ["NotCanonical", "canonical_json", "canonical_json_bytes", "plain_json", "sha256_hex"]


class NotCanonical(TypeError, ValueError):
    """A value has no canonical JSON form.

    Both a ``TypeError`` (unknown types, as ``json`` raises) and a ``ValueError``
    (bad values such as NaN, as ``json`` raises), so either ``except`` works.
    """


def canonical_json(value: object) -> str:
    """Return the canonical JSON text of ``value`` (see the module docstring)."""
    try:
        plain = _plain(value, set())
    except _Refusal as refusal:
        raise NotCanonical(f"{refusal.where()}: {refusal.reason}") from None
    return plain_json(plain)  # _plain already refused cycles


def plain_json(value: object) -> str:
    """The canonical text of a value that is already plain JSON (no conversion, no cycle
    check: the caller vouches for both); ``TypeError``/``ValueError`` for anything else."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        check_circular=False,
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


class _Refusal(Exception):
    """Internal: carries the reason up while containers add where it happened."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str | int] = []  # innermost first

    def where(self) -> str:
        steps = (f"[{step}]" if isinstance(step, int) else f".{step}" for step in self.path)
        return "$" + "".join(reversed(list(steps)))


def _text(value: str) -> str:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _Refusal(f"string is not valid Unicode ({exc.reason})") from None
    return value if type(value) is str else str.__str__(value)


def _plain(value: object, active: set[int]) -> object:
    """Convert ``value`` to plain JSON types, refusing anything without one meaning."""
    # Exact types first: the common case, and cheaper than isinstance on ABCs.
    if type(value) is str:
        return _text(value)
    if value is None or type(value) is bool or type(value) is int:
        return value
    if type(value) is dict or type(value) is list or type(value) is tuple:
        return _container(value, active)
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Refusal(f"{value!r} is not allowed in JSON")
        return float(value)
    if isinstance(value, datetime):
        try:
            return format_datetime(value)
        except NotCanonical as exc:
            raise _Refusal(str(exc)) from None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple):
        return _container(value, active)
    raise _Refusal(f"values of type {type(value).__name__} have no canonical JSON form")


def _container(
    value: Mapping[object, object] | list[object] | tuple[object, ...], active: set[int]
) -> object:
    if id(value) in active:
        raise _Refusal("value contains itself")
    active.add(id(value))
    try:
        if isinstance(value, Mapping):
            return _plain_mapping(value, active)
        return _plain_list(value, active)
    finally:
        active.discard(id(value))


def _plain_list(value: list[object] | tuple[object, ...], active: set[int]) -> list[object]:
    result: list[object] = []
    for index, item in enumerate(value):
        try:
            result.append(_plain(item, active))
        except _Refusal as refusal:
            refusal.path.append(index)
            raise
    return result


def _plain_mapping(value: Mapping[object, object], active: set[int]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise _Refusal(f"key {key!r} is not a string")
        name = _text(key)
        try:
            result[name] = _plain(item, active)
        except _Refusal as refusal:
            refusal.path.append(name)
            raise
    return result
