"""The mechanism's signing keys and their rotations (issue 20)

``signing_key``: every signing key the mechanism has used (public half only), from when to when,
the transition statement that introduced it with its two signatures, and its revocation.

Revision ID: 0024_signing_keys
Revises: 0020
Create Date: 2026-12-10 00:24:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signing_key",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("algorithm", sa.String(32), nullable=False),
        sa.Column("uid", sa.String(500), nullable=False),
        sa.Column("active_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transition_statement", sa.Text(), nullable=True),
        sa.Column("transition_signature", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.Text(), nullable=True),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_signing_key_fingerprint")),
        sa.CheckConstraint(
            "length(fingerprint) IN (40, 64) AND upper(fingerprint) = fingerprint",
            name=op.f("ck_signing_key_fingerprint_format"),
        ),
        sa.CheckConstraint(
            "(transition_statement IS NULL) = (transition_signature IS NULL)",
            name=op.f("ck_signing_key_transition_complete"),
        ),
        sa.CheckConstraint(
            "(revoked_at IS NULL) = (revocation_reason IS NULL)",
            name=op.f("ck_signing_key_revocation_complete"),
        ),
    )


def downgrade() -> None:
    op.drop_table("signing_key")
