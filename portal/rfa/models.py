"""Requests for assistance (RFAs), their candidate items, messages and assurances."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, UTCDateTime, hex_digest, one_of, utcnow
from portal.pages import labels

RFA_STATUSES = (
    "draft",
    "submitted",
    "in_review",
    "clarification_requested",
    "approved",
    "partially_approved",
    "declined",
    "transmitted",
    "acknowledged",
    "closed",
    "withdrawn",
)
PROCEEDINGS_TYPES = ("investigation", "prosecution", "trial")
#: In increasing urgency, which is also their alphabetical order: the triage queue lists the
#: most urgent first as ``urgency DESC``, the order ``ix_rfa_triage`` holds (a CASE ranking them
#: would need an expression index, which SQLite's schema reflection cannot read). A new
#: urgency must keep that order (tests/shell/test_migrations.py checks it).
URGENCIES = ("normal", "urgent", "very_urgent")
URGENCY_LABELS = labels.URGENCY
ASSURANCE_KINDS = ("death_penalty",)


class Rfa(Base):
    """A request for assistance from a national authority, following MLA practice
    (EIO Art. 5(1), UNTOC Art. 18(15))."""

    __tablename__ = "rfa"
    __table_args__ = (
        one_of("status", RFA_STATUSES),
        one_of("proceedings_type", PROCEEDINGS_TYPES),
        one_of("urgency", URGENCIES),
        CheckConstraint(
            "period_from IS NULL OR period_to IS NULL OR period_to >= period_from",
            name="period_ordered",
        ),
        CheckConstraint(
            "urgency = 'normal' OR length(urgency_justification) > 0",
            name="urgency_justified",
        ),
        CheckConstraint("status = 'draft' OR submitted_at IS NOT NULL", name="submitted_at_set"),
        Index("ix_rfa_authority_status", "authority_id", "status"),
        # The requester's paged list: newest change first within an authority.
        Index("ix_rfa_authority_updated", "authority_id", "updated_at"),
        # The staff's paged list of every authority's requests, in the same order (deep
        # pages would otherwise sort all 10k requests; bench/load.py), with the status the
        # list filters on: the rows of a deep page are skipped without reading the table.
        Index("ix_rfa_updated", "updated_at", "id", "status"),
        # The officers' worklists: requests overdue or due soon, by status (issue 22).
        Index("ix_rfa_status_deadline", "status", "deadline"),
        # ... and the requests assigned to one officer, read from the index alone.
        Index("ix_rfa_assignee_status", "assigned_to_id", "status", "deadline", "submitted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    status: Mapped[str] = mapped_column(String(32), default="draft")
    their_reference: Mapped[str] = mapped_column(String(200))
    legal_basis: Mapped[str] = mapped_column(Text, default="")
    proceedings_type: Mapped[str] = mapped_column(String(16))
    offences: Mapped[list[str]] = mapped_column(JSON, default=list)
    persons_concerned: Mapped[str] = mapped_column(Text, default="")
    summary_of_facts: Mapped[str] = mapped_column(Text, default="")
    assistance_sought: Mapped[str] = mapped_column(Text, default="")
    period_from: Mapped[date | None] = mapped_column(Date)
    period_to: Mapped[date | None] = mapped_column(Date)
    places: Mapped[str] = mapped_column(Text, default="")
    urgency: Mapped[str] = mapped_column(String(16), default="normal")
    urgency_justification: Mapped[str] = mapped_column(Text, default="")
    deadline: Mapped[date | None] = mapped_column(Date)
    confidentiality: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Optimistic locking: two officers editing the same request cannot overwrite each other.
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


# The triage queue in its order (most urgent, then oldest submitted, first): a page is the
# first rows of this index with an open status, read from the index alone. Sorting every open
# request instead took 3 of the queue's 10 ms with 3,000 open (bench/pages.py).
Index("ix_rfa_triage", Rfa.urgency.desc(), Rfa.submitted_at, Rfa.id, Rfa.status)


class RfaStatusChange(Base):
    """One step of a request's status timeline."""

    __tablename__ = "rfa_status_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    rfa_id: Mapped[int] = mapped_column(ForeignKey("rfa.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RfaItem(Base):
    """A candidate item for a request, selected by a legal officer."""

    __tablename__ = "rfa_item"
    __table_args__ = (UniqueConstraint("rfa_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rfa_id: Mapped[int] = mapped_column(ForeignKey("rfa.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"), index=True)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set when consent changes after the last eligibility check.
    needs_recheck: Mapped[bool] = mapped_column(Boolean, default=False)


# The candidates flagged for a re-check (a revocation since the last check): few rows, found by
# the stale decisions' worklist without reading every candidate (portal.web.worklists).
Index(
    "ix_rfa_item_flagged",
    RfaItem.rfa_id,
    sqlite_where=RfaItem.needs_recheck.is_(True),
    postgresql_where=RfaItem.needs_recheck.is_(True),
)


class Message(Base):
    """A message in a request's clarification thread."""

    __tablename__ = "message"
    __table_args__ = (CheckConstraint("length(body) > 0", name="body_not_empty"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rfa_id: Mapped[int] = mapped_column(ForeignKey("rfa.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Attachment(Base):
    """A file uploaded with a request or message; bytes in the blob store."""

    __tablename__ = "attachment"
    __table_args__ = (hex_digest("sha256"), CheckConstraint("size_bytes >= 0", name="size_ok"))

    id: Mapped[int] = mapped_column(primary_key=True)
    rfa_id: Mapped[int] = mapped_column(ForeignKey("rfa.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Assurance(Base):
    """A written assurance for one request (e.g. that the death penalty will not be sought)."""

    __tablename__ = "assurance"
    __table_args__ = (one_of("kind", ASSURANCE_KINDS), hex_digest("sha256"))

    id: Mapped[int] = mapped_column(primary_key=True)
    rfa_id: Mapped[int] = mapped_column(ForeignKey("rfa.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32), default="death_penalty")
    text: Mapped[str] = mapped_column(Text, default="")
    sha256: Mapped[str | None] = mapped_column(String(64))
    filename: Mapped[str | None] = mapped_column(String(255))
    given_by: Mapped[str] = mapped_column(String(200))
    given_at: Mapped[date] = mapped_column(Date)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
