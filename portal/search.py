"""Repository search for legal officers: filters over items, keyset-paginated by item id.

Keyset pagination (``id > after``, ``limit + 1`` rows) never counts or skips rows, so a
page costs the same wherever it is. Title and place match case-insensitive substrings;
tags match whole tags (case-insensitive) inside the item's JSON list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, String, cast, func, select
from sqlalchemy.orm import Session

from portal.models import Item
from portal.models.registry import ITEM_KINDS

PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
TEXT_MAX = 200
MAX_TAGS = 10


class SearchError(ValueError):
    """The search was refused; the message says which filter is wrong."""


@dataclass(frozen=True)
class ItemQuery:
    title: str = ""
    tags: tuple[str, ...] = ()
    kind: str | None = None
    provider_id: int | None = None
    collected_from: date | None = None
    collected_to: date | None = None
    place: str = ""

    def check(self) -> None:
        if len(self.title) > TEXT_MAX or len(self.place) > TEXT_MAX:
            raise SearchError(f"Search texts must be at most {TEXT_MAX} characters.")
        if len(self.tags) > MAX_TAGS:
            raise SearchError(f"Search for at most {MAX_TAGS} tags at once.")
        if self.kind is not None and self.kind not in ITEM_KINDS:
            raise SearchError("Choose a kind of item from the list.")
        if (
            self.collected_from is not None
            and self.collected_to is not None
            and self.collected_to < self.collected_from
        ):
            raise SearchError("The end of the collection period must not be before its start.")


@dataclass(frozen=True)
class ResultPage:
    items: list[Item]
    next_after: int | None  # pass as ``after`` for the next page; None on the last


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def conditions(query: ItemQuery) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if query.title.strip():
        found.append(func.lower(Item.title).like(_like(query.title.strip()), escape="\\"))
    if query.place.strip():
        found.append(func.lower(Item.place).like(_like(query.place.strip()), escape="\\"))
    for tag in query.tags:
        # The JSON text holds each tag as a JSON string: match it with its quotes.
        found.append(
            func.lower(cast(Item.tags, String)).like(
                _like(json.dumps(tag.strip().lower())), escape="\\"
            )
        )
    if query.kind is not None:
        found.append(Item.kind == query.kind)
    if query.provider_id is not None:
        found.append(Item.provider_id == query.provider_id)
    if query.collected_from is not None:
        found.append(Item.collected_at >= query.collected_from)
    if query.collected_to is not None:
        found.append(Item.collected_at <= query.collected_to)
    return found


def search(
    db: Session, query: ItemQuery, *, after: int | None = None, limit: int = PAGE_SIZE
) -> ResultPage:
    """One page of matching items in id order, starting after item id ``after``."""
    query.check()
    size = max(1, min(limit, MAX_PAGE_SIZE))
    stmt = select(Item).where(*conditions(query))
    if after is not None:
        stmt = stmt.where(Item.id > after)
    rows = list(db.scalars(stmt.order_by(Item.id).limit(size + 1)))
    more = len(rows) > size
    items = rows[:size]
    return ResultPage(items=items, next_after=items[-1].id if more else None)
