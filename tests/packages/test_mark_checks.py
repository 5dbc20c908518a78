"""A confirmed term mark that matches nothing blocks assembly until a legal officer reads the
item and records a check by eye (real pipeline, real HTTP, both databases)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html import unescape
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.audit import AuditEvent
from portal.packages.assembly.assemble import AssemblyFailed, assemble_package
from portal.packages.assembly.item_report import ItemReport
from portal.packages.lifecycle import PackageRefused, create_package
from portal.packages.mark_checks import mark_of_package, record_checked_by_eye
from portal.packages.models import Package, PackageItem
from portal.registry.models import Item, RedactionMark
from portal.rfa.models import Rfa
from portal.state import portal_state
from tests.support import factories as make
from tests.support.auth import Credentials, csrf_token, login
from tests.support.package_world import (
    REDACTABLE,
    World,
    _add_item,
    build_world,
    recheck,
    user,
)

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client

KEYS = Path(__file__).resolve().parents[2] / "keys_example"
SIGNING = {
    "signing_key_file": KEYS / "mechanism-signing.sec.asc",
    "signing_passphrase_file": KEYS / "mechanism-signing.passphrase",
    "extra": {"PORTAL_JOBS_IMMEDIATE": True},
}
ITEM = "ITM-E0001"
GHOST = "Velmira Ostrakova"  # fictional; the mark's term, absent from the item
STATEMENT = b"The convoy passed the mill at noon. Nobody was named.\n"


def _text(response: object) -> str:
    html = response.get_data(as_text=True)  # type: ignore[attr-defined]
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _client(app: Flask, creds: Credentials) -> FlaskClient:
    client = app.test_client()
    login(client, creds)
    return client


@pytest.fixture
def portal(make_app: Callable[..., Flask]) -> Flask:
    return make_app(**SIGNING)


@pytest.fixture
def world(portal: Flask) -> World:
    """The package world plus a statement whose confirmed term mark M-9 matches nothing."""
    state = portal_state(portal)
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer)
        mark = {"code": "M-9", "kind": "term", "term": GHOST, "reason": "Names a witness"}
        _add_item(session, state.blobs, world, ITEM, "text/plain", "s9.txt", STATEMENT, [mark])
        recheck(session, world)
        session.commit()
    return world


def _failed_package(portal: Flask, world: World) -> Package:
    state = portal_state(portal)
    with state.sessions() as session:
        rfa = make.stored(session, Rfa, world.rfa_id)
        package = create_package(session, rfa, REDACTABLE, by=user(session, world.officer_id))
        session.commit()
        package_id = package.id
    with pytest.raises(AssemblyFailed, match=f"mark M-9 was not found in {ITEM}") as caught:
        assemble_package(state, package_id)
    assert GHOST not in caught.value.reason
    with state.sessions() as session:
        found = session.get(Package, package_id)
        assert found is not None
        return found


def _report(portal: Flask, package: Package, code: str) -> ItemReport:
    with portal_state(portal).sessions() as session:
        row = session.scalars(
            select(PackageItem.report)
            .join(Item, Item.id == PackageItem.item_id)
            .where(PackageItem.package_id == package.id, Item.code == code)
        ).one()
        return ItemReport.from_json(row)


def test_an_unmatched_mark_fails_the_package_until_checked_by_eye(
    portal: Flask, world: World
) -> None:
    package = _failed_package(portal, world)
    assert package.status == "failed" and package.file_sha256 is None
    report = _report(portal, package, ITEM)
    assert report.unmatched == ("M-9",) and report.checked_by_eye == ()
    assert any("M-9 matched nothing" in line for line in report.blocked)
    stored = json.dumps(report.to_json()) + (package.failure_reason or "")
    assert GHOST not in stored

    officer = _client(portal, world.officer)
    page = officer.get(f"/packages/{package.code}")
    text = _text(page)
    assert "Confirmed redaction marks matched nothing" in text
    assert GHOST in text  # a legal officer must know what to look for
    original = officer.get(f"/packages/{package.code}/items/{ITEM}/original")
    assert original.status_code == 200 and original.data == STATEMENT
    assert original.headers["Content-Disposition"].startswith("attachment")
    assert f"{ITEM}.txt" in original.headers["Content-Disposition"]
    assert "no-store" in original.headers["Cache-Control"]

    action = f"/packages/{package.code}/items/{ITEM}/marks/M-9/checked-by-eye"
    unconfirmed = officer.post(action, data={"csrf_token": csrf_token(page)})
    assert unconfirmed.status_code == 303
    assert "Nothing was recorded" in _text(officer.get(f"/packages/{package.code}"))
    checked = officer.post(action, data={"csrf_token": csrf_token(page), "read": "yes"})
    assert checked.status_code == 303
    with portal_state(portal).sessions() as session:
        mark = session.scalars(select(RedactionMark).where(RedactionMark.code == "M-9")).one()
        assert mark.checked_by_eye_by_id == world.officer_id and mark.checked_by_eye_at
        events = {
            event.action: event.details
            for event in session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action.in_(("mark.checked_by_eye", "item.original_read"))
                )
            )
        }
        assert set(events) == {"mark.checked_by_eye", "item.original_read"}
        assert GHOST not in json.dumps(events)

    retried = officer.post(f"/packages/{package.code}/retry", data={"csrf_token": csrf_token(page)})
    assert retried.status_code == 303
    with portal_state(portal).sessions() as session:
        again = session.get(Package, package.id)
        assert again is not None and again.status == "assembled", again.failure_reason
    report = _report(portal, package, ITEM)
    assert report.unmatched == () and report.checked_by_eye == ("M-9",)
    assert "checked by eye by a legal officer" in _text(officer.get(f"/packages/{package.code}"))


def test_only_legal_officers_see_the_term_and_the_original(portal: Flask, world: World) -> None:
    package = _failed_package(portal, world)
    with portal_state(portal).sessions() as session:
        from tests.support.auth import make_user

        admin = make_user(session, "admin")
        session.commit()
    staff = _client(portal, admin)
    page = staff.get(f"/packages/{package.code}")
    assert page.status_code == 403 and GHOST not in _text(page)  # admins read no case content
    assert staff.get(f"/packages/{package.code}/items/{ITEM}/original").status_code == 403
    officer = _client(portal, world.officer)
    assert officer.get(f"/packages/{package.code}/items/ITM-NOPE/original").status_code == 404


def test_a_check_by_eye_is_refused_when_it_makes_no_sense(portal: Flask, world: World) -> None:
    package = _failed_package(portal, world)
    with portal_state(portal).sessions() as session:
        officer = user(session, world.officer_id)
        package = session.get(Package, package.id)
        assert package is not None
        with pytest.raises(PackageRefused, match="has no item ITM-NOPE"):
            mark_of_package(session, package, "ITM-NOPE", "M-9")
        mark = mark_of_package(session, package, ITEM, "M-9")
        record_checked_by_eye(session, mark, mark.item, by=officer)
        with pytest.raises(PackageRefused, match="already been checked by eye"):
            record_checked_by_eye(session, mark, mark.item, by=officer)
        other = make.stored(session, Item, world.items["redact"])
        with pytest.raises(PackageRefused, match="belongs to another item"):
            record_checked_by_eye(session, mark, other, by=officer)
        box = make.redaction_mark(
            session, mark.item, kind="image_box", x0=0.1, y0=0.1, x1=0.2, y1=0.2
        )
        with pytest.raises(PackageRefused, match="not a confirmed term mark"):
            record_checked_by_eye(session, box, mark.item, by=officer)
        session.rollback()
