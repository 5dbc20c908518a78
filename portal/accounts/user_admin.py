"""What an admin does to existing accounts: deactivate, reactivate, change role, reset 2FA.

Each action is audited and ends the user's sessions where it changes what they may do.
Two guards keep the portal administrable: an admin cannot deactivate or demote
themselves, and the last active admin can be neither deactivated nor demoted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, false, not_, or_, select
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.approval import (
    ask_for_approval,
    is_approved,
    needs_approval,
    settle_approval,
    where_approved,
)
from portal.accounts.invitations import (
    InvitationError,
    issue_invitation,
    resolve_organisation,
    revoke_open_invitations,
)
from portal.accounts.models import RecoveryCode, User
from portal.accounts.sessions import end_all_sessions
from portal.authz.roles import is_active_admin, is_admin, where_admin
from portal.db import utcnow
from portal.registry.models import Authority, Provider

__all__ = [
    "UserAdminError",
    "change_role",
    "deactivate",
    "organisation_codes",
    "reactivate",
    "reset_2fa",
    "user_status",
    "user_status_condition",
]


class UserAdminError(ValueError):
    """An admin action was refused; the message says why. ``field`` names a form field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def user_status(user: User, now: datetime | None = None) -> str:
    """``deactivated``, ``awaiting_approval`` (a second admin has not approved it yet),
    ``locked``, ``enrolling`` (2FA not set up) or ``active``."""
    now = now or utcnow()
    if not user.is_active:
        return "deactivated"
    if not is_approved(user):
        return "awaiting_approval"
    if user.locked_until is not None and user.locked_until > now:
        return "locked"
    if user.totp_confirmed_at is None:
        return "enrolling"
    return "active"


def user_status_condition(status: str, now: datetime) -> ColumnElement[bool]:
    """:func:`user_status` as SQL: the users whose status at ``now`` is ``status`` (none for
    ``invited``: invitations are not users yet). Keep the two rules together."""
    unlocked = or_(User.locked_until.is_(None), User.locked_until <= now)
    effective = and_(User.is_active.is_(True), where_approved())
    conditions: dict[str, ColumnElement[bool]] = {
        "deactivated": User.is_active.is_(False),
        "awaiting_approval": and_(User.is_active.is_(True), not_(where_approved())),
        "locked": and_(effective, User.locked_until > now),
        "enrolling": and_(effective, unlocked, User.totp_confirmed_at.is_(None)),
        "active": and_(effective, unlocked, User.totp_confirmed_at.is_not(None)),
        "invited": false(),
    }
    return conditions[status]


def organisation_codes(db: Session, user: User) -> tuple[str | None, str | None]:
    """The codes of the user's authority and provider (None where it has none)."""
    authority = db.get(Authority, user.authority_id) if user.authority_id else None
    provider = db.get(Provider, user.provider_id) if user.provider_id else None
    return (
        authority.code if authority is not None else None,
        provider.code if provider is not None else None,
    )


def _refuse_self(user: User, by: User, what: str) -> None:
    if user.id == by.id:
        raise UserAdminError(
            f"You cannot {what} your own account. Ask another administrator to do it."
        )


def _refuse_last_admin(db: Session, user: User, what: str) -> None:
    """Refuse when ``user`` is the only active admin.

    The active admins' rows are locked (PostgreSQL) so two admins removing each other at
    the same moment cannot both succeed; SQLite serialises writers anyway.
    """
    if not is_active_admin(user):
        return
    admins = db.scalars(
        select(User.id)
        .where(where_admin(), User.is_active.is_(True), where_approved())
        .with_for_update()
    ).all()
    if set(admins) <= {user.id}:
        raise UserAdminError(
            f"You cannot {what} the last active administrator: nobody could manage "
            "the portal afterwards. Make another user an administrator first."
        )


def deactivate(db: Session, user: User, *, by: User, now: datetime | None = None) -> None:
    """Deactivate ``user``: every session ends, open enrolment links stop working."""
    now = now or utcnow()
    _refuse_self(user, by, "deactivate")
    if not user.is_active:
        raise UserAdminError("This account is already deactivated.")
    _refuse_last_admin(db, user, "deactivate")
    user.is_active = False
    settle_approval(db, user, now=now)  # nothing awaits approval any more
    ended = end_all_sessions(db, user, "user_deactivated", now=now)
    revoked = revoke_open_invitations(db, user.email, now)
    audit.record(
        db,
        audit.actor_label(by),
        "user.deactivate",
        f"user:{user.id}",
        {"sessions_ended": ended, "links_revoked": revoked},
        now=now,
    )


def reactivate(db: Session, user: User, *, by: User, now: datetime | None = None) -> None:
    """Let a deactivated user sign in again (with the password and 2FA they had).

    Enrolment links revoked at deactivation stay revoked; reset 2FA for a new one.
    """
    now = now or utcnow()
    if user.is_active:
        raise UserAdminError("This account is already active.")
    user.is_active = True
    db.flush()
    audit.record(db, audit.actor_label(by), "user.reactivate", f"user:{user.id}", {}, now=now)


def change_role(
    db: Session,
    user: User,
    role: str,
    authority_code: str | None = None,
    provider_code: str | None = None,
    *,
    by: User,
    now: datetime | None = None,
) -> None:
    """Give ``user`` a new role and organisation; their sessions end (permissions changed)."""
    now = now or utcnow()
    _refuse_self(user, by, "change the role of")
    try:
        authority_id, provider_id = resolve_organisation(db, role, authority_code, provider_code)
    except InvitationError as exc:
        raise UserAdminError(exc.message, field=exc.field) from None
    if (role, authority_id, provider_id) == (user.role, user.authority_id, user.provider_id):
        raise UserAdminError("Nothing to change: the user already has this role and organisation.")
    if not is_admin(role):
        _refuse_last_admin(db, user, "demote")
    old_authority, old_provider = organisation_codes(db, user)
    old_role = user.role
    user.role = role
    user.authority_id = authority_id
    user.provider_id = provider_id
    if needs_approval(role):
        # A new recipient authority, officer or admin is a new account for four-eyes
        # purposes: it waits for an admin other than ``by`` (portal.accounts.approval).
        user.invited_by_id = by.id
        user.approved_at = None
        user.approved_by_id = None
    ended = end_all_sessions(db, user, "role_change", now=now)
    new_authority, new_provider = organisation_codes(db, user)
    audit.record(
        db,
        audit.actor_label(by),
        "user.role_change",
        f"user:{user.id}",
        {
            "from": {"role": old_role, "authority": old_authority, "provider": old_provider},
            "to": {"role": role, "authority": new_authority, "provider": new_provider},
            "sessions_ended": ended,
            "awaiting_approval": not is_approved(user),
        },
        now=now,
    )
    ask_for_approval(db, user)


def reset_2fa(db: Session, user: User, *, by: User, now: datetime | None = None) -> str:
    """Clear ``user``'s authenticator and recovery codes, end their sessions and return the
    token of a 48-hour re-enrolment link (shown to the admin once).

    Until the user follows the link and confirms a new authenticator they cannot sign in.
    An earlier open link for the same user stops working.
    """
    now = now or utcnow()
    _refuse_self(user, by, "reset two-factor authentication for")
    if not user.is_active:
        raise UserAdminError("This account is deactivated. Reactivate it first.")
    user.totp_secret = None
    user.totp_last_step = None
    user.totp_confirmed_at = None
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    ended = end_all_sessions(db, user, "2fa_reset", now=now)
    revoked = revoke_open_invitations(db, user.email, now)
    invitation, token = issue_invitation(
        db,
        email=user.email,
        display_name=user.display_name,
        role=user.role,
        authority_id=user.authority_id,
        provider_id=user.provider_id,
        invited_by=by,
        now=now,
    )
    audit.record(
        db,
        audit.actor_label(by),
        "user.2fa_reset",
        f"user:{user.id}",
        {
            "invitation": invitation.id,
            "expires_at": invitation.expires_at.isoformat(),
            "sessions_ended": ended,
            "links_revoked": revoked,
        },
        now=now,
    )
    return token
