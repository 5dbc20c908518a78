"""The legal officers' package pages over real HTTP, on both databases: plan and create (the
assembly job runs in Huey's immediate mode: the real pipeline, in-process), refusals with
their reasons, the package page (progress refresh, items, leak check without terms, failure
and retry), clearing as-is, and the four-eyes release."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from html import unescape
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from portal.audit import AuditEvent
from portal.db import utcnow
from portal.packages.lifecycle import STALLED_AFTER, create_package
from portal.packages.models import Package
from portal.registry.models import Item, RecipientKey
from portal.rfa.models import Rfa
from portal.state import portal_state
from tests.support.auth import Credentials, csrf_token, login
from tests.support.package_world import (
    REDACTABLE,
    SECRET_TERM,
    World,
    assembled,
    build_world,
    user,
)

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client

REPO = Path(__file__).resolve().parents[2]
KEYS = REPO / "keys_example"
SIGNING = {
    "signing_key_file": KEYS / "mechanism-signing.sec.asc",
    "signing_passphrase_file": KEYS / "mechanism-signing.passphrase",
    "extra": {"PORTAL_JOBS_IMMEDIATE": True},
}


def _text(response: object) -> str:
    html = response.get_data(as_text=True)  # type: ignore[attr-defined]
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


@pytest.fixture
def portal(make_app: Callable[..., Flask]) -> Flask:
    return make_app(**SIGNING)


@pytest.fixture
def world(portal: Flask) -> World:
    state = portal_state(portal)
    with state.sessions() as session:
        return build_world(session, state.blobs, state.sealer)


def _client(app: Flask, creds: Credentials) -> FlaskClient:
    client = app.test_client()
    login(client, creds)
    return client


def _package(app: Flask, code: str | None = None) -> Package:
    with portal_state(app).sessions() as session:
        stmt = select(Package).order_by(Package.id.desc())
        if code:
            stmt = stmt.where(Package.code == code)
        found = session.scalars(stmt.limit(1)).first()
        assert found is not None
        return found


def _queued(app: Flask, world: World) -> str:
    with portal_state(app).sessions() as session:
        rfa = session.get(Rfa, world.rfa_id)
        assert rfa is not None
        package = create_package(session, rfa, REDACTABLE, by=user(session, world.officer_id))
        session.commit()
        return package.code


def test_an_officer_makes_a_package_and_it_is_assembled(portal: Flask, world: World) -> None:
    client = _client(portal, world.officer)
    page = client.get(f"/packages/requests/{world.rfa_code}")
    assert page.status_code == 200
    text = _text(page)
    assert "A package cannot be made yet" not in text
    assert "ITM-T0002" in text and "Redacted" in text
    assert "ITM-T0004" not in text  # the declined item is not in the plan
    token = csrf_token(page)
    unconfirmed = client.post(f"/packages/requests/{world.rfa_code}", data={"csrf_token": token})
    assert unconfirmed.status_code == 400
    assert "Confirm that you reviewed the items" in _text(unconfirmed)
    response = client.post(
        f"/packages/requests/{world.rfa_code}", data={"csrf_token": token, "reviewed": "yes"}
    )
    assert response.status_code == 303
    package = _package(portal)
    assert response.headers["Location"].endswith(f"/packages/{package.code}")
    assert package.status == "assembled", package.failure_reason  # the real job ran
    detail = client.get(f"/packages/{package.code}")
    text = _text(detail)
    assert "js/refresh.js" not in detail.get_data(as_text=True)
    assert "Assembled, awaiting release" in text
    assert "Passed: none of the" in text
    assert package.file_sha256 is not None and package.file_sha256 in text
    assert "you assembled this package, so a second legal officer must release it" in text
    assert SECRET_TERM not in detail.get_data(as_text=True)
    listing = _text(client.get("/packages"))
    assert package.code in listing


def test_a_refused_package_says_why_and_makes_nothing(portal: Flask, world: World) -> None:
    with portal_state(portal).sessions() as session:
        key = session.get(RecipientKey, world.key_id)
        assert key is not None
        key.revoked_at = key.verified_at
        key.revocation_reason = "test"
        session.commit()
    client = _client(portal, world.officer)
    page = client.get(f"/packages/requests/{world.rfa_code}")
    assert "The authority has no usable key" in _text(page)
    response = client.post(
        f"/packages/requests/{world.rfa_code}",
        data={"csrf_token": csrf_token(page), "reviewed": "yes"},
    )
    assert response.status_code == 409
    assert "No package was made: " in _text(response)
    with portal_state(portal).sessions() as session:
        assert session.scalar(select(Package.id)) is None


def test_a_queued_package_refreshes_itself_and_cannot_be_released(
    portal: Flask, world: World
) -> None:
    code = _queued(portal, world)
    second = _client(portal, world.second)
    page = second.get(f"/packages/{code}")
    assert 'data-seconds="5"' in page.get_data(as_text=True)
    assert "Queued for assembly" in _text(page)
    response = second.post(
        f"/packages/{code}/release",
        data={"csrf_token": csrf_token(page), "reviewed": "yes", "expires_in_days": "30"},
    )
    assert response.status_code == 409
    assert "cannot be released: it is queued for assembly" in _text(response)
    assert _package(portal, code).status == "queued"


def test_four_eyes_release(portal: Flask, world: World) -> None:
    code = _queued(portal, world)
    with portal_state(portal).sessions() as session:
        assembled(session, session.scalars(select(Package).where(Package.code == code)).one())
    assembler = _client(portal, world.officer)
    page = assembler.get(f"/packages/{code}")
    data = {"csrf_token": csrf_token(page), "reviewed": "yes", "expires_in_days": "30"}
    refused = assembler.post(f"/packages/{code}/release", data=data)
    assert refused.status_code == 409
    assert "Four-eyes rule" in _text(refused)
    assert _package(portal, code).status == "assembled"

    second = _client(portal, world.second)
    page = second.get(f"/packages/{code}")
    assert "Release to Northland War Crimes Unit" in _text(page)
    token = csrf_token(page)
    for fields, message in [
        ({"expires_in_days": "30"}, "Confirm that you reviewed the manifest summary"),
        ({"reviewed": "yes", "expires_in_days": "soon"}, "as a whole number"),
        ({"reviewed": "yes", "expires_in_days": "30", "download_limit": "-1"}, "whole number"),
        ({"reviewed": "yes", "expires_in_days": "\u00b9"}, "whole number"),  # isdigit() is true
        ({"reviewed": "yes", "expires_in_days": "9" * 5000}, "whole number"),
    ]:
        bad = second.post(f"/packages/{code}/release", data={"csrf_token": token, **fields})
        assert bad.status_code == 400
        assert message in _text(bad)
    response = second.post(
        f"/packages/{code}/release",
        data={"csrf_token": token, "reviewed": "yes", "expires_in_days": "7",
              "download_limit": "2"},
    )  # fmt: skip
    assert response.status_code == 303
    package = _package(portal, code)
    assert package.status == "released" and package.released_by_id == world.second_id
    assert package.download_limit == 2
    with portal_state(portal).sessions() as session:
        rfa = session.get(Rfa, world.rfa_id)
        assert rfa is not None and rfa.status == "transmitted"
    again = second.post(
        f"/packages/{code}/release",
        data={"csrf_token": token, "reviewed": "yes", "expires_in_days": "7"},
    )
    assert again.status_code == 409
    assert "has already been released" in _text(again)


def test_a_failed_package_shows_its_reason_and_can_be_retried(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(extra={"PORTAL_JOBS_IMMEDIATE": True})  # no signing key: assembly fails
    state = portal_state(app)
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer)
    client = _client(app, world.officer)
    page = client.get(f"/packages/requests/{world.rfa_code}")
    client.post(
        f"/packages/requests/{world.rfa_code}",
        data={"csrf_token": csrf_token(page), "reviewed": "yes"},
    )
    package = _package(app)
    assert package.status == "failed"
    detail = client.get(f"/packages/{package.code}")
    text = _text(detail)
    assert "The assembly failed" in text
    assert package.failure_reason is not None and package.failure_reason in text
    response = client.post(
        f"/packages/{package.code}/retry", data={"csrf_token": csrf_token(detail)}
    )
    assert response.status_code == 303
    assert _package(app, package.code).status == "failed"  # ran again, same stated reason
    with state.sessions() as session:
        actions = list(session.scalars(select(AuditEvent.action)))
    assert actions.count("package.retry") == 1


def test_a_blocked_package_names_files_and_mark_codes_never_terms(
    portal: Flask, world: World
) -> None:
    code = _queued(portal, world)
    with portal_state(portal).sessions() as session:
        package = session.scalars(select(Package).where(Package.code == code)).one()
        package.status = "blocked"
        package.stage = "blocked: leak check"
        package.leak_check = {
            "clean": False,
            "files_checked": 5,
            "terms_checked": 1,
            "hits": [{"path": "data/items/ITM-T0003/clip.mp4", "mark_code": "M-1",
                      "where": "raw bytes"}],
            "unchecked": [],
        }  # fmt: skip
        session.commit()
    client = _client(portal, world.second)
    text = _text(client.get(f"/packages/{code}"))
    assert "The package is blocked" in text
    assert "data/items/ITM-T0003/clip.mp4 : marks M-1" in text
    assert SECRET_TERM not in text
    assert "Release to" not in text


def test_clearing_an_unredactable_item_as_is(portal: Flask, world: World) -> None:
    with portal_state(portal).sessions() as session:
        video = session.get(Item, world.items["video"])
        assert video is not None
        video.cleared_as_is = False
        session.commit()
    client = _client(portal, world.officer)
    page = client.get(f"/packages/requests/{world.rfa_code}")
    assert "has not been cleared as-is" in _text(page)
    response = client.post(
        f"/packages/items/{world.items['video']}/clear",
        data={"csrf_token": csrf_token(page), "rfa": world.rfa_code},
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/packages/requests/{world.rfa_code}")
    with portal_state(portal).sessions() as session:
        video = session.get(Item, world.items["video"])
        assert video is not None
        assert video.cleared_as_is and video.cleared_by_id == world.officer_id
    follow = client.get(f"/packages/requests/{world.rfa_code}")
    assert "run the eligibility check again" in _text(follow)


def test_the_package_list_is_paged(portal: Flask, world: World) -> None:
    first = _package(portal, _queued(portal, world))
    with portal_state(portal).sessions() as session:
        for n in range(54):
            session.add(
                Package(
                    code=f"PKG-2026-9{n:03d}",
                    rfa_id=first.rfa_id,
                    decision_id=first.decision_id,
                    authority_id=first.authority_id,
                    status="failed",
                    stage="failed",
                    failure_reason="fictional",
                    assembled_by_id=world.officer_id,
                )
            )
        session.commit()
    client = _client(portal, world.officer)
    page_one = client.get("/packages").get_data(as_text=True)
    assert "Page 1 of 2" in page_one
    assert len(set(re.findall(r"PKG-\d{4}-\d{4}", page_one))) == 50
    page_two = client.get("/packages?page=2").get_data(as_text=True)
    codes_two = set(re.findall(r"PKG-\d{4}-\d{4}", page_two))
    assert len(codes_two) == 5
    assert codes_two.isdisjoint(re.findall(r"PKG-\d{4}-\d{4}", page_one))
    failed = client.get("/packages?status=failed").get_data(as_text=True)
    assert "Page 1 of 2" in failed and "status=failed" in failed  # the filter is kept


def test_a_package_whose_job_was_lost_can_be_queued_again(portal: Flask, world: World) -> None:
    code = _queued(portal, world)  # made, but its job never reached a worker
    client = _client(portal, world.officer)
    fresh = client.get(f"/packages/{code}")
    assert "js/refresh.js" in fresh.get_data(as_text=True)
    assert "No progress since" not in _text(fresh)
    with portal_state(portal).sessions() as session:
        session.execute(
            update(Package)
            .where(Package.code == code)
            .values(updated_at=utcnow() - STALLED_AFTER - timedelta(minutes=1))
        )
        session.commit()
    detail = client.get(f"/packages/{code}")
    html = detail.get_data(as_text=True)
    assert "No progress since" in _text(detail) and "Queue the assembly again" in html
    assert "js/refresh.js" not in html  # the form must not vanish under the user
    response = client.post(f"/packages/{code}/retry", data={"csrf_token": csrf_token(detail)})
    assert response.status_code == 303
    package = _package(portal, code)
    assert package.status == "assembled", package.failure_reason  # the job ran this time
    with portal_state(portal).sessions() as session:
        retried = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "package.retry")
        ).one()
    assert json.loads(retried.details) == {"was": "queued"}
