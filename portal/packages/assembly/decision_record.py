"""``data/decision-record.json``: the eligibility decision a package was built from, signed.

What a court needs to read the decision from the package alone: its id and time, the legal
officer(s) who ran it, the policy (id, revision and the SHA-256 of each policy file, so the
revision can be recomputed from the published policy), the engine version, the request-wide
rules and, for each item of the package, its outcome with the rules applied (rule id,
status, effect and legal reference) and the codes of the marks the decision asked for.

Never in it: rule explanations and facts (they may quote a title or a provider), protected
identifiers, redacted text, or the codes of the decision's items the package does not carry
(only how many there were, by outcome). It is canonical JSON (:mod:`portal.canonical`), made
and signed (detached, armoured) by the worker during assembly; the signed manifest names its
SHA-256. The recipient's verifier imports this module: standard library and
:mod:`portal.canonical` only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from portal.canonical import canonical_json_bytes, format_datetime

__all__ = [
    "DECISION_RECORD_PATH",
    "DECISION_SIGNATURE_PATH",
    "RECORD_FORMAT",
    "SHARED",
    "DecisionFacts",
    "ItemOutcome",
    "RecordInvalid",
    "RuleOutcome",
    "build_decision_record",
    "decision_record_bytes",
    "disagreements",
    "parse_decision_record",
]

DECISION_RECORD_PATH = "data/decision-record.json"
DECISION_SIGNATURE_PATH = "data/decision-record.json.asc"
RECORD_FORMAT = "1"
MAX_RECORD_BYTES = 64 * 1024 * 1024
#: Item outcomes under which an item may be in a package.
SHARED = ("share", "share_redacted")


class RecordInvalid(ValueError):
    """The bytes are not a decision record this module can read; the message says why."""


@dataclass(frozen=True)
class RuleOutcome:
    """One rule's result, without its explanation: id, status, effect, legal reference."""

    rule: str
    status: str  # "pass" | "fail" | "not_applicable" | "redact" ...
    effect: str  # the outcome it pushes the item towards
    reference: str  # the legal reference of the rule, from the policy
    code: str = ""  # the result's code (e.g. "consent_missing")


@dataclass(frozen=True)
class ItemOutcome:
    code: str
    outcome: str
    rules: tuple[RuleOutcome, ...]
    marks: tuple[str, ...]  # codes of the redaction marks the decision asked for


@dataclass(frozen=True)
class DecisionFacts:
    """The decision as the record says it (every datetime aware, UTC)."""

    package_code: str
    decision_id: str
    decided_at: datetime
    outcome: str
    engine_version: str
    deciding_officers: tuple[str, ...]
    policy_id: str
    policy_revision: str
    policy_files: tuple[tuple[str, str], ...]  # (file name, SHA-256 of its bytes)
    snapshot_sha256: str
    results_sha256: str
    rfa_reference: str
    authority_code: str
    request_rules: tuple[RuleOutcome, ...]
    items: tuple[ItemOutcome, ...]
    not_in_package: tuple[tuple[str, int], ...] = ()  # (outcome, how many items)


def _rule(rule: RuleOutcome) -> dict[str, str]:
    return {
        "rule": rule.rule,
        "status": rule.status,
        "effect": rule.effect,
        "reference": rule.reference,
        "code": rule.code,
    }


def build_decision_record(facts: DecisionFacts) -> dict[str, Any]:
    """The record as a plain JSON value."""
    return {
        "record": "eligibility-decision",
        "format": RECORD_FORMAT,
        "package": facts.package_code,
        "decision": {
            "id": facts.decision_id,
            "decided_at": format_datetime(facts.decided_at),
            "outcome": facts.outcome,
            "engine_version": facts.engine_version,
            "deciding_officers": list(facts.deciding_officers),
            "snapshot_sha256": facts.snapshot_sha256,
            "results_sha256": facts.results_sha256,
        },
        "policy": {
            "id": facts.policy_id,
            "revision": facts.policy_revision,
            "files": dict(facts.policy_files),
        },
        "request": {"reference": facts.rfa_reference, "authority": facts.authority_code},
        "request_rules": [_rule(rule) for rule in facts.request_rules],
        "items": [
            {
                "code": item.code,
                "outcome": item.outcome,
                "rules": [_rule(rule) for rule in item.rules],
                "marks": list(item.marks),
            }
            for item in facts.items
        ],
        "items_not_in_package": dict(facts.not_in_package),
    }


def decision_record_bytes(record: Mapping[str, Any]) -> bytes:
    """The bytes written to the bag (and signed): canonical JSON and a newline."""
    return canonical_json_bytes(record) + b"\n"


# -- reading it back (portal-verify) ----------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise RecordInvalid(f"the key {key[:80]!r} appears twice")
        found[key] = value
    return found


def _table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecordInvalid(f"{where} is not an object")
    return value


def _text(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str):
        raise RecordInvalid(f"{where}.{key} is missing or not text")
    return value


def parse_decision_record(raw: bytes) -> dict[str, Any]:
    """The record in ``raw``, its shape checked (raises :class:`RecordInvalid`)."""
    if len(raw) > MAX_RECORD_BYTES:
        raise RecordInvalid(f"larger than {MAX_RECORD_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as exc:
        raise RecordInvalid(f"not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise RecordInvalid(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise RecordInvalid("nested too deeply") from None
    record = _table(data, "the record")
    if record.get("record") != "eligibility-decision":
        raise RecordInvalid("it is not an eligibility decision record")
    if record.get("format") != RECORD_FORMAT:
        raise RecordInvalid(f"record format {record.get('format')!r} is unknown")
    _text(record, "package", "record")
    decision = _table(record.get("decision"), "decision")
    for key in ("id", "decided_at", "outcome", "engine_version"):
        _text(decision, key, "decision")
    policy = _table(record.get("policy"), "policy")
    for key in ("id", "revision"):
        _text(policy, key, "policy")
    items = record.get("items")
    if not isinstance(items, list):
        raise RecordInvalid("items is not a list")
    for index, item in enumerate(items):
        entry = _table(item, f"items[{index}]")
        _text(entry, "code", f"items[{index}]")
        _text(entry, "outcome", f"items[{index}]")
    return record


def disagreements(record: Mapping[str, Any], manifest: Mapping[str, Any]) -> list[str]:
    """Where the record and the (verified) manifest disagree: another package or decision,
    another policy, or an item of the package the decision does not share."""
    problems: list[str] = []
    code = manifest["package"]["code"]
    if record["package"] != code:
        problems.append(f"it was made for package {record['package']}, this package is {code}")
    decision, named = record["decision"], manifest["decision"]
    pairs: Sequence[tuple[str, object, object]] = (
        ("decision id", decision["id"], named["id"]),
        ("decision time", decision["decided_at"], named["decided_at"]),
        ("engine version", decision["engine_version"], named["engine_version"]),
        ("policy id", record["policy"]["id"], named["policy_id"]),
        ("policy revision", record["policy"]["revision"], named["policy_revision"]),
    )
    for what, theirs, ours in pairs:
        if theirs != ours:
            problems.append(f"its {what} is {theirs!s:.80}, the manifest's is {ours!s:.80}")
    outcomes = {item["code"]: item["outcome"] for item in record["items"]}
    for item in manifest["items"]:
        outcome = outcomes.get(item["code"])
        if outcome is None:
            problems.append(f"it gives no outcome for {item['code']}")
        elif outcome not in SHARED:
            problems.append(f"it does not share {item['code']} (outcome {outcome})")
    return problems
