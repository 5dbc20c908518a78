"""portal.codes on both databases: the one allocator of request (``RFA-2026-0001``), package
(``PKG-2026-0001``) and consent (``CNS-2026-000001``) codes. Formats, a sequence per year,
codes of another form passed over, years that run out, and distinct codes when several
writers allocate at once (threads, each with its own connection)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from portal.accounts.models import User
from portal.codes import CodesExhausted, add_numbered
from portal.config import Settings
from portal.consent.ledger import CONSENT_CODES, ConsentError, grant
from portal.db import utcnow
from portal.eligibility.decisions import run_check
from portal.eligibility.policy import Policy, load_policy
from portal.packages.lifecycle import PACKAGE_CODES, PackageRefused, create_package
from portal.packages.models import Package
from portal.registry.models import Authority, Item, Provider
from portal.rfa.drafting import RFA_CODES, RfaFields, create_draft, next_code
from portal.rfa.models import Rfa
from portal.state import PortalState, build_state
from tests.support import factories as make
from tests.support.ledger_world import NOW, assessed_authority, consent_world, rfa_in_review
from tests.support.package_world import POLICIES, REDACTABLE, build_world, user

LAST_YEAR = NOW - timedelta(days=365)  # in 2025
DRAFT = RfaFields(their_reference="WCU-CODES", proceedings_type="trial")
WRITERS = 4


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICIES)


def _draft(session: Session, requester: User, policy: Policy, now: datetime = NOW) -> str:
    return create_draft(session, requester, DRAFT, policy.mandate, now=now).code


def _package_rows(session: Session, policy: Policy) -> Callable[[list[str]], list[Package]]:
    """What makes failed packages on a real decision (for the allocator alone: a request
    holds one unfinished package at a time, so create_package cannot race itself)."""
    authority = assessed_authority(session, "AUTH-PKG")
    rfa = rfa_in_review(session, authority, [make.item(session, make.provider(session))])
    decision = run_check(session, rfa, policy, requested_by=None, actor="system", now=NOW)
    officer = make.user(session, "legal_officer")
    ids = (rfa.id, decision.id, authority.id, officer.id)

    def build(codes: list[str]) -> list[Package]:
        rfa_id, decision_id, authority_id, officer_id = ids
        return [
            Package(
                code=code,
                rfa_id=rfa_id,
                decision_id=decision_id,
                authority_id=authority_id,
                status="failed",
                assembled_by_id=officer_id,
                created_at=NOW,
            )
            for code in codes
        ]

    return build


# --- formats and sequences -----------------------------------------------------------------


def test_the_three_formats(session: Session, policy: Policy) -> None:
    authority, provider, items, rep = consent_world(session)
    requester = make.user(session, "requester", authority=authority)
    assert _draft(session, requester, policy) == "RFA-2026-0001"
    events = grant(session, provider, authority, items=items[:2], by=rep, now=NOW)
    assert [event.code for event in events] == ["CNS-2026-000001", "CNS-2026-000002"]
    packages = add_numbered(session, PACKAGE_CODES, 2026, _package_rows(session, policy))
    assert [package.code for package in packages] == ["PKG-2026-0001"]
    assert (RFA_CODES.code(2026, 7), PACKAGE_CODES.code(2026, 7), CONSENT_CODES.code(2026, 7)) == (
        "RFA-2026-0007",
        "PKG-2026-0007",
        "CNS-2026-000007",
    )


def test_each_year_has_its_own_sequence(session: Session, policy: Policy) -> None:
    authority, provider, items, rep = consent_world(session)
    requester = make.user(session, "requester", authority=authority)
    moments = (NOW, NOW, LAST_YEAR, NOW, LAST_YEAR)
    assert [_draft(session, requester, policy, now=at) for at in moments] == [
        "RFA-2026-0001",
        "RFA-2026-0002",
        "RFA-2025-0001",
        "RFA-2026-0003",
        "RFA-2025-0002",
    ]
    codes = [
        event.code
        for at, subject in zip(moments, items * 2, strict=False)
        for event in grant(session, provider, authority, items=[subject], by=rep, now=at)
    ]
    assert codes == [
        "CNS-2026-000001",
        "CNS-2026-000002",
        "CNS-2025-000001",
        "CNS-2026-000003",
        "CNS-2025-000002",
    ]
    assert next_code(session, 2027) == "RFA-2027-0001"


def test_codes_of_another_form_are_passed_over(session: Session) -> None:
    authority = make.authority(session)
    make.rfa(session, authority, "RFA-2026-0007")
    for n in range(60):  # longer than the real codes, so they sort first: more than one scan
        make.rfa(session, authority, f"RFA-2026-0100-imported-{n}")
    for code in ("RFA-2026-12", "RFA-2026-00099", "RFA-2026-9x99", "RFA-2027-0040"):
        make.rfa(session, authority, code)
    assert next_code(session, 2026) == "RFA-2026-0008"


def test_request_numbers_grow_past_four_digits(session: Session) -> None:
    authority = make.authority(session)
    make.rfa(session, authority, "RFA-2026-9999")
    assert next_code(session, 2026) == "RFA-2026-10000"
    make.rfa(session, authority, "RFA-2026-10000")
    assert next_code(session, 2026) == "RFA-2026-10001"  # not "0000" after "9999" as text


def test_a_year_of_consent_codes_runs_out(session: Session) -> None:
    authority, provider, items, rep = consent_world(session)
    make.consent(session, provider, authority, code="CNS-2026-999998", at=NOW)
    (last,) = grant(session, provider, authority, items=[items[0]], by=rep, now=NOW)
    assert last.code == "CNS-2026-999999"
    with pytest.raises(ConsentError, match="the consent codes of 2026 are exhausted"):
        grant(session, provider, authority, items=[items[1]], by=rep, now=NOW)
    with pytest.raises(CodesExhausted):
        CONSENT_CODES.next_codes(session, 2026)
    assert CONSENT_CODES.next_codes(session, 2027) == ["CNS-2027-000001"]


# --- packages through the lifecycle ----------------------------------------------------------


@pytest.fixture
def state(settings: Settings, engine: object) -> Iterator[PortalState]:
    yield build_state(settings, engine=engine)  # type: ignore[arg-type]


def test_packages_are_numbered_per_year_and_a_year_runs_out(state: PortalState) -> None:
    year = utcnow().year
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer)
        rfa = make.stored(session, Rfa, world.rfa_id)
        officer = user(session, world.officer_id)
        first = create_package(session, rfa, REDACTABLE, by=officer)
        assert first.code == f"PKG-{year}-0001"
        first.status = "failed"
        first.code = f"PKG-{year}-9999"
        session.flush()
        with pytest.raises(PackageRefused, match=f"The package numbers of {year} are exhausted"):
            create_package(session, rfa, REDACTABLE, by=officer)


# --- concurrency -------------------------------------------------------------------------------


def _at_once(
    sessions: sessionmaker[Session], allocate: Callable[[Session, int], list[str]]
) -> list[str]:
    """Run ``allocate(session, writer)`` in WRITERS threads released together, each committing
    in its own session; every code they got, sorted."""
    start = threading.Barrier(WRITERS)
    results: list[list[str] | BaseException] = [[] for _ in range(WRITERS)]

    def run(writer: int) -> None:
        try:
            with sessions() as session:
                start.wait()
                results[writer] = allocate(session, writer)
                session.commit()
        except BaseException as exc:  # reported below
            results[writer] = exc

    threads = [threading.Thread(target=run, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []
    return sorted(code for r in results if not isinstance(r, BaseException) for code in r)


def test_drafts_made_at_once_get_distinct_codes(
    sessions: sessionmaker[Session], policy: Policy
) -> None:
    with sessions() as session:
        authority = make.authority(session)
        requester_ids = [make.user(session, "requester", authority=authority).id for _ in range(2)]
        session.commit()

    def allocate(session: Session, writer: int) -> list[str]:
        requester = make.stored(session, User, requester_ids[writer % 2])
        return [_draft(session, requester, policy)]

    assert _at_once(sessions, allocate) == [f"RFA-2026-{n:04d}" for n in range(1, WRITERS + 1)]


def test_consents_recorded_at_once_get_distinct_codes(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        authority, provider, _, rep = consent_world(session)
        item_ids = [make.item(session, provider).id for _ in range(2 * WRITERS)]
        ids = (authority.id, provider.id, rep.id)
        session.commit()

    def allocate(session: Session, writer: int) -> list[str]:
        authority_id, provider_id, rep_id = ids
        mine = [make.stored(session, Item, i) for i in item_ids[2 * writer : 2 * writer + 2]]
        events = grant(
            session, make.stored(session, Provider, provider_id),
            make.stored(session, Authority, authority_id), items=mine,
            by=make.stored(session, User, rep_id), now=NOW,
        )  # fmt: skip
        return [event.code for event in events]

    expected = [f"CNS-2026-{n:06d}" for n in range(1, 2 * WRITERS + 1)]
    assert _at_once(sessions, allocate) == expected


def test_packages_numbered_at_once_get_distinct_codes(
    sessions: sessionmaker[Session], policy: Policy
) -> None:
    with sessions() as session:
        build = _package_rows(session, policy)
        session.commit()

    def allocate(session: Session, _writer: int) -> list[str]:
        return [p.code for p in add_numbered(session, PACKAGE_CODES, 2026, build)]

    assert _at_once(sessions, allocate) == [f"PKG-2026-{n:04d}" for n in range(1, WRITERS + 1)]
