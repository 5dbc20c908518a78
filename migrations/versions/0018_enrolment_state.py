"""enrolment state on the invitation, not in the cookie (issue 18)

``invitation.pending_password_hash``: the argon2 hash of the password chosen at step 1;
``invitation.pending_totp_secret``: the authenticator secret offered at step 2, sealed with the
portal's sealing key (purpose ``enrolment_totp_seed:<invitation id>``). Both are cleared when
the enrolment completes. The session cookie carries neither any more.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 23:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns: a plain ADD COLUMN on both databases (no batch re-creation).
    op.add_column("invitation", sa.Column("pending_password_hash", sa.String(255), nullable=True))
    op.add_column("invitation", sa.Column("pending_totp_secret", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invitation") as batch:
        batch.drop_column("pending_totp_secret")
        batch.drop_column("pending_password_hash")
