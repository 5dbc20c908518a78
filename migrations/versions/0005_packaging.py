"""packaging: package signature, key verification and revocation, clearances (issue 6)

Additive columns only:

- ``package.signature_sha256``: blob key of the detached signature over the ciphertext;
- ``recipient_key.revoked_by_id`` / ``revocation_reason`` / ``imported_by_id``;
- ``item.cleared_by_id`` / ``cleared_at``: who cleared an unredactable item as-is, and when.

SQLite cannot add a constraint to an existing table without rebuilding it, and rebuilding
a table other rows point at fails with foreign keys on; but it accepts a column with an
inline ``REFERENCES`` and ``CHECK``. So SQLite gets plain ``ALTER TABLE ... ADD COLUMN``
statements and PostgreSQL named constraints.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, column, referred table) of the new foreign keys.
FOREIGN_KEYS = (
    ("recipient_key", "revoked_by_id", "user_account"),
    ("recipient_key", "imported_by_id", "user_account"),
    ("item", "cleared_by_id", "user_account"),
)
HEX_CHECK = "ck_package_signature_sha256_hex"


def _hex_check(column: str) -> str:
    """The same SQL as portal.db.hex_digest (NULL or 64 lowercase hex digits)."""
    stripped = column
    for digit in "0123456789abcdef":
        stripped = f"replace({stripped}, '{digit}', '')"
    return f"{column} IS NULL OR (length({column}) = 64 AND {stripped} = '')"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE package ADD COLUMN signature_sha256 VARCHAR(64) "
            f"CONSTRAINT {HEX_CHECK} CHECK ({_hex_check('signature_sha256')})"
        )
        for table, column, referred in FOREIGN_KEYS:
            op.execute(
                f"ALTER TABLE {table} ADD COLUMN {column} INTEGER "
                f"CONSTRAINT fk_{table}_{column}_{referred} REFERENCES {referred} (id)"
            )
        op.execute("ALTER TABLE recipient_key ADD COLUMN revocation_reason TEXT")
        op.execute("ALTER TABLE item ADD COLUMN cleared_at DATETIME")
        return
    op.add_column("package", sa.Column("signature_sha256", sa.String(length=64), nullable=True))
    op.create_check_constraint(HEX_CHECK, "package", _hex_check("signature_sha256"))
    for table, column, referred in FOREIGN_KEYS:
        op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
        op.create_foreign_key(f"fk_{table}_{column}_{referred}", table, referred, [column], ["id"])
    op.add_column("recipient_key", sa.Column("revocation_reason", sa.Text(), nullable=True))
    op.add_column("item", sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:
        op.drop_constraint(HEX_CHECK, "package", type_="check")
        for table, column, referred in FOREIGN_KEYS:
            op.drop_constraint(f"fk_{table}_{column}_{referred}", table, type_="foreignkey")
    columns = {
        "package": ["signature_sha256"],
        "recipient_key": ["revoked_by_id", "imported_by_id", "revocation_reason"],
        "item": ["cleared_by_id", "cleared_at"],
    }
    for table, names in columns.items():
        with op.batch_alter_table(table, recreate="always" if sqlite else "auto") as batch_op:
            for name in names:
                batch_op.drop_column(name)
