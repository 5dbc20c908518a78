"""People who sign in: users, invitations and recovery codes."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, UTCDateTime, one_of, utcnow
from portal.pages import labels

if TYPE_CHECKING:
    from portal.registry.models import Authority, Provider

ROLES = ("requester", "legal_officer", "provider", "recipient", "admin")
#: What each role is called where a person is shown: the account link, the dashboard, threads.
ROLE_LABELS = labels.ROLE
#: The shorter names of the user-administration pages (their tables, filter and forms).
ROLE_SHORT_LABELS = {**ROLE_LABELS, "provider": "Provider"}
AUTHORITY_ROLES = ("requester", "recipient")
STAFF_ROLES = ("legal_officer", "admin")
#: Roles whose accounts take effect only once a second admin approves them (four-eyes): they
#: receive evidence (recipient), decide on it (legal officer) or manage accounts and keys (admin).
APPROVAL_ROLES = ("recipient", "legal_officer", "admin")

# A user belongs to exactly the kind of organisation its role implies.
_ROLE_SCOPE = (
    "(role IN ('requester', 'recipient') AND authority_id IS NOT NULL AND provider_id IS NULL)"
    " OR (role = 'provider' AND provider_id IS NOT NULL AND authority_id IS NULL)"
    " OR (role IN ('legal_officer', 'admin') AND authority_id IS NULL AND provider_id IS NULL)"
)


class User(Base):
    __tablename__ = "user_account"
    __table_args__ = (
        one_of("role", ROLES),
        CheckConstraint(_ROLE_SCOPE, name="role_scope"),
        CheckConstraint("failed_logins >= 0", name="failed_logins_nonnegative"),
        CheckConstraint("session_epoch >= 0", name="session_epoch_nonnegative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    authority_id: Mapped[int | None] = mapped_column(ForeignKey("authority.id"), index=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("provider.id"), index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # Sealed (portal.accounts.totp_seeds): read and write it only there. Text since migration
    # 0020; SQLite keeps its declared VARCHAR(64), which it does not enforce.
    totp_secret: Mapped[str | None] = mapped_column(Text().with_variant(String(64), "sqlite"))
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    totp_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Four-eyes on accounts (portal.accounts.approval): who invited (or promoted) the person,
    # and the different admin who approved the account; None until approved.
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The language of the user's pages, mails and documents (portal.pages.i18n.LOCALES); None
    # follows the browser's Accept-Language, then English.
    locale: Mapped[str | None] = mapped_column(String(8))

    authority: Mapped[Authority | None] = relationship(foreign_keys=[authority_id])
    provider: Mapped[Provider | None] = relationship(foreign_keys=[provider_id])


class LoginSession(Base):
    """A server-side login session. The cookie holds a random token; only its sha256 is
    stored, so a database leak does not hand out live sessions."""

    __tablename__ = "login_session"
    __table_args__ = (
        CheckConstraint("expires_at > created_at", name="expires_after_created"),
        CheckConstraint("epoch >= 0", name="epoch_nonnegative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    # The user's session_epoch when the session began; a later epoch ends it.
    epoch: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(40))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))


class RecoveryCode(Base):
    """A single-use 2FA recovery code, stored hashed."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(255))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Invitation(Base):
    """A one-time enrolment link; only the hash of its token is stored."""

    __tablename__ = "invitation"
    __table_args__ = (
        one_of("role", ROLES),
        CheckConstraint(_ROLE_SCOPE, name="role_scope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    authority_id: Mapped[int | None] = mapped_column(ForeignKey("authority.id"))
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("provider.id"))
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The enrolment in progress (portal.accounts.enrolment_state), never in the cookie: the
    # chosen password's argon2 hash and the offered authenticator secret, sealed.
    pending_password_hash: Mapped[str | None] = mapped_column(String(255))
    pending_totp_secret: Mapped[str | None] = mapped_column(Text)
