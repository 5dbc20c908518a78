"""Parsing one JSON value of a record: each parser returns the Python value or raises Invalid.

Parsers are small functions built by factories (``text(200)``, ``enum(KINDS)``...). A
:class:`Field` says whether the value is required, its default, and which record type it refers
to (for references by business code). :func:`check_fields` applies a spec to a JSON object and
returns the values and every problem found. A :class:`Confidential` spec (protected
identifiers) gets problems that name fields but never show what the bundle holds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import PurePosixPath
from typing import Any

Parser = Callable[[Any], Any]

INT32_MAX = 2**31 - 1  # Integer columns
INT64_MAX = 2**63 - 1  # BigInteger columns

_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_FINGERPRINT = re.compile(r"[0-9A-F]{40}|[0-9A-F]{64}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")


class Invalid(ValueError):
    """A value that does not fit its field; the message is shown after the field name.
    ``without_value``: the message without the value in it, for :class:`Confidential` specs
    (None when the message does not show it)."""

    def __init__(self, message: str, *, without_value: str | None = None) -> None:
        super().__init__(message)
        self.without_value = message if without_value is None else without_value


def _shown(value: Any, rule: str, *, before: bool = False) -> Invalid:
    """``rule`` broken by ``value``: shown after the rule, or ``before`` it."""
    message = f"{_show(value)} {rule}" if before else f"{rule} (got {_show(value)})"
    return Invalid(message, without_value=rule)


@dataclass(frozen=True)
class Field:
    parse: Parser
    required: bool = True
    default: Any = None
    # The record type this field names by code ("provider", "item"...), for references.
    ref: str | None = None


class Confidential(dict[str, Field]):
    """A spec whose values must never appear in a problem (a protected identifier may be the
    very name the portal withholds): problems name the field only."""


def optional(parse: Parser, default: Any = None, *, ref: str | None = None) -> Field:
    return Field(parse, required=False, default=default, ref=ref)


def check_fields(
    obj: Mapping[str, Any], spec: Mapping[str, Field], *, ignore: Sequence[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """Parse ``obj`` against ``spec``: values (defaults filled in) and every problem found.

    ``null`` counts as absent. Values of fields that failed are left out.
    """
    confidential = isinstance(spec, Confidential)
    values: dict[str, Any] = {}
    problems: list[str] = []
    unknown = [name for name in obj if name not in spec and name not in ignore]
    if unknown and confidential:  # a field's name is bundle text too
        problems.append(f"{len(unknown)} unknown field(s); expected {', '.join(spec)}")
    else:
        problems += [f"unknown field {name!r}" for name in unknown]
    for name, field in spec.items():
        raw = obj.get(name)
        if raw is None:
            if field.required:
                problems.append(f"missing required field {name!r}")
            elif field.default is not None:
                values[name] = _fresh(field.default)
            continue
        try:
            values[name] = field.parse(raw)
        except Invalid as exc:
            problems.append(f"field {name!r}: {exc.without_value if confidential else exc}")
    return values, problems


def _fresh(default: Any) -> Any:
    return list(default) if isinstance(default, list) else default


def _show(value: Any) -> str:
    """A short rendering of a bad value for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def text(max_length: int | None = None, *, empty: bool = False) -> Parser:
    """A string; not blank unless ``empty``; at most ``max_length`` characters."""

    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid(f"must be a string, not {_json_type(value)}")
        if not empty and not value.strip():
            raise Invalid("must not be empty")
        if max_length is not None and len(value) > max_length:
            raise Invalid(f"is longer than {max_length} characters")
        _check_characters(value)
        return value

    return parse


def _check_characters(value: str) -> None:
    """Refuse what no database stores: NUL, and lone surrogates (from JSON \\ud800 escapes)."""
    if "\x00" in value:
        raise Invalid("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("contains an invalid Unicode escape (a lone surrogate)") from None


def code(max_length: int = 32) -> Parser:
    """A business code: letters, digits, '.', '_' and '-', starting with a letter or digit."""

    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid(f"must be a string, not {_json_type(value)}")
        if not _CODE.fullmatch(value):
            rule = "is not a code (letters, digits, '.', '_', '-'; no spaces)"
            raise _shown(value, rule, before=True)
        if len(value) > max_length:
            raise Invalid(f"is longer than {max_length} characters")
        return value

    return parse


def codes(max_length: int = 32) -> Parser:
    """A list of distinct codes, returned sorted (order carries no meaning)."""
    one = code(max_length)

    def parse(value: Any) -> list[str]:
        items = _list(value)
        parsed = [_item(one, index, raw) for index, raw in enumerate(items)]
        duplicates = sorted({item for item in parsed if parsed.count(item) > 1})
        if duplicates:
            raise Invalid(
                f"lists {', '.join(duplicates)} more than once",
                without_value="lists a code more than once",
            )
        return sorted(parsed)

    return parse


def strings(max_length: int) -> Parser:
    """A list of non-empty strings, order kept."""
    one = text(max_length)

    def parse(value: Any) -> list[str]:
        return [_item(one, index, raw) for index, raw in enumerate(_list(value))]

    return parse


def enum(allowed: Sequence[str]) -> Parser:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise _shown(value, f"must be one of {', '.join(allowed)}")
        return value

    return parse


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"must be true or false, not {_json_type(value)}")
    return value


def integer(minimum: int | None = None, maximum: int = INT32_MAX) -> Parser:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"must be an integer, not {_json_type(value)}")
        if minimum is not None and value < minimum:
            raise Invalid(f"must be at least {minimum}")
        if value > maximum:
            raise Invalid(f"must be at most {maximum}")
        return value

    return parse


def day(value: Any) -> date:
    """A calendar date, ``YYYY-MM-DD``."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise _shown(value, "must be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _shown(value, "is not a valid date", before=True) from None


def timestamp(value: Any) -> datetime:
    """An ISO 8601 date and time with a UTC offset or ``Z``; returned in UTC."""
    if not isinstance(value, str) or "T" not in value:
        raise _shown(value, "must be an ISO 8601 date and time like 2026-01-31T09:00:00Z")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _shown(value, "is not a valid ISO 8601 date and time", before=True) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise _shown(value, "has no time zone; add Z or an offset such as +02:00", before=True)
    return moment.astimezone(UTC)


def sha256(value: Any) -> str:
    """A sha256 hex digest (either case), returned lowercase."""
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise _shown(value, "must be 64 hexadecimal digits")
    return value.lower()


def fingerprint(value: Any) -> str:
    """An OpenPGP fingerprint, 40 or 64 hex digits; spaces allowed; returned uppercase."""
    if not isinstance(value, str):
        raise Invalid(f"must be a string, not {_json_type(value)}")
    normalised = "".join(value.split()).upper()
    if not _FINGERPRINT.fullmatch(normalised):
        raise _shown(value, "must be 40 (or 64) hexadecimal digits")
    return normalised


def media_type(value: Any) -> str:
    """A media type such as ``application/pdf`` (lowercase, no parameters)."""
    if not isinstance(value, str) or not _MEDIA_TYPE.fullmatch(value) or len(value) > 100:
        raise _shown(value, "must be a media type such as application/pdf")
    return value


def relative_path(value: Any) -> str:
    """A path relative to the files directory: no absolute paths, no '..', no NUL."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid("must be a non-empty path relative to the --files directory")
    _check_characters(value)
    path = PurePosixPath(value)
    if path.is_absolute() or value.startswith("~") or re.match(r"[A-Za-z]:[\\/]", value):
        raise _shown(value, "is an absolute path; give it relative to --files", before=True)
    if ".." in path.parts or ".." in value.split("\\"):
        raise _shown(value, "contains '..'; files must stay inside --files", before=True)
    return value


def span(value: Any) -> tuple[int, int]:
    """``[start, end]``: character offsets, 0 <= start < end."""
    items = _list(value)
    if len(items) != 2 or not all(_is_int(item) for item in items):
        raise Invalid("must be [start, end], two integers")
    start, end = items
    if start < 0 or end <= start:
        raise Invalid("must satisfy 0 <= start < end")
    if end > INT32_MAX:
        raise Invalid(f"offsets must be at most {INT32_MAX}")
    return start, end


def box(value: Any) -> tuple[float, float, float, float]:
    """``[x0, y0, x1, y1]``: fractions 0..1 of the width and height, origin top left."""
    items = _list(value)
    if len(items) != 4 or not all(_is_number(item) for item in items):
        raise Invalid("must be [x0, y0, x1, y1], four numbers between 0 and 1")
    x0, y0, x1, y1 = (float(item) for item in items)
    if not all(0.0 <= item <= 1.0 for item in (x0, y0, x1, y1)):
        raise Invalid("coordinates must be fractions between 0 and 1")
    if x1 <= x0 or y1 <= y0:
        raise Invalid("must satisfy x0 < x1 and y0 < y1 (origin top left)")
    return x0, y0, x1, y1


def objects(spec: Mapping[str, Field]) -> Parser:
    """A list of JSON objects, each checked against ``spec``."""

    def parse(value: Any) -> list[dict[str, Any]]:
        parsed = []
        for index, raw in enumerate(_list(value)):
            if not isinstance(raw, dict):
                raise Invalid(f"entry {index + 1} must be an object, not {_json_type(raw)}")
            values, problems = check_fields(raw, spec)
            if problems:
                raise Invalid(
                    f"entry {index + 1}: " + "; ".join(problems),
                    without_value=f"entry {index + 1} does not fit its fields",
                )
            parsed.append(values)
        return parsed

    return parse


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise Invalid(f"must be a list, not {_json_type(value)}")
    return value


def _item(parse: Parser, index: int, raw: Any) -> Any:
    try:
        return parse(raw)
    except Invalid as exc:
        prefix = f"entry {index + 1} "
        raise Invalid(prefix + str(exc), without_value=prefix + exc.without_value) from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return _is_int(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
