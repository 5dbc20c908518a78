"""The shape of each record type of a bundle, and the checks across fields of one record.

Records name each other by business code. The field names and rules here are the bundle
format documented in ``docs/import-format.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from portal.consent.models import CONSENT_EVENTS, PURPOSES
from portal.importing import identifiers
from portal.importing.fields import (
    INT64_MAX,
    Confidential,
    Field,
    Invalid,
    boolean,
    box,
    code,
    codes,
    day,
    enum,
    fingerprint,
    integer,
    media_type,
    objects,
    optional,
    relative_path,
    sha256,
    span,
    strings,
    text,
    timestamp,
)
from portal.registry.identifiers import MAX_VALUE_LENGTH
from portal.registry.models import (
    ASSESSMENT_CRITERIA,
    ASSESSMENT_FINDINGS,
    AUTHORITY_KINDS,
    IDENTIFIER_KINDS,
    ITEM_KINDS,
    MARK_APPLIES,
    MARK_KINDS,
    PERSON_ROLES,
    PROVIDER_KINDS,
    SENSITIVITIES,
)
from portal.rfa.models import PROCEEDINGS_TYPES, RFA_STATUSES, URGENCIES

Values = dict[str, Any]
Check = Callable[[Values], list[str]]


def _country(value: Any) -> str:
    parsed: str = text(2)(value)
    if len(parsed) != 2 or not parsed.isascii() or not parsed.isalpha() or not parsed.isupper():
        raise Invalid("must be a two-letter ISO 3166 country code in capitals, such as NL")
    return parsed


PROVIDER = {
    "code": Field(code(32)),
    "name": Field(text(200)),
    "kind": Field(enum(PROVIDER_KINDS)),
    "public_name": Field(text(200)),
}

AUTHORITY = {
    "code": Field(code(32)),
    "name": Field(text(200)),
    "kind": Field(enum(AUTHORITY_KINDS)),
    "country": Field(_country),
}

ASSESSMENT = {
    "code": Field(code(40)),
    "authority": Field(code(32), ref="authority"),
    "criterion": Field(enum(ASSESSMENT_CRITERIA)),
    "finding": Field(enum(ASSESSMENT_FINDINGS)),
    "basis": Field(text()),
    "assessed_at": Field(timestamp),
    "valid_until": optional(timestamp),
    "assessed_by": Field(text(200)),
}

RECIPIENT_KEY = {
    "authority": Field(code(32), ref="authority"),
    "key_file": Field(relative_path),
    "fingerprint": Field(fingerprint),
    "verified_by": optional(text(200)),
    "verified_at": optional(timestamp),
    "verification_method": optional(text(500)),
}

PERSON = {
    "code": Field(code(32)),
    "pseudonym": Field(text(200)),
    "role": Field(enum(PERSON_ROLES)),
    "at_risk": Field(boolean),
}

ITEM = {
    "code": Field(code(32)),
    "provider": Field(code(32), ref="provider"),
    "kind": Field(enum(ITEM_KINDS)),
    "title": Field(text(300)),
    "description": optional(text(empty=True), ""),
    "media_type": Field(media_type),
    "file": Field(relative_path),
    "original_filename": optional(text(255)),
    "sha256": Field(sha256),
    "size": optional(integer(0, INT64_MAX)),
    "collected_at": optional(day),
    "place": optional(text(200, empty=True), ""),
    "sensitivity": Field(enum(SENSITIVITIES)),
    "tags": optional(strings(100), []),
    "persons": optional(codes(32), [], ref="person"),
    "cleared_as_is": optional(boolean, False),
}


def _arrives_pending(value: Any) -> str:
    """Marks arrive pending: one operator must not insert confirmed redactions (a second
    legal officer confirms them in the portal, portal.redaction.mark_review)."""
    if value != "pending":
        raise Invalid(
            f"must be pending or left out (got {value!r}): imported marks arrive pending and "
            "a second legal officer confirms them in the portal",
            without_value="must be pending or left out: imported marks arrive pending",
        )
    return "pending"


REDACTION_MARK = {
    "item": Field(code(32), ref="item"),
    "code": Field(code(40)),
    "kind": Field(enum(MARK_KINDS)),
    "term": optional(text(500)),
    "span": optional(span),
    "page": optional(integer(1)),
    "box": optional(box),
    "reason": Field(text(500)),
    "applies": Field(enum(MARK_APPLIES)),
    "review": optional(_arrives_pending, "pending"),
    "person": optional(code(32), ref="person"),
}

# The value is sealed on import; messages about the record never show it.
PROTECTED_IDENTIFIER = Confidential(
    person=Field(code(32), ref="person"),
    kind=Field(enum(tuple(IDENTIFIER_KINDS))),
    value=Field(text(MAX_VALUE_LENGTH)),
)

CONSENT = {
    "code": Field(code(40)),
    "provider": Field(code(32), ref="provider"),
    "item": optional(code(32), ref="item"),
    "authority": Field(code(32), ref="authority"),
    "event": Field(enum(CONSENT_EVENTS)),
    "purpose": optional(enum(PURPOSES), PURPOSES[0]),
    "conditions": optional(text(empty=True), ""),
    "expires_at": optional(timestamp),
    "reason": optional(text()),
    "recorded_at": Field(timestamp),
}

ASSURANCE = {
    "given_by": Field(text(200)),
    "given_at": Field(day),
    "text": Field(text()),
}

MESSAGE = {
    "body": Field(text()),
    "created_at": Field(timestamp),
}

STATUS_STEP = {
    "status": Field(enum(RFA_STATUSES)),
    "at": Field(timestamp),
    "note": optional(text(empty=True), ""),
}

RFA = {
    "code": Field(code(32)),
    "authority": Field(code(32), ref="authority"),
    "status": Field(enum(RFA_STATUSES)),
    "their_reference": Field(text(200)),
    "legal_basis": optional(text(empty=True), ""),
    "proceedings_type": Field(enum(PROCEEDINGS_TYPES)),
    "offences": optional(strings(200), []),
    "persons_concerned": optional(text(empty=True), ""),
    "summary_of_facts": optional(text(empty=True), ""),
    "assistance_sought": optional(text(empty=True), ""),
    "period_from": optional(day),
    "period_to": optional(day),
    "places": optional(text(empty=True), ""),
    "urgency": optional(enum(URGENCIES), "normal"),
    "urgency_justification": optional(text(empty=True), ""),
    "deadline": optional(day),
    "confidentiality": optional(text(empty=True), ""),
    "submitted_at": optional(timestamp),
    "items": optional(codes(32), [], ref="item"),
    "assurances": optional(objects(ASSURANCE), []),
    "messages": optional(objects(MESSAGE), []),
    "history": optional(objects(STATUS_STEP)),
}


def _check_assessment(values: Values) -> list[str]:
    assessed, until = values.get("assessed_at"), values.get("valid_until")
    if assessed is not None and until is not None and until <= assessed:
        return ["valid_until must be later than assessed_at"]
    return []


def _check_recipient_key(values: Values) -> list[str]:
    given = [name for name in VERIFICATION_FIELDS if name in values]
    if given and len(given) != len(VERIFICATION_FIELDS):
        missing = [name for name in VERIFICATION_FIELDS if name not in values]
        return [
            "verified_by, verified_at and verification_method go together; missing "
            + ", ".join(missing)
        ]
    return []


VERIFICATION_FIELDS = ("verified_by", "verified_at", "verification_method")

_MARK_FIELDS = {
    "term": ("term",),
    "text_span": ("span",),
    "pdf_box": ("page", "box"),
    "image_box": ("box",),
}


def _check_redaction_mark(values: Values) -> list[str]:
    kind = values.get("kind")
    if kind not in _MARK_FIELDS:
        return []
    needed = _MARK_FIELDS[kind]
    problems = [f"a {kind} mark needs field {name!r}" for name in needed if name not in values]
    problems += [
        f"field {name!r} does not apply to a {kind} mark"
        for name in ("term", "span", "page", "box")
        if name in values and name not in needed
    ]
    return problems


def _check_consent(values: Values) -> list[str]:
    problems = []
    event = values.get("event")
    if event is not None and event != "grant" and "expires_at" in values:
        problems.append(f"only a grant can expire; a {event} has no expires_at")
    if event in ("decline", "revoke") and "reason" not in values:
        problems.append(f"a {event} needs a reason")
    expires, recorded = values.get("expires_at"), values.get("recorded_at")
    if expires is not None and recorded is not None and expires <= recorded:
        problems.append("expires_at must be later than recorded_at")
    return problems


def _check_rfa(values: Values) -> list[str]:
    problems = []
    status = values.get("status")
    if status == "draft" and "submitted_at" in values:
        problems.append("a draft has not been submitted; leave out submitted_at")
    if status is not None and status != "draft" and "submitted_at" not in values:
        problems.append(f"a request with status {status} needs submitted_at")
    start, end = values.get("period_from"), values.get("period_to")
    if start is not None and end is not None and end < start:
        problems.append("period_to must not be earlier than period_from")
    if (
        values.get("urgency", "normal") != "normal"
        and not values.get("urgency_justification", "").strip()
    ):
        problems.append("an urgent request needs urgency_justification")
    history = values.get("history")
    if history is not None:
        problems += _check_history(history, status)
    return problems


def _check_history(history: list[Values], status: str | None) -> list[str]:
    if not history:
        return ["history, when given, must list at least the current status"]
    problems = []
    times = [step["at"] for step in history]
    if times != sorted(times):
        problems.append("history must be in chronological order")
    if status is not None and history[-1]["status"] != status:
        problems.append(f"history must end with the current status {status}")
    return problems


@dataclass(frozen=True)
class RecordType:
    name: str
    fields: Mapping[str, Field]
    check: Check


def _no_check(_values: Values) -> list[str]:
    return []


RECORD_TYPES: dict[str, RecordType] = {
    record_type.name: record_type
    for record_type in (
        RecordType("provider", PROVIDER, _no_check),
        RecordType("authority", AUTHORITY, _no_check),
        RecordType("assessment", ASSESSMENT, _check_assessment),
        RecordType("recipient_key", RECIPIENT_KEY, _check_recipient_key),
        RecordType("person", PERSON, _no_check),
        RecordType("item", ITEM, _no_check),
        RecordType("redaction_mark", REDACTION_MARK, _check_redaction_mark),
        RecordType("consent", CONSENT, _check_consent),
        RecordType("rfa", RFA, _check_rfa),
        RecordType(identifiers.RECORD_TYPE, PROTECTED_IDENTIFIER, identifiers.check_identifier),
    )
}

# Types that other records name by their ``code`` alone.
CODE_TYPES = ("provider", "authority", "person", "item", "consent", "rfa")


def identity(type_name: str, values: Values) -> tuple[str, ...] | None:
    """What makes a record unique (None when the fields that make it up are invalid)."""
    parts: tuple[str, ...]
    if type_name == "assessment":
        parts = ("authority", "code")
    elif type_name == "recipient_key":
        parts = ("authority", "fingerprint")
    elif type_name == "redaction_mark":
        parts = ("item", "code")
    elif type_name == identifiers.RECORD_TYPE:
        if not {"person", "value"} <= values.keys():
            return None
        return (type_name, values["person"], identifiers.value_key(values["value"]))
    else:
        parts = ("code",)
    if not all(part in values for part in parts):
        return None
    return (type_name, *(values[part] for part in parts))


def label(key: tuple[str, ...]) -> str:
    """How messages name a record: 'item ITM-1', 'assessment A-1 of authority NWU-NL'..."""
    type_name = key[0]
    if type_name == "assessment":
        return f"assessment {key[2]} of authority {key[1]}"
    if type_name == "recipient_key":
        return f"recipient key {key[2]} of authority {key[1]}"
    if type_name == "redaction_mark":
        return f"redaction mark {key[2]} of item {key[1]}"
    if type_name == identifiers.RECORD_TYPE:
        return f"protected identifier of person {key[1]}"  # never key[2], the value
    return f"{type_name.replace('_', ' ')} {key[1]}"
