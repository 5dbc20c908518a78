"""portal.packages.lifecycle on both databases: a package is made from the latest decision only when
everything holds, with the right renditions and consent events; four-eyes release, exactly
once under concurrency; retry; clearing as-is.

The world is tests/support/package_world.py's :func:`build_world`: a real decision on an
approved request for four items (shared, shared redacted, a video cleared as-is, a declined one).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from portal import audit
from portal.audit import AuditEvent
from portal.config import Settings
from portal.consent.models import Consent
from portal.db import utcnow
from portal.eligibility.decisions import run_check
from portal.eligibility.policy import load_policy
from portal.notifications.models import Notification
from portal.packages.lifecycle import (
    STALLED_AFTER,
    PackageRefused,
    clear_as_is,
    create_package,
    fail_package,
    plan_package,
    release_package,
    retry_package,
    stalled,
)
from portal.packages.models import Package, PackageItem
from portal.registry.models import Authority, Item, Provider
from portal.rfa.models import Rfa, RfaItem
from portal.state import PortalState, build_state
from tests.support import factories as make
from tests.support.auth import make_user
from tests.support.package_world import (
    AUTHORITY,
    POLICIES,
    REDACTABLE,
    World,
    assembled,
    build_world,
    user,
)


@pytest.fixture
def state(settings: Settings, engine: object) -> Iterator[PortalState]:
    built = build_state(settings, engine=engine)  # type: ignore[arg-type]
    yield built


@pytest.fixture
def world(state: PortalState) -> World:
    with state.sessions() as session:
        return build_world(session, state.blobs, state.sealer)


def _rfa(session: Session, world: World) -> Rfa:
    return make.stored(session, Rfa, world.rfa_id)


# --- planning and creating -----------------------------------------------------------------


def test_a_package_holds_the_shared_items_with_their_renditions_and_consents(
    state: PortalState, world: World
) -> None:
    with state.sessions() as session:
        package = create_package(
            session, _rfa(session, world), REDACTABLE, by=user(session, world.officer_id)
        )
        session.commit()
        assert package.code.startswith(f"PKG-{utcnow().year}-")
        assert package.status == "queued"
        assert package.assembled_by_id == world.officer_id
        rows = {
            pi.item_id: pi
            for pi in session.scalars(
                select(PackageItem).where(PackageItem.package_id == package.id)
            )
        }
        assert set(rows) == {world.items["plain"], world.items["redact"], world.items["video"]}
        assert rows[world.items["redact"]].rendition == "redacted"
        assert rows[world.items["plain"]].rendition == "as_is"
        assert rows[world.items["video"]].rendition == "as_is"
        consents = dict(session.execute(select(Consent.item_id, Consent.id)).all())
        for item_id, row in rows.items():
            assert row.consent_id == consents[item_id]
            item = session.get(Item, item_id)
            assert item is not None
            assert row.source_sha256 == item.sha256
            assert row.path.startswith(f"data/items/{item.code}/")
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "package.create")
        ).one()
        assert event.target == f"package:{package.code}"


def test_codes_count_up(state: PortalState, world: World) -> None:
    with state.sessions() as session:
        first = create_package(
            session, _rfa(session, world), REDACTABLE, by=user(session, world.officer_id)
        )
        first.status = "failed"
        session.flush()
        second = create_package(
            session, _rfa(session, world), REDACTABLE, by=user(session, world.officer_id)
        )
        session.commit()
    assert int(second.code[-4:]) == int(first.code[-4:]) + 1


def _refused(state: PortalState, world: World, match: str) -> None:
    with state.sessions() as session:
        before = session.scalar(select(Package.id).limit(1))
        with pytest.raises(PackageRefused, match=match):
            create_package(
                session, _rfa(session, world), REDACTABLE, by=user(session, world.officer_id)
            )
        session.rollback()
        assert before is None
        assert session.scalar(select(Package.id).limit(1)) is None


def test_refused_without_a_decision(state: PortalState) -> None:
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer)
        authority = make.stored(session, Authority, world.authority_id)
        other = make.rfa(session, authority, "RFA-2026-0043", status="approved")  # never checked
        with pytest.raises(PackageRefused, match="no eligibility decision"):
            create_package(session, other, REDACTABLE, by=user(session, world.officer_id))


def test_refused_while_the_request_is_not_decided(state: PortalState) -> None:
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer, rfa_status="in_review")
    _refused(state, world, "packages are made only once it is approved")


def test_refused_when_an_item_needs_a_recheck(state: PortalState, world: World) -> None:
    with state.sessions() as session:
        row = session.scalars(select(RfaItem).where(RfaItem.item_id == world.items["plain"])).one()
        row.needs_recheck = True
        session.commit()
    _refused(state, world, "flagged for a re-check")


def test_refused_when_consent_changed_after_the_decision(state: PortalState, world: World) -> None:
    with state.sessions() as session:
        make.consent(
            session,
            make.stored(session, Provider, world.provider_id),
            make.stored(session, Authority, world.authority_id),
            item=make.stored(session, Item, world.items["declined"]),
            code="CNS-2026-000099",
        )
        session.commit()
    _refused(state, world, "Consent changed after the latest decision")


def test_refused_without_a_usable_key(state: PortalState) -> None:
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer, verified_key=False)
    _refused(state, world, "no usable key")


def test_refused_when_the_decision_needs_review(state: PortalState, world: World) -> None:
    with state.sessions() as session:
        plain = make.stored(session, Item, world.items["plain"])
        make.redaction_mark(session, plain, code="M-2", term="convoy", reason="Pending",
                            review="pending")  # fmt: skip
        officer = user(session, world.officer_id)
        run_check(
            session, _rfa(session, world), load_policy(POLICIES),
            requested_by=officer, actor=audit.actor_label(officer),
        )  # fmt: skip
        session.commit()
    _refused(state, world, "needs review")


def test_refused_while_another_package_is_unfinished(state: PortalState, world: World) -> None:
    with state.sessions() as session:
        first = create_package(
            session, _rfa(session, world), REDACTABLE, by=user(session, world.officer_id)
        )
        session.commit()
        with pytest.raises(PackageRefused, match=f"{first.code} for this request is not finished"):
            create_package(
                session, _rfa(session, world), REDACTABLE, by=user(session, world.second_id)
            )


def test_only_legal_officers_make_packages(state: PortalState, world: World) -> None:
    with state.sessions() as session:
        admin = make_user(session, "admin")
        with pytest.raises(PackageRefused, match="legal officer"):
            create_package(
                session, _rfa(session, world), REDACTABLE, by=user(session, admin.user_id)
            )


def test_an_uncleared_video_is_refused_and_clearing_is_audited(
    state: PortalState, world: World
) -> None:
    with state.sessions() as session:
        video = session.get(Item, world.items["video"])
        assert video is not None
        video.cleared_as_is = False  # as if the decision had it cleared but it was not
        session.commit()
        plan = plan_package(session, _rfa(session, world), REDACTABLE)
        assert any("has not been cleared as-is" in p for p in plan.problems)
        officer = user(session, world.officer_id)
        clear_as_is(session, video, REDACTABLE, by=officer)
        session.commit()
        assert video.cleared_as_is and video.cleared_by_id == officer.id
        assert video.cleared_at is not None
        with pytest.raises(PackageRefused, match="already been cleared"):
            clear_as_is(session, video, REDACTABLE, by=officer)
        text = session.get(Item, world.items["plain"])
        assert text is not None
        with pytest.raises(PackageRefused, match="redacts itself"):
            clear_as_is(session, text, REDACTABLE, by=officer)
        actions = session.scalars(select(AuditEvent.action)).all()
        assert actions.count("item.clear_as_is") == 1


# --- release -------------------------------------------------------------------------------


def _made(state: PortalState, world: World) -> str:
    with state.sessions() as session:
        package = create_package(
            session, _rfa(session, world), REDACTABLE, by=user(session, world.officer_id)
        )
        session.commit()
        assembled(session, package)
        return package.code


def _package(session: Session, code: str) -> Package:
    return session.scalars(select(Package).where(Package.code == code)).one()


def test_the_assembler_cannot_release(state: PortalState, world: World) -> None:
    code = _made(state, world)
    with state.sessions() as session:
        with pytest.raises(PackageRefused, match="Four-eyes"):
            release_package(session, _package(session, code), by=user(session, world.officer_id))
        session.rollback()
        assert _package(session, code).status == "assembled"


def test_a_second_officer_releases(state: PortalState, world: World) -> None:
    code = _made(state, world)
    with state.sessions() as session:
        recipient = make_user(session, "recipient", authority_code=AUTHORITY)
        package = release_package(
            session,
            _package(session, code),
            by=user(session, world.second_id),
            expires_in_days=10,
            download_limit=3,
        )
        session.commit()
        assert package.status == "released"
        assert package.released_by_id == world.second_id
        assert package.download_limit == 3
        assert package.released_at is not None and package.expires_at is not None
        assert package.expires_at - package.released_at == timedelta(days=10)
        assert _rfa(session, world).status == "transmitted"
        notes = session.scalars(
            select(Notification).where(Notification.user_id == recipient.user_id)
        ).all()
        assert [n.subject for n in notes] == [f"Package {code} is ready to download"]
        assert (
            session.scalars(select(AuditEvent).where(AuditEvent.action == "package.release"))
            .one()
            .target
            == f"package:{code}"
        )
        with pytest.raises(PackageRefused, match="already been released"):
            release_package(session, package, by=user(session, world.second_id))


@pytest.mark.parametrize("status", ["queued", "assembling", "blocked", "failed", "withdrawn"])
def test_illegal_releases_change_nothing(state: PortalState, world: World, status: str) -> None:
    code = _made(state, world)
    with state.sessions() as session:
        package = _package(session, code)
        package.status = status
        session.commit()
        with pytest.raises(PackageRefused, match="cannot be released"):
            release_package(session, package, by=user(session, world.second_id))
        session.rollback()
        assert _package(session, code).status == status
        assert _rfa(session, world).status == "approved"


@pytest.mark.parametrize(("days", "limit"), [(0, None), (366, None), (30, 0), (30, 1001)])
def test_release_limits_are_checked(
    state: PortalState, world: World, days: int, limit: int | None
) -> None:
    code = _made(state, world)
    with state.sessions() as session, pytest.raises(PackageRefused):
        release_package(
            session, _package(session, code), by=user(session, world.second_id),
            expires_in_days=days, download_limit=limit,
        )  # fmt: skip


def test_two_officers_releasing_at_once_release_once(state: PortalState, world: World) -> None:
    code = _made(state, world)
    with state.sessions() as session:
        third = make_user(session, "legal_officer")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def release_as(user_id: int, sessions: sessionmaker[Session]) -> None:
        with sessions() as session:
            package = _package(session, code)
            officer = user(session, user_id)
            barrier.wait()
            try:
                release_package(session, package, by=officer)
                session.commit()
                outcomes.append("released")
            except PackageRefused as exc:
                session.rollback()
                outcomes.append(str(exc))

    threads = [
        threading.Thread(target=release_as, args=(uid, state.sessions))
        for uid in (world.second_id, third.user_id)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes)[-1] == "released"
    assert outcomes.count("released") == 1
    assert any("already been released" in o for o in outcomes)
    with state.sessions() as session:
        releases = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "package.release")
        ).all()
        assert len(releases) == 1
        assert _rfa(session, world).status == "transmitted"


# --- retry and failure ---------------------------------------------------------------------


def test_retry_requeues_a_failed_package_only(state: PortalState, world: World) -> None:
    with state.sessions() as session:
        package = create_package(
            session, _rfa(session, world), REDACTABLE, by=user(session, world.officer_id)
        )
        session.commit()
        officer = user(session, world.officer_id)
        with pytest.raises(PackageRefused, match="Only a failed or stalled package"):
            retry_package(session, package, by=officer)
        assert fail_package(session, package.id, "No signing key is configured.")
        session.commit()
        session.refresh(package)
        assert package.status == "failed"
        assert package.failure_reason == "No signing key is configured."
        assert not fail_package(session, package.id, "again")  # only queued/assembling
        retry_package(session, package, by=officer)
        session.commit()
        assert package.status == "queued" and package.failure_reason is None


def test_a_stalled_assembly_can_be_queued_again_and_a_live_one_cannot(
    state: PortalState, world: World
) -> None:
    """A package whose job was lost (no stage recorded for STALLED_AFTER) may be queued again;
    one whose assembly still reports progress may not, even a minute before the limit."""
    with state.sessions() as session:
        package = create_package(
            session, _rfa(session, world), REDACTABLE, by=user(session, world.officer_id)
        )
        session.commit()
        officer = user(session, world.officer_id)
        lost_at = utcnow()
        session.execute(
            update(Package)
            .where(Package.id == package.id)
            .values(status="assembling", stage="rendering", updated_at=lost_at)
        )
        session.commit()
        session.refresh(package)
        almost = lost_at + STALLED_AFTER - timedelta(minutes=1)
        assert not stalled(package, now=almost)
        with pytest.raises(PackageRefused, match="still making progress"):
            retry_package(session, package, by=officer, now=almost)
        session.rollback()
        later = lost_at + STALLED_AFTER
        assert stalled(package, now=later)
        version = package.version
        retry_package(session, package, by=officer, now=later)
        session.commit()
        assert (package.status, package.stage, package.version) == ("queued", "queued", version + 1)
        retried = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "package.retry")
        ).one()
        assert json.loads(retried.details) == {"was": "assembling"}
