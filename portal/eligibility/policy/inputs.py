"""The input of an evaluation: everything the rules look at, as plain immutable values.

A :class:`Snapshot` is built from the database by :mod:`portal.eligibility.policy.snapshot` and
stored with every decision as canonical JSON (:meth:`Snapshot.to_json`). The engine
reads nothing else, so a stored snapshot (:meth:`Snapshot.from_json`) evaluated with the
same policy gives the same results, years later.

Timestamps are timezone-aware UTC ``datetime`` values; in JSON they are the canonical
text of :mod:`portal.canonical` (``2026-01-15T09:00:00.000000+00:00``). Dates are
``YYYY-MM-DD``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from operator import itemgetter
from typing import Any, NamedTuple

from portal.canonical import format_datetime
from portal.eligibility.policy.jsonread import JsonReader, SnapshotFormatError

__all__ = [
    "LAYOUT",
    "SNAPSHOT_FORMAT",
    "AssessmentFacts",
    "AssuranceFacts",
    "AuthorityFacts",
    "ConsentEvent",
    "ItemFacts",
    "MarkFacts",
    "PersonFacts",
    "ProviderFacts",
    "RequestFacts",
    "Snapshot",
    "SnapshotFormatError",
]

#: Version of the JSON layout below; bumped when it changes incompatibly. Format 1 (before the
#: register of protected identifiers) is still read: its persons have no ``identifiers``.
SNAPSHOT_FORMAT = 2


class AuthorityFacts(NamedTuple):
    id: int
    code: str
    name: str


class RequestFacts(NamedTuple):
    id: int
    code: str
    status: str
    offences: tuple[str, ...]
    period_from: date | None
    period_to: date | None


class AssessmentFacts(NamedTuple):
    code: str
    criterion: str
    finding: str
    basis: str
    assessed_at: datetime
    valid_until: datetime | None
    assessed_by: str


class AssuranceFacts(NamedTuple):
    id: int
    kind: str
    given_by: str
    given_at: date
    withdrawn_at: datetime | None


class ConsentEvent(NamedTuple):
    """One event of the consent ledger for the request's authority.

    Events are kept in ledger order: ``recorded_at``, then ``id``.
    """

    id: int
    code: str
    event: str
    purpose: str
    conditions: str
    expires_at: datetime | None
    reason: str | None
    recorded_at: datetime


class ProviderFacts(NamedTuple):
    id: int
    code: str
    name: str
    # Standing consent events (for all the provider's items) for the request's authority.
    standing_consents: tuple[ConsentEvent, ...]


class PersonFacts(NamedTuple):
    id: int
    code: str
    pseudonym: str
    role: str
    at_risk: bool
    # How many of their protected identifiers were current (registered, not retired) at the
    # snapshot: a count only, never a value. 0 in snapshots of format 1, which did not record it.
    identifiers: int = 0


class MarkFacts(NamedTuple):
    code: str
    kind: str
    person_id: int | None
    applies: str
    review: str
    reason: str


class ItemFacts(NamedTuple):
    id: int
    code: str
    title: str
    kind: str
    media_type: str
    provider_id: int
    cleared_as_is: bool
    person_ids: tuple[int, ...]
    marks: tuple[MarkFacts, ...]
    # Item-level consent events for the request's authority.
    consents: tuple[ConsentEvent, ...]


@dataclass(frozen=True)
class Snapshot:
    """Everything an evaluation of one request reads, as at ``taken_at``."""

    taken_at: datetime
    request: RequestFacts
    authority: AuthorityFacts
    assessments: tuple[AssessmentFacts, ...]
    assurances: tuple[AssuranceFacts, ...]
    providers: Mapping[int, ProviderFacts]
    persons: Mapping[int, PersonFacts]
    items: tuple[ItemFacts, ...]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values, the same text whether hashed with
        :func:`portal.canonical.canonical_json` or ``portal.eligibility.decisions.canonical_text``.

        Items and persons are rows (arrays) whose fields ``layout`` names: a large request
        then costs little to record, and tuples need no conversion.
        """
        return {
            "format": SNAPSHOT_FORMAT,
            "layout": {name: list(fields) for name, fields in LAYOUT.items()},
            "taken_at": _dt(self.taken_at),
            "request": {
                "id": self.request.id,
                "code": self.request.code,
                "status": self.request.status,
                "offences": list(self.request.offences),
                "period_from": _d(self.request.period_from),
                "period_to": _d(self.request.period_to),
            },
            "authority": self.authority._asdict(),
            "assessments": [
                {
                    **a._asdict(),
                    "assessed_at": _dt(a.assessed_at),
                    "valid_until": _dt(a.valid_until),
                }
                for a in self.assessments
            ],
            "assurances": [
                {**a._asdict(), "given_at": _d(a.given_at), "withdrawn_at": _dt(a.withdrawn_at)}
                for a in self.assurances
            ],
            "providers": [
                {
                    "id": p.id,
                    "code": p.code,
                    "name": p.name,
                    "standing_consents": [_event_row(e) for e in p.standing_consents],
                }
                for p in sorted(self.providers.values(), key=lambda p: p.id)
            ],
            "persons": sorted(self.persons.values(), key=itemgetter(0)),
            "items": [
                (*item[:9], [_event_row(e) for e in item.consents]) if item.consents else item
                for item in self.items
            ],
        }

    @classmethod
    def from_json(cls, data: object) -> Snapshot:
        """Read back what :meth:`to_json` wrote (e.g. from a stored decision)."""
        root = JsonReader(data, "$")
        found = root.integer("format")
        if found not in _LAYOUTS:
            raise SnapshotFormatError(
                f"$.format: snapshot format {found} is not supported (this portal reads "
                f"{', '.join(map(str, _LAYOUTS))})"
            )
        layout = _LAYOUTS[found]
        if root.table("layout").data != {name: list(fields) for name, fields in layout.items()}:
            raise SnapshotFormatError("$.layout: not the layout of this snapshot format")
        request = root.table("request")
        authority = root.table("authority")
        providers = [_provider(r) for r in root.tables("providers")]
        persons = [_person(r) for r in root.rows("persons", len(layout["person"]))]
        items = tuple(_item(r) for r in root.rows("items", len(ItemFacts._fields)))
        known_providers, known_persons = {p.id for p in providers}, {p.id for p in persons}
        for index, item in enumerate(items):
            if item.provider_id not in known_providers:
                raise SnapshotFormatError(f"$.items[{index}]: its provider is not in the snapshot")
            if not known_persons.issuperset(item.person_ids):
                raise SnapshotFormatError(f"$.items[{index}]: a person it names is not in it")
        return cls(
            taken_at=root.moment("taken_at"),
            request=RequestFacts(
                id=request.integer("id"),
                code=request.text("code"),
                status=request.text("status"),
                offences=tuple(request.texts("offences")),
                period_from=request.opt_day("period_from"),
                period_to=request.opt_day("period_to"),
            ),
            authority=AuthorityFacts(
                id=authority.integer("id"), code=authority.text("code"), name=authority.text("name")
            ),
            assessments=tuple(_assessment(r) for r in root.tables("assessments")),
            assurances=tuple(_assurance(r) for r in root.tables("assurances")),
            providers={p.id: p for p in providers},
            persons={p.id: p for p in persons},
            items=items,
        )


#: The fields of the rows of a stored snapshot, in order.
LAYOUT = {
    "item": ItemFacts._fields,
    "mark": MarkFacts._fields,
    "consent": ConsentEvent._fields,
    "person": PersonFacts._fields,
}
#: The layout of every format still read, by format.
_LAYOUTS = {1: {**LAYOUT, "person": PersonFacts._fields[:5]}, SNAPSHOT_FORMAT: LAYOUT}


# --- writing ---------------------------------------------------------------------------


def _dt(value: datetime | None) -> str | None:
    return None if value is None else format_datetime(value)


def _d(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _event_row(event: ConsentEvent) -> tuple[object, ...]:
    return (*event[:5], _dt(event.expires_at), event.reason, _dt(event.recorded_at))


# --- reading ---------------------------------------------------------------------------


def _assessment(r: JsonReader) -> AssessmentFacts:
    return AssessmentFacts(
        code=r.text("code"),
        criterion=r.text("criterion"),
        finding=r.text("finding"),
        basis=r.text("basis"),
        assessed_at=r.moment("assessed_at"),
        valid_until=r.opt_moment("valid_until"),
        assessed_by=r.text("assessed_by"),
    )


def _assurance(r: JsonReader) -> AssuranceFacts:
    return AssuranceFacts(
        id=r.integer("id"),
        kind=r.text("kind"),
        given_by=r.text("given_by"),
        given_at=r.day("given_at"),
        withdrawn_at=r.opt_moment("withdrawn_at"),
    )


def _event(r: JsonReader) -> ConsentEvent:
    return ConsentEvent(
        id=r.integer(0),
        code=r.text(1),
        event=r.text(2),
        purpose=r.text(3),
        conditions=r.text(4),
        expires_at=r.opt_moment(5),
        reason=r.opt_text(6),
        recorded_at=r.moment(7),
    )


def _events(r: JsonReader, key: str | int) -> tuple[ConsentEvent, ...]:
    return tuple(_event(e) for e in r.rows(key, len(ConsentEvent._fields)))


def _provider(r: JsonReader) -> ProviderFacts:
    return ProviderFacts(
        id=r.integer("id"),
        code=r.text("code"),
        name=r.text("name"),
        standing_consents=_events(r, "standing_consents"),
    )


def _person(r: JsonReader) -> PersonFacts:
    return PersonFacts(
        id=r.integer(0),
        code=r.text(1),
        pseudonym=r.text(2),
        role=r.text(3),
        at_risk=r.flag(4),
        identifiers=r.integer(5) if len(r.data) > 5 else 0,  # format 1: not recorded
    )


def _mark(r: JsonReader) -> MarkFacts:
    return MarkFacts(
        code=r.text(0),
        kind=r.text(1),
        person_id=r.opt_integer(2),
        applies=r.text(3),
        review=r.text(4),
        reason=r.text(5),
    )


def _item(r: JsonReader) -> ItemFacts:
    return ItemFacts(
        id=r.integer(0),
        code=r.text(1),
        title=r.text(2),
        kind=r.text(3),
        media_type=r.text(4),
        provider_id=r.integer(5),
        cleared_as_is=r.flag(6),
        person_ids=tuple(r.integers(7)),
        marks=tuple(_mark(m) for m in r.rows(8, len(MarkFacts._fields))),
        consents=_events(r, 9),
    )
