"""The consent ledger (portal.consent.ledger) on both databases: events, derived state, the
append-only guard, revocation and its consequences, and the effect on the next check."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.audit import AuditEvent
from portal.consent.ledger import (
    ConsentError,
    ConsentImmutable,
    Scope,
    answer_request,
    current_state,
    decline,
    grant,
    revoke,
    standing_state,
)
from portal.consent.models import Consent, ConsentRequest, ConsentRequestItem
from portal.consent.revocation import consequences, revoke_consent
from portal.eligibility.decisions import load_result, run_check
from portal.eligibility.policy import Policy, load_policy
from portal.packages.models import Download, Package, PackageItem, Recall
from portal.registry.models import Authority, Item, Provider
from portal.rfa.models import RfaItem
from tests.support import factories as make
from tests.support.ledger_world import EARLY, NOW, assessed_authority, consent_world, rfa_in_review

POLICIES = Path(__file__).resolve().parents[2] / "policies"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICIES)


def _state(
    session: Session, provider: Provider, authority: Authority, items: list[Item]
) -> list[str]:
    states = current_state(session, provider.id, authority.id, [i.id for i in items], now=NOW)
    return [states[i.id].status for i in items]


# --- events and derived state ------------------------------------------------------------------


def test_no_event_means_no_consent(session: Session) -> None:
    authority, provider, items, _ = consent_world(session)
    assert _state(session, provider, authority, items) == ["none"] * 3
    assert not standing_state(session, provider.id, authority.id, now=NOW).active


def test_standing_grant_covers_every_item_and_item_decline_wins(session: Session) -> None:
    authority, provider, items, rep = consent_world(session)
    (standing,) = grant(session, provider, authority, items=None, by=rep, now=EARLY)
    assert standing.item_id is None and standing.event == "grant"
    decline(session, provider, authority, items=[items[0]], reason="Too risky.", by=rep, now=EARLY)
    states = current_state(session, provider.id, authority.id, [i.id for i in items], now=NOW)
    assert [states[i.id].status for i in items] == ["declined", "granted", "granted"]
    assert states[items[1].id].scope == "standing"
    assert states[items[1].id].consent_code == standing.code
    assert states[items[0].id].scope == "item"


def test_standing_revoke_withdraws_an_earlier_item_grant(session: Session) -> None:
    authority, provider, items, rep = consent_world(session)
    grant(session, provider, authority, items=None, by=rep, now=EARLY)
    grant(session, provider, authority, items=[items[0]], by=rep, now=EARLY + timedelta(days=1))
    revoke(
        session,
        Scope(provider.id, authority.id),
        reason="Withdrawn.",
        by=rep,
        now=EARLY + timedelta(days=2),
    )
    assert _state(session, provider, authority, items) == ["revoked"] * 3


def test_grants_expire_and_expiry_must_be_in_the_future(session: Session) -> None:
    authority, provider, items, rep = consent_world(session)
    grant(
        session, provider, authority, items=items[:1], by=rep, now=EARLY, expires_at=NOW
    )  # expiring exactly at NOW has expired at NOW
    assert _state(session, provider, authority, items[:1]) == ["expired"]
    with pytest.raises(ConsentError, match="future"):
        grant(session, provider, authority, items=items, by=rep, now=NOW, expires_at=EARLY)


def test_codes_are_unique_and_formatted(session: Session) -> None:
    authority, provider, items, rep = consent_world(session)
    events = grant(session, provider, authority, items=items, by=rep, now=EARLY)
    events += decline(session, provider, authority, items=None, reason="No.", by=rep, now=NOW)
    codes = [e.code for e in events]
    assert len(set(codes)) == 4
    assert all(re.fullmatch(r"CNS-2026-\d{6}", code) for code in codes)
    assert codes[0] < codes[1] < codes[2] < codes[3]


def test_refusals_lose_nothing(session: Session) -> None:
    authority, provider, items, rep = consent_world(session)
    other = make.provider(session, "PRV-OTHER")
    foreign = make.item(session, other)
    stranger = make.user(session, "provider", provider=other)
    before = session.scalar(select(func.count(Consent.id)))
    with pytest.raises(ConsentError, match="reason"):
        decline(session, provider, authority, items=items, reason="   ", by=rep)
    with pytest.raises(ConsentError, match="not this provider"):
        grant(session, provider, authority, items=[foreign], by=rep)
    with pytest.raises(ConsentError, match="representative"):
        grant(session, provider, authority, items=items, by=stranger)
    with pytest.raises(ConsentError, match="at least one"):
        grant(session, provider, authority, items=[], by=rep)
    with pytest.raises(ConsentError, match="no active grant"):
        revoke(session, Scope(provider.id, authority.id), reason="x", by=rep)
    (declined,) = decline(session, provider, authority, items=None, reason="No.", by=rep)
    with pytest.raises(ConsentError, match="not a grant"):
        revoke(session, declined, reason="x", by=rep)
    assert session.scalar(select(func.count(Consent.id))) == before + 1


def test_audit_records_codes_and_counts_not_the_reason(session: Session) -> None:
    authority, provider, items, rep = consent_world(session)
    (given,) = grant(session, provider, authority, items=items[:1], by=rep, conditions="Only X.")
    decline(session, provider, authority, items=items[1:], reason="Names Witness Nine.", by=rep)
    revoke(session, given, reason="Names Witness Ten.", by=rep)
    rows = session.scalars(
        select(AuditEvent).where(AuditEvent.action.like("consent.%")).order_by(AuditEvent.seq)
    ).all()
    assert [r.action for r in rows] == ["consent.grant", "consent.decline", "consent.revoke"]
    text = " ".join(r.details for r in rows)
    assert "Witness" not in text and "Only X" not in text
    assert given.code in rows[0].details
    assert audit.verify(session).ok


# --- the append-only guard ---------------------------------------------------------------------


def test_the_ledger_refuses_changes_and_deletes(session: Session) -> None:
    authority, provider, items, rep = consent_world(session)
    (event,) = grant(session, provider, authority, items=items[:1], by=rep)
    session.commit()
    event.conditions = "changed"
    with pytest.raises(ConsentImmutable, match="cannot be changed"):
        session.flush()
    session.rollback()
    session.delete(event)
    with pytest.raises(ConsentImmutable, match="cannot be deleted"):
        session.flush()
    session.rollback()
    with pytest.raises(ConsentImmutable):
        session.execute(update(Consent).values(event="revoke"))
    with pytest.raises(ConsentImmutable):
        session.execute(delete(Consent))
    session.rollback()
    assert session.scalars(select(Consent.conditions)).all() == [""]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["grant", "decline", "revoke", "revoke_consent"]),
            st.one_of(st.none(), st.integers(0, 2)),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_property_the_ledger_only_grows(
    session: Session, steps: list[tuple[str, int | None]]
) -> None:
    authority, provider, items, rep = consent_world(session)
    try:
        seen: list[tuple[int, str, str, int | None]] = []
        for kind, index in steps:
            item = None if index is None else items[index]
            chosen = None if item is None else [item]
            try:
                if kind == "grant":
                    grant(session, provider, authority, items=chosen, by=rep)
                elif kind == "decline":
                    decline(session, provider, authority, items=chosen, reason="r", by=rep)
                else:
                    scope = Scope(provider.id, authority.id, None if item is None else item.id)
                    do = revoke if kind == "revoke" else revoke_consent
                    do(session, scope, reason="r", by=rep)
            except ConsentError:
                pass
            now_rows = [
                (c.id, c.code, c.event, c.item_id)
                for c in session.scalars(
                    select(Consent).where(Consent.provider_id == provider.id).order_by(Consent.id)
                )
            ]
            assert now_rows[: len(seen)] == seen
            assert len(now_rows) >= len(seen)
            seen = now_rows
    finally:
        session.rollback()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["grant", "decline"]), st.one_of(st.none(), st.integers(0, 2))),
        max_size=6,
    ),
    target=st.one_of(st.none(), st.integers(0, 2)),
)
def test_property_what_a_provider_is_shown_is_what_revoking_does(
    session: Session, steps: list[tuple[str, int | None]], target: int | None
) -> None:
    """Whatever grants and declines came before, :func:`consequences` names as many items as
    :func:`revoke_consent` then ends consent for, and refuses exactly when it refuses."""
    authority, provider, items, rep = consent_world(session)
    try:
        for kind, index in steps:
            chosen = None if index is None else [items[index]]
            if kind == "grant":
                grant(session, provider, authority, items=chosen, by=rep)
            else:
                decline(session, provider, authority, items=chosen, reason="r", by=rep)
        scope = Scope(provider.id, authority.id, None if target is None else items[target].id)
        try:
            ahead = consequences(session, scope)
        except ConsentError:
            with pytest.raises(ConsentError):
                revoke_consent(session, scope, reason="r", by=rep)
            return
        done = revoke_consent(session, scope, reason="r", by=rep)
        assert ahead.items == len(done.affected_item_ids)
    finally:
        session.rollback()


# --- revocation and its consequences -----------------------------------------------------------


def _package(
    session: Session, rfa_id: int, decision_id: str, authority: Authority, status: str, item: Item
) -> Package:
    n = make.number(session)
    builder, releaser = make.user(session), make.user(session)
    released = status in ("released",)
    package = Package(
        code=f"PKG-2026-{n:04d}",
        rfa_id=rfa_id,
        decision_id=decision_id,
        authority_id=authority.id,
        status=status,
        assembled_by_id=builder.id,
        released_by_id=releaser.id if released else None,
        released_at=NOW if released else None,
        expires_at=NOW + timedelta(days=30) if released else None,
    )
    session.add(package)
    session.flush()
    session.add(
        PackageItem(
            package_id=package.id,
            item_id=item.id,
            rendition="as_is",
            path=f"data/items/{item.code}/x.txt",
            source_sha256=item.sha256,
        )
    )
    session.flush()
    return package


def test_revoke_consent_flags_rechecks_and_blocks_withdraws_recalls(
    session: Session, policy: Policy
) -> None:
    authority, provider, items, rep = consent_world(session)
    other_authority = assessed_authority(session, "NWU-XX")
    grant(session, provider, authority, items=None, by=rep, now=EARLY)
    grant(session, provider, other_authority, items=None, by=rep, now=EARLY)
    # items[2] keeps its own grant... until a standing revoke withdraws it too: revoke items[0].
    rfa = rfa_in_review(session, authority, items)
    other_rfa = rfa_in_review(session, other_authority, items)
    officer = make.user(session)
    decision = run_check(session, rfa, policy, requested_by=officer, actor="test", now=NOW)
    other_decision = run_check(
        session, other_rfa, policy, requested_by=officer, actor="test", now=NOW
    )
    subject = items[0]
    packages = {
        status: _package(session, rfa.id, decision.id, authority, status, subject)
        for status in ("queued", "assembling", "assembled", "failed", "released")
    }
    downloaded = _package(session, rfa.id, decision.id, authority, "released", subject)
    session.add(Download(package_id=downloaded.id, bytes_sent=10))
    untouched = _package(session, rfa.id, decision.id, authority, "queued", items[1])
    elsewhere = _package(
        session, other_rfa.id, other_decision.id, other_authority, "queued", subject
    )
    session.flush()
    scope = Scope(provider.id, authority.id, subject.id)
    ahead = consequences(session, scope, now=NOW + timedelta(minutes=1))

    done = revoke_consent(
        session, scope, reason="The witness asked.", by=rep, now=NOW + timedelta(minutes=1)
    )
    session.flush()
    # What the provider was shown is what happened.
    assert ahead.items == len(done.affected_item_ids) == 1
    assert sorted(p.effect for p in ahead.packages) == sorted(
        ["blocked"] * len(done.blocked)
        + ["withdrawn"] * len(done.withdrawn)
        + ["recalled"] * len(done.recalled)
    )
    assert {p.authority for p in ahead.packages} == {authority.name}
    assert done.affected_item_ids == (subject.id,)
    assert done.rechecks == 1
    flags = [
        flag
        for (flag,) in session.execute(
            select(RfaItem.needs_recheck).where(RfaItem.item_id == subject.id)
        )
    ]
    assert sorted(flags) == [False, True]  # only the authority's request
    assert {packages[s].status for s in ("queued", "assembling", "assembled")} == {"blocked"}
    assert packages["failed"].status == "failed"
    assert packages["released"].status == "withdrawn"
    assert downloaded.status == "recalled"
    assert untouched.status == "queued" and elsewhere.status == "queued"
    (recall,) = session.scalars(select(Recall)).all()
    assert recall.package_id == downloaded.id and recall.consent_id == done.events[0].id
    assert "witness" not in recall.reason.lower()
    assert set(done.blocked) == {packages[s].code for s in ("queued", "assembling", "assembled")}
    assert done.withdrawn == (packages["released"].code,) and done.recalled == (downloaded.code,)


def test_standing_revocation_affects_the_items_whose_consent_stood_on_it(
    session: Session,
) -> None:
    """Items shared under the standing consent lose it; a declined item had none to lose, so
    it is neither flagged nor are its packages touched."""
    authority, provider, items, rep = consent_world(session)
    grant(session, provider, authority, items=None, by=rep, now=EARLY)
    decline(session, provider, authority, items=[items[2]], reason="No.", by=rep, now=EARLY)
    rfa_in_review(session, authority, items)
    assert consequences(session, Scope(provider.id, authority.id), now=NOW).items == 2
    done = revoke_consent(
        session, Scope(provider.id, authority.id), reason="All off.", by=rep, now=NOW
    )
    assert set(done.affected_item_ids) == {items[0].id, items[1].id}
    assert done.rechecks == 2
    flagged = session.scalars(select(RfaItem.item_id).where(RfaItem.needs_recheck.is_(True)))
    assert set(flagged) == {items[0].id, items[1].id}


def test_a_revocation_changes_the_next_eligibility_check(session: Session, policy: Policy) -> None:
    authority, provider, items, rep = consent_world(session)
    (given,) = grant(session, provider, authority, items=items[:1], by=rep, now=EARLY)
    rfa = rfa_in_review(session, authority, items[:1])
    officer = make.user(session)

    def outcome(at: timedelta) -> str:
        decision = run_check(session, rfa, policy, requested_by=officer, actor="t", now=NOW + at)
        (item,) = load_result(decision).items
        return item.outcome

    assert outcome(timedelta(0)) == "share"
    revoke_consent(session, given, reason="Changed mind.", by=rep, now=NOW + timedelta(minutes=1))
    assert outcome(timedelta(minutes=2)) == "withhold"


# --- consent requests ---------------------------------------------------------------------------


def test_answering_a_request_item_by_item_marks_it_answered(session: Session) -> None:
    authority, provider, items, rep = consent_world(session)
    rfa = rfa_in_review(session, authority, items)
    request = ConsentRequest(rfa_id=rfa.id, provider_id=provider.id, authority_id=authority.id)
    session.add(request)
    session.flush()
    session.add_all(ConsentRequestItem(consent_request_id=request.id, item_id=i.id) for i in items)
    session.flush()
    answer_request(
        session, request, action="grant", item_ids=[items[0].id, items[1].id], by=rep, now=EARLY
    )
    assert request.status == "open"
    with pytest.raises(ConsentError, match="not part"):
        answer_request(session, request, action="decline", item_ids=[999_999], reason="x", by=rep)
    with pytest.raises(ConsentError, match="reason"):
        answer_request(session, request, action="decline", item_ids=[items[2].id], by=rep)
    answer_request(
        session, request, action="decline", item_ids=[items[2].id], reason="No.", by=rep, now=EARLY
    )
    assert request.status == "answered" and request.answered_at is not None
    assert _state(session, provider, authority, items) == ["granted", "granted", "declined"]
    with pytest.raises(ConsentError, match="no longer open"):
        answer_request(session, request, action="grant", item_ids=[items[2].id], by=rep)
