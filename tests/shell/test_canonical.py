"""Canonical JSON and hashing (portal.canonical)."""

from __future__ import annotations

import enum
import hashlib
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.canonical import NotCanonical, canonical_json, canonical_json_bytes, sha256_hex

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=30,
)
aware_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))]
    ),
)


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def test_sorted_keys_and_no_whitespace() -> None:
    value = {"b": 1, "a": [1, 2.5, {"d": None, "c": True}], "é": "Zoë"}
    assert canonical_json(value) == '{"a":[1,2.5,{"c":true,"d":null}],"b":1,"é":"Zoë"}'


def test_utf8_bytes_and_hash() -> None:
    assert canonical_json_bytes({"name": "Zoë"}) == '{"name":"Zoë"}'.encode()
    assert sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert sha256_hex(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_hex("Zoë") == hashlib.sha256("Zoë".encode()).hexdigest()


def test_datetimes_become_utc_iso_with_microseconds() -> None:
    berlin_summer = timezone(timedelta(hours=2))
    value = {"at": datetime(2026, 3, 1, 11, 30, tzinfo=berlin_summer), "on": date(2026, 3, 1)}
    assert canonical_json(value) == '{"at":"2026-03-01T09:30:00.000000+00:00","on":"2026-03-01"}'


def test_plain_values_of_subclasses_and_tuples() -> None:
    assert canonical_json([Colour.RED, Level.HIGH, True, (1, 2)]) == '["red",3,true,[1,2]]'


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (float("nan"), "not allowed"),
        ({"x": float("inf")}, "$.x: inf"),
        ([float("-inf")], "$[0]"),
        (b"bytes", "type bytes"),
        ({1, 2}, "type set"),
        (Decimal("1.5"), "type Decimal"),
        (object(), "type object"),
        ({1: "one"}, "key 1 is not a string"),
        ({"k": "\ud800"}, "not valid Unicode"),
        ({"\udfff": 1}, "not valid Unicode"),
        (datetime(2026, 1, 1), "naive datetime"),  # naive on purpose
    ],
)
def test_refuses_values_without_one_meaning(value: object, words: str) -> None:
    with pytest.raises(NotCanonical) as caught:
        canonical_json(value)
    assert words in str(caught.value)
    assert isinstance(caught.value, TypeError)
    assert isinstance(caught.value, ValueError)


def test_refuses_cycles_but_not_shared_values() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    with pytest.raises(NotCanonical, match="contains itself"):
        canonical_json(loop)
    table: dict[str, object] = {}
    table["self"] = table
    with pytest.raises(NotCanonical, match="contains itself"):
        canonical_json(table)
    shared = [1, 2]
    assert canonical_json({"a": shared, "b": shared}) == '{"a":[1,2],"b":[1,2]}'


@given(json_values)
def test_round_trip(value: object) -> None:
    assert json.loads(canonical_json(value)) == value


@given(json_values)
def test_stable_under_reparsing(value: object) -> None:
    text = canonical_json(value)
    assert canonical_json(json.loads(text)) == text
    assert sha256_hex(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()


@given(json_values)
def test_matches_strict_compact_json(value: object) -> None:
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == expected


@given(st.dictionaries(st.text(), json_values, max_size=8))
def test_key_order_does_not_matter(value: dict[str, object]) -> None:
    reversed_copy = dict(reversed(list(value.items())))
    assert canonical_json(reversed_copy) == canonical_json(value)


@given(json_values)
def test_every_object_has_sorted_keys(value: object) -> None:
    def check(pairs: list[tuple[str, object]]) -> dict[str, object]:
        keys = [key for key, _ in pairs]
        assert keys == sorted(keys)
        return dict(pairs)

    json.loads(canonical_json(value), object_pairs_hook=check)


@given(aware_datetimes)
def test_equal_instants_give_equal_text(moment: datetime) -> None:
    text = canonical_json(moment)
    assert text == canonical_json(moment.astimezone(UTC))
    parsed = datetime.fromisoformat(json.loads(text))
    assert parsed == moment
    assert parsed.utcoffset() == timedelta(0)
