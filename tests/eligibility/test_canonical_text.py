"""``canonical_text`` (orjson, falling back to ``json.dumps``) writes the very text of
``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` for every plain JSON
value a decision record can hold: the record's hash and its replay depend on it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.eligibility.decisions import canonical_text


def reference(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Facts:
    code: str


class Row(NamedTuple):
    code: str
    count: int


# Every character but lone surrogates (below), control characters and quotes included.
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | texts
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.lists(inner, max_size=5).map(tuple)
        | st.builds(Row, texts, st.integers(-(2**63), 2**64 - 1))
        | st.dictionaries(texts, inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(texts, values, max_size=6))
def test_it_writes_what_json_dumps_writes(value: dict[str, Any]) -> None:
    assert canonical_text(value) == reference(value)


def test_what_orjson_would_not_write_alike_goes_to_json_dumps() -> None:
    for value in (
        {"big": 2**64, "small": -(2**63) - 1},  # beyond 64 bits
        {"lone": "\ud800 surrogate"},  # not UTF-8
        {"keys": {1: "an integer key"}},  # json.dumps writes it as "1"
        {"escapes": '\x00\x08\t\n\x0c\r\x1f\x7f"\\/\u2028\U0001f600'},
    ):
        assert canonical_text(value) == reference(value)


def test_what_is_not_plain_json_is_refused_as_json_dumps_refuses_it() -> None:
    """orjson would write these itself; a record must not hold them, so they fail loudly."""
    for value in (
        {"at": datetime(2026, 1, 1, tzinfo=UTC)},
        {"day": date(2026, 1, 1)},
        {"facts": Facts("F-1")},
        {"set": {1, 2}},
    ):
        with pytest.raises(TypeError):
            canonical_text(value)
