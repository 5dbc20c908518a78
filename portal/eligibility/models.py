"""Decision records: immutable results of an eligibility check (after OPA's decision logs).

Each item's outcome is in the decision's results (``Decision.results_json``), beside its rule
results and wording; there is no table of them (migration 0033: a check of a large request
wrote 100,000 rows, for good, into an append-only table that only the clearing of re-check
flags read, and a check knows the items it decided without it).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, UTCDateTime, hex_digest, one_of, utcnow

REQUEST_OUTCOMES = ("eligible", "partially_eligible", "ineligible", "needs_review")


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
