"""data/manifest.json: the schema, building, canonical bytes, parsing and the refusals."""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from portal.canonical import canonical_json_bytes
from portal.packages.assembly import facts
from portal.packages.assembly.facts import Replacement
from portal.packages.assembly.manifest import (
    KNOWN_VERSIONS,
    MANIFEST_PATH,
    SCHEMA_VERSION,
    SIGNATURE_PATH,
    ManifestInvalid,
    build_manifest,
    load_schema,
    manifest_bytes,
    parse_manifest,
    validate_manifest,
)
from tests.support.package_facts import (
    PROTECTED_TERM,
    REDACTION_REASON,
    SIGNER,
    example_documents,
    example_item,
    example_package,
    example_records,
)


def _manifest() -> dict[str, Any]:
    items = [example_item(1), example_item(2, consent=None, redactions=(), rendition="as_is")]
    return build_manifest(example_package(), items, example_documents(), example_records())


def _errors(data: object) -> list[str]:
    with pytest.raises(ManifestInvalid) as caught:
        validate_manifest(data)
    assert caught.value.errors, "ManifestInvalid must say what is wrong"
    assert str(caught.value).startswith("the manifest is not valid: ")
    return caught.value.errors


# -- the schema -------------------------------------------------------------------------------


def test_schema_is_a_valid_draft_2020_12_schema_shipped_with_the_package() -> None:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["schema_version"] == {"enum": list(KNOWN_VERSIONS)}
    assert KNOWN_VERSIONS[-1] == SCHEMA_VERSION  # the portal writes the newest
    assert schema["$id"].endswith(f":{SCHEMA_VERSION}")
    assert "schema_version" in schema["description"]  # the bump rules are written down
    assert load_schema() is not load_schema()  # callers may not corrupt a shared copy


def test_every_object_in_the_schema_refuses_unknown_fields() -> None:
    def objects(node: object) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        if isinstance(node, dict):
            if node.get("type") == "object":
                found.append(node)
            for value in node.values():
                found.extend(objects(value))
        elif isinstance(node, list):
            for value in node:
                found.extend(objects(value))
        return found

    every = objects(load_schema())
    assert len(every) >= 8
    assert all(node.get("additionalProperties") is False for node in every)


def test_no_field_of_the_manifest_can_hold_redacted_text() -> None:
    """A redaction is kind, reason and count: there is nowhere to put what was removed."""
    schema = load_schema()
    redaction = schema["$defs"]["redaction"]
    assert set(redaction["properties"]) == {"kind", "reason", "count"}
    assert redaction["additionalProperties"] is False
    assert [f.name for f in dataclasses.fields(facts.RedactionSummary)] == [
        "kind",
        "reason",
        "count",
    ]

    # Every free-text field of the schema: none is meant for content of an item.
    def free_text(node: object) -> set[str]:
        found: set[str] = set()
        if isinstance(node, dict):
            for name, spec in node.get("properties", {}).items():
                if spec.get("$ref") == "#/$defs/text" or (
                    spec.get("type") == "string" and "pattern" not in spec
                ):
                    found.add(name)
            for value in node.values():
                found |= free_text(value)
        return found

    assert free_text(schema) == {
        "authority_reference",
        "name",
        "policy_id",
        "engine_version",
        "title",
        "provider",
        "reason",
        "conditions",
        "event",
        "by",
        "details",
    }


def test_a_replacement_names_the_package_it_replaces_and_the_items_left_out() -> None:
    replacing = example_package(
        code="PKG-2026-0002", replaces=Replacement("PKG-2026-0001", ("ITM-000002",))
    )
    manifest = build_manifest(replacing, [example_item(1)], example_documents(), example_records())
    assert manifest["replaces"] == {"code": "PKG-2026-0001", "items_left_out": ["ITM-000002"]}
    validate_manifest(manifest)


def _before_3(manifest: dict[str, Any], version: str) -> dict[str, Any]:
    """``manifest`` as schema ``version`` (1 or 2) wrote it: none of version 3's fields."""
    manifest["schema_version"] = version
    del manifest["decision_record"], manifest["item_index"]
    for item in manifest["items"]:
        del item["marks"]
        for event in item["custody"]:
            del event["time_source"]
    return manifest


def test_a_version_2_manifest_still_validates_and_cannot_carry_version_3_fields() -> None:
    old = _before_3(_manifest(), "2")
    validate_manifest(old)  # packages made before version 3 keep verifying
    old["items"][0]["marks"] = []
    assert _errors(old)


def test_version_3_requires_its_records_and_chronological_custody() -> None:
    manifest = _manifest()
    del manifest["decision_record"]
    assert "decision_record: is required but missing" in _errors(manifest)
    manifest = _manifest()
    del manifest["items"][0]["custody"][0]["time_source"]
    assert "items[0].custody[0].time_source: is required but missing" in _errors(manifest)
    manifest = _manifest()
    manifest["items"][0]["custody"].reverse()
    assert any("earlier than the event before it" in error for error in _errors(manifest))


def test_a_version_1_manifest_still_validates_and_cannot_say_replaces() -> None:
    old = _before_3(_manifest(), "1")
    validate_manifest(old)  # packages made before version 2 keep verifying
    old["replaces"] = {"code": "PKG-2026-0001", "items_left_out": []}
    assert _errors(old)


# -- building and bytes ------------------------------------------------------------------------


def test_built_manifest_validates_and_holds_the_facts() -> None:
    manifest = _manifest()
    validate_manifest(manifest)
    assert manifest["schema_version"] == "3"
    assert "replaces" not in manifest  # a first package replaces nothing
    assert manifest["package"] == {
        "code": "PKG-2026-0001",
        "created_at": "2026-03-04T09:30:15.123456+00:00",
    }
    assert manifest["rfa"] == {
        "reference": "RFA-2026-0007",
        "authority_reference": "NWU/2026/117-B",
    }
    assert manifest["authority"]["country"] == "NL"
    assert manifest["decision"]["decided_at"] == "2026-03-02T09:30:15.123456+00:00"
    assert manifest["signing_key_fingerprint"] == SIGNER
    first, second = manifest["items"]
    assert first["redactions"][0] == {"kind": "term", "reason": REDACTION_REASON, "count": 3}
    assert first["consent"]["kind"] == "item"
    assert first["custody"][1] == {
        "at": "2025-02-07T09:30:15.123456+00:00",
        "event": "registered",
        "by": "Registry",
        "details": "checksum verified",
        "time_source": "portal-clock",
    }
    assert second["consent"] is None and second["redactions"] == []
    assert [d["path"] for d in manifest["documents"]] == [
        "data/transmittal-letter.pdf",
        "data/custody-and-redaction-log.pdf",
    ]
    assert MANIFEST_PATH == "data/manifest.json" and SIGNATURE_PATH == "data/manifest.json.asc"


def test_build_converts_other_time_zones_to_utc() -> None:
    cest = timezone(timedelta(hours=2))
    package = example_package(created_at=datetime(2026, 3, 4, 11, 30, tzinfo=cest))
    manifest = build_manifest(package, [example_item()], [], example_records())
    assert manifest["package"]["created_at"] == "2026-03-04T09:30:00.000000+00:00"


def test_build_refuses_a_naive_datetime_naming_the_field() -> None:
    item = example_item(custody=(facts.CustodyEvent(datetime(2026, 1, 1), "collected", "x"),))
    with pytest.raises(ManifestInvalid) as caught:
        build_manifest(example_package(), [item], [], example_records())
    assert caught.value.errors == [
        "items[0].custody[0].at: naive datetime 2026-01-01T00:00:00; give it in UTC"
    ]


def test_build_refuses_facts_that_do_not_fit_the_schema() -> None:
    items = [example_item(1), example_item(2, sha256="ABC", path="data/../../etc/passwd")]
    with pytest.raises(ManifestInvalid) as caught:
        build_manifest(example_package(recipient_fingerprints=()), items, [], example_records())
    assert caught.value.errors == [
        "items[1].path: 'data/../../etc/passwd' is not a relative path under data/"
        " (no '..', no segment starting with '.')",
        "items[1].sha256: 'ABC' is not a SHA-256 digest (64 lowercase hex digits)",
        "recipient_fingerprints: [] should be non-empty",
    ]


def test_manifest_holds_no_redacted_text() -> None:
    raw = manifest_bytes(_manifest())
    assert PROTECTED_TERM.encode() not in raw
    assert REDACTION_REASON.encode() in raw  # the reason is there, the text is not

    def keys(node: object) -> set[str]:
        if isinstance(node, dict):
            return set(node) | {k for value in node.values() for k in keys(value)}
        if isinstance(node, list):
            return {k for value in node for k in keys(value)}
        return set()

    assert not keys(json.loads(raw)) & {"term", "text", "span", "content", "terms", "redacted"}


def test_manifest_bytes_are_canonical() -> None:
    manifest = _manifest()
    raw = manifest_bytes(manifest)
    assert raw == manifest_bytes(_manifest())  # same facts, same bytes
    assert raw == canonical_json_bytes(manifest) + b"\n"
    assert raw.endswith(b"}\n") and raw.count(b"\n") == 1

    def reversed_keys(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: reversed_keys(node[key]) for key in reversed(list(node))}
        if isinstance(node, list):
            return [reversed_keys(value) for value in node]
        return node

    shuffled = reversed_keys(manifest)
    assert list(shuffled) != list(manifest)
    assert manifest_bytes(shuffled) == raw  # key order is irrelevant
    assert parse_manifest(raw) == manifest


# -- refusals ---------------------------------------------------------------------------------

Change = Callable[[dict[str, Any]], None]


def _set(path: str, value: object) -> Change:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for step in parents:
            node = node[int(step)] if step.isdigit() else node[step]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _drop(path: str) -> Change:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for step in parents:
            node = node[int(step)] if step.isdigit() else node[step]
        del node[last]

    return change


REFUSALS: list[tuple[str, Change, str]] = [
    ("missing top-level", _drop("decision"), "decision: is required but missing"),
    ("missing nested", _drop("items.0.sha256"), "items[0].sha256: is required but missing"),
    (
        "missing in consent",
        _drop("items.0.consent.granted_at"),
        "items[0].consent.granted_at: is required but missing",
    ),
    ("extra top-level", _set("comment", "hi"), "comment: is not an allowed field"),
    ("extra in item", _set("items.1.notes", "x"), "items[1].notes: is not an allowed field"),
    (
        "redacted text smuggled in",
        _set("items.0.redactions.0.text", PROTECTED_TERM),
        "items[0].redactions[0].text: is not an allowed field",
    ),
    (
        "uppercase digest",
        _set("items.0.sha256", "A" * 64),
        "items[0].sha256: '" + "A" * 64 + "' is not a SHA-256 digest",
    ),
    (
        "short digest",
        _set("documents.1.sha256", "ab12"),
        "documents[1].sha256: 'ab12' is not a SHA-256 digest",
    ),
    (
        "dot-dot path",
        _set("items.0.path", "data/items/../../secret"),
        "items[0].path: 'data/items/../../secret' is not a relative path under data/",
    ),
    (
        "absolute path",
        _set("items.0.path", "/etc/passwd"),
        "items[0].path: '/etc/passwd' is not a relative path under data/",
    ),
    (
        "outside data/",
        _set("documents.0.path", "bag-info.txt"),
        "documents[0].path: 'bag-info.txt' is not a relative path under data/",
    ),
    (
        "hidden file",
        _set("items.0.path", "data/items/.hidden"),
        "items[0].path: 'data/items/.hidden' is not a relative path under data/",
    ),
    (
        "backslash",
        _set("items.0.path", "data\\items\\x.pdf"),
        "items[0].path: 'data\\\\items\\\\x.pdf' is not a relative path under data/",
    ),
    (
        "non-UTC time",
        _set("package.created_at", "2026-03-04T11:30:15+02:00"),
        "package.created_at: '2026-03-04T11:30:15+02:00' is not an RFC 3339 time in UTC",
    ),
    (
        "time without zone",
        _set("items.0.custody.0.at", "2026-03-04T09:30:15"),
        "items[0].custody[0].at: '2026-03-04T09:30:15' is not an RFC 3339 time in UTC",
    ),
    (
        "impossible date",
        _set("decision.decided_at", "2026-02-30T09:30:15Z"),
        "decision.decided_at: '2026-02-30T09:30:15Z' is not an RFC 3339 time in UTC",
    ),
    (
        "non-UTC expiry",
        _set("items.0.consent.expires_at", "2027-03-04T09:30:15-05:00"),
        "items[0].consent.expires_at: '2027-03-04T09:30:15-05:00' is not an RFC 3339 time",
    ),
    (
        "short fingerprint",
        _set("signing_key_fingerprint", SIGNER[:16]),
        f"signing_key_fingerprint: '{SIGNER[:16]}' is not a full OpenPGP fingerprint",
    ),
    (
        "lowercase fingerprint",
        _set("recipient_fingerprints.1", SIGNER.lower()),
        f"recipient_fingerprints[1]: '{SIGNER.lower()}' is not a full OpenPGP fingerprint",
    ),
    ("unknown rendition", _set("items.0.rendition", "original"), "items[0].rendition: 'original'"),
    ("negative size", _set("items.1.size", -1), "items[1].size: -1 is less than the minimum"),
    ("size as text", _set("items.1.size", "12"), "items[1].size: '12' is not of type 'integer'"),
    ("zero count", _set("items.0.redactions.1.count", 0), "items[0].redactions[1].count: 0"),
    ("unknown version", _set("schema_version", "4"), "schema_version: '4' is not one of"),
    ("empty title", _set("items.0.title", ""), "items[0].title: '' should be non-empty"),
    (
        "consent of another kind",
        _set("items.0.consent.kind", "verbal"),
        "items[0].consent.kind: 'verbal' is not one of ['item', 'standing']",
    ),
    (
        "duplicate recipient",
        _set("recipient_fingerprints", [SIGNER, SIGNER]),
        "recipient_fingerprints: ['",
    ),
    ("no items", _set("items", []), "items: [] should be non-empty"),
    (
        "same path twice",
        _set("items.1.path", "data/items/ITM-000001/statement.pdf"),
        "items[1].path: 'data/items/ITM-000001/statement.pdf' is already the path of items[0].path",
    ),
    (
        "document over the manifest",
        _set("documents.0.path", MANIFEST_PATH),
        "documents[0].path: 'data/manifest.json' is reserved for the manifest and its signature",
    ),
    (
        "same item twice",
        _set("items.1.code", "ITM-000001"),
        "items[1].code: 'ITM-000001' is already items[0]",
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_schema_refuses_and_names_the_field(change: Change, expected: str) -> None:
    data = copy.deepcopy(_manifest())
    change(data)
    errors = _errors(data)
    assert any(line.startswith(expected) for line in errors), errors
    # parse_manifest refuses the same bytes the same way.
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(json.dumps(data).encode())
    assert caught.value.errors == errors


def test_every_problem_is_reported_in_field_order() -> None:
    data = copy.deepcopy(_manifest())
    data["items"][1]["sha256"] = "x"
    data["items"][0]["size"] = -5
    del data["package"]["code"]
    data["items"][10 - 10]["path"] = "/abs"
    errors = _errors(data)
    assert [line.split(":")[0] for line in errors] == [
        "items[0].path",
        "items[0].size",
        "items[1].sha256",
        "package.code",
    ]


def test_long_values_are_shortened_in_messages() -> None:
    data = copy.deepcopy(_manifest())
    data["items"][0]["title"] = "x" * 100_000
    (error,) = _errors(data)
    assert error.startswith("items[0].title: ") and len(error) < 300


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\xff\xfe{}", "manifest: not UTF-8 (byte 0)"),
        (b'{"schema_version": "1",', "manifest: not JSON (Expecting property name enclosed"),
        (b"[1, 2]", "manifest: [1, 2] is not of type 'object'"),
        (b'{"a": 1, "a": 2}', "manifest: the key 'a' appears twice"),
        (b'{"size": NaN}', "manifest: NaN is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "manifest: nested too deeply"),
    ],
    ids=["not utf-8", "truncated", "array", "duplicate key", "nan", "deep"],
)
def test_parse_refuses_what_is_not_a_manifest(raw: bytes, expected: str) -> None:
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(raw)
    assert caught.value.errors[0].startswith(expected), caught.value.errors


def test_parse_refuses_text_that_is_not_unicode_and_quotes_odd_keys() -> None:
    raw = manifest_bytes(_manifest()).decode()
    surrogate = raw.replace('"title":"', '"title":"\\ud800', 1)
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(surrogate.encode())
    assert caught.value.errors == [
        "documents[0].title: string is not valid Unicode (surrogates not allowed)"
    ]
    odd_key = raw.replace('"title":', '"ti tle\\n":1,"title":', 1)
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(odd_key.encode())
    assert caught.value.errors == ["documents[0]['ti tle\\n']: is not an allowed field"]


def test_a_duplicate_key_that_hides_a_second_value_is_refused() -> None:
    """Two JSON readers could disagree on which digest counts; the verifier refuses both."""
    raw = manifest_bytes(_manifest()).decode()
    first_digest = raw.index('"sha256":')
    doubled = raw[:first_digest] + f'"sha256":"{"0" * 64}",' + raw[first_digest:]
    with pytest.raises(ManifestInvalid, match="appears twice"):
        parse_manifest(doubled.encode())


def test_manifest_module_imports_no_web_database_or_pdf_library() -> None:
    """The recipient's verifier imports it; it must stay light and offline."""
    script = (
        "import sys, portal.packages.assembly.manifest, portal.packages.assembly.facts;"
        "heavy = {'flask', 'sqlalchemy', 'weasyprint', 'werkzeug', 'reportlab'};"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    )
    assert result.stdout.strip() == "[]"
