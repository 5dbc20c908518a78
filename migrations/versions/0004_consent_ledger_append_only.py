"""consent ledger is append-only at the database level (issue 5)

The application never updates or deletes a consent event (portal.consent.ledger.guard_consents
refuses it in the ORM); these triggers refuse it for raw SQL too, on SQLite and
PostgreSQL. Also an index for the requester's paged request list (newest change first
within an authority).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "consent"
MESSAGE = "the consent ledger is append-only"


def upgrade() -> None:
    op.create_index("ix_rfa_authority_updated", "rfa", ["authority_id", "updated_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION portal_refuse_consent_change() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{MESSAGE}: % on %', TG_OP, TG_TABLE_NAME;
            END;
            $$
            """
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION portal_refuse_consent_change()"
        )
        return
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_{event.lower()} BEFORE {event} ON {TABLE} "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {TABLE}_append_only ON {TABLE}")
        op.execute("DROP FUNCTION portal_refuse_consent_change()")
    else:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER {TABLE}_no_{event}")
    op.drop_index("ix_rfa_authority_updated", table_name="rfa")
