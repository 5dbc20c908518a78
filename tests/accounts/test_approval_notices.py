"""Four-eyes prompts (issue 18): whoever may give the second approval is told, in-app and
content-free, that it awaits them — the admins who may approve a new account (never its
inviter), the legal officers who may check a new key (never its importer) — and the notice is
marked read for everyone once the approval or check is done (or nothing awaits any more)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.accounts.approval import ACCOUNT_AWAITS, KEY_AWAITS, account_link, key_link
from portal.accounts.models import User
from portal.accounts.user_admin import deactivate
from portal.db import utcnow
from portal.notifications.models import Notification
from portal.registry.keys import Verification, import_key, revoke_key, verify_key
from tests.accounts.test_admin import approve, enrol, invite_via_form, signed_in
from tests.support import factories as make
from tests.support.auth import Credentials, make_user

pytest_plugins = ["tests.support.auth"]  # fixtures app, client, db

KEYS = Path(__file__).resolve().parents[2] / "keys_example"
AUTHORITY = "NWU-NL"


def notices(db: Session, who: Credentials, subject: str) -> list[tuple[str | None, bool]]:
    """(link, read) of ``who``'s notices with ``subject``."""
    db.expire_all()
    rows = db.scalars(
        select(Notification).where(
            Notification.user_id == who.user_id, Notification.subject == subject
        )
    )
    return [(n.link, n.read_at is not None) for n in rows]


def test_the_admins_who_may_approve_are_told_and_the_notice_is_read_once_approved(
    app: Flask, db: Session
) -> None:
    inviter, first, second = (make_user(db, "admin") for _ in range(3))
    make.authority(db, "WCU-NL", name="War Crimes Unit NL", country="NL")
    db.commit()
    newcomer = enrol(
        db,
        invite_via_form(
            signed_in(app, inviter), "mira.tovey@wcu.example.nl", "recipient", "WCU-NL"
        ),
    )
    link = account_link(db.get_one(User, newcomer.user_id))

    assert notices(db, first, ACCOUNT_AWAITS) == [(link, False)]
    assert notices(db, second, ACCOUNT_AWAITS) == [(link, False)]
    assert notices(db, inviter, ACCOUNT_AWAITS) == []  # the inviter may not approve
    assert "Mira" not in ACCOUNT_AWAITS and "mira" not in link  # content-free

    assert approve(signed_in(app, first), newcomer).status_code == 303
    assert notices(db, first, ACCOUNT_AWAITS) == [(link, True)]
    assert notices(db, second, ACCOUNT_AWAITS) == [(link, True)]  # nothing awaits them now


def test_an_admin_made_by_one_admin_is_announced_only_to_the_others(
    app: Flask, db: Session
) -> None:
    alone, other = make_user(db, "admin"), make_user(db, "admin")
    accomplice = enrol(
        db, invite_via_form(signed_in(app, alone), "second.admin@mechanism.example", "admin")
    )
    assert notices(db, alone, ACCOUNT_AWAITS) == []
    assert [read for _, read in notices(db, other, ACCOUNT_AWAITS)] == [False]
    deactivate(db, db.get_one(User, accomplice.user_id), by=db.get_one(User, other.user_id))
    db.commit()
    assert [read for _, read in notices(db, other, ACCOUNT_AWAITS)] == [True]


def test_the_officers_who_may_check_a_key_are_told_and_the_notice_is_read_once_checked(
    db: Session,
) -> None:
    importer, checker = make_user(db, "legal_officer"), make_user(db, "legal_officer")
    admin = make_user(db, "admin")
    authority = make.authority(db, AUTHORITY, name="Northland War Crimes Unit")
    armored = (KEYS / f"{AUTHORITY}.pub.asc").read_text("ascii")
    key = import_key(
        db, authority, armored, by=db.get_one(User, importer.user_id), demo_or_test=True
    )
    db.commit()
    link = key_link(key)
    assert notices(db, checker, KEY_AWAITS) == [(link, False)]
    assert notices(db, importer, KEY_AWAITS) == []  # the importer may not check it
    assert notices(db, admin, KEY_AWAITS) == []  # admins do not record key checks

    verify_key(
        db, key, Verification("Duty officer J. Maas", "phone", utcnow()),
        by=db.get_one(User, checker.user_id),
    )  # fmt: skip
    db.commit()
    assert notices(db, checker, KEY_AWAITS) == [(link, True)]


def test_a_revoked_key_awaits_no_check(db: Session) -> None:
    admin, officer = make_user(db, "admin"), make_user(db, "legal_officer")
    authority = make.authority(db, AUTHORITY, name="Northland War Crimes Unit")
    armored = (KEYS / f"{AUTHORITY}.pub.asc").read_text("ascii")
    key = import_key(db, authority, armored, by=db.get_one(User, admin.user_id), demo_or_test=True)
    assert [read for _, read in notices(db, officer, KEY_AWAITS)] == [False]
    revoke_key(db, key, reason="Sent by mistake", by=db.get_one(User, admin.user_id))
    db.commit()
    assert [read for _, read in notices(db, officer, KEY_AWAITS)] == [True]
