"""Decision records on both databases: the snapshot, run_check, immutability, re-runs and
diffs, the demo's authorities, and the consent property through the real ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, event, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from portal import audit
from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.canonical import canonical_json, sha256_hex
from portal.config import Settings
from portal.consent.models import Consent
from portal.demo import run_demo
from portal.demo.dataset import DEMO_EPOCH
from portal.eligibility import decisions
from portal.eligibility.decisions import (
    AUDIT_ACTION,
    CheckRefused,
    DecisionImmutable,
    changes_since_previous,
    decision_history,
    guard_decisions,
    latest_decision,
    load_result,
    load_snapshot,
    previous_decision,
    replay,
    run_check,
)
from portal.eligibility.models import Decision
from portal.eligibility.policy import Policy, build_snapshot, evaluate, load_policy
from portal.eligibility.policy.inputs import ConsentEvent
from portal.registry.models import Authority, Item, Provider
from portal.rfa.models import Rfa, RfaItem
from portal.state import PortalState, build_state
from tests.eligibility.test_policy_engine import _active_grant
from tests.support import factories as make
from tests.support.ledger_world import NOW, assessed_authority, rfa_in_review

POLICIES = Path(__file__).resolve().parents[2] / "policies"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICIES)


def _small_request(session: Session) -> tuple[Authority, Provider, list[Item], Rfa]:
    authority = assessed_authority(session)
    provider = make.provider(session)
    items = [make.item(session, provider) for _ in range(3)]
    make.consent(session, provider, authority, at=NOW - timedelta(days=50))
    at_risk = make.person(session, items[1])
    make.redaction_mark(session, items[1], person=at_risk)
    make.consent(session, provider, authority, "decline", at=NOW - timedelta(days=5), item=items[2])
    return authority, provider, items, rfa_in_review(session, authority, items)


# --------------------------------------------------------------------------- run_check


def test_run_check_stores_a_complete_reproducible_record(session: Session, policy: Policy) -> None:
    authority, provider, items, rfa = _small_request(session)
    officer = make.user(session)
    session.commit()

    decision = run_check(
        session, rfa, policy, requested_by=officer, actor=audit.actor_label(officer), now=NOW
    )
    session.commit()

    stored = session.get(Decision, decision.id)
    assert stored is not None
    assert len(stored.id) == 36 and stored.rfa_id == rfa.id
    assert (stored.policy_id, stored.policy_revision) == (policy.id, policy.revision)
    assert stored.engine_version == "1.1.1"
    assert stored.snapshot_sha256 == sha256_hex(stored.snapshot_json)
    assert stored.requested_by_id == officer.id and stored.created_at == NOW
    assert stored.outcome == "partially_eligible"
    result = load_result(stored)
    # Stored as canonical JSON (canonical_text is the fast path for plain values).
    assert stored.results_json == canonical_json(result.to_json())
    assert stored.snapshot_json == canonical_json(load_snapshot(stored).to_json())
    assert [i.outcome for i in result.items] == ["share", "share_redacted", "withhold"]
    assert [i.item_id for i in result.items] == [item.id for item in items]
    assert "declined consent" in result.items[2].explanation
    event_row = session.scalars(select(AuditEvent).where(AuditEvent.action == AUDIT_ACTION)).one()
    assert event_row.target == f"decision:{decision.id}"
    assert event_row.actor == f"user:{officer.id}"
    details = json.loads(event_row.details)
    assert details["rfa"] == rfa.code and details["outcome"] == "partially_eligible"
    assert details["snapshot_sha256"] == stored.snapshot_sha256
    assert audit.verify(session).ok

    # The record alone reproduces the decision, whatever happens to the database later.
    make.consent(session, provider, authority, "revoke", at=NOW + timedelta(hours=1))
    session.commit()
    check = replay(stored)
    assert check.ok and check.snapshot_intact and check.results_reproduced and check.same_engine
    again = evaluate(policy, load_snapshot(stored))
    assert canonical_json(again.to_json()) == stored.results_json


def test_wording_with_tabs_newlines_and_backslashes_is_stored_in_the_results_as_given(
    session: Session, policy: Policy
) -> None:
    """A provider's reason quoted in an explanation comes back from the stored record as it
    was given, beside the item's outcome."""
    authority = assessed_authority(session)
    provider = make.provider(session)
    item = make.item(session, provider)
    reason = "Tab\there, a new\nline, a back\\slash \\N and \u0645\u0648\u0627\u0641\u0642\u0629."
    make.consent(session, provider, authority, "decline", at=NOW - timedelta(days=2), reason=reason)
    rfa = rfa_in_review(session, authority, [item])
    decision = run_check(session, rfa, policy, requested_by=None, actor="system", now=NOW)
    session.commit()
    session.expire_all()
    stored = session.get(Decision, decision.id)
    assert stored is not None
    (stored_item,) = load_result(stored).items
    assert reason in stored_item.explanation
    assert (stored_item.item_id, stored_item.outcome) == (item.id, "withhold")


def test_replay_notices_a_tampered_snapshot(session: Session, policy: Policy) -> None:
    _authority, _provider, _items, rfa = _small_request(session)
    decision = run_check(session, rfa, policy, requested_by=None, actor="system", now=NOW)
    session.commit()
    data = json.loads(decision.snapshot_json)
    data["items"][2][9] = []  # as if the decline had never been recorded (see "layout")
    tampered = Decision(
        id="00000000-0000-0000-0000-000000000000",
        rfa_id=decision.rfa_id,
        policy_id=decision.policy_id,
        policy_revision=decision.policy_revision,
        engine_version=decision.engine_version,
        snapshot_json=canonical_json(data),
        snapshot_sha256=decision.snapshot_sha256,
        results_json=decision.results_json,
        outcome=decision.outcome,
    )
    check = replay(tampered)
    assert not check.snapshot_intact and not check.results_reproduced and not check.ok


def test_only_legal_officers_run_checks(session: Session, policy: Policy) -> None:
    authority, _provider, _items, rfa = _small_request(session)
    requester = make.user(session, "requester", authority=authority)
    admin = make.user(session, "admin")
    retired = make.user(session)
    retired.is_active = False
    session.commit()
    for user in (requester, admin):
        with pytest.raises(CheckRefused, match="only legal officers"):
            run_check(session, rfa, policy, requested_by=user, actor="x", now=NOW)
    with pytest.raises(CheckRefused, match="deactivated"):
        run_check(session, rfa, policy, requested_by=retired, actor="x", now=NOW)
    assert session.scalar(select(func.count()).select_from(Decision)) == 0
    with pytest.raises(ValueError, match="naive"):
        run_check(session, rfa, policy, requested_by=None, actor="x", now=NOW.replace(tzinfo=None))


# --------------------------------------------------------------------------- the snapshot


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_snapshot_takes_the_same_few_queries_for_3_or_60_items(
    engine: Engine, session: Session
) -> None:
    authority = assessed_authority(session)
    providers = [make.provider(session, "PRV-A"), make.provider(session, "PRV-B")]
    requests = []
    for size in (3, 60):
        items = []
        for n in range(size):
            subject = make.item(session, providers[n % 2])
            person = make.person(session, subject, at_risk=n % 3 == 0)
            make.redaction_mark(session, subject, person=person)
            make.consent(
                session,
                providers[n % 2],
                authority,
                "grant",
                at=NOW - timedelta(days=3),
                item=subject,
            )
            items.append(subject)
        requests.append(rfa_in_review(session, authority, items))
    make.consent(session, providers[0], authority, "grant", at=NOW - timedelta(days=9))
    session.commit()

    counts = []
    for rfa_id in [rfa.id for rfa in requests]:
        session.expire_all()
        with _statements(engine) as statements:
            built = build_snapshot(session, rfa_id, now=NOW)
        counts.append(len([s for s in statements if s.lstrip().upper().startswith("SELECT")]))
        assert len(built.items) in (3, 60)
        assert all(len(i.consents) == 1 and len(i.marks) == 1 for i in built.items)
    assert counts[0] == counts[1] == 10, counts  # see portal.eligibility.policy.snapshot


def test_snapshot_holds_this_authority_and_the_ledger_as_it_stood(session: Session) -> None:
    authority = assessed_authority(session)
    other = assessed_authority(session, "SPR-ES")
    provider = make.provider(session)
    inside, outside = make.item(session, provider), make.item(session, provider)
    make.consent(session, provider, authority, "grant", at=NOW - timedelta(days=3), item=inside)
    make.consent(session, provider, other, "grant", at=NOW - timedelta(days=3), item=inside)
    make.consent(session, provider, authority, "revoke", at=NOW + timedelta(seconds=1), item=inside)
    make.consent(session, provider, authority, "grant", at=NOW - timedelta(days=3), item=outside)
    make.consent(session, provider, other, "grant", at=NOW - timedelta(days=9))
    rfa = rfa_in_review(session, authority, [inside])
    session.commit()

    built = build_snapshot(session, rfa.id, now=NOW)
    assert [i.code for i in built.items] == [inside.code]
    assert [e.event for e in built.items[0].consents] == ["grant"]
    assert built.providers[provider.id].standing_consents == ()
    assert {a.code for a in built.assessments} == {
        "NWU-NL-fair_trial",
        "NWU-NL-death_penalty",
        "NWU-NL-witness_protection",
    }
    assert built.taken_at == NOW and built.request.code == rfa.code


# --------------------------------------------------------------------------- immutability


def test_stored_decisions_cannot_be_changed_or_deleted(
    sessions: sessionmaker[Session], policy: Policy
) -> None:
    guard_decisions(sessions)
    with sessions() as session:
        _authority, _provider, _items, rfa = _small_request(session)
        decision_id = run_check(session, rfa, policy, requested_by=None, actor="x", now=NOW).id
        session.commit()

    def attempt(change: Any) -> None:
        with sessions() as session:
            decision = session.get(Decision, decision_id)
            assert decision is not None
            with pytest.raises(DecisionImmutable):
                change(session, decision)
                session.flush()
            session.rollback()

    attempt(lambda s, d: setattr(d, "outcome", "eligible"))
    attempt(lambda s, d: setattr(d, "results_json", "{}"))
    attempt(lambda s, d: s.delete(d))
    attempt(lambda s, d: s.execute(update(Decision).values(outcome="eligible")))
    attempt(lambda s, d: s.execute(delete(Decision.__table__)))

    with sessions() as session:
        decision = session.get(Decision, decision_id)
        assert decision is not None and decision.outcome == "partially_eligible"
        assert len(load_result(decision).items) == 3
        # Reading and re-saving unchanged is not a change.
        decision.outcome = decision.outcome
        session.commit()


def test_run_check_guards_its_own_session(session: Session, policy: Policy) -> None:
    _authority, _provider, _items, rfa = _small_request(session)
    decision = run_check(session, rfa, policy, requested_by=None, actor="x", now=NOW)
    session.commit()
    decision.outcome = "eligible"
    with pytest.raises(DecisionImmutable, match="run a new check"):
        session.commit()
    session.rollback()


# --------------------------------------------------------------------------- re-running


def test_rerunning_makes_a_new_record_and_says_what_changed(
    session: Session, policy: Policy
) -> None:
    authority, provider, items, rfa = _small_request(session)
    session.commit()
    first = run_check(session, rfa, policy, requested_by=None, actor="x", now=NOW)
    session.commit()
    assert changes_since_previous(session, first) is None

    make.consent(session, provider, authority, "revoke", at=NOW + timedelta(hours=1), item=items[0])
    session.commit()
    second = run_check(
        session, rfa, policy, requested_by=None, actor="x", now=NOW + timedelta(hours=2)
    )
    session.commit()

    assert second.id != first.id
    assert session.scalar(select(func.count()).select_from(Decision)) == 2
    assert previous_decision(session, second) == first
    assert previous_decision(session, first) is None
    assert decision_history(session, rfa.id) == [second, first]
    assert latest_decision(session, rfa.id) == second
    assert first.outcome == "partially_eligible"  # the first record is untouched
    changes = changes_since_previous(session, second)
    assert changes is not None
    moved = [c for c in changes if c.kind == "item_outcome"]
    assert [(c.item, c.before, c.after) for c in moved] == [(items[0].code, "share", "withhold")]
    assert "was revoked on 2026-03-02" in moved[0].explanation
    rule = next(c for c in changes if c.kind == "item_rule")
    assert (rule.rule, rule.before, rule.after) == (
        "provider-consent",
        "pass (granted)",
        "fail (revoked, withhold)",
    )


# --------------------------------------------------------------------------- the demo's story


@pytest.fixture
def demo(settings: Settings, engine: Engine, tmp_path: Path) -> PortalState:
    state = build_state(settings, engine=engine)
    run_demo(state, logins_file=tmp_path / "logins.json")
    return state


def test_demo_authorities_get_the_outcomes_their_story_says(
    demo: PortalState, policy: Policy
) -> None:
    # A fixed moment a month after the demo's epoch, so the story holds whenever this runs.
    now = DEMO_EPOCH + timedelta(days=30)
    with demo.sessions() as session:
        officer = session.scalars(select(User).where(User.role == "legal_officer")).first()
        assert officer is not None
        results = {}
        for rfa in session.scalars(select(Rfa).order_by(Rfa.code)):
            decision = run_check(
                session,
                rfa,
                policy,
                requested_by=officer,
                actor=audit.actor_label(officer),
                now=now,
            )
            results[rfa.code] = load_result(decision)
            assert replay(decision).ok
            assert decision.results_json == canonical_json(json.loads(decision.results_json))
        session.commit()

    def rule(code: str, rule_id: str) -> tuple[str, str]:
        found = results[code].request_result(rule_id)
        return found.status, found.code

    def items(code: str) -> dict[str, str]:
        return {i.item: i.outcome for i in results[code].items}

    # Every demo request is within the mandate.
    assert {rule(code, "mandate-scope") for code in results} == {("pass", "in_scope")}

    # NWU-NL passes every rule; its outcomes turn on consent and the Mechanism's review.
    for code in ("RFA-2025-0038", "RFA-2025-0041"):
        assert rule(code, "fair-trial") == ("pass", "current")
        assert rule(code, "no-death-penalty") == ("pass", "abolished")
    assert results["RFA-2025-0038"].outcome == "eligible"
    assert items("RFA-2025-0041") == {
        "ITM-0001": "share_redacted",
        "ITM-0003": "needs_review",  # a redaction mark awaits review
        "ITM-0005": "share_redacted",
        "ITM-0006": "withhold",  # consent revoked
        "ITM-0012": "withhold",  # consent declined
        "ITM-0013": "share_redacted",
        "ITM-0021": "share",  # "without protection" mark: NWU-NL can protect
        "ITM-0025": "share_redacted",
        "ITM-0029": "share",
        "ITM-0031": "withhold",  # audio with marks cannot be redacted
        "ITM-0032": "share",  # audio cleared as-is
        "ITM-0033": "needs_review",  # archive not cleared
    }
    revoked = results["RFA-2025-0041"].item("ITM-0006").explanation
    assert "was revoked on 2026-01-10" in revoked and "renewed threats" in revoked

    # SPR-ES retains the death penalty and gave no assurance.
    for code in ("RFA-2025-0044", "RFA-2026-0001"):
        assert rule(code, "no-death-penalty") == ("fail", "retained")
        assert results[code].outcome == "ineligible"
        assert results[code].blocked_by == ("no-death-penalty",)

    # ECT-EV cannot protect witnesses: items naming people at risk are redacted.
    eastvale = results["RFA-2025-0039"]
    for code in ("ITM-0003", "ITM-0011", "ITM-0013", "ITM-0021"):
        found = next(r for r in eastvale.item(code).results if r.rule == "witness-protection")
        assert (found.code, found.action) == ("no_capacity", "redact"), code
    assert items("RFA-2025-0039") == {
        "ITM-0003": "needs_review",
        "ITM-0007": "withhold",  # the standing consent expired
        "ITM-0011": "share_redacted",
        "ITM-0013": "share_redacted",
        "ITM-0021": "share_redacted",
    }

    # WJD-WR's fair-trial assessment has expired.
    assert rule("RFA-2025-0031", "fair-trial") == ("fail", "expired")
    assert results["RFA-2025-0031"].outcome == "ineligible"

    # RCP-RV retains the death penalty but gave an assurance for its request.
    assert rule("RFA-2025-0046", "no-death-penalty") == ("pass", "assured")
    assert results["RFA-2025-0046"].outcome == "eligible"


# --------------------------------------------------------------------------- the ledger property

DB_EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["item", "standing"]),
        st.sampled_from(["grant", "decline", "revoke"]),
        st.integers(min_value=-500, max_value=60),  # recorded, minutes from NOW
        st.none() | st.integers(min_value=-60, max_value=500),  # expiry of grants
    ),
    max_size=6,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(raw=DB_EVENTS)
def test_through_the_real_ledger_no_active_grant_means_not_shared(
    session: Session, policy: Policy, raw: list[tuple[str, str, int, int | None]]
) -> None:
    authority = session.scalars(select(Authority)).first()
    if authority is None:  # the first example builds the world once and commits it
        authority = assessed_authority(session)
        provider = make.provider(session)
        rfa_in_review(session, authority, [make.item(session, provider)])
        session.commit()
    provider = session.scalars(select(Provider)).one()
    subject = session.scalars(select(Item)).one()
    rfa = session.scalars(select(Rfa)).one()
    added: list[Consent] = []
    try:
        for scope, kind, recorded, expires in raw:
            added.append(
                make.consent(
                    session,
                    provider,
                    authority,
                    kind,
                    at=NOW + timedelta(minutes=recorded),
                    item=subject if scope == "item" else None,
                    expires_at=NOW + timedelta(minutes=expires)
                    if kind == "grant" and expires is not None
                    else None,
                )
            )
        result = evaluate(policy, build_snapshot(session, rfa.id, now=NOW))
        as_events = [
            ConsentEvent(
                c.id,
                c.code,
                c.event,
                c.purpose,
                c.conditions,
                c.expires_at,
                c.reason,
                c.recorded_at,
            )
            for c in added
        ]
        specific = [e for e, c in zip(as_events, added, strict=True) if c.item_id is not None]
        standing = [e for e, c in zip(as_events, added, strict=True) if c.item_id is None]
        outcome = result.items[0].outcome
        if _active_grant(specific, standing):
            assert outcome == "share"
        else:
            assert outcome not in ("share", "share_redacted")
    finally:
        session.rollback()


@pytest.mark.parametrize("per_statement", [1000, 2])
def test_a_check_clears_the_flags_of_the_items_it_decided_and_no_other(
    session: Session, monkeypatch: pytest.MonkeyPatch, per_statement: int
) -> None:
    """Five flagged candidates, of which the check decided three (the other two were added
    after its snapshot was read): only those three are cleared, in statements of
    ``per_statement`` ids."""
    monkeypatch.setattr(decisions, "_IDS_A_STATEMENT", per_statement)
    authority = assessed_authority(session)
    provider = make.provider(session)
    items = [make.item(session, provider) for _ in range(5)]
    rfa = rfa_in_review(session, authority, [])
    for item in items:
        make.candidate(session, rfa, item, needs_recheck=True)
    session.flush()
    decided = {item.id for item in items[:3]}
    assert decisions._clear_recheck_flags(session, rfa, decided) == 3
    flagged = session.scalars(
        select(RfaItem.item_id).where(RfaItem.rfa_id == rfa.id, RfaItem.needs_recheck.is_(True))
    )
    assert set(flagged) == {item.id for item in items[3:]}
    assert decisions._clear_recheck_flags(session, rfa, decided) == 0
    everything = {item.id for item in items}
    assert decisions._clear_recheck_flags(session, rfa, everything) == 2
    assert not session.scalar(
        select(func.count()).where(RfaItem.rfa_id == rfa.id, RfaItem.needs_recheck.is_(True))
    )
