"""The faster query paths the load benchmark (bench/load.py) led to give the same answers as
the plain ones, on both databases: download counts for a whole package list in one query,
collection-date filters that skip the date index for open or long ranges, and a one-page
search that takes its total from its rows instead of counting again."""

from __future__ import annotations

from datetime import date

from flask import Flask
from sqlalchemy.orm import Session

from portal.packages.downloads import full_download_counts, full_downloads
from portal.rfa.search import PAGE_SIZE, ItemQuery, search
from portal.rfa.triage import search_position
from tests.support import factories as make
from tests.support.recipient import Cipher, make_shipment, signed_in

pytest_plugins = ["tests.support.auth", "tests.support.recipient"]


def test_download_counts_of_a_list_match_the_counts_one_by_one(
    app: Flask, db: Session, cipher: Cipher
) -> None:
    ship = make_shipment(app, db, cipher, download_limit=5)
    client = signed_in(app, ship.recipient)
    url = f"/received/{ship.code}/download"
    assert client.get(url, headers={"Range": "bytes=0-99"}).status_code == 206  # counted
    assert client.get(url, headers={"Range": "bytes=100-"}).status_code == 206  # a resumption
    assert client.get(url).status_code == 200  # counted
    db.expire_all()
    assert full_downloads(db, ship.package_id) == 2
    assert full_download_counts(db, [ship.package_id, ship.package_id + 1000]) == {
        ship.package_id: 2,
        ship.package_id + 1000: 0,
    }
    assert full_download_counts(db, []) == {}
    listing = client.get("/received").get_data(as_text=True)
    assert ">2 of 5</td>" in listing  # the cell carries a data-label for phones


def _items(session: Session, dates: list[date]) -> None:
    provider = make.provider(session, "PRV-D", name="Dates", public_name="Dates")
    for n, day in enumerate(dates):
        make.item(
            session, provider, f"ITM-D{n}", kind="photo", title=f"Photo {n}",
            media_type="image/jpeg", original_filename=f"{n}.jpg", collected_at=day,
            sensitivity="low",
        )  # fmt: skip
    session.commit()


def _codes(session: Session, start: date | None, end: date | None) -> list[str]:
    query = ItemQuery(collected_from=start, collected_to=end)
    return [item.code for item in search(session, query).items]


def test_open_and_long_date_ranges_find_what_short_ones_find(session: Session) -> None:
    _items(session, [date(2010, 5, 1), date(2018, 3, 1), date(2018, 3, 2), date(2024, 1, 9)])
    # open ranges and a ten-year range (searched without the index) ...
    later = ["ITM-D1", "ITM-D2", "ITM-D3"]
    assert _codes(session, date(2015, 1, 1), None) == later
    assert _codes(session, None, date(2018, 3, 1)) == ["ITM-D0", "ITM-D1"]
    assert _codes(session, date(2015, 1, 1), date(2024, 12, 31)) == later
    # ... and a short one (through the index): bounds are inclusive either way
    assert _codes(session, date(2018, 3, 1), date(2018, 3, 2)) == ["ITM-D1", "ITM-D2"]


def test_a_search_of_one_page_totals_its_rows_and_a_longer_one_counts(session: Session) -> None:
    _items(session, [date(2020, 1, 1)] * (PAGE_SIZE + 7))
    few = ItemQuery(title="photo 1")  # Photo 1, 10-19
    first = search(session, few)
    position = search_position(session, few, first, None, 1)
    assert first.next_after is None and len(first.items) == 11
    assert (position.total, position.pages, position.capped) == (11, 1, False)
    many = ItemQuery(title="photo")
    first = search(session, many)
    position = search_position(session, many, first, None, 1)
    assert (position.total, position.pages) == (PAGE_SIZE + 7, 2)
    second = search(session, many, after=first.next_after)
    position = search_position(session, many, second, first.next_after, 2)
    assert (position.total, position.page, position.pages) == (PAGE_SIZE + 7, 2, 2)
    assert len(second.items) == 7
