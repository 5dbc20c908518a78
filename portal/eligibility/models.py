"""Decision records: immutable results of an eligibility check (after OPA's decision logs)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, UTCDateTime, hex_digest, one_of, utcnow

REQUEST_OUTCOMES = ("eligible", "partially_eligible", "ineligible", "needs_review")
ITEM_OUTCOMES = ("share", "share_redacted", "withhold", "needs_review")


class Decision(Base):
    """One evaluation of a request. The application never updates or deletes a decision."""

    __tablename__ = "decision"
    __table_args__ = (
        one_of("outcome", REQUEST_OUTCOMES),
        hex_digest("policy_revision"),
        hex_digest("snapshot_sha256"),
        Index("ix_decision_rfa_created", "rfa_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # UUID
    rfa_id: Mapped[int] = mapped_column(ForeignKey("rfa.id"))
    policy_id: Mapped[str] = mapped_column(String(100))
    policy_revision: Mapped[str] = mapped_column(String(64))
    engine_version: Mapped[str] = mapped_column(String(32))
    snapshot_json: Mapped[str] = mapped_column(Text)
    snapshot_sha256: Mapped[str] = mapped_column(String(64))
    results_json: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(24))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DecisionItem(Base):
    """The per-item outcome of a decision, kept as rows so it can be queried. Its wording is
    in the decision's results (``Decision.results_json``), once: a row per item and check
    would store it again, in an append-only table (migration 0031)."""

    __tablename__ = "decision_item"
    __table_args__ = (one_of("outcome", ITEM_OUTCOMES), UniqueConstraint("decision_id", "item_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[str] = mapped_column(ForeignKey("decision.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
