"""Every step that waits on someone notifies them, and acting on it marks the notice read for
everyone it went to (issue 22): release by a second officer, redaction confirmation, the
provider's consent answer, the requester's clarification reply and the officer's re-check.
Over real HTTP where the step is a page (on both databases); the package is really assembled."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.consent.models import ConsentRequest
from portal.notifications.models import Notification
from portal.packages.models import Package
from portal.redaction.mark_review import confirm_mark, propose_term
from portal.registry.models import Authority, Item, Provider, RedactionMark
from portal.state import portal_state
from tests.support import factories as make
from tests.support.auth import Credentials, csrf_token, login, make_user
from tests.support.package_world import World, build_world

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client


def _client(app: Flask, creds: Credentials) -> FlaskClient:
    client = app.test_client()
    login(client, creds)
    return client


def _notes(session: Session, user_id: int, topic_prefix: str) -> list[Notification]:
    session.expire_all()
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.user_id == user_id, Notification.topic.startswith(topic_prefix))
            .order_by(Notification.id)
        )
    )


def _unread(notes: list[Notification]) -> int:
    return sum(1 for n in notes if n.read_at is None)


@pytest.fixture
def portal(make_app: Callable[..., Flask]) -> Flask:
    from pathlib import Path

    keys = Path(__file__).resolve().parents[2] / "keys_example"
    return make_app(
        signing_key_file=keys / "mechanism-signing.sec.asc",
        signing_passphrase_file=keys / "mechanism-signing.passphrase",
        extra={"PORTAL_JOBS_IMMEDIATE": True},
    )


@pytest.fixture
def world(portal: Flask) -> World:
    state = portal_state(portal)
    with state.sessions() as session:
        return build_world(session, state.blobs, state.sealer)


def test_a_package_assembled_tells_the_other_officers_and_release_reads_it_for_all(
    portal: Flask, world: World
) -> None:
    state = portal_state(portal)
    with state.sessions() as session:
        third = make_user(session, "legal_officer")
    maker = _client(portal, world.officer)
    page = maker.get(f"/packages/requests/{world.rfa_code}")
    made = maker.post(
        f"/packages/requests/{world.rfa_code}",
        data={"csrf_token": csrf_token(page), "reviewed": "yes"},
    )
    assert made.status_code == 303
    with state.sessions() as session:
        package = session.scalars(select(Package)).one()
        assert package.status == "assembled", package.failure_reason  # the real job ran
        topic = f"release:{package.code}"
        assert _notes(session, world.officer_id, topic) == []  # never the assembler
        for waiting in (world.second_id, third.user_id):
            (note,) = _notes(session, waiting, topic)
            assert note.read_at is None and note.link == f"/packages/{package.code}"
            assert "awaits release" in note.subject
    second = _client(portal, world.second)
    dashboard = second.get("/").get_data(as_text=True)
    assert package.code in dashboard
    detail = second.get(f"/packages/{package.code}")
    released = second.post(
        f"/packages/{package.code}/release",
        data={"csrf_token": csrf_token(detail), "reviewed": "yes", "expires_in_days": "7"},
    )
    assert released.status_code == 303
    with state.sessions() as session:
        for told in (world.second_id, third.user_id):  # read for everyone it went to
            assert _unread(_notes(session, told, topic)) == 0


def test_a_revocation_that_blocks_the_package_reads_its_release_notices(
    portal: Flask, world: World
) -> None:
    """Nobody waits on a release any more once a revocation blocks the package."""
    from portal.consent.models import Consent
    from portal.consent.revocation import revoke_consent

    state = portal_state(portal)
    maker = _client(portal, world.officer)
    page = maker.get(f"/packages/requests/{world.rfa_code}")
    made = maker.post(
        f"/packages/requests/{world.rfa_code}",
        data={"csrf_token": csrf_token(page), "reviewed": "yes"},
    )
    assert made.status_code == 303
    with state.sessions() as session:
        package = session.scalars(select(Package)).one()
        assert package.status == "assembled", package.failure_reason
        topic = f"release:{package.code}"
        assert _unread(_notes(session, world.second_id, topic)) == 1
        grant = session.scalars(
            select(Consent).where(
                Consent.item_id == world.items["redact"], Consent.event == "grant"
            )
        ).one()
        provider_user = make.user(
            session, "provider", provider=session.get(Provider, world.provider_id)
        )
        revocation = revoke_consent(
            session, grant, reason="The witness withdrew.", by=provider_user
        )
        session.commit()
        assert revocation.blocked
        session.expire_all()
        assert session.get(Package, package.id).status in ("blocked", "withdrawn")
        assert _unread(_notes(session, world.second_id, topic)) == 0


def test_redaction_marks_wait_on_another_officer_once_per_item(portal: Flask, world: World) -> None:
    state = portal_state(portal)
    with state.sessions() as session:
        item = session.get(Item, world.items["plain"])
        officer = session.get(User, world.officer_id)
        assert item is not None and officer is not None
        for term in ("Fictional Name One", "Fictional Name Two"):
            propose_term(session, state.sealer, item, term, "Identifies a source", by=officer)
        item_id, item_code = item.id, item.code
        session.commit()
        topic = f"marks:{item_code}"
        (note,) = _notes(session, world.second_id, topic)  # one per item, not per mark
        assert note.link == f"/review/{world.rfa_code}/items/{item_code}"
        assert _notes(session, world.officer_id, topic) == []  # not the proposer
        assert "Fictional Name" not in note.subject
    page = _client(portal, world.second).get("/").get_data(as_text=True)
    assert item_code in page and "Redaction marks to confirm (1)" in page
    with state.sessions() as session:
        second = session.get(User, world.second_id)
        item = session.get(Item, item_id)
        assert second is not None and item is not None
        marks = session.scalars(
            select(RedactionMark).where(RedactionMark.item_id == item.id).order_by(RedactionMark.id)
        ).all()
        confirm_mark(session, marks[0], item, version=marks[0].version, by=second)
        session.commit()
        assert _unread(_notes(session, world.second_id, topic)) == 1  # one mark still waits
        confirm_mark(session, marks[1], item, version=marks[1].version, by=second)
        session.commit()
        assert _unread(_notes(session, world.second_id, topic)) == 0


@pytest.fixture
def desk(db: Session) -> dict[str, Credentials]:
    return {
        "officer": make_user(db, "legal_officer"),
        "requester": make_user(db, "requester", authority_code="AUTH-W"),
        "provider": make_user(db, "provider", provider_code="PRV-W"),
    }


def test_a_consent_request_is_read_once_the_provider_answers_it(
    app: Flask, db: Session, desk: dict[str, Credentials]
) -> None:
    authority = db.scalars(select(Authority).where(Authority.code == "AUTH-W")).one()
    provider = db.scalars(select(Provider).where(Provider.code == "PRV-W")).one()
    items = [make.item(db, provider, f"ITM-W-{n}") for n in (1, 2)]
    rfa = make.rfa(db, authority, "RFA-2026-0801", items=items)
    db.commit()
    officer = _client(app, desk["officer"])
    page = officer.get(f"/triage/{rfa.code}")
    asked = officer.post(
        f"/triage/{rfa.code}/consent-requests", data={"csrf_token": csrf_token(page)}
    )
    assert asked.status_code == 303
    consent_request = db.scalars(select(ConsentRequest)).one()
    topic = f"consent:{consent_request.id}"
    assert _unread(_notes(db, desk["provider"].user_id, topic)) == 1
    provider_client = _client(app, desk["provider"])
    token = csrf_token(provider_client.get("/consent"))
    url = f"/consent/requests/{consent_request.id}"
    provider_client.post(
        url, data={"csrf_token": token, "action": "grant", "item": [str(items[0].id)]}
    )
    assert _unread(_notes(db, desk["provider"].user_id, topic)) == 1  # one item still asked
    provider_client.post(
        url,
        data={
            "csrf_token": token,
            "action": "decline",
            "reason": "No.",
            "item": [str(items[1].id)],
        },
    )
    assert _unread(_notes(db, desk["provider"].user_id, topic)) == 0
    # The officer is told to check again, and the next check reads that notice.
    recheck = f"recheck:{rfa.code}"
    assert _unread(_notes(db, desk["officer"].user_id, recheck)) >= 1
    detail = officer.get(f"/eligibility/requests/{rfa.id}")
    checked = officer.post(
        f"/eligibility/requests/{rfa.id}/check", data={"csrf_token": csrf_token(detail)}
    )
    assert checked.status_code in (302, 303)
    assert _unread(_notes(db, desk["officer"].user_id, recheck)) == 0


def test_a_clarification_request_is_read_once_the_requester_answers(
    app: Flask, db: Session, desk: dict[str, Credentials]
) -> None:
    authority = db.scalars(select(Authority).where(Authority.code == "AUTH-W")).one()
    rfa = make.rfa(db, authority, "RFA-2026-0802", status="in_review")
    db.commit()
    officer = _client(app, desk["officer"])
    page = officer.get(f"/triage/{rfa.code}")
    asked = officer.post(
        f"/triage/{rfa.code}/status",
        data={"csrf_token": csrf_token(page), "action": "clarify", "message": "Which period?"},
    )
    assert asked.status_code == 303
    topic = f"thread:{rfa.code}:requester"
    notes = _notes(db, desk["requester"].user_id, topic)
    assert len(notes) == 2 and _unread(notes) == 2  # the question and the status change
    requester = _client(app, desk["requester"])
    detail = requester.get(f"/requests/{rfa.code}")
    answered = requester.post(
        f"/requests/{rfa.code}/messages",
        data={"csrf_token": csrf_token(detail), "body": "June 2023.", "action": "answer"},
    )
    assert answered.status_code == 303
    assert _unread(_notes(db, desk["requester"].user_id, topic)) == 0
    # Now the officer is waited on, until they write back.
    officer_topic = f"thread:{rfa.code}:officer"
    assert _unread(_notes(db, desk["officer"].user_id, officer_topic)) == 1
