"""The canonical text of a decision record (its snapshot and its results), fast.

Snapshots and results are built as plain JSON: dicts with string keys, lists, tuples and named
tuples, strings, integers, booleans and None (timestamps already in canonical text, never a
float: every field of their rows is one of these). For such values canonical JSON
(:func:`portal.canonical.canonical_json`) *is* ``json.dumps`` with sorted keys, compact
separators and ``ensure_ascii=False`` (:func:`portal.canonical.plain_json`), and orjson writes
the same text 3-6 times faster (0.5 s of a 100,000-item check's 2 s went to ``json.dumps``):
the same escapes, keys sorted in code point order (UTF-8's byte order is the code point
order), non-ASCII as it is. The record's SHA-256 and its replay depend on that text, so:

- what orjson refuses (an integer beyond 64 bits, a lone surrogate, a key that is not a string)
  and what it would write where ``json.dumps`` refuses it (datetimes, dates, dataclasses) goes
  to ``json.dumps``, which writes or refuses it as it always did;
- orjson writes floats, ``Enum`` and ``UUID`` values itself, in its own way: records hold none
  (tests/eligibility/test_canonical_text.py checks every value of real records is plain);
- when this module is imported, orjson writes a probe of every escape, key order and integer
  bound; if its text differs in any byte from ``json.dumps``'s (an orjson release that
  escapes differently), records are written by ``json.dumps`` alone and a warning says so.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import orjson

from portal.canonical import plain_json

__all__ = ["ORJSON_AGREES", "canonical_text", "orjson_text"]

log = logging.getLogger(__name__)

#: Sorted keys; datetimes and dataclasses go to ``_as_array``, which refuses them.
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _as_array(value: object) -> tuple[object, ...]:
    """What orjson does not write itself: a named tuple (``json.dumps`` writes it as an array)."""
    if isinstance(value, tuple):
        return tuple(value)
    raise TypeError(f"{type(value).__name__} is not plain JSON")


def orjson_text(value: Any) -> str:
    """``value`` written by orjson as :func:`portal.canonical.plain_json` writes it;
    ``TypeError`` for what orjson refuses or leaves to ``json.dumps``."""
    return orjson.dumps(value, default=_as_array, option=_OPTIONS).decode()


class _Row(NamedTuple):
    code: str
    rows: tuple[object, ...]


#: Every control character, C1 controls, DEL, the line and paragraph separators, the byte
#: order mark, the last BMP character and a non-BMP one, the characters JSON escapes, keys
#: whose code point order is not their UTF-16 order, and the integers at 64 bits' bounds.
PROBE: dict[str, Any] = {
    "escapes": "".join(map(chr, range(0x20))) + '"\\/\x7f' + "".join(map(chr, range(0x80, 0xA0))),
    "separators": "\u2028\u2029\ufeff\uffff\U0001f600 \u0645\u0648 \u1000\u103a",
    "z": 1,
    "\u00e9": 2,
    "\uffff": 3,
    "\U00010000": 4,
    "A": [True, False, None, 0, -1, 2**63 - 1, -(2**63), 2**64 - 1, [], {}, ()],
    "rows": [_Row("ITM-1", (_Row("M-1", ()), "x"))],
}


def _orjson_agrees() -> bool:
    try:
        agrees = orjson_text(PROBE) == plain_json(PROBE)
    except TypeError:
        agrees = False
    if not agrees:
        log.warning(
            "orjson %s does not write the probe as json.dumps does: decision records are "
            "written by json.dumps alone (slower, the same text)",
            orjson.__version__,
        )
    return agrees


#: Whether this orjson writes what ``json.dumps`` writes (checked once, at import).
ORJSON_AGREES = _orjson_agrees()


def canonical_text(value: dict[str, Any]) -> str:
    """:func:`portal.canonical.canonical_json` of a record that is already plain JSON."""
    if ORJSON_AGREES:
        try:
            return orjson_text(value)
        except TypeError:  # orjson.JSONEncodeError is one
            pass
    return plain_json(value)  # built fresh as trees by to_json(): no cycle can occur
