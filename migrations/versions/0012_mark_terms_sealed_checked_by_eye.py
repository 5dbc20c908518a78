"""the terms of term marks sealed at rest; marks checked by eye (issue 14)

``redaction_mark.term`` (plaintext) becomes ``redaction_mark.term_sealed``: the term sealed
with AES-GCM by ``portal.sealing`` for ``redaction_mark:<item code>/<mark code>``. Existing
terms are sealed here, which needs the portal's sealing key: ``portal init`` passes its sealer
(``config.attributes["sealer"]``); without one, a database that holds term marks is refused
with a message saying so, and nothing changes. The downgrade opens them again, likewise.

``redaction_mark.checked_by_eye_by_id`` / ``checked_by_eye_at``: the legal officer who read an
item and recorded that a confirmed term mark which matched nothing in it is not a missed
redaction (assembly refuses such a mark until then).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 23:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from portal.sealing import SealingKeyUnavailable

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OTHER_KINDS = (
    " OR (kind = 'text_span' AND span_start IS NOT NULL AND span_end > span_start"
    " AND span_start >= 0)"
    " OR (kind = 'pdf_box' AND page IS NOT NULL AND page >= 1 AND x0 IS NOT NULL)"
    " OR (kind = 'image_box' AND x0 IS NOT NULL)"
)
_SEALED_CHECK = "(kind = 'term' AND term_sealed IS NOT NULL AND length(term_sealed) > 0)"
_PLAIN_CHECK = "(kind = 'term' AND term IS NOT NULL AND length(term) > 0)"
_CHECK_NAME = "ck_redaction_mark_kind_fields"


def _purpose(item_code: str, mark_code: str) -> str:
    # As portal.registry.mark_terms.purpose was when this migration was written.
    return f"redaction_mark:{item_code}/{mark_code}"


def _sealer(rows: int, doing: str) -> Any:
    sealer = context.config.attributes.get("sealer")
    if sealer is None:
        raise SealingKeyUnavailable(
            f"{rows} redaction mark term(s) must be {doing} with the portal's sealing key: run "
            "`portal init` (it reads PORTAL_SEALING_KEY_FILE) rather than alembic directly."
        )
    return sealer


def _marks(column: str) -> list[Any]:
    return list(
        op.get_bind().execute(
            sa.text(
                f"SELECT m.id, m.code, i.code, m.{column} FROM redaction_mark m"  # noqa: S608
                f" JOIN item i ON i.id = m.item_id WHERE m.{column} IS NOT NULL"
            )
        )
    )


def _set(column: str, values: list[tuple[int, str]]) -> None:
    statement = sa.text(f"UPDATE redaction_mark SET {column} = :value WHERE id = :id")  # noqa: S608
    for mark_id, value in values:
        op.get_bind().execute(statement, {"id": mark_id, "value": value})


def upgrade() -> None:
    with op.batch_alter_table("redaction_mark") as batch:
        batch.add_column(sa.Column("term_sealed", sa.Text(), nullable=True))
    rows = _marks("term")
    if rows:
        sealer = _sealer(len(rows), "sealed")
        _set(
            "term_sealed",
            [(row[0], sealer.seal(row[3], _purpose(row[2], row[1]))) for row in rows],
        )
    with op.batch_alter_table("redaction_mark") as batch:
        batch.drop_constraint(op.f(_CHECK_NAME), type_="check")
        batch.drop_column("term")
        batch.create_check_constraint(op.f(_CHECK_NAME), sa.text(_SEALED_CHECK + _OTHER_KINDS))
        batch.add_column(sa.Column("checked_by_eye_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("checked_by_eye_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key(
            op.f("fk_redaction_mark_checked_by_eye_by_id_user_account"),
            "user_account",
            ["checked_by_eye_by_id"],
            ["id"],
        )
        batch.create_check_constraint(
            op.f("ck_redaction_mark_checked_by_eye_has_time"),
            sa.text("checked_by_eye_by_id IS NULL OR checked_by_eye_at IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("redaction_mark") as batch:
        batch.add_column(sa.Column("term", sa.String(length=500), nullable=True))
    rows = _marks("term_sealed")
    if rows:
        sealer = _sealer(len(rows), "opened")
        _set("term", [(row[0], sealer.unseal(row[3], _purpose(row[2], row[1]))) for row in rows])
    with op.batch_alter_table("redaction_mark") as batch:
        batch.drop_constraint(op.f("ck_redaction_mark_checked_by_eye_has_time"), type_="check")
        batch.drop_constraint(
            op.f("fk_redaction_mark_checked_by_eye_by_id_user_account"), type_="foreignkey"
        )
        batch.drop_column("checked_by_eye_at")
        batch.drop_column("checked_by_eye_by_id")
        batch.drop_constraint(op.f(_CHECK_NAME), type_="check")
        batch.drop_column("term_sealed")
        batch.create_check_constraint(op.f(_CHECK_NAME), sa.text(_PLAIN_CHECK + _OTHER_KINDS))
