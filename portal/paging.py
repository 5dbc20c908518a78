"""Numbered pages over a query with a stable order: "page N of M" with previous and next.

The caller's statement must order by a unique key last (e.g. ``..., Rfa.id``) so a row
never appears on two pages. A page number past the end shows the last page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from portal.pages.numerals import whole_number

T = TypeVar("T")
PAGE_SIZE = 50


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    page: int
    pages: int
    total: int
    size: int


#: No listing has this many pages; a larger number is not a page number.
MAX_PAGE = 999_999


def page_number(text: str | None) -> int:
    """A page number from a query string: 1 unless a positive whole number is given."""
    return whole_number(text, maximum=MAX_PAGE) or 1


def paginate(
    db: Session,
    stmt: Select[T],
    page: int,
    size: int = PAGE_SIZE,
    *,
    counted: Select[Any] | None = None,
) -> Page[T]:
    """One page of ``stmt`` (an ordered ``select`` of one entity) and the page count.

    ``counted``: a statement finding the same rows as ``stmt``, written to be counted
    cheaply (``stmt`` may be written to be read in its order; see portal.db.Unindexed)."""
    counting = stmt.order_by(None) if counted is None else counted
    total = db.scalar(select(func.count()).select_from(counting.subquery())) or 0
    pages = max(1, -(-total // size))
    page = min(max(page, 1), pages)
    items = list(db.scalars(stmt.offset((page - 1) * size).limit(size)))
    return Page(items=items, page=page, pages=pages, total=total, size=size)
