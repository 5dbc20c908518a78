"""a package that replaces a recalled or withdrawn one (issue 17)

``package.replaces_id``: the package of the same request this one replaces after a provider
withdrew consent for some of its items (the replacement holds the items that remain; its
manifest names the package it replaces and the items left out). The original stays as it was
signed and delivered.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 19:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FOREIGN_KEY = "fk_package_replaces_id_package"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Plain ALTER TABLE, as in 0013: a batch would re-create ``package``, which other
        # tables refer to. A downgrade on SQLite leaves the column (see there).
        if "replaces_id" in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("package")}:
            return
        op.execute(
            "ALTER TABLE package ADD COLUMN replaces_id INTEGER "
            f"CONSTRAINT {_FOREIGN_KEY} REFERENCES package (id)"
        )
        return
    op.add_column("package", sa.Column("replaces_id", sa.Integer(), nullable=True))
    op.create_foreign_key(op.f(_FOREIGN_KEY), "package", "package", ["replaces_id"], ["id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return  # the nullable column stays; earlier revisions ignore it
    op.drop_constraint(op.f(_FOREIGN_KEY), "package", type_="foreignkey")
    op.drop_column("package", "replaces_id")
