"""Packages sent to authorities, their items, downloads and recalls."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, UTCDateTime, hex_digest, one_of, utcnow

PACKAGE_STATUSES = (
    "queued",
    "assembling",
    "assembled",
    "blocked",
    "failed",
    "released",
    "withdrawn",
    "recalled",
    "expired",
)
RENDITIONS = ("redacted", "as_is")


class Package(Base):
    """One encrypted, signed package for one authority, built from one decision."""

    __tablename__ = "package"
    __table_args__ = (
        one_of("status", PACKAGE_STATUSES),
        hex_digest("file_sha256"),
        hex_digest("signature_sha256"),
        hex_digest("release_statement_sha256"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_percent"),
        CheckConstraint(
            "released_by_id IS NULL OR released_by_id <> assembled_by_id",
            name="four_eyes",
        ),
        CheckConstraint(
            "status <> 'released' OR (released_at IS NOT NULL AND released_by_id IS NOT NULL"
            " AND expires_at IS NOT NULL)",
            name="released_fields",
        ),
        CheckConstraint("download_limit IS NULL OR download_limit > 0", name="limit_positive"),
        Index("ix_package_authority_status", "authority_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    rfa_id: Mapped[int] = mapped_column(ForeignKey("rfa.id"), index=True)
    decision_id: Mapped[str] = mapped_column(ForeignKey("decision.id"))
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    stage: Mapped[str] = mapped_column(String(64), default="")
    progress: Mapped[int] = mapped_column(default=0)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    leak_check: Mapped[dict[str, object] | None] = mapped_column(JSON)
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    signer_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # sha256 (blob key) of the detached signature over the ciphertext.
    signature_sha256: Mapped[str | None] = mapped_column(String(64))
    # sha256 (blob key) of the release statement the worker clearsigns once the package is
    # released (portal.packages.release_statement); None until then.
    release_statement_sha256: Mapped[str | None] = mapped_column(String(64))
    assembled_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    released_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    download_limit: Mapped[int | None] = mapped_column()
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # The recalled or withdrawn package of the same request this one replaces (issue 17).
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("package.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)
    # Runs of the assembly started since the package was made or retried (see
    # portal.packages.assembly.watch: a run whose worker died is queued again, up to a bound).
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class PackageItem(Base):
    """An item as it went into a package: source and rendition digests, redactions, consent."""

    __tablename__ = "package_item"
    __table_args__ = (
        one_of("rendition", RENDITIONS),
        hex_digest("source_sha256"),
        hex_digest("rendition_sha256"),
        CheckConstraint("redaction_count >= 0", name="redactions_nonnegative"),
        UniqueConstraint("package_id", "item_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("package.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"), index=True)
    rendition: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(500))
    source_sha256: Mapped[str] = mapped_column(String(64))
    rendition_sha256: Mapped[str | None] = mapped_column(String(64))
    redaction_count: Mapped[int] = mapped_column(default=0)
    consent_id: Mapped[int | None] = mapped_column(ForeignKey("consent.id"))
    # What assembly did to the item, for the package page (codes only, never a term): see
    # portal.packages.assembly.item_report.
    report: Mapped[dict[str, object] | None] = mapped_column(JSON)


class Download(Base):
    """One download (or resumed range) of a package by a recipient or an API client."""

    __tablename__ = "download"
    __table_args__ = (CheckConstraint("bytes_sent >= 0", name="bytes_nonnegative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("package.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    client_id: Mapped[str | None] = mapped_column(String(100))
    range_start: Mapped[int | None] = mapped_column(BigInteger)
    bytes_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Recall(Base):
    """A signed notice that a downloaded package must no longer be used."""

    __tablename__ = "recall"
    __table_args__ = (hex_digest("notice_sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("package.id"), index=True)
    consent_id: Mapped[int | None] = mapped_column(ForeignKey("consent.id"))
    reason: Mapped[str] = mapped_column(Text)
    notice_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    details: Mapped[dict[str, object] | None] = mapped_column(JSON)
