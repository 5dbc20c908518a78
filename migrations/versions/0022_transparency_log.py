"""the transparency log: leaves, complete subtrees, signed checkpoints (issue 20)

Three append-only tables (``portal.transparency.models``): triggers refuse UPDATE and DELETE
on SQLite and PostgreSQL (and TRUNCATE on PostgreSQL), as for the audit log (0007). The
leaves are filled by the worker from the audit log (``portal.transparency.log.catch_up``), so
the migration itself writes no rows.

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-06 00:22:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("transparency_leaf", "transparency_node", "transparency_checkpoint")
MESSAGE = "the transparency log is append-only"
_HEX_DIGITS = "0123456789abcdef"


def _hex_check(column: str) -> str:
    """The same SQL as portal.db.hex_digest (NULL or 64 lowercase hex digits)."""
    stripped = column
    for digit in _HEX_DIGITS:
        stripped = f"replace({stripped}, '{digit}', '')"
    return f"{column} IS NULL OR (length({column}) = 64 AND {stripped} = '')"


def upgrade() -> None:
    op.create_table(
        "transparency_leaf",
        sa.Column("leaf_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("leaf_hash", sa.String(64), nullable=False),
        sa.CheckConstraint(_hex_check("leaf_hash"), name="ck_transparency_leaf_leaf_hash_hex"),
        sa.PrimaryKeyConstraint("leaf_index", name="pk_transparency_leaf"),
        sa.UniqueConstraint("leaf_hash", name="uq_transparency_leaf_leaf_hash"),
    )
    op.create_table(
        "transparency_node",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("node_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint(_hex_check("hash"), name="ck_transparency_node_hash_hex"),
        sa.PrimaryKeyConstraint("level", "node_index", name="pk_transparency_node"),
    )
    op.create_table(
        "transparency_checkpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.String(64), nullable=False),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("signer_fingerprint", sa.String(64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            _hex_check("root_hash"), name="ck_transparency_checkpoint_root_hash_hex"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_transparency_checkpoint"),
        sa.UniqueConstraint(
            "tree_size",
            "signer_fingerprint",
            name="uq_transparency_checkpoint_tree_size_signer_fingerprint",
        ),
    )
    op.create_index(
        "ix_transparency_checkpoint_tree_size", "transparency_checkpoint", ["tree_size"]
    )
    _append_only()


def _append_only() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION portal_refuse_transparency_change() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{MESSAGE}: % on %', TG_OP, TG_TABLE_NAME;
            END;
            $$
            """
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION portal_refuse_transparency_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION portal_refuse_transparency_change()"
            )
        return
    for table in TABLES:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute("DROP FUNCTION portal_refuse_transparency_change()")
    else:
        for table in TABLES:
            for event in ("update", "delete"):
                op.execute(f"DROP TRIGGER {table}_no_{event}")
    op.drop_index("ix_transparency_checkpoint_tree_size", table_name="transparency_checkpoint")
    for table in reversed(TABLES):
        op.drop_table(table)
