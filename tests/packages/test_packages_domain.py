"""portal.packages.lifecycle on both databases: a package is made from the latest decision only when
everything holds, with the right renditions and consent events; four-eyes release, exactly
once under concurrency; retry; clearing as-is.

:func:`build_world` (also used by tests/packages/test_package_pages.py and
tests/packages/test_jobs.py) makes a real decision with
:func:`portal.eligibility.decisions.run_check`: an authority with current assessments and a verified
example key, a provider, four items with real blobs (shared, shared redacted, an unredactable video
cleared as-is, a declined one) and an approved request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from portal import audit
from portal.accounts.models import User
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
from portal.registry.models import (
    Assessment,
    Authority,
    Item,
    Provider,
    RecipientKey,
    RedactionMark,
)
from portal.rfa.models import Rfa, RfaItem
from portal.state import PortalState, build_state
from portal.storage import FileBlobStore
from tests.support.auth import Credentials, make_user

REPO = Path(__file__).resolve().parents[2]
KEYS = REPO / "keys_example"
FINGERPRINTS: dict[str, str] = json.loads((KEYS / "fingerprints.json").read_text("utf-8"))
AUTHORITY = "NWU-NL"
REDACTABLE = load_policy(REPO / "policies").redactable_media_types
SECRET_TERM = "Amira Solberg"


@dataclass
class World:
    authority_id: int
    provider_id: int
    rfa_id: int
    rfa_code: str
    items: dict[str, int]  # "plain" | "redact" | "video" | "declined" -> item id
    key_id: int
    officer_id: int  # makes packages
    second_id: int  # releases them
    officer: Credentials
    second: Credentials


def _blob(blobs: FileBlobStore, data: bytes) -> tuple[str, int]:
    info = blobs.put_bytes(data)
    return info.sha256, info.size


def build_world(
    session: Session,
    blobs: FileBlobStore,
    *,
    verified_key: bool = True,
    rfa_status: str = "approved",
) -> World:
    """The world described in the module docstring, committed; the decision is made now."""
    now = utcnow()
    authority = Authority(code=AUTHORITY, name="Northland War Crimes Unit", kind="war_crimes_unit",
                          country="NL")  # fmt: skip
    provider = Provider(code="PRV-T", name="Provider Teal", kind="ngo", public_name="Teal NGO")
    session.add_all([authority, provider])
    session.flush()
    for criterion in ("fair_trial", "death_penalty", "witness_protection"):
        session.add(
            Assessment(
                code=f"A-{criterion}",
                authority_id=authority.id,
                criterion=criterion,
                finding="satisfied",
                basis="Fictional basis.",
                assessed_at=now - timedelta(days=30),
                valid_until=now + timedelta(days=300),
                assessed_by="Officer Ilse Marwick",
            )
        )
    officer = make_user(session, "legal_officer")
    second = make_user(session, "legal_officer")
    armored = (KEYS / f"{AUTHORITY}.pub.asc").read_text("ascii")
    key = RecipientKey(
        authority_id=authority.id,
        fingerprint=FINGERPRINTS[AUTHORITY],
        armored=armored,
        algorithm="ed25519",
        uid="Northland War Crimes Unit (DEMO ONLY) <nwu@authority.example>",
        **(
            {
                "verified_by": "Duty officer J. Maas",
                "verified_at": now - timedelta(days=5),
                "verification_method": "Phone call to a number known independently of the key",
                "verified_by_id": officer.user_id,
            }
            if verified_key
            else {}
        ),
    )
    session.add(key)
    contents = {
        "plain": ("text/plain", "s1.txt", b"The convoy left at dawn.\n"),
        "redact": ("text/plain", "s2.txt", f"{SECRET_TERM} saw the convoy.\n".encode()),
        "video": ("video/mp4", "clip.mp4", b"\x00\x00\x00\x18ftypmp42 fictional video bytes"),
        "declined": ("text/plain", "s4.txt", b"Declined statement.\n"),
    }
    items: dict[str, Item] = {}
    for n, (name, (media_type, filename, data)) in enumerate(contents.items(), start=1):
        digest, size = _blob(blobs, data)
        items[name] = Item(
            code=f"ITM-T{n:04d}",
            provider_id=provider.id,
            kind="video" if media_type == "video/mp4" else "witness_statement",
            title=f"Item {name}",
            media_type=media_type,
            original_filename=filename,
            size_bytes=size,
            sha256=digest,
            sensitivity="high",
            tags=[],
            cleared_as_is=name == "video",
        )
    session.add_all(items.values())
    session.flush()
    session.add(
        RedactionMark(
            code="M-1",
            item_id=items["redact"].id,
            kind="term",
            term=SECRET_TERM,
            reason="Identifies a witness",
            applies="always",
            review="confirmed",
        )
    )
    earlier = now - timedelta(days=20)
    for n, name in enumerate(("plain", "redact", "video", "declined"), start=1):
        session.add(
            Consent(
                code=f"CNS-2026-{n:06d}",
                provider_id=provider.id,
                item_id=items[name].id,
                authority_id=authority.id,
                event="decline" if name == "declined" else "grant",
                reason="Not for this authority." if name == "declined" else None,
                recorded_at=earlier,
            )
        )
    rfa = Rfa(
        code="RFA-2026-0042",
        authority_id=authority.id,
        status=rfa_status,
        their_reference="NWU-REF-7",
        proceedings_type="investigation",
        offences=["War crime of torture"],
        period_from=date(2023, 6, 1),
        period_to=date(2023, 12, 31),
        submitted_at=now - timedelta(days=9),
    )
    session.add(rfa)
    session.flush()
    session.add_all(RfaItem(rfa_id=rfa.id, item_id=item.id) for item in items.values())
    session.flush()
    officer_user = session.get(User, officer.user_id)
    assert officer_user is not None
    policy = load_policy(REPO / "policies")
    run_check(
        session,
        rfa,
        policy,
        requested_by=officer_user,
        actor=audit.actor_label(officer_user),
        now=now - timedelta(minutes=1),
    )
    session.commit()
    return World(
        authority_id=authority.id,
        provider_id=provider.id,
        rfa_id=rfa.id,
        rfa_code=rfa.code,
        items={name: item.id for name, item in items.items()},
        key_id=key.id,
        officer_id=officer.user_id,
        second_id=second.user_id,
        officer=officer,
        second=second,
    )


def user(session: Session, user_id: int) -> User:
    found = session.get(User, user_id)
    assert found is not None
    return found


def assembled(session: Session, package: Package) -> Package:
    """Mark a package assembled as the assembler would (the release tests need one)."""
    package.status = "assembled"
    package.stage = "assembled"
    package.progress = 100
    package.file_sha256 = "a" * 64
    package.file_size = 1234
    package.signature_sha256 = "b" * 64
    package.signer_fingerprint = FINGERPRINTS["mechanism-signing"]
    package.leak_check = {"ok": True, "hits": []}
    session.commit()
    return package


@pytest.fixture
def state(settings: Settings, engine: object) -> Iterator[PortalState]:
    built = build_state(settings, engine=engine)  # type: ignore[arg-type]
    yield built


@pytest.fixture
def world(state: PortalState) -> World:
    with state.sessions() as session:
        return build_world(session, state.blobs)


def _rfa(session: Session, world: World) -> Rfa:
    rfa = session.get(Rfa, world.rfa_id)
    assert rfa is not None
    return rfa


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
        world = build_world(session, state.blobs)
        session.execute(
            Rfa.__table__.insert().values(  # a second request, never checked
                code="RFA-2026-0043",
                authority_id=world.authority_id,
                status="approved",
                their_reference="X",
                proceedings_type="investigation",
                offences=[],
                urgency="normal",
                urgency_justification="",
                legal_basis="",
                persons_concerned="",
                summary_of_facts="",
                assistance_sought="",
                places="",
                confidentiality="",
                created_at=utcnow(),
                updated_at=utcnow(),
                submitted_at=utcnow(),
                version=1,
            )
        )
        other = session.scalars(select(Rfa).where(Rfa.code == "RFA-2026-0043")).one()
        with pytest.raises(PackageRefused, match="no eligibility decision"):
            create_package(session, other, REDACTABLE, by=user(session, world.officer_id))


def test_refused_while_the_request_is_not_decided(state: PortalState) -> None:
    with state.sessions() as session:
        world = build_world(session, state.blobs, rfa_status="in_review")
    _refused(state, world, "packages are made only once it is approved")


def test_refused_when_an_item_needs_a_recheck(state: PortalState, world: World) -> None:
    with state.sessions() as session:
        row = session.scalars(select(RfaItem).where(RfaItem.item_id == world.items["plain"])).one()
        row.needs_recheck = True
        session.commit()
    _refused(state, world, "flagged for a re-check")


def test_refused_when_consent_changed_after_the_decision(state: PortalState, world: World) -> None:
    with state.sessions() as session:
        session.add(
            Consent(
                code="CNS-2026-000099",
                provider_id=world.provider_id,
                item_id=world.items["declined"],
                authority_id=world.authority_id,
                event="grant",
                recorded_at=utcnow(),
            )
        )
        session.commit()
    _refused(state, world, "Consent changed after the latest decision")


def test_refused_without_a_usable_key(state: PortalState) -> None:
    with state.sessions() as session:
        world = build_world(session, state.blobs, verified_key=False)
    _refused(state, world, "no usable key")


def test_refused_when_the_decision_needs_review(state: PortalState, world: World) -> None:
    with state.sessions() as session:
        mark = RedactionMark(
            code="M-2",
            item_id=world.items["plain"],
            kind="term",
            term="convoy",
            reason="Pending",
            applies="always",
            review="pending",
        )
        session.add(mark)
        session.flush()
        officer = user(session, world.officer_id)
        run_check(
            session, _rfa(session, world), load_policy(REPO / "policies"),
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
