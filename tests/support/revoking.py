"""Revoking a consent through the provider's pages as a person does: open the confirmation
page (which says what the revocation will do), then confirm on it."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.auth import csrf_token

_SEEN = re.compile(r'name="seen" value="([0-9a-f]{64})"')


def seen_digest(page: TestResponse) -> str:
    """The digest of the consequences a confirmation page showed."""
    found = _SEEN.search(page.get_data(as_text=True))
    assert found is not None, "the page is a revocation confirmation"
    return found.group(1)


def revoke_on_page(
    client: FlaskClient,
    consent_id: int,
    reason: str,
    *,
    confirm: bool = True,
    follow_redirects: bool = False,
) -> TestResponse:
    """Open ``/consent/given/<id>/revoke``, then post its form with ``reason`` (and the box
    ticked unless ``confirm`` is False)."""
    url = f"/consent/given/{consent_id}/revoke"
    page = client.get(url)
    assert page.status_code == 200, page.get_data(as_text=True)[:2000]
    data = {"csrf_token": csrf_token(page), "seen": seen_digest(page), "reason": reason}
    if confirm:
        data["confirm"] = "yes"
    return client.post(url, data=data, follow_redirects=follow_redirects)
