"""A fixed moment and the rows the decision, consent-ledger and figures tests start from.

Everything here is as of :data:`NOW`, so a test that passes ``now=NOW`` to the portal gets the
same answer whenever it runs: assessments current at NOW, requests submitted before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.registry.models import Authority, Item, Provider
from portal.rfa.models import Rfa
from tests.support import factories as make

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
EARLY = NOW - timedelta(days=30)


def assessed_authority(session: Session, code: str = "NWU-NL", **fields: Any) -> Authority:
    """An authority (``fields`` override its columns) with all three assessments satisfied
    and current at NOW."""
    authority = make.authority(session, code, **fields)
    make.assessments(session, authority, now=NOW)
    return authority


def rfa_in_review(session: Session, authority: Authority, items: Iterable[Item]) -> Rfa:
    """A request of ``authority`` for ``items``, submitted ten days before NOW, in review."""
    return make.rfa(
        session, authority, status="in_review", items=items, submitted_at=NOW - timedelta(days=10)
    )


def consent_world(session: Session) -> tuple[Authority, Provider, list[Item], User]:
    """An assessed authority, a provider with three items and the provider's representative."""
    authority = assessed_authority(session)
    provider = make.provider(session)
    items = [make.item(session, provider) for _ in range(3)]
    return authority, provider, items, make.user(session, "provider", provider=provider)
