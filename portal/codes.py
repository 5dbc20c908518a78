"""Yearly numbered codes (``RFA-2026-0001``, ``PKG-2026-0001``, ``CNS-2026-000001``) and the
one way rows carrying them are added.

A code is its series' prefix, the year and a zero-padded number one above the year's highest
in the (unique) code column. :func:`add_numbered` reads that highest number and flushes the new
rows inside one savepoint. On SQLite the savepoint opens with ``BEGIN IMMEDIATE``
(:func:`portal.db.make_engine`), so no other writer can take a number between the read and the
insert. On PostgreSQL a concurrent transaction inserting the same code makes the flush wait
for it and, once it commits, fail on the unique constraint; the savepoint is rolled back and the
numbers are read again, a few times before giving up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

__all__ = [
    "ATTEMPTS",
    "CodeSeries",
    "CodesBusy",
    "CodesExhausted",
    "CodesUnavailable",
    "add_numbered",
]

#: How many times :func:`add_numbered` reads the numbers again after losing them to a writer.
ATTEMPTS = 5
_SCAN = 50  # codes read at a time while looking for the year's highest well-formed one

Row = TypeVar("Row")


class CodesUnavailable(Exception):
    """No code could be allocated; nothing was added."""


class CodesExhausted(CodesUnavailable):
    """The series has no number left for the year."""


class CodesBusy(CodesUnavailable):
    """Other writers took the numbers at every attempt."""


@dataclass(frozen=True)
class CodeSeries:
    """One yearly series: ``{prefix}-{year:04d}-{number:0{digits}d}`` in ``column``.

    ``last`` is the highest number a year may reach; ``None`` lets the numbers grow past
    ``digits`` digits.
    """

    prefix: str
    column: InstrumentedAttribute[str]
    digits: int = 4
    last: int | None = None

    def year_prefix(self, year: int) -> str:
        return f"{self.prefix}-{year:04d}-"

    def code(self, year: int, number: int) -> str:
        return f"{self.year_prefix(year)}{number:0{self.digits}d}"

    def highest(self, db: Session, year: int) -> int:
        """The year's highest number in the table (0 for none). Codes of another form (imported
        ones, say) are passed over: a code counts only if it is what :meth:`code` makes of its
        number, and such codes sort by length, then text, in the order of their numbers."""
        prefix = self.year_prefix(year)
        query = (
            select(self.column)
            .where(self.column.startswith(prefix, autoescape=True))
            .order_by(func.length(self.column).desc(), self.column.desc())
            .limit(_SCAN)
        )
        offset = 0
        while True:
            codes = db.scalars(query.offset(offset)).all()
            for code in codes:
                tail = code[len(prefix) :]
                if tail.isascii() and tail.isdigit() and code == self.code(year, int(tail)):
                    return int(tail)
            if len(codes) < _SCAN:
                return 0
            offset += _SCAN

    def next_codes(self, db: Session, year: int, count: int = 1) -> list[str]:
        """The ``count`` codes following the year's highest (not reserved: see
        :func:`add_numbered`)."""
        start = self.highest(db, year) + 1
        if self.last is not None and start + count - 1 > self.last:
            raise CodesExhausted(f"the {self.prefix} codes of {year} are exhausted")
        return [self.code(year, number) for number in range(start, start + count)]


def add_numbered(
    db: Session,
    series: CodeSeries,
    year: int,
    build: Callable[[list[str]], Sequence[Row]],
    *,
    count: int = 1,
) -> Sequence[Row]:
    """Add (and flush) the rows ``build`` makes from ``count`` fresh codes of ``series``.

    ``build`` may be called again with other codes when a concurrent writer took the first
    ones; it must only make the rows. Raises :class:`CodesExhausted` or :class:`CodesBusy`,
    with nothing added.
    """
    db.flush()  # what was pending must not fail inside the savepoint and look like a clash
    for _attempt in range(ATTEMPTS):
        try:
            with db.begin_nested():
                rows = build(series.next_codes(db, year, count))
                db.add_all(rows)
                db.flush()
        except IntegrityError:
            continue  # another writer took one of the codes meanwhile: read them again
        return rows
    raise CodesBusy(f"no {series.prefix} code of {year} could be allocated just now")
