"""Small helpers shared by the model modules."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import CheckConstraint

HEX_DIGITS = "0123456789abcdef"


def one_of(column: str, values: Iterable[str], name: str | None = None) -> CheckConstraint:
    """A check constraint restricting ``column`` to ``values`` (an enum stored as text)."""
    quoted = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
    return CheckConstraint(f"{column} IN ({quoted})", name=name or f"{column}_valid")


def hex_digest(column: str, length: int = 64) -> CheckConstraint:
    """``column`` is NULL or exactly ``length`` lowercase hex digits.

    Written with nested ``replace`` so the same SQL works on SQLite and PostgreSQL.
    """
    stripped = column
    for digit in HEX_DIGITS:
        stripped = f"replace({stripped}, '{digit}', '')"
    return CheckConstraint(
        f"{column} IS NULL OR (length({column}) = {length} AND {stripped} = '')",
        name=f"{column}_hex",
    )
