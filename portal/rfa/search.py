"""Repository search for legal officers: filters over items, keyset-paginated by item id.

Keyset pagination (``id > after``, ``limit + 1`` rows) never counts or skips rows, so a
page costs the same wherever it is. Title and place match case-insensitive substrings;
tags match whole tags (case-insensitive) inside the item's JSON list. On SQLite, searched
texts of three characters or more are first narrowed by a trigram full-text index
(:mod:`portal.rfa.search_fts`); PostgreSQL has trigram indexes on the same expressions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Date, Integer, Select, String, cast, column, select, table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from portal.registry.models import ITEM_KINDS, Item
from portal.rfa.search_fts import FTS_TABLE, MIN_CHARS, fts_phrase, has_search_fts

PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
TEXT_MAX = 200
MAX_TAGS = 10
#: Collection dates are looked up in their index only for a range at most this long. SQLite
#: (built without STAT4 histograms) takes any range to be selective and would read most of
#: the table through the index, several times slower than scanning it.
INDEXED_SPAN = timedelta(days=400)


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


class _scanned(FunctionElement[date]):
    """A date column that SQLite will not look up in an index (``+column``); the bare
    column on other databases, whose planners have the statistics to choose."""

    type = Date()
    inherit_cache = True


@compiles(_scanned)
def _scanned_default(element: _scanned, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_scanned, "sqlite")
def _scanned_sqlite(element: _scanned, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.clauses, **kw)


class _folded(FunctionElement[str]):
    """``lower(text)``, except on SQLite, where it is the bare text: SQLite's LIKE already
    ignores case exactly as far as its ``lower()`` folds it (ASCII letters), so the result is
    the same and a scan of 100k items takes half the time."""

    type = String()
    inherit_cache = True


@compiles(_folded)
def _folded_default(element: _folded, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(_folded, "sqlite")
def _folded_sqlite(element: _folded, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


def _collected_at(query: ItemQuery) -> ColumnElement[date]:
    start, end = query.collected_from, query.collected_to
    if start is not None and end is not None and end - start <= INDEXED_SPAN:
        return Item.collected_at  # type: ignore[return-value]
    return _scanned(Item.collected_at)


def _tag_text(tag: str) -> str:
    # The JSON text holds each tag as a JSON string: match it with its quotes.
    return json.dumps(tag.strip().lower())


def conditions(query: ItemQuery) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if query.title.strip():
        found.append(_folded(Item.title).like(_like(query.title.strip()), escape="\\"))
    if query.place.strip():
        found.append(_folded(Item.place).like(_like(query.place.strip()), escape="\\"))
    for tag in query.tags:
        found.append(_folded(cast(Item.tags, String)).like(_like(_tag_text(tag)), escape="\\"))
    if query.kind is not None:
        found.append(Item.kind == query.kind)
    if query.provider_id is not None:
        found.append(Item.provider_id == query.provider_id)
    collected_at = _collected_at(query)
    if query.collected_from is not None:
        found.append(collected_at >= query.collected_from)
    if query.collected_to is not None:
        found.append(collected_at <= query.collected_to)
    return found


_fts = table(FTS_TABLE, column("rowid", Integer))
_S = TypeVar("_S", bound=Select[Any])


def fts_query(query: ItemQuery) -> str | None:
    """The FTS5 query narrowing ``query`` on SQLite: a phrase for each searched text long
    enough to hold a trigram; None when there is none (the search scans)."""
    texts = [("title", query.title.strip().lower()), ("place", query.place.strip().lower())]
    texts += [("tags", _tag_text(tag)) for tag in query.tags]
    phrases = [fts_phrase(name, text) for name, text in texts if len(text) >= MIN_CHARS]
    return " AND ".join(phrases) or None


def matching(db: Session, stmt: _S, query: ItemQuery) -> tuple[_S, ColumnElement[int]]:
    """``stmt`` (over ``item``) restricted to the items ``query`` finds, and the column that
    orders them by item id: on SQLite with the full-text index, its rowid, which FTS5
    returns in order, so that a page stops reading after its last row."""
    stmt = stmt.where(*conditions(query))
    narrowing = fts_query(query) if has_search_fts(db.connection()) else None
    if narrowing is None:
        return stmt, Item.id  # type: ignore[return-value]
    # Joined in FROM: as ``item.id IN (SELECT rowid ... MATCH)`` SQLite scans item (164 ms).
    joined = stmt.join(_fts, _fts.c.rowid == Item.id).where(
        column(FTS_TABLE).op("MATCH", is_comparison=True)(narrowing)
    )
    return joined, _fts.c.rowid


def search(
    db: Session, query: ItemQuery, *, after: int | None = None, limit: int = PAGE_SIZE
) -> ResultPage:
    """One page of matching items in id order, starting after item id ``after``."""
    query.check()
    size = max(1, min(limit, MAX_PAGE_SIZE))
    stmt, key = matching(db, select(Item), query)
    if after is not None:
        stmt = stmt.where(key > after)
    rows = list(db.scalars(stmt.order_by(key).limit(size + 1)))
    more = len(rows) > size
    items = rows[:size]
    return ResultPage(items=items, next_after=items[-1].id if more else None)
