"""Decision records: immutable results of an eligibility check (after OPA's decision logs).

Each item's outcome is in the decision's results (``Decision.results_json``), beside its rule
results and wording; there is no table of them (migration 0033: a check of a large request
wrote 100,000 rows, for good, into an append-only table that only the clearing of re-check
flags read, and a check knows the items it decided without it).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
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


class DecisionFreshness(Base):
    """When a request was last decided, and when its facts last changed: one row per request,
    kept by database triggers (:mod:`portal.eligibility.freshness`), never by the application.

    ``changed_at`` is the latest time a candidate was added to the request or a consent event
    of a candidate's provider for its authority was recorded (standing, or for that item);
    ``decided_at`` the latest decision's time. A decision is stale when ``changed_at`` is
    later (see :func:`portal.web.worklists.stale_decisions`), which the partial index finds
    without reading every decided request.
    """

    __tablename__ = "decision_freshness"
    __table_args__ = (
        Index(
            "ix_decision_freshness_stale",
            "decided_at",
            "rfa_id",
            sqlite_where=text("changed_at > decided_at"),
            postgresql_where=text("changed_at > decided_at"),
        ),
    )

    rfa_id: Mapped[int] = mapped_column(
        ForeignKey("rfa.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
