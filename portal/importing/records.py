"""Per record type: find the row that already exists, describe it, and build new rows.

A record is compared with its existing row field by field, in the bundle's own terms
(references as codes), so "already exists with different title" names what differs.
New rows are built in four levels; the importer flushes between levels so that rows of a
later level can use the database ids of an earlier one.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.consent.models import Consent
from portal.db import Base
from portal.registry import mark_terms
from portal.registry import models as registry
from portal.registry.openpgp import KeyInfo
from portal.rfa.models import Assurance, Message, Rfa, RfaItem, RfaStatusChange
from portal.sealing import Sealer

#: The repository rows that references name by code.
Coded = registry.Provider | registry.Authority | registry.Person | registry.Item
CODE_MODELS: dict[str, type[Coded | Consent | Rfa]] = {
    "provider": registry.Provider,
    "authority": registry.Authority,
    "person": registry.Person,
    "item": registry.Item,
    "consent": Consent,
    "rfa": Rfa,
}
LEVELS = 4
_CHUNK = 500


@dataclass(eq=False)
class Record:
    """One line of the bundle, parsed."""

    line: int
    type: str
    values: dict[str, Any]
    key: tuple[str, ...] | None
    fields_ok: bool
    problems: list[str] = field(default_factory=list)
    # Resolved references, by field: a Record of this bundle or an existing row.
    refs: dict[str, Target | list[Target]] = field(default_factory=dict)
    existing: Any = None  # the identical row already stored
    created: Any = None  # the row this import made
    key_info: KeyInfo | None = None
    armored: str | None = None
    size: int | None = None  # of the item's file, as streamed

    @property
    def ok(self) -> bool:
        return self.fields_ok and not self.problems

    def row(self) -> Any:
        """The database row standing for this record (existing or created), if any."""
        return self.existing if self.existing is not None else self.created


Target = Record | Base


class Catalog:
    """Existing rows by business code, fetched in batches and cached."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._cache: dict[tuple[str, str], Any] = {}

    def prefetch(self, type_name: str, codes: Iterable[str]) -> None:
        model = CODE_MODELS[type_name]
        wanted = sorted({code for code in codes if (type_name, code) not in self._cache})
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            for code in chunk:
                self._cache[(type_name, code)] = None
            rows: Iterable[Any] = self.session.scalars(select(model).where(model.code.in_(chunk)))
            for row in rows:
                self._cache[(type_name, row.code)] = row

    def get(self, type_name: str, code: str) -> Any:
        if (type_name, code) not in self._cache:
            self.prefetch(type_name, [code])
        return self._cache[(type_name, code)]


def row_of(target: Target | None) -> Any:
    """The database row of a reference target (None for a record not stored yet)."""
    if isinstance(target, Record):
        return target.row()
    return target


def id_of(target: Target | list[Target] | None) -> int | None:
    if target is None:
        return None
    if isinstance(target, list):
        raise TypeError("a list of references has no single id")
    row = row_of(target)
    if row is None:
        raise RuntimeError("reference to a row that has not been created yet")
    identifier: int = row.id
    return identifier


def item_facts(session: Session, target: Target) -> tuple[str, str, list[str]]:
    """(provider code, media type, person codes) of an item, in the bundle or stored."""
    if isinstance(target, Record):
        values = target.values
        return values.get("provider", ""), values.get("media_type", ""), values.get("persons", [])
    assert isinstance(target, registry.Item)  # noqa: S101 - references to items resolve to items
    return target.provider.code, target.media_type, _item_person_codes(session, target)


def _item_person_codes(session: Session, item: registry.Item) -> list[str]:
    query = (
        select(registry.Person.code)
        .join(registry.ItemPerson, registry.ItemPerson.person_id == registry.Person.id)
        .where(registry.ItemPerson.item_id == item.id)
    )
    return sorted(session.scalars(query))


# --------------------------------------------------------------------------- finding


def find_existing(session: Session, catalog: Catalog, record: Record) -> Any:
    """The stored row with this record's identity, or None."""
    values = record.values
    if record.type in CODE_MODELS:
        return catalog.get(record.type, values["code"])
    parent_field = "item" if record.type == "redaction_mark" else "authority"
    parent = row_of(_single(record.refs.get(parent_field)))
    if parent is None:
        return None
    if record.type == "assessment":
        query: Any = select(registry.Assessment).where(
            registry.Assessment.authority_id == parent.id,
            registry.Assessment.code == values["code"],
        )
    elif record.type == "recipient_key":
        query = select(registry.RecipientKey).where(
            registry.RecipientKey.authority_id == parent.id,
            registry.RecipientKey.fingerprint == values["fingerprint"],
        )
    else:
        query = select(registry.RedactionMark).where(
            registry.RedactionMark.item_id == parent.id,
            registry.RedactionMark.code == values["code"],
        )
    return session.scalars(query).one_or_none()


def _single(target: Target | list[Target] | None) -> Target | None:
    if isinstance(target, list):
        raise TypeError("expected a single reference")
    return target


# --------------------------------------------------------------------------- comparing


def differences(
    session: Session, record: Record, row: Any, sealer: Sealer | None = None
) -> list[str]:
    """Names of the fields whose bundle value differs from the stored row (``sealer`` opens
    the term of a stored term mark)."""
    wanted = _wanted(record)
    current = _current(session, record.type, row, sealer)
    return [name for name in wanted if wanted[name] != current.get(name)]


#: What a request states, compared with its stored row and copied into a new one as it is.
_RFA_STATED = (
    "status",
    "their_reference",
    "legal_basis",
    "proceedings_type",
    "offences",
    "persons_concerned",
    "summary_of_facts",
    "assistance_sought",
)
_SIMPLE = {
    "provider": ("name", "kind", "public_name"),
    "authority": ("name", "kind", "country"),
    "person": ("pseudonym", "role", "at_risk"),
    "assessment": ("criterion", "finding", "basis", "assessed_at", "valid_until", "assessed_by"),
    "consent": (
        "provider",
        "item",
        "authority",
        "event",
        "purpose",
        "conditions",
        "expires_at",
        "reason",
        "recorded_at",
    ),
    "rfa": (
        "authority",
        *_RFA_STATED,
        "period_from",
        "period_to",
        "places",
        "urgency",
        "urgency_justification",
        "deadline",
        "confidentiality",
        "submitted_at",
        "items",
    ),
}


def _wanted(record: Record) -> dict[str, Any]:
    values = record.values
    if record.type in _SIMPLE:
        wanted = {name: values.get(name) for name in _SIMPLE[record.type]}
        if record.type == "rfa":
            wanted["assurances"] = _sorted_entries(values["assurances"])
            wanted["messages"] = _sorted_entries(values["messages"])
            if "history" in values:
                wanted["history"] = [_entry(step) for step in values["history"]]
        return wanted
    if record.type == "recipient_key":
        return {
            "key_file": record.armored,
            "verified_by": values.get("verified_by"),
            "verified_at": values.get("verified_at"),
            "verification_method": values.get("verification_method"),
        }
    if record.type == "item":
        wanted = {
            name: values.get(name)
            for name in (
                "provider",
                "kind",
                "title",
                "description",
                "media_type",
                "sha256",
                "collected_at",
                "place",
                "sensitivity",
                "tags",
                "persons",
                "cleared_as_is",
            )
        }
        wanted["original_filename"] = original_filename(values)
        if "size" in values:
            wanted["size"] = values["size"]
        return wanted
    if record.type == "protected_identifier":
        return {"kind": values["kind"]}  # the value is what found the row
    if record.type == "redaction_mark":
        return {
            "kind": values["kind"],
            "term": values.get("term"),
            "span": values.get("span"),
            "page": values.get("page"),
            "box": values.get("box"),
            "reason": values["reason"],
            "applies": values["applies"],
            "person": values.get("person"),
        }
    raise ValueError(f"unknown record type {record.type}")


def _current(
    session: Session, type_name: str, row: Any, sealer: Sealer | None = None
) -> dict[str, Any]:
    if type_name in ("provider", "authority", "person", "assessment"):
        return {name: getattr(row, name) for name in _SIMPLE[type_name]}
    if type_name == "recipient_key":
        return {
            "key_file": row.armored,
            "verified_by": row.verified_by,
            "verified_at": row.verified_at,
            "verification_method": row.verification_method,
        }
    if type_name == "item":
        return {
            "provider": row.provider.code,
            "kind": row.kind,
            "title": row.title,
            "description": row.description,
            "media_type": row.media_type,
            "original_filename": row.original_filename,
            "sha256": row.sha256,
            "size": row.size_bytes,
            "collected_at": row.collected_at,
            "place": row.place,
            "sensitivity": row.sensitivity,
            "tags": row.tags,
            "persons": _item_person_codes(session, row),
            "cleared_as_is": row.cleared_as_is,
        }
    if type_name == "protected_identifier":
        return {"kind": row.kind}
    if type_name == "redaction_mark":
        item_code = _code(session, registry.Item, row.item_id)
        return {
            "kind": row.kind,
            "term": _stored_term(sealer, row, item_code),
            "span": (row.span_start, row.span_end) if row.span_start is not None else None,
            "page": row.page,
            "box": (row.x0, row.y0, row.x1, row.y1) if row.x0 is not None else None,
            "reason": row.reason,
            "applies": row.applies,
            "person": _code(session, registry.Person, row.person_id),
        }
    if type_name == "consent":
        current = {name: getattr(row, name) for name in _SIMPLE["consent"][3:]}
        current["provider"] = _code(session, registry.Provider, row.provider_id)
        current["item"] = _code(session, registry.Item, row.item_id)
        current["authority"] = _code(session, registry.Authority, row.authority_id)
        return current
    if type_name == "rfa":
        return _current_rfa(session, row)
    raise ValueError(f"unknown record type {type_name}")


def _current_rfa(session: Session, row: Rfa) -> dict[str, Any]:
    current = {name: getattr(row, name) for name in _SIMPLE["rfa"][1:] if name != "items"}
    current["authority"] = _code(session, registry.Authority, row.authority_id)
    item_codes = select(registry.Item.code).join(RfaItem, RfaItem.item_id == registry.Item.id)
    current["items"] = sorted(session.scalars(item_codes.where(RfaItem.rfa_id == row.id)))
    assurances = session.scalars(select(Assurance).where(Assurance.rfa_id == row.id))
    current["assurances"] = _sorted_entries(
        {"given_by": a.given_by, "given_at": a.given_at, "text": a.text} for a in assurances
    )
    messages = session.scalars(select(Message).where(Message.rfa_id == row.id))
    current["messages"] = _sorted_entries(
        {"body": m.body, "created_at": m.created_at} for m in messages
    )
    steps = session.scalars(
        select(RfaStatusChange)
        .where(RfaStatusChange.rfa_id == row.id)
        .order_by(RfaStatusChange.changed_at, RfaStatusChange.id)
    )
    current["history"] = [
        _entry({"status": s.to_status, "at": s.changed_at, "note": s.note}) for s in steps
    ]
    return current


def _entry(values: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(values.items()))


def _sorted_entries(entries: Iterable[dict[str, Any]]) -> list[tuple[tuple[str, Any], ...]]:
    return sorted((_entry(entry) for entry in entries), key=repr)


def _code(session: Session, model: type[Coded], pk: Any) -> Any:
    if pk is None:
        return None
    row: Any = session.get(model, pk)
    return None if row is None else row.code


def original_filename(values: dict[str, Any]) -> str:
    given: str | None = values.get("original_filename")
    if given is not None:
        return given
    return posixpath.basename(str(values["file"]).replace("\\", "/"))


# --------------------------------------------------------------------------- building


def level_of(type_name: str) -> int:
    """The first level at which a record of this type is built."""
    if type_name in ("provider", "authority", "person"):
        return 0
    if type_name in ("item", "assessment", "recipient_key"):
        return 1
    return 2


def build(
    session: Session, record: Record, level: int, now: datetime, sealer: Sealer | None = None
) -> None:
    """Add the rows of a new record that belong to ``level`` (``sealer`` seals the terms of
    term marks)."""
    values = record.values
    kind = record.type
    if level == level_of(kind):
        record.created = _build_main(record, now, sealer)
        session.add(record.created)
        if kind == "redaction_mark":  # its history starts here: arrived, pending
            session.add(
                registry.RedactionMarkEvent(
                    item_id=record.created.item_id,
                    mark_code=record.created.code,
                    action="imported",
                    version=1,
                    at=now,
                    detail={"kind": values["kind"], "reason": values["reason"]},
                )
            )
    elif kind == "item" and level == 2:
        for person in _targets(record, "persons"):
            session.add(registry.ItemPerson(item_id=record.created.id, person_id=id_of(person)))
    elif kind == "rfa" and level == 3:
        rfa_id = record.created.id
        added = values.get("submitted_at") or record.created.created_at
        for item in _targets(record, "items"):
            session.add(RfaItem(rfa_id=rfa_id, item_id=id_of(item), added_at=added))
        for assurance in values["assurances"]:
            session.add(
                Assurance(rfa_id=rfa_id, kind="death_penalty", recorded_at=now, **assurance)
            )
        for message in values["messages"]:
            session.add(
                Message(rfa_id=rfa_id, body=message["body"], created_at=message["created_at"])
            )
        previous: str | None = None
        for step in _history(values, now):
            session.add(
                RfaStatusChange(
                    rfa_id=rfa_id,
                    from_status=previous,
                    to_status=step["status"],
                    note=step["note"],
                    changed_at=step["at"],
                )
            )
            previous = step["status"]


def _targets(record: Record, name: str) -> list[Target]:
    targets = record.refs.get(name, [])
    assert isinstance(targets, list)  # noqa: S101 - list fields resolve to lists
    return targets


def _history(values: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """The status timeline: as given, or the plausible minimum.

    Without a ``history`` the request is recorded as submitted at ``submitted_at`` and, when
    its status is later than that, as reaching it at the import (the steps in between are not
    known and are not invented).
    """
    if "history" in values:
        steps: list[dict[str, Any]] = values["history"]
        return steps
    status = values["status"]
    if status == "draft":
        return [{"status": "draft", "at": now, "note": "imported"}]
    submitted = values["submitted_at"]
    steps = [{"status": "submitted", "at": submitted, "note": "imported"}]
    if status != "submitted":
        note = "imported; the steps in between are not in the bundle"
        steps.append({"status": status, "at": max(now, submitted), "note": note})
    return steps


def _build_main(record: Record, now: datetime, sealer: Sealer | None) -> Base:
    values = record.values
    refs = record.refs
    kind = record.type
    if kind == "provider":
        return registry.Provider(
            **_pick(values, "code", "name", "kind", "public_name"), created_at=now
        )
    if kind == "authority":
        return registry.Authority(
            **_pick(values, "code", "name", "kind", "country"), created_at=now
        )
    if kind == "person":
        return registry.Person(**_pick(values, "code", "pseudonym", "role", "at_risk"))
    if kind == "assessment":
        return registry.Assessment(
            authority_id=id_of(refs["authority"]),
            valid_until=values.get("valid_until"),
            **_pick(values, "code", "criterion", "finding", "basis", "assessed_at", "assessed_by"),
        )
    if kind == "recipient_key":
        return _build_key(record, now)
    if kind == "item":
        return _build_item(record, now)
    if kind == "redaction_mark":
        return _build_mark(record, now, sealer)
    if kind == "consent":
        return Consent(
            provider_id=id_of(refs["provider"]),
            item_id=id_of(refs.get("item")),
            authority_id=id_of(refs["authority"]),
            expires_at=values.get("expires_at"),
            reason=values.get("reason"),
            **_pick(values, "code", "event", "purpose", "conditions", "recorded_at"),
        )
    if kind == "rfa":
        return _build_rfa(record, now)
    raise ValueError(f"unknown record type {kind}")


def _pick(values: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: values[name] for name in names}


def _build_key(record: Record, now: datetime) -> registry.RecipientKey:
    info = record.key_info
    if info is None or record.armored is None:
        raise RuntimeError("recipient key built before its key file was checked")
    values = record.values
    return registry.RecipientKey(
        authority_id=id_of(record.refs["authority"]),
        fingerprint=info.fingerprint,
        armored=record.armored,
        algorithm=info.algorithm[:32],
        uid=(info.uids[0] if info.uids else "")[:500],
        expires_at=info.expires_at,
        created_at=now,
        verified_by=values.get("verified_by"),
        verified_at=values.get("verified_at"),
        verification_method=values.get("verification_method"),
    )


def _build_item(record: Record, now: datetime) -> registry.Item:
    values = record.values
    if record.size is None:
        raise RuntimeError("item built before its file was stored")
    return registry.Item(
        provider_id=id_of(record.refs["provider"]),
        original_filename=original_filename(values),
        size_bytes=record.size,
        collected_at=values.get("collected_at"),
        created_at=now,
        **_pick(
            values,
            "code",
            "kind",
            "title",
            "description",
            "media_type",
            "sha256",
            "place",
            "sensitivity",
            "tags",
            "cleared_as_is",
        ),
    )


def _build_mark(record: Record, now: datetime, sealer: Sealer | None) -> registry.RedactionMark:
    values = record.values
    span = values.get("span") or (None, None)
    box = values.get("box") or (None, None, None, None)
    term = values.get("term")
    sealed = None
    if term is not None:
        if sealer is None:  # refused when checked (see needs_sealer)
            raise RuntimeError("a term mark built without the portal's sealer")
        sealed = mark_terms.seal_term(sealer, values["item"], values["code"], term)
    return registry.RedactionMark(
        item_id=id_of(record.refs["item"]),
        person_id=id_of(record.refs.get("person")),
        term_sealed=sealed,
        span_start=span[0],
        span_end=span[1],
        page=values.get("page"),
        x0=box[0],
        y0=box[1],
        x1=box[2],
        y1=box[3],
        created_at=now,
        **_pick(values, "code", "kind", "reason", "applies", "review"),
    )


def needs_sealer(record: Record) -> bool:
    """Whether the record holds a value stored sealed (the term of a term mark)."""
    return record.type == "redaction_mark" and record.values.get("term") is not None


def _stored_term(sealer: Sealer | None, row: registry.RedactionMark, item_code: str) -> object:
    """The stored mark's term, to compare; without a sealer (an import without one is refused
    when checked) a value equal to nothing a bundle holds."""
    if row.term_sealed is None:
        return None
    if sealer is None:
        return _SEALED
    return mark_terms.term_of(sealer, row, item_code)


_SEALED = object()


def _build_rfa(record: Record, now: datetime) -> Rfa:
    values = record.values
    history = _history(values, now)
    return Rfa(
        authority_id=id_of(record.refs["authority"]),
        created_at=history[0]["at"],
        updated_at=history[-1]["at"],
        submitted_at=values.get("submitted_at"),
        period_from=values.get("period_from"),
        period_to=values.get("period_to"),
        deadline=values.get("deadline"),
        **_pick(
            values,
            "code",
            *_RFA_STATED,
            "places",
            "urgency",
            "urgency_justification",
            "confidentiality",
        ),
    )
