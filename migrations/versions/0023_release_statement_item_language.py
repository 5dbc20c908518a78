"""the signed release statement and the item's language (issue 20)

``package.release_statement_sha256``: the blob key of the statement the worker clearsigns once
a package is released (NULL until then). ``item.language``: a BCP 47 tag for the package's
item index ("" when not recorded).

Revision ID: 0023
Revises: 0020
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from portal.db import hex_digest

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATEMENT = "release_statement_sha256"


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    check = str(hex_digest(_STATEMENT).sqltext)
    if op.get_bind().dialect.name == "sqlite":
        # Plain ALTER TABLE, as in 0013, 0016 and 0019: a batch would re-create ``package``
        # and ``item``, which other tables refer to. A downgrade on SQLite leaves the columns.
        if _STATEMENT not in _columns("package"):
            op.execute(
                f"ALTER TABLE package ADD COLUMN {_STATEMENT} VARCHAR(64) "
                f"CONSTRAINT ck_package_{_STATEMENT}_hex CHECK ({check})"
            )
        if "language" not in _columns("item"):
            op.execute("ALTER TABLE item ADD COLUMN language VARCHAR(35) NOT NULL DEFAULT ''")
        return
    op.add_column("package", sa.Column(_STATEMENT, sa.String(64), nullable=True))
    op.create_check_constraint(op.f(f"ck_package_{_STATEMENT}_hex"), "package", check)
    op.add_column("item", sa.Column("language", sa.String(35), nullable=False, server_default=""))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return  # the columns stay; earlier revisions ignore them
    op.drop_column("item", "language")
    op.drop_constraint(op.f(f"ck_package_{_STATEMENT}_hex"), "package", type_="check")
    op.drop_column("package", _STATEMENT)
