"""items whose pixels a legal officer checked by eye (issue 15)

``item.pixels_checked_by_id`` / ``pixels_checked_at``: the legal officer who read an item on
which OCR cannot be trusted (a page of Burmese read with low confidence) and recorded that no
protected identifier shows in it beyond what its marks cover; assembly blocks such an item
until then.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_FOREIGN_KEY = "fk_item_pixels_checked_by_id_user_account"
_CHECK = "ck_item_pixels_checked_has_time"
_CHECK_SQL = "pixels_checked_by_id IS NULL OR pixels_checked_at IS NOT NULL"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Plain ALTER TABLE, as in 0005: a batch would re-create ``item``, which other tables
        # refer to (SQLite refuses to drop it with foreign keys on). A downgrade on SQLite
        # leaves the columns (see there): then there is nothing to add.
        if "pixels_checked_at" in {
            c["name"] for c in sa.inspect(op.get_bind()).get_columns("item")
        }:
            return
        op.execute(
            "ALTER TABLE item ADD COLUMN pixels_checked_by_id INTEGER "
            f"CONSTRAINT {_FOREIGN_KEY} REFERENCES user_account (id)"
        )
        op.execute(
            f"ALTER TABLE item ADD COLUMN pixels_checked_at DATETIME CONSTRAINT {_CHECK} "
            f"CHECK ({_CHECK_SQL})"
        )
        return
    op.add_column("item", sa.Column("pixels_checked_by_id", sa.Integer(), nullable=True))
    op.add_column("item", sa.Column("pixels_checked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_foreign_key(
        op.f(_FOREIGN_KEY), "item", "user_account", ["pixels_checked_by_id"], ["id"]
    )
    op.create_check_constraint(op.f(_CHECK), "item", sa.text(_CHECK_SQL))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot drop a column that a constraint names without re-creating the table,
        # and ``item`` cannot be re-created while other rows refer to it: the two nullable
        # columns stay (earlier revisions ignore them; upgrading again finds them there).
        return
    op.drop_constraint(op.f(_CHECK), "item", type_="check")
    op.drop_constraint(op.f(_FOREIGN_KEY), "item", type_="foreignkey")
    op.drop_column("item", "pixels_checked_at")
    op.drop_column("item", "pixels_checked_by_id")
