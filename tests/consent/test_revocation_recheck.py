"""After a provider revokes consent for one item of a released package, the request can be
packaged again: a fresh eligibility check clears the re-check flags of the items it decided,
whether consent was granted again, the item was taken out of the candidates, or the check
simply withholds it now. On both databases, through the domain functions the pages call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.audit import AuditEvent
from portal.config import Settings
from portal.consent.ledger import Scope, grant
from portal.consent.revocation import revoke_consent
from portal.eligibility.decisions import AUDIT_ACTION
from portal.notifications.models import Notification
from portal.packages.lifecycle import PackageRefused, create_package, release_package
from portal.packages.models import Package, PackageItem
from portal.registry.models import Authority, Item, Provider
from portal.rfa.models import Rfa, RfaItem
from portal.rfa.triage import TriageError, remove_candidate
from portal.state import PortalState, build_state
from tests.support import factories as make
from tests.support.auth import make_user
from tests.support.package_world import (
    REDACTABLE,
    World,
    assembled,
    build_world,
    recheck,
    user,
)


@pytest.fixture
def state(settings: Settings, engine: object) -> Iterator[PortalState]:
    yield build_state(settings, engine=engine)  # type: ignore[arg-type]


@pytest.fixture
def world(state: PortalState) -> World:
    """The package world with its first package released, then consent for the "plain" item
    revoked by the provider."""
    with state.sessions() as session:
        built = build_world(session, state.blobs, state.sealer)
        package = _make_package(session, built)
        assembled(session, package)
        release_package(session, package, by=user(session, built.second_id))
        session.commit()
        provider_user = make_user(session, "provider", provider_code="PRV-T")
        revocation = revoke_consent(
            session,
            Scope(built.provider_id, built.authority_id, built.items["plain"]),
            reason="The witness asked us to withdraw it.",
            by=user(session, provider_user.user_id),
        )
        session.commit()
        assert revocation.rechecks == 1
        assert _package(session, package.code).status == "withdrawn"
        return built


def _make_package(session: Session, world: World) -> Package:
    package = create_package(
        session, make.stored(session, Rfa, world.rfa_id), REDACTABLE,
        by=user(session, world.officer_id),
    )  # fmt: skip
    session.commit()
    return package


def _package(session: Session, code: str) -> Package:
    return session.scalars(select(Package).where(Package.code == code)).one()


def _packaged_items(session: Session, package: Package) -> set[int]:
    return set(
        session.scalars(select(PackageItem.item_id).where(PackageItem.package_id == package.id))
    )


def _flags(session: Session, world: World) -> dict[int, bool]:
    rows = session.execute(
        select(RfaItem.item_id, RfaItem.needs_recheck).where(RfaItem.rfa_id == world.rfa_id)
    )
    return {item_id: flagged for item_id, flagged in rows}


def test_the_revoked_item_blocks_packages_until_a_fresh_check(
    state: PortalState, world: World
) -> None:
    with state.sessions() as session:
        assert _flags(session, world)[world.items["plain"]] is True
        with pytest.raises(PackageRefused, match="flagged for a re-check"):
            _make_package(session, world)
        session.rollback()


def test_revoke_then_check_then_package_without_the_revoked_item(
    state: PortalState, world: World
) -> None:
    with state.sessions() as session:
        recheck(session, world)
        session.commit()
        assert not any(_flags(session, world).values())
        recorded = session.scalars(
            select(AuditEvent).where(AuditEvent.action == AUDIT_ACTION).order_by(AuditEvent.seq)
        ).all()[-1]
        assert json.loads(recorded.details)["rechecked"] == 1
        package = _make_package(session, world)
        shared = _packaged_items(session, package)
        assert world.items["plain"] not in shared
        assert world.items["redact"] in shared


def test_revoke_then_grant_again_then_check_then_package_with_it(
    state: PortalState, world: World
) -> None:
    with state.sessions() as session:
        provider_user = make_user(session, "provider", provider_code="PRV-T")
        grant(
            session,
            make.stored(session, Provider, world.provider_id),
            make.stored(session, Authority, world.authority_id),
            items=[make.stored(session, Item, world.items["plain"])],
            by=user(session, provider_user.user_id),
        )
        session.commit()
        with pytest.raises(PackageRefused, match="Consent changed after the latest decision"):
            _make_package(session, world)  # the grant is newer than the decision
        session.rollback()
        recheck(session, world)
        session.commit()
        package = _make_package(session, world)
        assert world.items["plain"] in _packaged_items(session, package)


def test_revoke_then_remove_the_item_then_check_then_package(
    state: PortalState, world: World
) -> None:
    with state.sessions() as session:
        rfa = make.stored(session, Rfa, world.rfa_id)
        assert rfa.status == "transmitted"
        remove_candidate(session, rfa, world.items["plain"], by=user(session, world.officer_id))
        session.commit()
        assert world.items["plain"] not in _flags(session, world)
        with pytest.raises(PackageRefused, match="candidate items changed"):
            _make_package(session, world)  # the decision still lists the removed item
        session.rollback()
        recheck(session, world)
        session.commit()
        package = _make_package(session, world)
        shared = _packaged_items(session, package)
        assert world.items["plain"] not in shared and world.items["redact"] in shared


@pytest.mark.parametrize("status", ["declined", "closed", "withdrawn"])
def test_candidates_of_a_finished_request_cannot_be_removed(
    state: PortalState, world: World, status: str
) -> None:
    with state.sessions() as session:
        rfa = make.stored(session, Rfa, world.rfa_id)
        rfa.status = status
        session.commit()
        with pytest.raises(TriageError, match="can no longer change"):
            remove_candidate(session, rfa, world.items["plain"], by=user(session, world.officer_id))
        session.rollback()
        assert world.items["plain"] in _flags(session, world)


def test_the_assigned_officer_and_the_releasing_officer_are_told_at_once(
    state: PortalState,
) -> None:
    with state.sessions() as session:
        built = build_world(session, state.blobs, state.sealer)
        assigned = make_user(session, "legal_officer")
        rfa = make.stored(session, Rfa, built.rfa_id)
        rfa.assigned_to_id = assigned.user_id
        package = _make_package(session, built)
        assembled(session, package)
        release_package(session, package, by=user(session, built.second_id))
        session.commit()
        provider_user = make_user(session, "provider", provider_code="PRV-T")
        revoke_consent(
            session,
            Scope(built.provider_id, built.authority_id, built.items["plain"]),
            reason="Threats against the witness (fictional).",
            by=user(session, provider_user.user_id),
        )
        session.commit()
        told = session.execute(
            select(Notification.user_id, Notification.subject, Notification.link).where(
                Notification.subject.startswith("Consent withdrawn")
            )
        ).all()
        assert {who for who, _, _ in told} == {assigned.user_id, built.second_id}
        for _, subject, link in told:
            assert (
                subject
                == f"Consent withdrawn for material of request {built.rfa_code}: check it again"
            )
            assert link == f"/triage/{built.rfa_code}"
            assert "Threats" not in subject and "ITM-" not in subject
