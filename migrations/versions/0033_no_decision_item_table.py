"""no decision_item table: each item's outcome is in its decision's results

Every check wrote one ``decision_item`` row (decision, item, outcome) per candidate item, in an
append-only table, beside the decision's results (``decision.results_json``), which hold the
same outcomes with their rule results and wording and are what every view, PDF, replay and
package reads. Nothing read the rows but the clearing of re-check flags, which knows the items
it decided without them. A check of a request of 100,000 items spent 0.4 s writing its rows on
SQLite and 1.25 s on PostgreSQL (its two foreign keys checked row by row), and each re-check of
it added 100,000 rows for good.

The rows go with the table; their outcomes stay in the results. A downgrade makes the table
again, with 0003's immutability triggers, and fills it from the stored results.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07 20:15:00
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("portal.migrate")

OUTCOMES = ("share", "share_redacted", "withhold", "needs_review")
MESSAGE = "decision records are immutable"  # 0003's


def upgrade() -> None:
    op.drop_table("decision_item")  # its indexes and triggers go with it


def downgrade() -> None:
    op.create_table(
        "decision_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.String(length=36), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "outcome IN (" + ", ".join(f"'{o}'" for o in OUTCOMES) + ")",
            name=op.f("ck_decision_item_outcome_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decision.id"], name=op.f("fk_decision_item_decision_id_decision")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["item.id"], name=op.f("fk_decision_item_item_id_item")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_item")),
        sa.UniqueConstraint(
            "decision_id", "item_id", name=op.f("uq_decision_item_decision_id_item_id")
        ),
    )
    op.create_index(op.f("ix_decision_item_item_id"), "decision_item", ["item_id"])
    _fill_from_results()
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER decision_item_immutable BEFORE UPDATE OR DELETE ON decision_item "
            "FOR EACH ROW EXECUTE FUNCTION portal_refuse_decision_change()"
        )
        return
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER decision_item_no_{event.lower()} BEFORE {event} ON decision_item "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )


def _fill_from_results() -> None:
    """One row per item of every stored decision, read from its results, one decision at a
    time. Results of format 1 name their item fields (``item_fields``: the item id and the
    outcome among them); a decision whose results hold no such items (none the portal makes;
    seeded benchmark data) gets no rows."""
    bind = op.get_bind()
    table = sa.table(
        "decision_item",
        sa.column("decision_id", sa.String),
        sa.column("item_id", sa.Integer),
        sa.column("outcome", sa.String),
    )
    skipped = 0
    for (decision_id,) in bind.execute(sa.text("SELECT id FROM decision ORDER BY id")).all():
        results = json.loads(
            bind.scalar(
                sa.text("SELECT results_json FROM decision WHERE id = :id"), {"id": decision_id}
            )
        )
        if not isinstance(results, dict) or results.get("format") != 1:
            skipped += 1
            continue
        fields = results.get("item_fields")
        if not isinstance(fields, list):
            skipped += 1
            continue
        item_id, outcome = fields.index("item_id"), fields.index("outcome")
        rows = [
            {"decision_id": decision_id, "item_id": item[item_id], "outcome": item[outcome]}
            for item in results.get("items", [])
        ]
        if rows:
            bind.execute(sa.insert(table), rows)
    if skipped:
        log.warning(
            "%d decisions hold no item rows in their results: no decision_item rows", skipped
        )
