"""Build the input :class:`~portal.eligibility.policy.inputs.Snapshot` of one request from the
database.

Ten set-based queries whatever the number of candidate items (the request with its
authority, assessments, assurances, items, standing consent events, providers, who is named
in which item, the persons named with how many current protected identifiers each has,
redaction marks and item-level consent events): candidate items are reached by joining ``rfa_item``,
never one query per item and never a list of ids as parameters. Of the register of protected
identifiers only counts are read: nothing here unseals a value.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from functools import partial
from itertools import groupby
from operator import itemgetter
from typing import TypeVarTuple, cast

from sqlalchemy import ScalarSelect, Select, func, or_, select
from sqlalchemy.orm import Session

from portal.consent.models import EVENT_COLUMNS as CONSENT_EVENT_COLUMNS
from portal.consent.models import Consent
from portal.eligibility.policy.gcpause import paused_gc
from portal.eligibility.policy.inputs import (
    AssessmentFacts,
    AssuranceFacts,
    AuthorityFacts,
    ConsentEvent,
    ItemFacts,
    MarkFacts,
    PersonFacts,
    ProviderFacts,
    RequestFacts,
    Snapshot,
)
from portal.registry.models import (
    Assessment,
    Authority,
    Item,
    ItemPerson,
    Person,
    ProtectedIdentifier,
    Provider,
    RedactionMark,
)
from portal.rfa.models import Assurance, Rfa, RfaItem

__all__ = ["SnapshotError", "build_snapshot"]


_Ts = TypeVarTuple("_Ts")
_FIRST, _SECOND, _REST = itemgetter(0), itemgetter(1), itemgetter(slice(1, None))
_mark = partial(tuple.__new__, MarkFacts)  # MarkFacts from a row's columns, in C
_event = partial(tuple.__new__, ConsentEvent)


class SnapshotError(LookupError):
    """The snapshot cannot be built (e.g. the request does not exist)."""


def _plain_rows(session: Session, statement: Select[*_Ts]) -> list[tuple[*_Ts]]:
    """Rows as the database driver returns them (plain tuples), for the big per-item queries.

    SQLAlchemy's result processing (and even its ``Row`` objects) cost about 40% of the
    time of a 100,000-row query; these columns need none (integers and text; booleans go
    through ``bool()``). The only parameter is the request id, an ``int`` (checked
    above), rendered into the SQL.
    """
    connection = session.connection()
    compiled = statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    result = connection.exec_driver_sql(str(compiled))
    try:
        return cast("list[tuple[*_Ts]]", result.cursor.fetchall())
    finally:
        result.close()


def build_snapshot(session: Session, rfa_id: int, *, now: datetime) -> Snapshot:
    """Everything the rules need about request ``rfa_id``, as at ``now``.

    Consent events recorded after ``now`` are left out, so the snapshot shows the
    ledger as it stood; so does the count of each person's protected identifiers (those
    added by ``now`` and not retired by then).
    """
    with paused_gc():
        return _build(session, rfa_id, now)


def _current_identifiers(now: datetime) -> ScalarSelect[int]:
    """How many protected identifiers of the person of the row were current at ``now`` (added
    by then and not yet retired): counted by the database, never unsealed. Correlated, so
    the request's persons are found once (a separate count needed the same subquery again),
    and each count is an index lookup."""
    return (
        select(func.count())
        .where(
            ProtectedIdentifier.person_id == Person.id,
            ProtectedIdentifier.created_at <= now,
            or_(ProtectedIdentifier.retired_at.is_(None), ProtectedIdentifier.retired_at > now),
        )
        .correlate(Person)
        .scalar_subquery()
    )


def _build(session: Session, rfa_id: int, now: datetime) -> Snapshot:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("naive datetime given; use a timezone-aware UTC datetime")
    now = now.astimezone(UTC)
    if not isinstance(rfa_id, int) or isinstance(rfa_id, bool):
        raise TypeError("rfa_id must be an integer")  # it is rendered into SQL, see _plain_rows
    # Core execution: these rows are plain values; the ORM's loading layer adds only time.
    # (Flushed first, as the ORM would: pending changes belong in the snapshot.)
    session.flush()
    connection = session.connection()
    head = connection.execute(
        select(
            Rfa.id,
            Rfa.code,
            Rfa.status,
            Rfa.offences,
            Rfa.period_from,
            Rfa.period_to,
            Authority.id.label("authority_id"),
            Authority.code.label("authority_code"),
            Authority.name.label("authority_name"),
        )
        .join(Authority, Authority.id == Rfa.authority_id)
        .where(Rfa.id == rfa_id)
    ).one_or_none()
    if head is None:
        raise SnapshotError(f"request {rfa_id} does not exist")
    authority_id = head.authority_id

    assessments = tuple(
        AssessmentFacts(*row)
        for row in connection.execute(
            select(
                Assessment.code,
                Assessment.criterion,
                Assessment.finding,
                Assessment.basis,
                Assessment.assessed_at,
                Assessment.valid_until,
                Assessment.assessed_by,
            )
            .where(Assessment.authority_id == authority_id)
            .order_by(Assessment.assessed_at, Assessment.code)
        )
    )
    assurances = tuple(
        AssuranceFacts(*row)
        for row in connection.execute(
            select(
                Assurance.id,
                Assurance.kind,
                Assurance.given_by,
                Assurance.given_at,
                Assurance.withdrawn_at,
            )
            .where(Assurance.rfa_id == rfa_id)
            .order_by(Assurance.given_at, Assurance.id)
        )
    )
    item_rows = _plain_rows(
        session,
        select(
            Item.id,
            Item.code,
            Item.title,
            Item.kind,
            Item.media_type,
            Item.provider_id,
            Item.cleared_as_is,
        )
        .join(RfaItem, RfaItem.item_id == Item.id)
        .where(RfaItem.rfa_id == rfa_id)
        .order_by(Item.code),
    )
    # The providers of the candidates, from the rows just read (a dozen ids, not a subquery
    # the database would run once for the standing consents and again for the providers).
    provider_ids = sorted({row[5] for row in item_rows})

    standing: dict[int, list[ConsentEvent]] = defaultdict(list)
    providers: dict[int, ProviderFacts] = {}
    if provider_ids:
        for srow in connection.execute(
            select(Consent.provider_id, *CONSENT_EVENT_COLUMNS)
            .where(
                Consent.authority_id == authority_id,
                Consent.item_id.is_(None),
                Consent.provider_id.in_(provider_ids),
                Consent.recorded_at <= now,
            )
            .order_by(Consent.recorded_at, Consent.id)
        ):
            standing[srow[0]].append(ConsentEvent(*srow[1:]))
        providers = {
            provider_id: ProviderFacts(
                provider_id, code, name, tuple(standing.get(provider_id, ()))
            )
            for provider_id, code, name in connection.execute(
                select(Provider.id, Provider.code, Provider.name).where(
                    Provider.id.in_(provider_ids)
                )
            )
        }

    # Who is named where (pairs, in item order), then each person once: far fewer rows
    # than a join.
    named = {
        item_id: tuple(map(_SECOND, pairs))
        for item_id, pairs in groupby(
            _plain_rows(
                session,
                select(ItemPerson.item_id, ItemPerson.person_id)
                .join(RfaItem, RfaItem.item_id == ItemPerson.item_id)
                .where(RfaItem.rfa_id == rfa_id)
                .order_by(ItemPerson.item_id, ItemPerson.person_id),
            ),
            _FIRST,
        )
    }
    named_persons = (
        select(ItemPerson.person_id)
        .join(RfaItem, RfaItem.item_id == ItemPerson.item_id)
        .where(RfaItem.rfa_id == rfa_id)
    )
    persons = {
        person_id: PersonFacts(person_id, code, pseudonym, role, bool(at_risk), identifiers)
        for person_id, code, pseudonym, role, at_risk, identifiers in connection.execute(
            select(
                Person.id,
                Person.code,
                Person.pseudonym,
                Person.role,
                Person.at_risk,
                _current_identifiers(now),
            ).where(Person.id.in_(named_persons))
        ).all()  # one fetch, not a driver call per row
    }

    marks = {
        item_id: tuple(map(_mark, map(_REST, rows)))
        for item_id, rows in groupby(
            _plain_rows(
                session,
                select(
                    RedactionMark.item_id,
                    RedactionMark.code,
                    RedactionMark.kind,
                    RedactionMark.person_id,
                    RedactionMark.applies,
                    RedactionMark.review,
                    RedactionMark.reason,
                )
                .join(RfaItem, RfaItem.item_id == RedactionMark.item_id)
                .where(RfaItem.rfa_id == rfa_id)
                .order_by(RedactionMark.item_id, RedactionMark.code),
            ),
            _FIRST,
        )
    }

    consents: dict[int | None, list[ConsentEvent]] = defaultdict(list)
    for crow in connection.execute(
        select(Consent.item_id, *CONSENT_EVENT_COLUMNS)
        .join(RfaItem, RfaItem.item_id == Consent.item_id)
        .where(
            RfaItem.rfa_id == rfa_id,
            Consent.authority_id == authority_id,
            Consent.recorded_at <= now,
        )
        .order_by(Consent.recorded_at, Consent.id)
    ).all():
        consents[crow[0]].append(_event(crow[1:]))

    none: tuple[()] = ()
    named_of, marks_of = named.get, marks.get
    consents_of = {item_id: tuple(events) for item_id, events in consents.items()}.get
    new = tuple.__new__  # ItemFacts(...) without the Python-level __new__ of a NamedTuple
    items = tuple(
        [
            new(
                ItemFacts,
                (
                    item_id,
                    code,
                    title,
                    kind,
                    media_type,
                    provider_id,
                    bool(cleared),
                    named_of(item_id, none),
                    marks_of(item_id, none),
                    consents_of(item_id, none),
                ),
            )
            for item_id, code, title, kind, media_type, provider_id, cleared in item_rows
        ]
    )
    return Snapshot(
        taken_at=now,
        request=RequestFacts(
            id=head.id,
            code=head.code,
            status=head.status,
            offences=tuple(str(offence) for offence in head.offences or ()),
            period_from=head.period_from,
            period_to=head.period_to,
        ),
        authority=AuthorityFacts(authority_id, head.authority_code, head.authority_name),
        assessments=assessments,
        assurances=assurances,
        providers=providers,
        persons=persons,
        items=items,
    )
