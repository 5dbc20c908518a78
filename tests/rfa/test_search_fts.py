"""The repository search finds the same items with SQLite's trigram index as a plain LIKE
scan does (portal.rfa.search_fts), whatever the text: Arabic, Burmese, short texts, LIKE
wildcards, quotes; and the index follows inserts, updates and deletes.

The reference is the search's own conditions without the index (``conditions``), every page
read; on PostgreSQL the same tests run against its trigram indexes' plain statements.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from portal.registry.models import Item, Provider
from portal.rfa.search import ItemQuery, conditions, fts_query, matching, search
from portal.rfa.search_fts import has_search_fts, sqlite_has_trigram_fts
from tests.support import factories as make

TITLES = [
    "Witness statement, North Market",
    "WITNESS STATEMENT 2",
    "Bridge 50% destroyed",
    "bridge 5000 destroyed",
    "file_name_x",
    "fileXnameXx",
    'He said "stop" twice',
    "back\\slash",
    "شهادة الشاهد في السوق",
    "صورة الجسر المدمر",
    "ထွက်ဆိုချက် ဈေးကွက်",
    "မြန်မာ ဓာတ်ပုံ",
    "Café José",
    "CAFÉ JOSÉ",
    "ab",
    "",
]
PLACES = ["North Market", "السوق القديم", "ရန်ကုန်", "50% Square", ""]
TAGS = [["shelling"], ["siege", "looting"], ["حصار"], ["အကျဉ်း"], ["a_b"], []]

QUERIES = [
    *(ItemQuery(title=t) for t in ("witness", "WIT", "wi", "w", "statement 2", "nothing here")),
    *(ItemQuery(title=t) for t in ("%", "50%", "0%", "_", "e_n", "file_name", "%destroyed")),
    *(ItemQuery(title=t) for t in ('"stop"', '"', 'd "s', "\\", "k\\s", "  market  ")),
    *(ItemQuery(title=t) for t in ("الشاهد", "شا", "ش", "الجسر", "سوق")),
    *(ItemQuery(title=t) for t in ("ထွက်", "ဈေး", "မြ", "ဓာတ်ပုံ")),
    *(ItemQuery(title=t) for t in ("café", "CAFÉ", "é", "josé", "afé j")),
    *(ItemQuery(place=p) for p in ("market", "القديم", "ရန်", "50%", "%")),
    ItemQuery(tags=("siege",)),
    ItemQuery(tags=("حصار",)),
    ItemQuery(tags=("အကျဉ်း",)),
    ItemQuery(tags=("a_b",)),
    ItemQuery(tags=("a%b",)),
    ItemQuery(title="witness", place="north", tags=("shelling",)),
    ItemQuery(title="de", place="market"),
]
#: The queries of QUERIES that find nothing in TITLES (a literal "%" before "destroyed").
FINDING_NOTHING = [
    ItemQuery(title="nothing here"),
    ItemQuery(title="%destroyed"),
    ItemQuery(tags=("a%b",)),
    ItemQuery(title="de", place="market"),
]


def _seed(db: Session, titles: list[str]) -> None:
    provider = make.provider(db)
    for n, title in enumerate(titles):
        make.item(
            db, provider, title=title, place=PLACES[n % len(PLACES)], tags=TAGS[n % len(TAGS)]
        )
    db.commit()


def _plain(db: Session, query: ItemQuery) -> list[int]:
    """The reference: the search's conditions scanned, no index."""
    return list(db.scalars(select(Item.id).where(*conditions(query)).order_by(Item.id)))


def _searched(db: Session, query: ItemQuery) -> list[int]:
    """Every page of the search, three items a page (keyset paging through the index)."""
    found: list[int] = []
    after = None
    while True:
        page = search(db, query, after=after, limit=3)
        found += [item.id for item in page.items]
        if page.next_after is None:
            return found
        after = page.next_after


def _integrity_check(db: Session) -> None:
    """SQLite checks the index against the item rows (rank 1: against the content table
    too); an index out of step raises."""
    if db.get_bind().dialect.name == "sqlite":
        db.execute(text("INSERT INTO item_search(item_search, rank) VALUES ('integrity-check', 1)"))


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: repr(q.title or q.place or q.tags))
def test_search_finds_what_a_plain_scan_finds(session: Session, query: ItemQuery) -> None:
    _seed(session, TITLES * 2)
    assert _searched(session, query) == _plain(session, query)


def test_the_reference_is_not_empty(session: Session) -> None:
    """The comparisons above compare real matches: most queries find something."""
    _seed(session, TITLES)
    assert [query for query in QUERIES if not _plain(session, query)] == FINDING_NOTHING


@pytest.mark.parametrize(
    ("query", "narrowed"),
    [
        (ItemQuery(title="witness"), 'title : "witness"'),
        (ItemQuery(title="  WiTness "), 'title : "witness"'),
        (ItemQuery(title='say "x"'), 'title : "say ""x"""'),
        (ItemQuery(title="wi"), None),
        (ItemQuery(title="ش"), None),
        (ItemQuery(place="مدينة"), 'place : "مدينة"'),
        (ItemQuery(tags=("a",)), 'tags : """a"""'),
        (ItemQuery(title="wi", place="market"), 'place : "market"'),
        (ItemQuery(kind="photo"), None),
    ],
)
def test_which_texts_the_index_narrows(query: ItemQuery, narrowed: str | None) -> None:
    """Texts of three characters or more, lower-cased, quotes doubled (one FTS5 phrase)."""
    assert fts_query(query) == narrowed


def test_sqlite_reads_a_rare_title_from_the_index(session: Session) -> None:
    """The plan starts from the FTS table, in rowid order (no sort), and looks each item up
    by id, for a long enough text; it scans item for a short one."""
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("the FTS index is SQLite's; PostgreSQL's plans: tests/shell/test_migrations")
    _seed(session, TITLES)

    def plan(query: ItemQuery) -> list[str]:
        stmt, key = matching(session, select(Item.id), query)
        sql = stmt.order_by(key).compile(
            dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
        )
        rows = session.execute(text(f"EXPLAIN QUERY PLAN {sql}")).all()
        return [str(row[-1]) for row in rows]

    rare = plan(ItemQuery(title="no such title"))
    assert rare[0].startswith("SCAN item_search VIRTUAL TABLE INDEX"), rare
    assert rare[1:] == ["SEARCH item USING INTEGER PRIMARY KEY (rowid=?)"], rare
    assert plan(ItemQuery(title="wi")) == ["SCAN item"]


def test_the_index_follows_updates_and_deletes(session: Session) -> None:
    provider = make.provider(session)
    kept = make.item(session, provider, title="الشاهد الأول", place="North Market")
    changed = make.item(session, provider, title="ထွက်ဆိုချက် old", tags=["siege"])
    gone = make.item(session, provider, title="to be deleted", place="Old Camp")
    session.commit()
    changed.title = "renamed statement"
    changed.tags = ["looting"]
    session.commit()
    session.execute(update(Item).where(Item.id == kept.id).values(place="South Harbour"))
    session.execute(delete(Item).where(Item.id == gone.id))
    session.commit()
    _integrity_check(session)

    def ids(query: ItemQuery) -> list[int]:
        found = _searched(session, query)
        assert found == _plain(session, query)
        return found

    assert ids(ItemQuery(title="ထွက်ဆို")) == []
    assert ids(ItemQuery(title="renamed")) == [changed.id]
    assert ids(ItemQuery(tags=("siege",))) == []
    assert ids(ItemQuery(tags=("looting",))) == [changed.id]
    assert ids(ItemQuery(place="north")) == []
    assert ids(ItemQuery(place="harbour")) == [kept.id]
    assert ids(ItemQuery(title="deleted")) == []
    assert ids(ItemQuery(place="old camp")) == []


def test_an_index_out_of_step_is_detected(session: Session) -> None:
    """The integrity check the tests above rely on does fail when the index is stale."""
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("the FTS index is SQLite's")
    make.item(session, make.provider(session), title="indexed title")
    session.commit()
    session.execute(text("DROP TRIGGER item_search_update"))
    session.execute(update(Item).values(title="a title the index never saw"))
    session.commit()
    with pytest.raises(DBAPIError):
        _integrity_check(session)


# Latin (both cases, an accent), LIKE's wildcards and escape, quotes, Arabic, Burmese marks
ALPHABET = st.sampled_from([*"aAbB _%\\\"'xé", *"\u0634\u0627\u0644", *"ဈေးက်"])
TEXTS = st.text(ALPHABET, max_size=12)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    titles=st.lists(TEXTS, min_size=1, max_size=8),
    picks=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 12), st.integers(1, 6))),
    others=st.lists(TEXTS, max_size=4),
)
def test_any_text_is_found_as_by_a_plain_scan(
    session: Session,
    titles: list[str],
    picks: list[tuple[int, int, int]],
    others: list[str],
) -> None:
    """Queries cut from the titles (so most match) or made up; items deleted between
    examples, so the index also follows deletes."""
    session.execute(delete(Item))
    if session.scalar(select(Provider.id)) is None:
        make.provider(session)
    provider = session.scalars(select(Provider)).one()
    for title in titles:
        make.item(session, provider, title=title)
    session.commit()
    cuts = [titles[i % len(titles)][start : start + size] for i, start, size in picks]
    for searched in cuts + others:
        query = ItemQuery(title=searched)
        assert _searched(session, query) == _plain(session, query), searched
    _integrity_check(session)


def test_the_index_is_made_only_where_sqlite_can_make_it(session: Session) -> None:
    """This SQLite (3.34 or later, FTS5 compiled in) has the index; an older library would
    get none and be searched by scanning; PostgreSQL never gets one."""
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        assert not has_search_fts(conn)
        return
    version = conn.exec_driver_sql("SELECT sqlite_version()").scalar_one()
    expected = tuple(int(part) for part in version.split(".")) >= (3, 34)
    assert sqlite_has_trigram_fts(conn) is expected
    assert has_search_fts(conn) is expected
