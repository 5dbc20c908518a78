"""initial schema: every table of the domain model

Revision ID: 0001
Revises:
Create Date: 2026-11-22 07:58:22.206142
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "audit_event",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "hash IS NULL OR (length(hash) = 64 AND replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(hash, '0', ''), '1', ''), '2', ''), '3', ''), '4', ''), '5', ''), '6', ''), '7', ''), '8', ''), '9', ''), 'a', ''), 'b', ''), 'c', ''), 'd', ''), 'e', ''), 'f', '') = '')",
            name=op.f("ck_audit_event_hash_hex"),
        ),
        sa.CheckConstraint(
            "prev_hash IS NULL OR (length(prev_hash) = 64 AND replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(prev_hash, '0', ''), '1', ''), '2', ''), '3', ''), '4', ''), '5', ''), '6', ''), '7', ''), '8', ''), '9', ''), 'a', ''), 'b', ''), 'c', ''), 'd', ''), 'e', ''), 'f', '') = '')",
            name=op.f("ck_audit_event_prev_hash_hex"),
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_event")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_event_hash")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_target"), ["target"], unique=False)

    op.create_table(
        "authority",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('war_crimes_unit', 'prosecution', 'court', 'tribunal', 'other')",
            name=op.f("ck_authority_kind_valid"),
        ),
        sa.CheckConstraint(
            "length(country) = 2 AND upper(country) = country",
            name=op.f("ck_authority_country_iso"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authority")),
        sa.UniqueConstraint("code", name=op.f("uq_authority_code")),
    )
    op.create_table(
        "person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("pseudonym", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("at_risk", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "role IN ('witness', 'victim', 'suspect', 'source', 'other')",
            name=op.f("ck_person_role_valid"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
        sa.UniqueConstraint("code", name=op.f("uq_person_code")),
    )
    op.create_table(
        "provider",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("public_name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('ngo', 'individual_representative', 'state', 'un_entity', 'other')",
            name=op.f("ck_provider_kind_valid"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider")),
        sa.UniqueConstraint("code", name=op.f("uq_provider_code")),
    )
    op.create_table(
        "item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("original_filename", sa.String(length=255), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("collected_at", sa.Date(), nullable=True),
        sa.Column("place", sa.String(length=200), nullable=False),
        sa.Column("sensitivity", sa.String(length=16), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("cleared_as_is", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('witness_statement', 'document', 'photo', 'video', 'audio', 'analytical_report', 'archive', 'other')",
            name=op.f("ck_item_kind_valid"),
        ),
        sa.CheckConstraint(
            "sensitivity IN ('low', 'medium', 'high', 'very_high')",
            name=op.f("ck_item_sensitivity_valid"),
        ),
        sa.CheckConstraint(
            "sha256 IS NULL OR (length(sha256) = 64 AND replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(sha256, '0', ''), '1', ''), '2', ''), '3', ''), '4', ''), '5', ''), '6', ''), '7', ''), '8', ''), '9', ''), 'a', ''), 'b', ''), 'c', ''), 'd', ''), 'e', ''), 'f', '') = '')",
            name=op.f("ck_item_sha256_hex"),
        ),
        sa.CheckConstraint("size_bytes >= 0", name=op.f("ck_item_size_nonnegative")),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["provider.id"], name=op.f("fk_item_provider_id_provider")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item")),
        sa.UniqueConstraint("code", name=op.f("uq_item_code")),
    )
    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_item_collected_at"), ["collected_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_item_kind"), ["kind"], unique=False)
        batch_op.create_index(
            "ix_item_provider_collected", ["provider_id", "collected_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_item_sha256"), ["sha256"], unique=False)

    op.create_table(
        "user_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("authority_id", sa.Integer(), nullable=True),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("totp_confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(role IN ('requester', 'recipient') AND authority_id IS NOT NULL AND provider_id IS NULL) OR (role = 'provider' AND provider_id IS NOT NULL AND authority_id IS NULL) OR (role IN ('legal_officer', 'admin') AND authority_id IS NULL AND provider_id IS NULL)",
            name=op.f("ck_user_account_role_scope"),
        ),
        sa.CheckConstraint(
            "role IN ('requester', 'legal_officer', 'provider', 'recipient', 'admin')",
            name=op.f("ck_user_account_role_valid"),
        ),
        sa.CheckConstraint(
            "failed_logins >= 0", name=op.f("ck_user_account_failed_logins_nonnegative")
        ),
        sa.CheckConstraint(
            "session_epoch >= 0", name=op.f("ck_user_account_session_epoch_nonnegative")
        ),
        sa.ForeignKeyConstraint(
            ["authority_id"], ["authority.id"], name=op.f("fk_user_account_authority_id_authority")
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["provider.id"], name=op.f("fk_user_account_provider_id_provider")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account")),
        sa.UniqueConstraint("email", name=op.f("uq_user_account_email")),
    )
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_account_authority_id"), ["authority_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_user_account_provider_id"), ["provider_id"], unique=False
        )

    op.create_table(
        "assessment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("authority_id", sa.Integer(), nullable=False),
        sa.Column("criterion", sa.String(length=32), nullable=False),
        sa.Column("finding", sa.String(length=16), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assessed_by", sa.String(length=200), nullable=False),
        sa.Column("assessed_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "criterion IN ('fair_trial', 'death_penalty', 'witness_protection')",
            name=op.f("ck_assessment_criterion_valid"),
        ),
        sa.CheckConstraint(
            "finding IN ('satisfied', 'not_satisfied')", name=op.f("ck_assessment_finding_valid")
        ),
        sa.CheckConstraint(
            "valid_until IS NULL OR valid_until > assessed_at",
            name=op.f("ck_assessment_valid_after_assessed"),
        ),
        sa.ForeignKeyConstraint(
            ["assessed_by_id"],
            ["user_account.id"],
            name=op.f("fk_assessment_assessed_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["authority_id"], ["authority.id"], name=op.f("fk_assessment_authority_id_authority")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment")),
        sa.UniqueConstraint("authority_id", "code", name=op.f("uq_assessment_authority_id_code")),
    )
    with op.batch_alter_table("assessment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_assessment_authority_id"), ["authority_id"], unique=False
        )

    op.create_table(
        "invitation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("authority_id", sa.Integer(), nullable=True),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("invited_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(role IN ('requester', 'recipient') AND authority_id IS NOT NULL AND provider_id IS NULL) OR (role = 'provider' AND provider_id IS NOT NULL AND authority_id IS NULL) OR (role IN ('legal_officer', 'admin') AND authority_id IS NULL AND provider_id IS NULL)",
            name=op.f("ck_invitation_role_scope"),
        ),
        sa.CheckConstraint(
            "role IN ('requester', 'legal_officer', 'provider', 'recipient', 'admin')",
            name=op.f("ck_invitation_role_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["authority_id"], ["authority.id"], name=op.f("fk_invitation_authority_id_authority")
        ),
        sa.ForeignKeyConstraint(
            ["invited_by_id"],
            ["user_account.id"],
            name=op.f("fk_invitation_invited_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["provider.id"], name=op.f("fk_invitation_provider_id_provider")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitation")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitation_token_hash")),
    )
    op.create_table(
        "item_person",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"], name=op.f("fk_item_person_item_id_item")),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_item_person_person_id_person")
        ),
        sa.PrimaryKeyConstraint("item_id", "person_id", name=op.f("pk_item_person")),
    )
    with op.batch_alter_table("item_person", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_item_person_person_id"), ["person_id"], unique=False)

    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.String(length=2000), nullable=False),
        sa.Column("link", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_notification_user_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
    )
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notification_user_id"), ["user_id"], unique=False)

    op.create_table(
        "recipient_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("authority_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("armored", sa.Text(), nullable=False),
        sa.Column("algorithm", sa.String(length=32), nullable=False),
        sa.Column("uid", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_by", sa.String(length=200), nullable=True),
        sa.Column("verified_by_id", sa.Integer(), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verification_method", sa.String(length=500), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(verified_at IS NULL AND verified_by IS NULL AND verification_method IS NULL) OR (verified_at IS NOT NULL AND verified_by IS NOT NULL AND verification_method IS NOT NULL)",
            name=op.f("ck_recipient_key_verification_complete"),
        ),
        sa.CheckConstraint(
            "length(fingerprint) IN (40, 64) AND upper(fingerprint) = fingerprint",
            name=op.f("ck_recipient_key_fingerprint_format"),
        ),
        sa.ForeignKeyConstraint(
            ["authority_id"], ["authority.id"], name=op.f("fk_recipient_key_authority_id_authority")
        ),
        sa.ForeignKeyConstraint(
            ["verified_by_id"],
            ["user_account.id"],
            name=op.f("fk_recipient_key_verified_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipient_key")),
        sa.UniqueConstraint(
            "authority_id", "fingerprint", name=op.f("uq_recipient_key_authority_id_fingerprint")
        ),
    )
    with op.batch_alter_table("recipient_key", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recipient_key_authority_id"), ["authority_id"], unique=False
        )

    op.create_table(
        "recovery_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=255), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_recovery_code_user_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_code")),
    )
    with op.batch_alter_table("recovery_code", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recovery_code_user_id"), ["user_id"], unique=False)

    op.create_table(
        "redaction_mark",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("term", sa.String(length=500), nullable=True),
        sa.Column("span_start", sa.Integer(), nullable=True),
        sa.Column("span_end", sa.Integer(), nullable=True),
        sa.Column("page", sa.Integer(), nullable=True),
        sa.Column("x0", sa.Float(), nullable=True),
        sa.Column("y0", sa.Float(), nullable=True),
        sa.Column("x1", sa.Float(), nullable=True),
        sa.Column("y1", sa.Float(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("applies", sa.String(length=24), nullable=False),
        sa.Column("review", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(kind = 'term' AND term IS NOT NULL AND length(term) > 0) OR (kind = 'text_span' AND span_start IS NOT NULL AND span_end > span_start AND span_start >= 0) OR (kind = 'pdf_box' AND page IS NOT NULL AND page >= 1 AND x0 IS NOT NULL) OR (kind = 'image_box' AND x0 IS NOT NULL)",
            name=op.f("ck_redaction_mark_kind_fields"),
        ),
        sa.CheckConstraint(
            "applies IN ('always', 'without_protection')",
            name=op.f("ck_redaction_mark_applies_valid"),
        ),
        sa.CheckConstraint(
            "kind IN ('term', 'text_span', 'pdf_box', 'image_box')",
            name=op.f("ck_redaction_mark_kind_valid"),
        ),
        sa.CheckConstraint(
            "review IN ('pending', 'confirmed')", name=op.f("ck_redaction_mark_review_valid")
        ),
        sa.CheckConstraint(
            "x0 IS NULL OR (x0 >= 0 AND y0 >= 0 AND x1 <= 1 AND y1 <= 1 AND x1 > x0 AND y1 > y0)",
            name=op.f("ck_redaction_mark_box_in_unit_square"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["item.id"], name=op.f("fk_redaction_mark_item_id_item")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_redaction_mark_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redaction_mark")),
        sa.UniqueConstraint("item_id", "code", name=op.f("uq_redaction_mark_item_id_code")),
    )
    with op.batch_alter_table("redaction_mark", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_redaction_mark_item_id"), ["item_id"], unique=False)

    op.create_table(
        "rfa",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("authority_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("assigned_to_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("their_reference", sa.String(length=200), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("proceedings_type", sa.String(length=16), nullable=False),
        sa.Column("offences", sa.JSON(), nullable=False),
        sa.Column("persons_concerned", sa.Text(), nullable=False),
        sa.Column("summary_of_facts", sa.Text(), nullable=False),
        sa.Column("assistance_sought", sa.Text(), nullable=False),
        sa.Column("period_from", sa.Date(), nullable=True),
        sa.Column("period_to", sa.Date(), nullable=True),
        sa.Column("places", sa.Text(), nullable=False),
        sa.Column("urgency", sa.String(length=16), nullable=False),
        sa.Column("urgency_justification", sa.Text(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("confidentiality", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "proceedings_type IN ('investigation', 'prosecution', 'trial')",
            name=op.f("ck_rfa_proceedings_type_valid"),
        ),
        sa.CheckConstraint(
            "status = 'draft' OR submitted_at IS NOT NULL", name=op.f("ck_rfa_submitted_at_set")
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'submitted', 'in_review', 'clarification_requested', 'approved', 'partially_approved', 'declined', 'transmitted', 'acknowledged', 'closed', 'withdrawn')",
            name=op.f("ck_rfa_status_valid"),
        ),
        sa.CheckConstraint(
            "urgency = 'normal' OR length(urgency_justification) > 0",
            name=op.f("ck_rfa_urgency_justified"),
        ),
        sa.CheckConstraint(
            "urgency IN ('normal', 'urgent', 'very_urgent')", name=op.f("ck_rfa_urgency_valid")
        ),
        sa.CheckConstraint(
            "period_from IS NULL OR period_to IS NULL OR period_to >= period_from",
            name=op.f("ck_rfa_period_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["assigned_to_id"], ["user_account.id"], name=op.f("fk_rfa_assigned_to_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["authority_id"], ["authority.id"], name=op.f("fk_rfa_authority_id_authority")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["user_account.id"], name=op.f("fk_rfa_created_by_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rfa")),
        sa.UniqueConstraint("code", name=op.f("uq_rfa_code")),
    )
    with op.batch_alter_table("rfa", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rfa_assigned_to_id"), ["assigned_to_id"], unique=False)
        batch_op.create_index("ix_rfa_authority_status", ["authority_id", "status"], unique=False)
        batch_op.create_index("ix_rfa_queue", ["status", "urgency", "submitted_at"], unique=False)

    op.create_table(
        "assurance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rfa_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("given_by", sa.String(length=200), nullable=False),
        sa.Column("given_at", sa.Date(), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('death_penalty')", name=op.f("ck_assurance_kind_valid")),
        sa.CheckConstraint(
            "sha256 IS NULL OR (length(sha256) = 64 AND replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(sha256, '0', ''), '1', ''), '2', ''), '3', ''), '4', ''), '5', ''), '6', ''), '7', ''), '8', ''), '9', ''), 'a', ''), 'b', ''), 'c', ''), 'd', ''), 'e', ''), 'f', '') = '')",
            name=op.f("ck_assurance_sha256_hex"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["user_account.id"],
            name=op.f("fk_assurance_recorded_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(["rfa_id"], ["rfa.id"], name=op.f("fk_assurance_rfa_id_rfa")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assurance")),
    )
    with op.batch_alter_table("assurance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assurance_rfa_id"), ["rfa_id"], unique=False)

    op.create_table(
        "consent_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rfa_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("authority_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "purpose IN ('criminal_proceedings')", name=op.f("ck_consent_request_purpose_valid")
        ),
        sa.CheckConstraint(
            "status IN ('open', 'answered', 'withdrawn')",
            name=op.f("ck_consent_request_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["authority_id"],
            ["authority.id"],
            name=op.f("fk_consent_request_authority_id_authority"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_consent_request_created_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["provider.id"], name=op.f("fk_consent_request_provider_id_provider")
        ),
        sa.ForeignKeyConstraint(["rfa_id"], ["rfa.id"], name=op.f("fk_consent_request_rfa_id_rfa")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_request")),
    )
    with op.batch_alter_table("consent_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_request_provider_id"), ["provider_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_consent_request_rfa_id"), ["rfa_id"], unique=False)

    op.create_table(
        "decision",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("rfa_id", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.String(length=100), nullable=False),
        sa.Column("policy_revision", sa.String(length=64), nullable=False),
        sa.Column("engine_version", sa.String(length=32), nullable=False),
        sa.Column("snapshot_json", sa.Text(), nullable=False),
        sa.Column("snapshot_sha256", sa.String(length=64), nullable=False),
        sa.Column("results_json", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('eligible', 'partially_eligible', 'ineligible', 'needs_review')",
            name=op.f("ck_decision_outcome_valid"),
        ),
        sa.CheckConstraint(
            "policy_revision IS NULL OR (length(policy_revision) = 64 AND replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(policy_revision, '0', ''), '1', ''), '2', ''), '3', ''), '4', ''), '5', ''), '6', ''), '7', ''), '8', ''), '9', ''), 'a', ''), 'b', ''), 'c', ''), 'd', ''), 'e', ''), 'f', '') = '')",
            name=op.f("ck_decision_policy_revision_hex"),
        ),
        sa.CheckConstraint(
            "snapshot_sha256 IS NULL OR (length(snapshot_sha256) = 64 AND replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(snapshot_sha256, '0', ''), '1', ''), '2', ''), '3', ''), '4', ''), '5', ''), '6', ''), '7', ''), '8', ''), '9', ''), 'a', ''), 'b', ''), 'c', ''), 'd', ''), 'e', ''), 'f', '') = '')",
            name=op.f("ck_decision_snapshot_sha256_hex"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["user_account.id"],
            name=op.f("fk_decision_requested_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(["rfa_id"], ["rfa.id"], name=op.f("fk_decision_rfa_id_rfa")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision")),
    )
    with op.batch_alter_table("decision", schema=None) as batch_op:
        batch_op.create_index("ix_decision_rfa_created", ["rfa_id", "created_at"], unique=False)

    op.create_table(
        "message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rfa_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("length(body) > 0", name=op.f("ck_message_body_not_empty")),
        sa.ForeignKeyConstraint(
            ["author_id"], ["user_account.id"], name=op.f("fk_message_author_id_user_account")
        ),
        sa.ForeignKeyConstraint(["rfa_id"], ["rfa.id"], name=op.f("fk_message_rfa_id_rfa")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_rfa_id"), ["rfa_id"], unique=False)

    op.create_table(
        "rfa_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rfa_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("added_by_id", sa.Integer(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("needs_recheck", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["added_by_id"], ["user_account.id"], name=op.f("fk_rfa_item_added_by_id_user_account")
        ),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"], name=op.f("fk_rfa_item_item_id_item")),
        sa.ForeignKeyConstraint(["rfa_id"], ["rfa.id"], name=op.f("fk_rfa_item_rfa_id_rfa")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rfa_item")),
        sa.UniqueConstraint("rfa_id", "item_id", name=op.f("uq_rfa_item_rfa_id_item_id")),
    )
    with op.batch_alter_table("rfa_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rfa_item_item_id"), ["item_id"], unique=False)

    op.create_table(
        "rfa_status_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rfa_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("changed_by_id", sa.Integer(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["changed_by_id"],
            ["user_account.id"],
            name=op.f("fk_rfa_status_change_changed_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["rfa_id"], ["rfa.id"], name=op.f("fk_rfa_status_change_rfa_id_rfa")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rfa_status_change")),
    )
    with op.batch_alter_table("rfa_status_change", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rfa_status_change_rfa_id"), ["rfa_id"], unique=False)

    op.create_table(
        "attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rfa_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "sha256 IS NULL OR (length(sha256) = 64 AND replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(sha256, '0', ''), '1', ''), '2', ''), '3', ''), '4', ''), '5', ''), '6', ''), '7', ''), '8', ''), '9', ''), 'a', ''), 'b', ''), 'c', ''), 'd', ''), 'e', ''), 'f', '') = '')",
            name=op.f("ck_attachment_sha256_hex"),
        ),
        sa.CheckConstraint("size_bytes >= 0", name=op.f("ck_attachment_size_ok")),
        sa.ForeignKeyConstraint(
            ["message_id"], ["message.id"], name=op.f("fk_attachment_message_id_message")
        ),
        sa.ForeignKeyConstraint(["rfa_id"], ["rfa.id"], name=op.f("fk_attachment_rfa_id_rfa")),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"],
            ["user_account.id"],
            name=op.f("fk_attachment_uploaded_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachment")),
    )
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attachment_rfa_id"), ["rfa_id"], unique=False)

    op.create_table(
        "consent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("authority_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("conditions", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("consent_request_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "event = 'grant' OR (reason IS NOT NULL AND length(reason) > 0)",
            name=op.f("ck_consent_decline_revoke_reason"),
        ),
        sa.CheckConstraint(
            "event = 'grant' OR expires_at IS NULL", name=op.f("ck_consent_only_grants_expire")
        ),
        sa.CheckConstraint(
            "event IN ('grant', 'decline', 'revoke')", name=op.f("ck_consent_event_valid")
        ),
        sa.CheckConstraint(
            "purpose IN ('criminal_proceedings')", name=op.f("ck_consent_purpose_valid")
        ),
        sa.ForeignKeyConstraint(
            ["authority_id"], ["authority.id"], name=op.f("fk_consent_authority_id_authority")
        ),
        sa.ForeignKeyConstraint(
            ["consent_request_id"],
            ["consent_request.id"],
            name=op.f("fk_consent_consent_request_id_consent_request"),
        ),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"], name=op.f("fk_consent_item_id_item")),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["provider.id"], name=op.f("fk_consent_provider_id_provider")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["user_account.id"],
            name=op.f("fk_consent_recorded_by_id_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent")),
        sa.UniqueConstraint("code", name=op.f("uq_consent_code")),
    )
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_authority_id"), ["authority_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_consent_item_id"), ["item_id"], unique=False)
        batch_op.create_index(
            "ix_consent_lookup",
            ["provider_id", "authority_id", "item_id", "recorded_at"],
            unique=False,
        )

    op.create_table(
        "consent_request_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consent_request_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consent_request_id"],
            ["consent_request.id"],
            name=op.f("fk_consent_request_item_consent_request_id_consent_request"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["item.id"], name=op.f("fk_consent_request_item_item_id_item")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_request_item")),
        sa.UniqueConstraint(
            "consent_request_id",
            "item_id",
            name=op.f("uq_consent_request_item_consent_request_id_item_id"),
        ),
    )
    with op.batch_alter_table("consent_request_item", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_request_item_item_id"), ["item_id"], unique=False
        )

    op.create_table(
        "decision_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.String(length=36), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('share', 'share_redacted', 'withhold', 'needs_review')",
            name=op.f("ck_decision_item_outcome_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decision.id"], name=op.f("fk_decision_item_decision_id_decision")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["item.id"], name=op.f("fk_decision_item_item_id_item")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_item")),
        sa.UniqueConstraint(
            "decision_id", "item_id", name=op.f("uq_decision_item_decision_id_item_id")
        ),
    )
    with op.batch_alter_table("decision_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_decision_item_item_id"), ["item_id"], unique=False)

    op.create_table(
        "package",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("rfa_id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.String(length=36), nullable=False),
        sa.Column("authority_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("leak_check", sa.JSON(), nullable=True),
        sa.Column("file_sha256", sa.String(length=64), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("signer_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("assembled_by_id", sa.Integer(), nullable=False),
        sa.Column("released_by_id", sa.Integer(), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("download_limit", sa.Integer(), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "file_sha256 IS NULL OR (length(file_sha256) = 64 AND replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(file_sha256, '0', ''), '1', ''), '2', ''), '3', ''), '4', ''), '5', ''), '6', ''), '7', ''), '8', ''), '9', ''), 'a', ''), 'b', ''), 'c', ''), 'd', ''), 'e', ''), 'f', '') = '')",
            name=op.f("ck_package_file_sha256_hex"),
        ),
        sa.CheckConstraint(
            "status <> 'released' OR (released_at IS NOT NULL AND released_by_id IS NOT NULL AND expires_at IS NOT NULL)",
            name=op.f("ck_package_released_fields"),
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'assembling', 'assembled', 'blocked', 'failed', 'released', 'withdrawn', 'recalled', 'expired')",
            name=op.f("ck_package_status_valid"),
        ),
        sa.CheckConstraint(
            "download_limit IS NULL OR download_limit > 0", name=op.f("ck_package_limit_positive")
        ),
        sa.CheckConstraint("progress BETWEEN 0 AND 100", name=op.f("ck_package_progress_percent")),
        sa.CheckConstraint(
            "released_by_id IS NULL OR released_by_id <> assembled_by_id",
            name=op.f("ck_package_four_eyes"),
        ),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_id"],
            ["user_account.id"],
            name=op.f("fk_package_acknowledged_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["assembled_by_id"],
            ["user_account.id"],
            name=op.f("fk_package_assembled_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["authority_id"], ["authority.id"], name=op.f("fk_package_authority_id_authority")
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decision.id"], name=op.f("fk_package_decision_id_decision")
        ),
        sa.ForeignKeyConstraint(
            ["released_by_id"],
            ["user_account.id"],
            name=op.f("fk_package_released_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(["rfa_id"], ["rfa.id"], name=op.f("fk_package_rfa_id_rfa")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_package")),
        sa.UniqueConstraint("code", name=op.f("uq_package_code")),
    )
    with op.batch_alter_table("package", schema=None) as batch_op:
        batch_op.create_index(
            "ix_package_authority_status", ["authority_id", "status"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_package_rfa_id"), ["rfa_id"], unique=False)

    op.create_table(
        "download",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("client_id", sa.String(length=100), nullable=True),
        sa.Column("range_start", sa.BigInteger(), nullable=True),
        sa.Column("bytes_sent", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("bytes_sent >= 0", name=op.f("ck_download_bytes_nonnegative")),
        sa.ForeignKeyConstraint(
            ["package_id"], ["package.id"], name=op.f("fk_download_package_id_package")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_download_user_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_download")),
    )
    with op.batch_alter_table("download", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_download_package_id"), ["package_id"], unique=False)

    op.create_table(
        "package_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("rendition", sa.String(length=16), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("rendition_sha256", sa.String(length=64), nullable=True),
        sa.Column("redaction_count", sa.Integer(), nullable=False),
        sa.Column("consent_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "rendition IN ('redacted', 'as_is')", name=op.f("ck_package_item_rendition_valid")
        ),
        sa.CheckConstraint(
            "rendition_sha256 IS NULL OR (length(rendition_sha256) = 64 AND replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(rendition_sha256, '0', ''), '1', ''), '2', ''), '3', ''), '4', ''), '5', ''), '6', ''), '7', ''), '8', ''), '9', ''), 'a', ''), 'b', ''), 'c', ''), 'd', ''), 'e', ''), 'f', '') = '')",
            name=op.f("ck_package_item_rendition_sha256_hex"),
        ),
        sa.CheckConstraint(
            "source_sha256 IS NULL OR (length(source_sha256) = 64 AND replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(source_sha256, '0', ''), '1', ''), '2', ''), '3', ''), '4', ''), '5', ''), '6', ''), '7', ''), '8', ''), '9', ''), 'a', ''), 'b', ''), 'c', ''), 'd', ''), 'e', ''), 'f', '') = '')",
            name=op.f("ck_package_item_source_sha256_hex"),
        ),
        sa.CheckConstraint(
            "redaction_count >= 0", name=op.f("ck_package_item_redactions_nonnegative")
        ),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["consent.id"], name=op.f("fk_package_item_consent_id_consent")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["item.id"], name=op.f("fk_package_item_item_id_item")
        ),
        sa.ForeignKeyConstraint(
            ["package_id"], ["package.id"], name=op.f("fk_package_item_package_id_package")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_package_item")),
        sa.UniqueConstraint(
            "package_id", "item_id", name=op.f("uq_package_item_package_id_item_id")
        ),
    )
    with op.batch_alter_table("package_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_package_item_item_id"), ["item_id"], unique=False)

    op.create_table(
        "recall",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("consent_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("notice_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "notice_sha256 IS NULL OR (length(notice_sha256) = 64 AND replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(notice_sha256, '0', ''), '1', ''), '2', ''), '3', ''), '4', ''), '5', ''), '6', ''), '7', ''), '8', ''), '9', ''), 'a', ''), 'b', ''), 'c', ''), 'd', ''), 'e', ''), 'f', '') = '')",
            name=op.f("ck_recall_notice_sha256_hex"),
        ),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_id"],
            ["user_account.id"],
            name=op.f("fk_recall_acknowledged_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["consent.id"], name=op.f("fk_recall_consent_id_consent")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_recall_created_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["package_id"], ["package.id"], name=op.f("fk_recall_package_id_package")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recall")),
    )
    with op.batch_alter_table("recall", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recall_package_id"), ["package_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("recall", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recall_package_id"))

    op.drop_table("recall")
    with op.batch_alter_table("package_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_package_item_item_id"))

    op.drop_table("package_item")
    with op.batch_alter_table("download", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_download_package_id"))

    op.drop_table("download")
    with op.batch_alter_table("package", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_package_rfa_id"))
        batch_op.drop_index("ix_package_authority_status")

    op.drop_table("package")
    with op.batch_alter_table("decision_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decision_item_item_id"))

    op.drop_table("decision_item")
    with op.batch_alter_table("consent_request_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_request_item_item_id"))

    op.drop_table("consent_request_item")
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_lookup")
        batch_op.drop_index(batch_op.f("ix_consent_item_id"))
        batch_op.drop_index(batch_op.f("ix_consent_authority_id"))

    op.drop_table("consent")
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachment_rfa_id"))

    op.drop_table("attachment")
    with op.batch_alter_table("rfa_status_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rfa_status_change_rfa_id"))

    op.drop_table("rfa_status_change")
    with op.batch_alter_table("rfa_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rfa_item_item_id"))

    op.drop_table("rfa_item")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_rfa_id"))

    op.drop_table("message")
    with op.batch_alter_table("decision", schema=None) as batch_op:
        batch_op.drop_index("ix_decision_rfa_created")

    op.drop_table("decision")
    with op.batch_alter_table("consent_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_request_rfa_id"))
        batch_op.drop_index(batch_op.f("ix_consent_request_provider_id"))

    op.drop_table("consent_request")
    with op.batch_alter_table("assurance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assurance_rfa_id"))

    op.drop_table("assurance")
    with op.batch_alter_table("rfa", schema=None) as batch_op:
        batch_op.drop_index("ix_rfa_queue")
        batch_op.drop_index("ix_rfa_authority_status")
        batch_op.drop_index(batch_op.f("ix_rfa_assigned_to_id"))

    op.drop_table("rfa")
    with op.batch_alter_table("redaction_mark", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_redaction_mark_item_id"))

    op.drop_table("redaction_mark")
    with op.batch_alter_table("recovery_code", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recovery_code_user_id"))

    op.drop_table("recovery_code")
    with op.batch_alter_table("recipient_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recipient_key_authority_id"))

    op.drop_table("recipient_key")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_user_id"))

    op.drop_table("notification")
    with op.batch_alter_table("item_person", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_item_person_person_id"))

    op.drop_table("item_person")
    op.drop_table("invitation")
    with op.batch_alter_table("assessment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assessment_authority_id"))

    op.drop_table("assessment")
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_account_provider_id"))
        batch_op.drop_index(batch_op.f("ix_user_account_authority_id"))

    op.drop_table("user_account")
    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_item_sha256"))
        batch_op.drop_index("ix_item_provider_collected")
        batch_op.drop_index(batch_op.f("ix_item_kind"))
        batch_op.drop_index(batch_op.f("ix_item_collected_at"))

    op.drop_table("item")
    op.drop_table("provider")
    op.drop_table("person")
    op.drop_table("authority")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_target"))
        batch_op.drop_index(batch_op.f("ix_audit_event_action"))

    op.drop_table("audit_event")
