"""The consent ledger and consent requests.

Consent is append-only: grant, decline and revoke are events; the current
state for (item or provider, authority, purpose) is the latest event.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, UTCDateTime, one_of, utcnow

CONSENT_EVENTS = ("grant", "decline", "revoke")
PURPOSES = ("criminal_proceedings",)
CONSENT_REQUEST_STATUSES = ("open", "answered", "withdrawn")


class Consent(Base):
    """One event of the ledger. ``item_id`` NULL means a standing consent for all the
    provider's items."""

    __tablename__ = "consent"
    __table_args__ = (
        one_of("event", CONSENT_EVENTS),
        one_of("purpose", PURPOSES),
        CheckConstraint("event = 'grant' OR expires_at IS NULL", name="only_grants_expire"),
        CheckConstraint(
            "event = 'grant' OR (reason IS NOT NULL AND length(reason) > 0)",
            name="decline_revoke_reason",
        ),
        Index("ix_consent_lookup", "provider_id", "authority_id", "item_id", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("item.id"), index=True)
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"), index=True)
    event: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(40), default="criminal_proceedings")
    conditions: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    consent_request_id: Mapped[int | None] = mapped_column(ForeignKey("consent_request.id"))


#: The columns of a :class:`portal.eligibility.policy.inputs.ConsentEvent`, in its order.
EVENT_COLUMNS = (
    Consent.id,
    Consent.code,
    Consent.event,
    Consent.purpose,
    Consent.conditions,
    Consent.expires_at,
    Consent.reason,
    Consent.recorded_at,
)


class ConsentRequest(Base):
    """A legal officer's request to one provider to consent to sharing items with an authority."""

    __tablename__ = "consent_request"
    __table_args__ = (one_of("status", CONSENT_REQUEST_STATUSES), one_of("purpose", PURPOSES))

    id: Mapped[int] = mapped_column(primary_key=True)
    rfa_id: Mapped[int] = mapped_column(ForeignKey("rfa.id"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider.id"), index=True)
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"))
    purpose: Mapped[str] = mapped_column(String(40), default="criminal_proceedings")
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ConsentRequestItem(Base):
    __tablename__ = "consent_request_item"
    __table_args__ = (UniqueConstraint("consent_request_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    consent_request_id: Mapped[int] = mapped_column(ForeignKey("consent_request.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"), index=True)
