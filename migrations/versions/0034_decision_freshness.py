"""when each request was last decided and its facts last changed, kept by triggers

The stale decisions' worklist read every decided request on every dashboard (the latest
decision of each by a GROUP BY over all decisions, then each request's candidates and consent
events): 5 of the dashboard's 13 ms with 1,000 decisions on SQLite, growing with every
request ever decided. ``decision_freshness`` holds, per request, the latest decision's time and
the latest time its facts changed (a candidate added, a consent event of a candidate's
provider for its authority), written by triggers on ``decision``, ``rfa_item`` and ``consent``
(``portal.eligibility.freshness``); the stale ones are found from a partial index, and the
re-check flags from another (``ix_rfa_item_flagged``). The table is filled from the history.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 23:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from portal.eligibility.freshness import (
    create_freshness_triggers,
    drop_freshness_triggers,
    fill_freshness,
)

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STALE = sa.text("changed_at > decided_at")


def upgrade() -> None:
    op.create_table(
        "decision_freshness",
        sa.Column("rfa_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["rfa_id"], ["rfa.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rfa_id"),
    )
    op.create_index(
        "ix_decision_freshness_stale",
        "decision_freshness",
        ["decided_at", "rfa_id"],
        sqlite_where=_STALE,
        postgresql_where=_STALE,
    )
    flagged = sa.text("needs_recheck IS 1" if _sqlite() else "needs_recheck IS true")
    op.create_index(
        "ix_rfa_item_flagged",
        "rfa_item",
        ["rfa_id"],
        sqlite_where=flagged,
        postgresql_where=flagged,
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # Portals keep serving while they migrate (docs/deployment.md): a decision, candidate
        # or consent event committed between the fill's reading and the triggers' making would
        # be recorded by neither. Writers of these tables wait for this transaction instead.
        op.execute("LOCK TABLE decision, rfa_item, consent IN SHARE ROW EXCLUSIVE MODE")
    tables = sa.MetaData()
    tables.reflect(
        bind, only=("rfa", "rfa_item", "item", "consent", "decision", "decision_freshness")
    )
    # Filled before the triggers exist, in this transaction: no row is written twice.
    fill_freshness(bind, tables)
    create_freshness_triggers(bind)


def downgrade() -> None:
    drop_freshness_triggers(op.get_bind())
    op.drop_index("ix_rfa_item_flagged", table_name="rfa_item")
    op.drop_index("ix_decision_freshness_stale", table_name="decision_freshness")
    op.drop_table("decision_freshness")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"
