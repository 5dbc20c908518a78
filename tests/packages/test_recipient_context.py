"""What the recipient's package page says around the package (issue 22): the request it
answers (with the recipient's own reference), the conditions of sharing it was released
on, and a helpful page, not a bare refusal, for a recipient who follows an officer's link,
saying nothing about packages they may not see."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.consent.ledger import grant
from portal.packages.models import PackageItem
from portal.registry.models import Authority, Item, Provider
from tests.support.recipient import Shipment, signed_in

pytest_plugins = ["tests.support.auth", "tests.support.recipient"]


def test_the_package_page_names_the_request_and_the_conditions(
    app: Flask, db: Session, ship: Shipment
) -> None:
    client = signed_in(app, ship.recipient)
    page = client.get(f"/received/{ship.code}").get_data(as_text=True)
    assert "Answers your request" in page and "RFA-2026-0501" in page
    assert "your reference <bdi>A-501</bdi>" in page
    assert "The providers set no conditions of their own for this package." in page

    # The item shared on a grant with conditions and an end date: both are shown, the end
    # as the last valid day the provider chose (stored as the next midnight).
    provider = db.scalars(select(Provider).where(Provider.code == "PRV-A")).one()
    authority = db.scalars(select(Authority).where(Authority.code == "AUTH-A")).one()
    item = db.get(Item, ship.item_id)
    by = db.scalars(select(User).where(User.email == ship.provider.email)).one()
    assert item is not None
    (conditional,) = grant(
        db, provider, authority, items=[item], by=by,
        conditions="Not to be disclosed to the media (fictional).",
        expires_at=datetime(2028, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    row = db.scalars(select(PackageItem).where(PackageItem.package_id == ship.package_id)).one()
    row.consent_id = conditional.id
    db.commit()
    page = client.get(f"/received/{ship.code}").get_data(as_text=True)
    assert "Not to be disclosed to the media (fictional)." in page
    assert "consent valid until 2027-12-31" in page and "2028-01-01" not in page


def test_a_recipient_following_an_officers_link_is_shown_the_way(
    app: Flask, db: Session, ship: Shipment
) -> None:
    client = signed_in(app, ship.recipient)
    theirs = client.get(f"/packages/{ship.code}")
    unknown = client.get("/packages/PKG-2026-9999")
    assert theirs.status_code == unknown.status_code == 403
    page = theirs.get_data(as_text=True)
    assert "Looking for a package sent to your authority?" in page
    assert f'href="/received/{ship.code}"' in page and 'href="/received"' in page
    # The same words whether the package exists and is theirs or not: nothing is revealed.
    # (The sign-out form's CSRF token is time-stamped to the second, so it is left out: two
    # requests a second apart differ there, which made this comparison flaky.)
    other = unknown.get_data(as_text=True)
    assert _without_tokens(other.replace("PKG-2026-9999", ship.code)) == _without_tokens(page)
    stranger = signed_in(app, ship.other_recipient).get(f"/packages/{ship.code}")
    assert stranger.status_code == 403
    told = stranger.get_data(as_text=True)  # another authority's package: the same answer
    assert f'href="/received/{ship.code}"' in told and "RFA-2026-0501" not in told
    # Other pages' refusals and other roles get the plain refusal.
    provider = signed_in(app, ship.provider).get(f"/packages/{ship.code}")
    assert provider.status_code == 403
    assert "Looking for a package" not in provider.get_data(as_text=True)


_TOKEN_VALUE = re.compile(r'(name="csrf_token" (?:type="hidden" )?value=")[^"]+"')


def _without_tokens(html: str) -> str:
    """``html`` with every CSRF token's value blanked (the only part that depends on when)."""
    masked, count = _TOKEN_VALUE.subn(r'\1"', html)
    assert count, "the page has no CSRF token where one was expected (sign-out form)"
    return masked
