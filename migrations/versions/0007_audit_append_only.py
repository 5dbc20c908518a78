"""audit log is append-only at the database level (issue 8)

The application only ever appends audit events (portal.audit.record); these triggers
refuse UPDATE and DELETE of ``audit_event`` rows for raw SQL too, on SQLite and
PostgreSQL. The hash chain still detects tampering by someone who can drop the triggers
(a database superuser); the triggers stop everyone else, and mistakes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "audit_event"
MESSAGE = "the audit log is append-only"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION portal_refuse_audit_change() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{MESSAGE}: % on %', TG_OP, TG_TABLE_NAME;
            END;
            $$
            """
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION portal_refuse_audit_change()"
        )
        # TRUNCATE skips row triggers: refuse it with a statement trigger.
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION portal_refuse_audit_change()"
        )
        return
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_{event.lower()} BEFORE {event} ON {TABLE} "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {TABLE}_no_truncate ON {TABLE}")
        op.execute(f"DROP TRIGGER {TABLE}_append_only ON {TABLE}")
        op.execute("DROP FUNCTION portal_refuse_audit_change()")
        return
    for event in ("update", "delete"):
        op.execute(f"DROP TRIGGER {TABLE}_no_{event}")
