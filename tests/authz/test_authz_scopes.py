"""Ownership scoping: each role sees only its own authority's or provider's rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.authz import permissions as authz
from portal.consent.models import Consent
from portal.registry.models import Assessment, Authority, Item, Provider
from portal.rfa.models import Rfa

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass
class World:
    authorities: tuple[Authority, Authority]
    providers: tuple[Provider, Provider]
    items: tuple[Item, Item]
    consents: tuple[Consent, Consent]
    rfas: tuple[Rfa, Rfa]
    users: dict[str, User]


def _user(session: Session, email: str, role: str, **org: int | None) -> User:
    user = User(
        email=email,
        display_name=email,
        role=role,
        failed_logins=0,
        session_epoch=0,
        is_active=True,
        **org,
    )
    session.add(user)
    return user


@pytest.fixture
def world(session: Session) -> World:
    a1 = Authority(code="AUTH-A", name="A", kind="court", country="XA")
    a2 = Authority(code="AUTH-B", name="B", kind="court", country="XB")
    p1 = Provider(code="PRV-A", name="PA", kind="ngo", public_name="PA")
    p2 = Provider(code="PRV-B", name="PB", kind="ngo", public_name="PB")
    session.add_all([a1, a2, p1, p2])
    session.flush()
    items = tuple(
        Item(
            code=f"ITM-{n}",
            provider_id=p.id,
            kind="document",
            title="t",
            media_type="text/plain",
            original_filename="a.txt",
            size_bytes=1,
            sha256=f"{n}" * 64,
            sensitivity="low",
            tags=[],
        )
        for n, p in ((1, p1), (2, p2))
    )
    session.add_all(items)
    session.flush()
    consents = tuple(
        Consent(
            code=f"CNS-{n}",
            provider_id=item.provider_id,
            item_id=item.id,
            authority_id=a.id,
            event="grant",
            recorded_at=NOW,
        )
        for n, item, a in ((1, items[0], a1), (2, items[1], a2))
    )
    rfas = tuple(
        Rfa(
            code=f"RFA-{n}",
            authority_id=a.id,
            status="submitted",
            their_reference="r",
            proceedings_type="investigation",
            submitted_at=NOW,
        )
        for n, a in ((1, a1), (2, a2))
    )
    session.add_all([*consents, *rfas])
    session.add(
        Assessment(
            code="ASM-1",
            authority_id=a1.id,
            criterion="fair_trial",
            finding="satisfied",
            basis="b",
            assessed_at=NOW,
            assessed_by="x",
        )
    )
    users = {
        "admin": _user(session, "admin@x.example", "admin"),
        "legal_officer": _user(session, "lo@x.example", "legal_officer"),
        "requester": _user(session, "rq@x.example", "requester", authority_id=a1.id),
        "recipient": _user(session, "rc@x.example", "recipient", authority_id=a1.id),
        "provider": _user(session, "pv@x.example", "provider", provider_id=p1.id),
    }
    session.flush()
    return World((a1, a2), (p1, p2), items, consents, rfas, users)  # type: ignore[arg-type]


def _codes(session: Session, model: type, user: User) -> set[str]:
    rows = session.scalars(authz.scoped(model, user)).all()
    return {getattr(row, "code", None) or getattr(row, "email", None) for row in rows}


EXPECTED = {
    # model: role -> codes visible
    Authority: {
        "admin": {"AUTH-A", "AUTH-B"},
        "legal_officer": {"AUTH-A", "AUTH-B"},
        "requester": {"AUTH-A"},
        "recipient": {"AUTH-A"},
        "provider": set(),
    },
    Provider: {
        "admin": {"PRV-A", "PRV-B"},
        "legal_officer": {"PRV-A", "PRV-B"},
        "requester": set(),
        "recipient": set(),
        "provider": {"PRV-A"},
    },
    Item: {
        "admin": {"ITM-1", "ITM-2"},
        "legal_officer": {"ITM-1", "ITM-2"},
        "requester": set(),
        "recipient": set(),
        "provider": {"ITM-1"},
    },
    Consent: {
        "admin": {"CNS-1", "CNS-2"},
        "legal_officer": {"CNS-1", "CNS-2"},
        "requester": set(),
        "recipient": set(),
        "provider": {"CNS-1"},
    },
    Rfa: {
        "admin": {"RFA-1", "RFA-2"},
        "legal_officer": {"RFA-1", "RFA-2"},
        "requester": {"RFA-1"},
        "recipient": {"RFA-1"},
        "provider": set(),
    },
    Assessment: {
        "admin": {"ASM-1"},
        "legal_officer": {"ASM-1"},
        "requester": set(),
        "recipient": set(),
        "provider": set(),
    },
}


@pytest.mark.parametrize("model", list(EXPECTED), ids=lambda m: m.__name__)
def test_each_role_sees_only_its_own(session: Session, world: World, model: type) -> None:
    for role, expected in EXPECTED[model].items():
        assert _codes(session, model, world.users[role]) == expected, (model.__name__, role)


def test_users_see_themselves_and_admins_see_everyone(session: Session, world: World) -> None:
    everyone = {u.email for u in world.users.values()}
    assert _codes(session, User, world.users["admin"]) == everyone
    for role in ("legal_officer", "requester", "recipient", "provider"):
        assert _codes(session, User, world.users[role]) == {world.users[role].email}


def test_audit_log_is_admin_only(session: Session, world: World) -> None:
    from portal import audit

    audit.record(session, "system", "test.event", "x")
    assert len(session.scalars(authz.scoped(AuditEvent, world.users["admin"])).all()) == 1
    for role in ("legal_officer", "requester", "recipient", "provider"):
        assert session.scalars(authz.scoped(AuditEvent, world.users[role])).all() == []


def test_another_tenants_object_is_a_404(session: Session, world: World) -> None:
    requester = world.users["requester"]
    own = authz.get_scoped_or_404(session, Rfa, requester, code="RFA-1")
    assert own.code == "RFA-1"
    with pytest.raises(NotFound):
        authz.get_scoped_or_404(session, Rfa, requester, code="RFA-2")
    with pytest.raises(NotFound):
        authz.get_scoped_or_404(session, Rfa, requester, code="RFA-404")
    with pytest.raises(NotFound):
        authz.get_scoped_or_404(session, Item, world.users["provider"], code="ITM-2")


def test_user_without_organisation_sees_nothing_scoped(session: Session, world: World) -> None:
    orphan = User(email="o@x.example", display_name="o", role="requester", authority_id=None)
    assert session.scalars(authz.scoped(Rfa, orphan)).all() == []


def test_every_model_with_tenant_data_has_a_scope() -> None:
    from portal.models import Base

    tenant_columns = {"authority_id", "provider_id"}
    unscoped = {
        mapper.class_.__name__
        for mapper in Base.registry.mappers
        if tenant_columns & set(mapper.columns.keys()) and mapper.class_ not in authz.SCOPES
    }
    assert unscoped == set()


def test_declarations() -> None:
    with pytest.raises(KeyError):
        authz.requires("no.such.action")
    with pytest.raises(ValueError):
        authz.public("  ")
    assert authz.allowed("admin", "admin.users.view")
    assert not authz.allowed("requester", "admin.users.view")
    assert not authz.allowed(None, "dashboard.view")
    assert not authz.allowed("admin", "no.such.action")
