"""protected identifiers of persons at risk, sealed at rest (issue 14)

A new table only: ``protected_identifier`` (a person's name, alias, phone number... sealed
with AES-GCM by ``portal.sealing``; the plaintext is never stored), retired instead of deleted.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The kinds as they were when this migration was written (portal.registry.models).
KINDS = ("name", "alias", "transliteration", "phone", "id_number", "place", "other")


def upgrade() -> None:
    kinds = ", ".join(f"'{kind}'" for kind in KINDS)
    op.create_table(
        "protected_identifier",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(f"kind IN ({kinds})", name=op.f("ck_protected_identifier_kind_valid")),
        sa.CheckConstraint(
            "retired_by_id IS NULL OR retired_at IS NOT NULL",
            name=op.f("ck_protected_identifier_retired_has_time"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_protected_identifier_person_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_protected_identifier_created_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["retired_by_id"],
            ["user_account.id"],
            name=op.f("fk_protected_identifier_retired_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_protected_identifier")),
        sa.UniqueConstraint("code", name=op.f("uq_protected_identifier_code")),
    )
    with op.batch_alter_table("protected_identifier", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_protected_identifier_person_id"), ["person_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("protected_identifier", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_protected_identifier_person_id"))
    op.drop_table("protected_identifier")
