"""OAuth 2.0 clients of the JSON API (an authority's case-management system), and the access
tokens issued to them.

(Downloads made through the API are ordinary :class:`~portal.models.Download` rows whose
``client_id`` names the client.)

Secrets and tokens are never stored: a client secret and an access token are long random
strings, so their SHA-256 is enough to recognise them and useless to anyone who reads the
database.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, UTCDateTime, hex_digest, utcnow

#: Scopes a client may be given, and what each lets it do.
API_SCOPES = {
    "rfa:write": "Submit requests and write in their clarification threads",
    "rfa:read": "Read the authority's requests, their status and their threads",
    "packages:read": "List and download the authority's packages and recalls",
    "packages:ack": "Acknowledge receipt of packages and recalls",
}


class OAuthClient(Base):
    """A system registered by an admin to act for one authority, with fixed scopes."""

    __tablename__ = "oauth_client"
    __table_args__ = (hex_digest("secret_sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"), index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class OAuthToken(Base):
    """An access token issued to a client (only its SHA-256 is kept)."""

    __tablename__ = "oauth_token"
    __table_args__ = (
        hex_digest("token_sha256"),
        Index("ix_oauth_token_client_id_expires_at", "client_id", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("oauth_client.id"))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
