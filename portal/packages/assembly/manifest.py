"""``data/manifest.json``: build it from the package facts, write it canonically, read it back.

The recipient's verifier imports this module, so it depends on the standard library,
jsonschema and :mod:`portal.canonical` only (no Flask, SQLAlchemy or WeasyPrint). The JSON
Schema ships beside it (``manifest.schema.json``); its description says when the schema
version changes.

Checks the schema cannot express are made here too: no two files share a path, no file is
the manifest or its signature, item codes are unique, and (version 3) each item's custody
events are in chronological order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from jsonschema import (  # type: ignore[import-untyped]  # no stubs installed
    Draft202012Validator,
    FormatChecker,
    ValidationError,
)

from portal.canonical import NotCanonical, canonical_json_bytes, format_datetime
from portal.packages.assembly import facts

__all__ = [
    "KNOWN_VERSIONS",
    "MANIFEST_PATH",
    "MAX_MANIFEST_BYTES",
    "SCHEMA_VERSION",
    "SIGNATURE_PATH",
    "ManifestInvalid",
    "build_manifest",
    "load_schema",
    "manifest_bytes",
    "parse_manifest",
    "record_paths",
    "validate_manifest",
]

SCHEMA_VERSION = "3"  # what this portal writes
KNOWN_VERSIONS = ("1", "2", "3")  # what the schema (and so portal-verify) reads
MANIFEST_PATH = "data/manifest.json"
SIGNATURE_PATH = "data/manifest.json.asc"
SCHEMA_RESOURCE = "manifest.schema.json"
MAX_MANIFEST_BYTES = 64 * 1024 * 1024  # far above any real package; refuses absurd input
_MAX_SHOWN = 120  # characters of an offending value quoted in a message
# What a value of each $defs type must look like, said for people instead of a regex.
_HINTS = {
    "code": "is not a code (letters, digits, '.', '_', '-'; at most 40)",
    "sha256": "is not a SHA-256 digest (64 lowercase hex digits)",
    "fingerprint": "is not a full OpenPGP fingerprint (40 or 64 hex capitals, no spaces)",
    "timestamp": "is not an RFC 3339 time in UTC (such as 2026-01-31T09:30:00Z)",
    "path": "is not a relative path under data/ (no '..', no segment starting with '.')",
    "media_type": "is not a media type such as application/pdf",
}


class ManifestInvalid(ValueError):
    """The manifest does not validate. ``errors`` holds one readable line per problem,
    each starting with the field it is about, e.g. ``items[2].sha256: ...``."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        shown = "; ".join(self.errors[:5])
        more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        super().__init__(f"the manifest is not valid: {shown}{more}")


def load_schema() -> dict[str, Any]:
    """The manifest's JSON Schema (a fresh dict on every call)."""
    text = resources.files("portal.packages.assembly").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@lru_cache(maxsize=1)
def _hints() -> tuple[tuple[dict[str, Any], str], ...]:
    definitions = load_schema()["$defs"]
    return tuple((definitions[name], hint) for name, hint in _HINTS.items())


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=_format_checker())


def _format_checker() -> FormatChecker:
    """Only ``date-time``, checked with the standard library (no optional dependency)."""
    checker = FormatChecker(formats=())
    checker.checks("date-time", raises=ValueError)(_is_aware_datetime)
    return checker


def _is_aware_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True  # "type" reports it
    return datetime.fromisoformat(value).utcoffset() is not None


# -- building -------------------------------------------------------------------------------


def _time(value: datetime, where: str) -> str:
    try:
        return format_datetime(value)
    except NotCanonical:
        problem = f"{where}: naive datetime {value.isoformat()}; give it in UTC"
        raise ManifestInvalid([problem]) from None


def _redaction(summary: facts.RedactionSummary) -> dict[str, Any]:
    return {"kind": summary.kind, "reason": summary.reason, "count": summary.count}


def _consent(consent: facts.ConsentFacts | None, where: str) -> dict[str, Any] | None:
    if consent is None:
        return None
    return {
        "event_code": consent.event_code,
        "kind": consent.kind,
        "granted_at": _time(consent.granted_at, f"{where}.granted_at"),
        "expires_at": (
            None if consent.expires_at is None else _time(consent.expires_at, f"{where}.expires_at")
        ),
        "conditions": consent.conditions,
    }


def _custody(event: facts.CustodyEvent, where: str) -> dict[str, Any]:
    return {
        "at": _time(event.at, f"{where}.at"),
        "event": event.event,
        "by": event.by,
        "details": event.details,
        "time_source": event.time_source,
    }


def _mark(mark: facts.AppliedMark) -> dict[str, Any]:
    return {
        "code": mark.code,
        "kind": mark.kind,
        "reason": mark.reason,
        "hits": mark.hits,
        "page": mark.page,
        "box": None if mark.box is None else [round(value, 6) for value in mark.box],
        "pages": [[page, hits] for page, hits in mark.pages],
        "proposed_by": mark.proposed_by,
        "confirmed_by": mark.confirmed_by,
    }


def _record_file(record: facts.RecordFile) -> dict[str, Any]:
    return {
        "path": record.path,
        "sha256": record.sha256,
        "size": record.size,
        "media_type": record.media_type,
    }


def _item(item: facts.ItemEntry, where: str) -> dict[str, Any]:
    return {
        "code": item.code,
        "title": item.title,
        "kind": item.kind,
        "provider": item.provider,
        "source_sha256": item.source_sha256,
        "source_media_type": item.source_media_type,
        "rendition": item.rendition,
        "path": item.path,
        "sha256": item.sha256,
        "size": item.size,
        "media_type": item.media_type,
        "redactions": [_redaction(summary) for summary in item.redactions],
        "consent": _consent(item.consent, f"{where}.consent"),
        "custody": [
            _custody(event, f"{where}.custody[{index}]") for index, event in enumerate(item.custody)
        ],
        "marks": [_mark(mark) for mark in item.marks],
    }


def _document(document: facts.DocumentEntry) -> dict[str, Any]:
    return {
        "path": document.path,
        "title": document.title,
        "sha256": document.sha256,
        "size": document.size,
        "media_type": document.media_type,
    }


def build_manifest(
    package: facts.PackageFacts,
    items: Sequence[facts.ItemEntry],
    documents: Sequence[facts.DocumentEntry],
    records: facts.Records,
) -> dict[str, Any]:
    """The manifest of ``package``, validated (raises :class:`ManifestInvalid` naming the
    field when a fact does not fit the schema). ``records``: the decision record and the
    item index, written before the manifest."""
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "package": {
            "code": package.code,
            "created_at": _time(package.created_at, "package.created_at"),
        },
        "rfa": {
            "reference": package.rfa_reference,
            "authority_reference": package.authority_reference,
        },
        "authority": {
            "code": package.authority_code,
            "name": package.authority_name,
            "country": package.authority_country,
        },
        "decision": {
            "id": package.decision_id,
            "policy_id": package.policy_id,
            "policy_revision": package.policy_revision,
            "engine_version": package.engine_version,
            "decided_at": _time(package.decided_at, "decision.decided_at"),
        },
        "signing_key_fingerprint": package.signer_fingerprint,
        "recipient_fingerprints": list(package.recipient_fingerprints),
        "items": [_item(item, f"items[{index}]") for index, item in enumerate(items)],
        "documents": [_document(document) for document in documents],
        "decision_record": {
            **_record_file(records.decision),
            "signature_path": records.decision_signature_path,
        },
        "item_index": {
            "csv": _record_file(records.index_csv),
            "json": _record_file(records.index_json),
        },
    }
    if package.replaces is not None:
        manifest["replaces"] = {
            "code": package.replaces.code,
            "items_left_out": list(package.replaces.items_left_out),
        }
    validate_manifest(manifest)
    return manifest


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The bytes written to ``data/manifest.json`` (and signed): canonical JSON and a newline."""
    return canonical_json_bytes(manifest) + b"\n"


# -- checking -------------------------------------------------------------------------------


def _where(path: Iterable[str | int], name: str | None = None) -> str:
    text = ""
    for step in [*path, *([] if name is None else [name])]:
        if isinstance(step, int):
            text += f"[{step}]"
        elif not step.isidentifier():  # an unknown key from the input: quoted, as Python would
            text += f"[{step[:_MAX_SHOWN]!r}]"
        else:
            text += f".{step}" if text else step
    return text or "manifest"


def _shorten(message: str) -> str:
    return message if len(message) <= 2 * _MAX_SHOWN else message[: 2 * _MAX_SHOWN] + "..."


def _messages(error: ValidationError) -> list[str]:
    """Readable lines for one schema error, naming the field itself where possible."""
    path = list(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        required = error.validator_value if isinstance(error.validator_value, list) else []
        missing = [name for name in required if name not in instance]
        return [f"{_where(path, name)}: is required but missing" for name in missing]
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = sorted(str(name) for name in instance if name not in known)
        return [f"{_where(path, name)}: is not an allowed field" for name in extra]
    if error.validator in ("anyOf", "oneOf") and error.context:
        # e.g. consent is null or an object: say what is wrong with the object given.
        relevant = [sub for sub in error.context if sub.validator != "type"]
        if relevant:
            return [line for sub in relevant for line in _messages(sub)]
    if error.validator in ("pattern", "not", "format"):
        for definition, hint in _hints():
            if error.schema == definition:
                return [f"{_where(path)}: {_shorten(repr(instance))} {hint}"]
    return [f"{_where(path)}: {_shorten(error.message)}"]


def _file_paths(manifest: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    for section in ("items", "documents"):
        for index, entry in enumerate(manifest[section]):
            yield f"{section}[{index}].path", entry["path"]
    yield from record_paths(manifest)


def record_paths(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, path) of the decision record, its signature and the item index (version 3;
    none before)."""
    found = []
    record = manifest.get("decision_record")
    if record is not None:
        found.append(("decision_record.path", record["path"]))
        found.append(("decision_record.signature_path", record["signature_path"]))
    for kind, entry in (manifest.get("item_index") or {}).items():
        found.append((f"item_index.{kind}.path", entry["path"]))
    return found


def _out_of_order(manifest: Mapping[str, Any]) -> list[str]:
    """Version 3: each item's custody events are in chronological order."""
    if manifest["schema_version"] != "3":
        return []
    errors = []
    for index, item in enumerate(manifest["items"]):
        times = [datetime.fromisoformat(event["at"]) for event in item["custody"]]
        for number in range(1, len(times)):
            if times[number] < times[number - 1]:
                errors.append(
                    f"items[{index}].custody[{number}].at: earlier than the event before it "
                    "(custody events are in chronological order)"
                )
    return errors


def _consistency(manifest: Mapping[str, Any]) -> list[str]:
    """What the schema cannot say: unique paths and codes, no clash with the manifest."""
    errors: list[str] = []
    seen: dict[str, str] = {}
    for where, path in _file_paths(manifest):
        if path in (MANIFEST_PATH, SIGNATURE_PATH):
            errors.append(f"{where}: {path!r} is reserved for the manifest and its signature")
        elif path in seen:
            errors.append(f"{where}: {path!r} is already the path of {seen[path]}")
        else:
            seen[path] = where
    codes: dict[str, int] = {}
    for index, item in enumerate(manifest["items"]):
        if item["code"] in codes:
            errors.append(
                f"items[{index}].code: {item['code']!r} is already items[{codes[item['code']]}]"
            )
        codes.setdefault(item["code"], index)
    return errors + _out_of_order(manifest)


def _path_order(error: ValidationError) -> list[tuple[int, int, str]]:
    return [(0, step, "") if isinstance(step, int) else (1, 0, step) for step in error.path]


def validate_manifest(data: object) -> None:
    """Raise :class:`ManifestInvalid` listing every problem of ``data``, in field order."""
    errors = sorted(_validator().iter_errors(data), key=_path_order)
    if errors:
        lines = [line for error in errors for line in _messages(error)]
        raise ManifestInvalid(list(dict.fromkeys(lines)))  # one line per problem
    if not isinstance(data, Mapping):  # the schema requires an object: not reached
        raise ManifestInvalid(["manifest: must be a JSON object"])
    problems = _consistency(data)
    if problems:
        raise ManifestInvalid(problems)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # Two parsers could pick different values: refuse instead of guessing.
            raise ManifestInvalid([f"manifest: the key {key[:_MAX_SHOWN]!r} appears twice"])
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ManifestInvalid([f"manifest: {name} is not JSON"])


def parse_manifest(raw: bytes) -> dict[str, Any]:
    """Read and validate the bytes of a manifest (raises :class:`ManifestInvalid`)."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestInvalid([f"manifest: larger than {MAX_MANIFEST_BYTES} bytes"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestInvalid([f"manifest: not UTF-8 (byte {exc.start})"]) from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ManifestInvalid(
            [f"manifest: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"]
        ) from None
    except RecursionError:
        raise ManifestInvalid(["manifest: nested too deeply"]) from None
    validate_manifest(data)
    if not isinstance(data, dict):  # validate_manifest refused everything else already
        raise ManifestInvalid(["manifest: must be a JSON object"])
    try:
        canonical_json_bytes(data)
    except NotCanonical as exc:  # e.g. a lone surrogate written as \ud800
        raise ManifestInvalid([str(exc).removeprefix("$.")]) from None
    return data
