"""The consent ledger: grant, decline and revoke as appended events, and the derived state.

The ledger is append-only: :func:`guard_consents` makes SQLAlchemy refuse any ORM update
or delete of a :class:`~portal.models.Consent`; every function here installs it on the
session it is given. The current state is derived with the policy engine's own rule
(:func:`portal.eligibility.policy.rules.provider_consent`), so this page and an eligibility check
can never disagree.

:func:`revoke_consent` is the one transactional step for a revocation: the revoke events,
the candidate items of the authority's requests flagged for a re-check, and the
authority's packages holding the items blocked, withdrawn or recalled. Nothing is
committed here; the caller commits or rolls back the lot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import User
from portal.authz.roles import speaks_for
from portal.codes import CodesBusy, CodeSeries, CodesExhausted, add_numbered
from portal.consent.models import (
    EVENT_COLUMNS,
    PURPOSES,
    Consent,
    ConsentRequest,
    ConsentRequestItem,
)
from portal.db import GuardTarget, append_only_guard, aware_utc, serialize_on
from portal.eligibility.policy.inputs import (
    AuthorityFacts,
    ConsentEvent,
    ItemFacts,
    ProviderFacts,
    RequestFacts,
    Snapshot,
)
from portal.eligibility.policy.mandate import Mandate
from portal.eligibility.policy.rules import RuleContext, provider_consent
from portal.notifications import service as notifications
from portal.pages.i18n import N_
from portal.registry.models import Authority, Item, Provider

__all__ = [
    "CONSENT_CODES",
    "DEFAULT_PURPOSE",
    "ConsentError",
    "ConsentImmutable",
    "ConsentState",
    "Scope",
    "answer_request",
    "answered_items",
    "current_state",
    "decline",
    "grant",
    "guard_consents",
    "request_items",
    "revoke",
    "scope_of",
    "set_naming",
    "standing_state",
]

DEFAULT_PURPOSE = PURPOSES[0]
#: ``CNS-2026-000001``: at most 999,999 consent events a year.
CONSENT_CODES = CodeSeries("CNS", Consent.code, digits=6, last=999_999)


class ConsentError(ValueError):
    """A consent action was refused; the message says why (safe to show the user)."""


class ConsentImmutable(RuntimeError):
    """Something tried to change or delete a recorded consent event."""


@dataclass(frozen=True)
class ConsentState:
    """The derived state of one item's consent for one authority.

    ``status`` is the policy rule's finding code: ``granted``, ``declined``, ``revoked``,
    ``expired`` or ``none``; ``scope`` says which event decides (``item`` or
    ``standing``); ``consent_code`` names that event.
    """

    status: str
    scope: str | None
    consent_code: str | None

    @property
    def active(self) -> bool:
        return self.status == "granted"


@dataclass(frozen=True)
class Scope:
    """What a revocation covers: one item, or (``item_id`` None) the standing consent."""

    provider_id: int
    authority_id: int
    item_id: int | None = None


# --- append-only guard -------------------------------------------------------------------------


_GUARD = append_only_guard(
    (Consent,),
    ConsentImmutable,
    lambda row: f"consent event {row.code}",
    kept="the ledger is kept",
    instead="record a new event instead",
    bulk="consent events cannot be updated or deleted: the ledger is kept",
)


def guard_consents(target: GuardTarget) -> None:
    """Refuse, in sessions of ``target``, any ORM update or delete of a consent event."""
    _GUARD(target)


# --- derived state -----------------------------------------------------------------------------

# The consent rule reads only the ledger, the clock and its "purpose": the rest is blank.
_NO_MANDATE = Mandate(situation="", period_start=date(1, 1, 1), period_end=None, categories=())
_STANDING_PROBE = 0  # an item id no row has: its state is the standing consent's


def _assumed_revocation(purpose: str, moment: datetime) -> ConsentEvent:
    """A revoke event recorded at ``moment`` after every real one (ids order events that
    share a time; no row has this one)."""
    return ConsentEvent(2**62, "", "revoke", purpose, "", None, "", moment)


def current_state(
    db: Session,
    provider_id: int,
    authority_id: int,
    item_ids: Iterable[int],
    *,
    purpose: str = DEFAULT_PURPOSE,
    now: datetime | None = None,
    assuming_revoked: Scope | None = None,
) -> dict[int, ConsentState]:
    """The consent state of each item for ``authority_id``, as an eligibility check at
    ``now`` would find it (the same rule function decides). With ``assuming_revoked``, the
    state as it would be were that scope revoked at ``now`` (nothing is recorded): what a
    provider is shown before confirming a revocation."""
    guard_consents(db)
    moment = aware_utc(now)
    wanted = sorted(set(item_ids))
    standing = [
        ConsentEvent(*row)
        for row in db.execute(
            select(*EVENT_COLUMNS)
            .where(
                Consent.provider_id == provider_id,
                Consent.authority_id == authority_id,
                Consent.item_id.is_(None),
                Consent.recorded_at <= moment,
            )
            .order_by(Consent.recorded_at, Consent.id)
        )
    ]
    per_item: dict[int, list[ConsentEvent]] = defaultdict(list)
    if wanted:
        rows = db.execute(
            select(Consent.item_id, *EVENT_COLUMNS)
            .where(
                Consent.provider_id == provider_id,
                Consent.authority_id == authority_id,
                Consent.item_id.in_(wanted),
                Consent.recorded_at <= moment,
            )
            .order_by(Consent.recorded_at, Consent.id)
        )
        for row in rows:
            if row[0] is not None:
                per_item[row[0]].append(ConsentEvent(*row[1:]))
    if assuming_revoked is not None:
        revocation = _assumed_revocation(purpose, moment)
        if assuming_revoked.item_id is None:
            standing.append(revocation)
        elif assuming_revoked.item_id in wanted:
            per_item[assuming_revoked.item_id].append(revocation)
    items = tuple(
        ItemFacts(i, "", "", "", "", provider_id, False, (), (), tuple(per_item.get(i, ())))
        for i in wanted
    )
    snapshot = Snapshot(
        taken_at=moment,
        request=RequestFacts(0, "", "", (), None, None),
        authority=AuthorityFacts(authority_id, "", ""),
        assessments=(),
        assurances=(),
        providers={provider_id: ProviderFacts(provider_id, "", "", tuple(standing))},
        persons={},
        items=items,
    )
    check = provider_consent(RuleContext(snapshot, {"purpose": purpose}, _NO_MANDATE, frozenset()))
    states = {}
    for item in items:
        finding = check(item)
        facts = dict(finding.facts)
        scope = facts.get("scope")
        states[item.id] = ConsentState(
            status=finding.code,
            scope=None if scope is None else ("item" if scope == "for this item" else "standing"),
            consent_code=facts.get("consent_code"),
        )
    return states


def standing_state(
    db: Session,
    provider_id: int,
    authority_id: int,
    *,
    purpose: str = DEFAULT_PURPOSE,
    now: datetime | None = None,
) -> ConsentState:
    """The provider's standing consent for the authority (what an item without events gets)."""
    return current_state(
        db, provider_id, authority_id, [_STANDING_PROBE], purpose=purpose, now=now
    )[_STANDING_PROBE]


# --- recording events --------------------------------------------------------------------------


def grant(
    db: Session,
    provider: Provider,
    authority: Authority,
    *,
    items: Sequence[Item] | None,
    conditions: str = "",
    expires_at: datetime | None = None,
    by: User,
    consent_request: ConsentRequest | None = None,
    now: datetime | None = None,
) -> list[Consent]:
    """Grant consent for ``items`` (``None``: a standing consent for all the provider's items)."""
    moment = aware_utc(now)
    if expires_at is not None:
        expires_at = aware_utc(expires_at)
        if expires_at <= moment:
            raise ConsentError(N_("the expiry date must be in the future"))
    events = _append(
        db, "grant", provider, authority, items, by, consent_request, moment,
        conditions=conditions.strip(), expires_at=expires_at, reason=None,
    )  # fmt: skip
    _audit(db, "consent.grant", by, provider, authority, events, expires_at=expires_at)
    return events


def decline(
    db: Session,
    provider: Provider,
    authority: Authority,
    *,
    items: Sequence[Item] | None,
    reason: str,
    by: User,
    consent_request: ConsentRequest | None = None,
    now: datetime | None = None,
) -> list[Consent]:
    """Decline consent for ``items`` (``None``: standing); a reason is required."""
    events = _append(
        db, "decline", provider, authority, items, by, consent_request, aware_utc(now),
        conditions="", expires_at=None, reason=_reason(reason),
    )  # fmt: skip
    _audit(db, "consent.decline", by, provider, authority, events)
    return events


def scope_of(target: Consent | Scope) -> Scope:
    """What revoking ``target`` covers: a grant's item, or its standing consent."""
    if isinstance(target, Scope):
        return target
    if target.event != "grant":
        raise ConsentError(
            N_("%(code)s is a %(event)s, not a grant", code=target.code, event=target.event)
        )
    return Scope(target.provider_id, target.authority_id, target.item_id)


def revoke(
    db: Session,
    target: Consent | Scope,
    *,
    reason: str,
    by: User,
    now: datetime | None = None,
) -> Consent:
    """Append a revoke event for a grant (or a :class:`Scope`); only the ledger changes.

    Use :func:`portal.consent.revocation.revoke_consent` to apply the consequences too.
    """
    text = _reason(reason)
    scope = scope_of(target)
    serialize_on(db, Provider, scope.provider_id)  # see revoke_consent: one at a time
    moment = aware_utc(now)  # after the wait, as in revoke_consent
    provider = db.get(Provider, scope.provider_id)
    authority = db.get(Authority, scope.authority_id)
    if provider is None or authority is None:
        raise ConsentError(N_("no such provider or authority"))
    item = None if scope.item_id is None else db.get(Item, scope.item_id)
    if scope.item_id is not None and item is None:
        raise ConsentError(N_("no such item"))
    probe = _STANDING_PROBE if item is None else item.id
    state = current_state(db, provider.id, authority.id, [probe], now=moment)[probe]
    if not state.active:
        raise ConsentError(N_("there is no active grant to revoke here"))
    events = _append(
        db, "revoke", provider, authority, None if item is None else [item], by, None, moment,
        conditions="", expires_at=None, reason=text,
    )  # fmt: skip
    _audit(db, "consent.revoke", by, provider, authority, events)
    return events[0]


# --- consent requests --------------------------------------------------------------------------


def request_items(db: Session, consent_request: ConsentRequest) -> list[Item]:
    """The items a consent request asks about, in code order."""
    return list(
        db.scalars(
            select(Item)
            .join(ConsentRequestItem, ConsentRequestItem.item_id == Item.id)
            .where(ConsentRequestItem.consent_request_id == consent_request.id)
            .order_by(Item.code)
        )
    )


def answer_request(
    db: Session,
    consent_request: ConsentRequest,
    *,
    action: str,
    item_ids: Iterable[int],
    by: User,
    conditions: str = "",
    expires_at: datetime | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> list[Consent]:
    """Grant or decline (``action``) some items of an open consent request.

    The request becomes ``answered`` once every one of its items has an answer.
    """
    if consent_request.status != "open":
        raise ConsentError(N_("this consent request is no longer open"))
    moment = aware_utc(now)
    asked = {item.id: item for item in request_items(db, consent_request)}
    chosen = sorted(set(item_ids))
    if not chosen:
        raise ConsentError(N_("select at least one item"))
    unknown = [i for i in chosen if i not in asked]
    if unknown:
        raise ConsentError(N_("an item selected is not part of this consent request"))
    provider = db.get(Provider, consent_request.provider_id)
    authority = db.get(Authority, consent_request.authority_id)
    assert provider is not None and authority is not None  # noqa: S101 - foreign keys
    items = [asked[i] for i in chosen]
    if action == "grant":
        events = grant(
            db, provider, authority, items=items, conditions=conditions, expires_at=expires_at,
            by=by, consent_request=consent_request, now=moment,
        )  # fmt: skip
    elif action == "decline":
        events = decline(
            db, provider, authority, items=items, reason=reason, by=by,
            consent_request=consent_request, now=moment,
        )  # fmt: skip
    else:
        raise ConsentError(N_("choose grant or decline"))
    answered = set(
        db.scalars(select(Consent.item_id).where(Consent.consent_request_id == consent_request.id))
    )
    if set(asked) <= answered:
        consent_request.status = "answered"
        consent_request.answered_at = moment
        db.flush()
    notifications.consent_answered(db, consent_request, by)
    return events


def answered_items(db: Session, consent_request: ConsentRequest) -> dict[int, Consent]:
    """The latest answer given through this request, per item."""
    found: dict[int, Consent] = {}
    for row in db.scalars(
        select(Consent)
        .where(Consent.consent_request_id == consent_request.id)
        .order_by(Consent.recorded_at, Consent.id)
    ):
        if row.item_id is not None:
            found[row.item_id] = row
    return found


# --- helpers -----------------------------------------------------------------------------------


def _reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise ConsentError(N_("give a reason"))
    if len(text) > 2000:
        raise ConsentError(N_("the reason is too long (2,000 characters at most)"))
    return text


def _append(
    db: Session,
    kind: str,
    provider: Provider,
    authority: Authority,
    items: Sequence[Item] | None,
    by: User,
    consent_request: ConsentRequest | None,
    moment: datetime,
    *,
    conditions: str,
    expires_at: datetime | None,
    reason: str | None,
) -> list[Consent]:
    guard_consents(db)
    if not speaks_for(by, provider.id) or not by.is_active:
        raise ConsentError(N_("only an active representative of the provider records its consent"))
    if len(conditions) > 4000:
        raise ConsentError(N_("the conditions are too long (4,000 characters at most)"))
    if items is not None:
        if not items:
            raise ConsentError(N_("select at least one item"))
        if any(item.provider_id != provider.id for item in items):
            raise ConsentError(N_("an item selected is not this provider's"))
    if consent_request is not None and (
        consent_request.provider_id != provider.id or consent_request.authority_id != authority.id
    ):
        raise ConsentError(N_("the consent request is for another provider or authority"))
    targets: list[int | None] = [None] if items is None else [item.id for item in items]

    def events(codes: list[str]) -> list[Consent]:
        return [
            Consent(
                code=code,
                provider_id=provider.id,
                item_id=item_id,
                authority_id=authority.id,
                event=kind,
                purpose=consent_request.purpose if consent_request is not None else DEFAULT_PURPOSE,
                conditions=conditions,
                expires_at=expires_at,
                reason=reason,
                recorded_at=moment,
                recorded_by_id=by.id,
                consent_request_id=consent_request.id if consent_request is not None else None,
            )
            for code, item_id in zip(codes, targets, strict=True)
        ]

    try:
        return list(add_numbered(db, CONSENT_CODES, moment.year, events, count=len(targets)))
    except CodesExhausted:
        raise ConsentError(
            N_("the consent codes of %(year)s are exhausted", year=moment.year)
        ) from None
    except CodesBusy:
        raise ConsentError(N_("no consent code could be allocated just now; try again")) from None


def _audit(
    db: Session,
    action: str,
    by: User,
    provider: Provider,
    authority: Authority,
    events: Sequence[Consent],
    *,
    expires_at: datetime | None = None,
) -> None:
    """Counts and codes only: reasons and conditions may name people."""
    item_ids = [e.item_id for e in events if e.item_id is not None]
    details: dict[str, object] = {
        "authority": authority.code,
        "consents": [e.code for e in events],
        "standing": not item_ids,
        "items": len(item_ids),
        "item_ids": item_ids,
    }
    if events and events[0].consent_request_id is not None:
        details["consent_request"] = events[0].consent_request_id
    if expires_at is not None:
        details["expires_at"] = expires_at.isoformat()
    audit.record(db, audit.actor_label(by), action, f"provider:{provider.code}", details)


# --- how authorities see the provider ----------------------------------------------------------


def set_naming(db: Session, provider: Provider, *, named: bool, by: User) -> None:
    """Name the provider to authorities by its public name, or not at all (packages made
    from now on; those already sent keep what they said). Audited when it changes."""
    if not speaks_for(by, provider.id):
        raise ConsentError(N_("only the provider's own users may change how it is named"))
    if provider.named_to_authorities == named:
        return
    provider.named_to_authorities = named
    db.flush()
    audit.record(
        db,
        audit.actor_label(by),
        "provider.naming",
        f"provider:{provider.code}",
        {"named_to_authorities": named},
    )
