"""A decision record's text (``portal.eligibility.record_text``) is the very text of
``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``: the record's hash
and its replay depend on it. orjson writes it when it writes it alike, ``json.dumps`` otherwise."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.eligibility.policy import evaluate, load_policy
from portal.eligibility.record_text import ORJSON_AGREES, PROBE, canonical_text, orjson_text
from tests.eligibility.test_policy_engine import POLICIES
from tests.eligibility.test_policy_rules import NOW, consent, item, mark, snapshot


def reference(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Facts:
    code: str


class Row(NamedTuple):
    code: str
    count: int


# Every character but lone surrogates, control characters and quotes included.
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
integers = st.integers(-(2**63), 2**64 - 1)  # what orjson writes itself
scalars = st.none() | st.booleans() | integers | texts
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.lists(inner, max_size=5).map(tuple)
        | st.builds(Row, texts, integers)
        | st.dictionaries(texts, inner, max_size=5)
    ),
    max_leaves=30,
)


def test_this_orjson_writes_the_probe_as_json_dumps_does() -> None:
    """Otherwise records are written by json.dumps alone; CI says so here."""
    assert ORJSON_AGREES
    assert orjson_text(PROBE) == reference(PROBE)
    assert "\\u000b" in orjson_text(PROBE)  # the vertical tab some releases wrote as "\u"


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(texts, values, max_size=6))
def test_orjson_writes_what_json_dumps_writes(value: dict[str, Any]) -> None:
    assert orjson_text(value) == reference(value)
    assert canonical_text(value) == reference(value)


def test_what_orjson_would_not_write_alike_goes_to_json_dumps() -> None:
    for value in (
        {"big": 2**64, "small": -(2**63) - 1},  # beyond 64 bits
        {"lone": "\ud800 surrogate"},  # not UTF-8
        {"keys": {1: "an integer key"}},  # json.dumps writes it as "1"
    ):
        with pytest.raises(TypeError):
            orjson_text(value)
        assert canonical_text(value) == reference(value)


def test_what_is_not_plain_json_is_refused_as_json_dumps_refuses_it() -> None:
    for value in (
        {"at": datetime(2026, 1, 1, tzinfo=UTC)},
        {"day": date(2026, 1, 1)},
        {"facts": Facts("F-1")},
        {"set": {1, 2}},
    ):
        with pytest.raises(TypeError):
            canonical_text(value)


def _plain_types(value: Any, path: str = "$") -> None:
    """Only what orjson and json.dumps write alike (no float, Enum, UUID...)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            assert type(key) is str, f"{path}: key {key!r}"
            _plain_types(inner, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, inner in enumerate(value):
            _plain_types(inner, f"{path}[{index}]")
    else:
        assert value is None or type(value) in (str, int, bool), f"{path}: {type(value)}"


def test_records_hold_only_plain_values() -> None:
    """A float (or any other type) in a snapshot or results would be written by orjson its
    own way: this fails first."""
    subject = snapshot(
        item("ITM-0001", marks=[mark("M1", reason="Nom d\u2019un témoin — « protégé » ✓")]),
        item("ITM-0002", consents=[consent("grant", NOW, conditions='Quote " and \\ slash')]),
    )
    for record in (subject.to_json(), evaluate(load_policy(POLICIES), subject).to_json()):
        _plain_types(record)
        assert canonical_text(record) == reference(record)
