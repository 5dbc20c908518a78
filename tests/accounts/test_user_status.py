"""The user-status rule in Python (``user_status``, shown beside each user) and in SQL
(``user_status_condition``, the admin list's status filter) agree, on both databases, for users
in every status and on the edges between them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.accounts.user_admin import user_status, user_status_condition
from tests.support import factories as make
from tests.support.ledger_world import NOW

STATUSES = ("active", "enrolling", "locked", "deactivated", "invited")
ENROLLED = NOW - timedelta(days=3)

#: name -> columns of a user, and the status each has at NOW.
USERS = {
    "active": ({"totp_confirmed_at": ENROLLED}, "active"),
    "lock ended": (
        {"totp_confirmed_at": ENROLLED, "locked_until": NOW - timedelta(minutes=1)},
        "active",
    ),
    "lock ends now": ({"totp_confirmed_at": ENROLLED, "locked_until": NOW}, "active"),
    "enrolling": ({"totp_confirmed_at": None}, "enrolling"),
    "enrolling, lock ended": (
        {"totp_confirmed_at": None, "locked_until": NOW - timedelta(hours=1)},
        "enrolling",
    ),
    "locked": (
        {"totp_confirmed_at": ENROLLED, "locked_until": NOW + timedelta(minutes=5)},
        "locked",
    ),
    "locked while enrolling": (
        {"totp_confirmed_at": None, "locked_until": NOW + timedelta(seconds=1)},
        "locked",
    ),
    "deactivated": ({"totp_confirmed_at": ENROLLED, "is_active": False}, "deactivated"),
    "deactivated and locked": (
        {"is_active": False, "locked_until": NOW + timedelta(days=1)},
        "deactivated",
    ),
}


@pytest.mark.parametrize("status", STATUSES)
def test_the_sql_filter_finds_exactly_the_users_the_python_rule_names(
    session: Session, status: str
) -> None:
    ids = {name: make.user(session, **columns).id for name, (columns, _) in USERS.items()}
    session.commit()
    users = session.scalars(select(User)).all()
    assert {user.id: user_status(user, NOW) for user in users} == {
        ids[name]: expected for name, (_, expected) in USERS.items()
    }
    found = set(session.scalars(select(User.id).where(user_status_condition(status, NOW))))
    assert found == {user.id for user in users if user_status(user, NOW) == status}
