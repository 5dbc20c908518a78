"""Four-eyes on accounts: recipient, legal-officer and admin accounts take effect only once a
second admin approves them.

The rule (README "Roles and four-eyes"):

- the approver is an active, itself approved admin;
- the approver is neither the account's owner nor the admin who invited (or promoted) it;
- the approver was not itself invited (or promoted) by that same admin — so one admin cannot
  create a second admin and approve their own invitations with it (that second admin is
  inactive until a *different*, already active admin approves it anyway);
- an account is approved once; of two approvals at the same moment one wins, the other is
  refused.

Accounts seeded on the server (:func:`portal.accounts.creation.create_user`: the demo, tests) are
approved at creation: whoever runs code on the server is trusted with it already. Migration 0017
marked the accounts that existed before the rule approved. Functions flush, never commit.

Who is asked: an account awaiting approval is announced (in-app, content-free: no name, the link
to the account) to every admin who may approve it, and a recipient key awaiting its fingerprint
check to every legal officer who may record it (not its importer). Once the approval or the
check is done (or the account deactivated, the key revoked), those notices are marked read for
everyone: nothing awaits them any more.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import APPROVAL_ROLES, User
from portal.authz.roles import is_admin, where_admin, where_legal_officer
from portal.db import utcnow

if TYPE_CHECKING:
    from portal.registry.models import RecipientKey

__all__ = [
    "ACCOUNT_AWAITS",
    "KEY_AWAITS",
    "ApprovalRefused",
    "approve_account",
    "approvers_of",
    "ask_for_approval",
    "ask_for_key_check",
    "awaiting_approval",
    "is_approved",
    "key_check_settled",
    "needs_approval",
    "settle_approval",
    "where_approved",
]

#: The notices (content-free: the link leads to the account or key, behind the usual checks).
ACCOUNT_AWAITS = "An account awaits your approval as the second administrator"
KEY_AWAITS = "A recipient key awaits a fingerprint check by a second legal officer"


class ApprovalRefused(ValueError):
    """An approval was refused; nothing changed. ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def needs_approval(role: str) -> bool:
    """Does an account of ``role`` need a second admin's approval before it takes effect?"""
    return role in APPROVAL_ROLES


def is_approved(user: User) -> bool:
    """Has ``user``'s account taken effect (approved, or of a role that needs no approval)?"""
    return not needs_approval(user.role) or user.approved_at is not None


def where_approved() -> ColumnElement[bool]:
    """:func:`is_approved` as SQL."""
    return or_(User.role.not_in(APPROVAL_ROLES), User.approved_at.is_not(None))


def awaiting_approval(db: Session) -> list[User]:
    """Active accounts waiting for a second admin, oldest first."""
    return list(
        db.scalars(
            select(User)
            .where(
                User.is_active.is_(True),
                User.role.in_(APPROVAL_ROLES),
                User.approved_at.is_(None),
            )
            .order_by(User.created_at, User.id)
        )
    )


def _check_approver(db: Session, user: User, by: User) -> None:
    if not is_admin(by) or not by.is_active or not is_approved(by):
        raise ApprovalRefused("Only an active, approved administrator can approve accounts.")
    if by.id == user.id:
        raise ApprovalRefused("You cannot approve your own account. Ask another administrator.")
    if user.invited_by_id is not None and by.id == user.invited_by_id:
        raise ApprovalRefused(
            "You invited (or promoted) this person: a different administrator must approve "
            "the account."
        )
    if user.invited_by_id is not None and by.invited_by_id == user.invited_by_id:
        raise ApprovalRefused(
            "Your own account was created by the administrator who invited this person: an "
            "administrator they did not create must approve it."
        )


def _may_approve(db: Session, user: User, by: User) -> bool:
    try:
        _check_approver(db, user, by)
    except ApprovalRefused:
        return False
    return True


def approvers_of(db: Session, user: User) -> list[User]:
    """The admins who may approve ``user``'s account (the rule above)."""
    admins = db.scalars(
        select(User).where(User.is_active.is_(True), where_admin(), where_approved())
    )
    return [admin for admin in admins if _may_approve(db, user, admin)]


def account_link(user: User) -> str:
    """The account's page in the admin area (``admin.user_detail``)."""
    return f"/admin/users/{user.id}"


def key_link(key: RecipientKey) -> str:
    """The key's page (``keys.detail``)."""
    return f"/keys/{key.id}"


def ask_for_approval(db: Session, user: User) -> None:
    """``user``'s account now awaits a second admin: tell those who may approve it."""
    from portal.notifications.service import notify

    if user.is_active and not is_approved(user):
        notify(db, approvers_of(db, user), ACCOUNT_AWAITS, account_link(user))


def ask_for_key_check(db: Session, key: RecipientKey) -> None:
    """A key was imported: tell the legal officers who may record its fingerprint check."""
    from portal.notifications.service import notify

    officers = db.scalars(
        select(User).where(
            User.is_active.is_(True),
            where_legal_officer(),
            where_approved(),
            User.id != key.imported_by_id,
        )
    )
    notify(db, officers, KEY_AWAITS, key_link(key))


def _settle(db: Session, subject: str, link: str, now: datetime | None) -> int:
    from portal.notifications.models import Notification

    done = db.execute(
        update(Notification)
        .where(
            Notification.subject == subject,
            Notification.link == link,
            Notification.read_at.is_(None),
        )
        .values(read_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(done, "rowcount", 0) or 0)


def settle_approval(db: Session, user: User, *, now: datetime | None = None) -> int:
    """Nothing awaits approval for ``user`` any more: mark its notices read (how many)."""
    return _settle(db, ACCOUNT_AWAITS, account_link(user), now)


def key_check_settled(db: Session, key: RecipientKey, *, now: datetime | None = None) -> int:
    """The key was checked (or revoked): mark its notices read (how many)."""
    return _settle(db, KEY_AWAITS, key_link(key), now)


def approve_account(db: Session, user: User, *, by: User, now: datetime | None = None) -> None:
    """Approve ``user``'s account as ``by`` (the second pair of eyes); audited.

    Raises :class:`ApprovalRefused` (403 for a forbidden approver, 409 for an account that
    needs no approval, is already approved or deactivated). The update is conditional, so of
    two concurrent approvals exactly one succeeds.
    """
    moment = now or utcnow()
    if not needs_approval(user.role):
        raise ApprovalRefused("This account needs no approval.", status=409)
    if user.approved_at is not None:
        raise ApprovalRefused("This account has already been approved.", status=409)
    if not user.is_active:
        raise ApprovalRefused("This account is deactivated; it cannot be approved.", status=409)
    _check_approver(db, user, by)
    done = db.execute(
        update(User)
        .where(User.id == user.id, User.approved_at.is_(None))
        .values(approved_at=moment, approved_by_id=by.id)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(done, "rowcount", 0) or 0) != 1:
        raise ApprovalRefused("This account has already been approved.", status=409)
    db.refresh(user)
    settle_approval(db, user, now=moment)
    audit.record(
        db,
        audit.actor_label(by),
        "user.approve",
        f"user:{user.id}",
        {"role": user.role, "invited_by": user.invited_by_id},
        now=moment,
    )
