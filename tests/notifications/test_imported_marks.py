"""Imported redaction marks wait on a legal officer like proposed ones (issue 22): `portal
import` tells every active legal officer once per item (an import has no proposer, so any of
them may confirm), and confirming or removing the marks reads the notice for everyone it went
to. Through the real command line (`portal import`, `portal marks …`) on both databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import Result
from sqlalchemy import Engine, select

from portal.accounts.models import User
from portal.cli import main
from portal.config import Settings
from portal.db import make_engine, make_session_factory
from portal.notifications.models import Notification
from portal.redaction.mark_review import propose_term
from portal.registry.models import Item
from portal.sealing import sealer_for
from tests.conftest import DatabaseUnderTest
from tests.support import factories as make

if TYPE_CHECKING:
    from tests.support.cli import Portal

pytest_plugins = ["tests.support.cli"]  # the `portal` fixture

TERM = "Orsolya Venkat"  # fictional; a protected name, never in a notice
REASON = "Identifies a witness or victim at risk"


@dataclass
class World:
    listed: str  # item codes: a candidate of a request, and an item of none
    loose: str
    rfa: str
    first: tuple[int, str]  # (id, e-mail) of two active legal officers
    second: tuple[int, str]
    others: list[int]  # an inactive legal officer, an admin and a requester: never told


@pytest.fixture
def engine(database: DatabaseUnderTest) -> Iterator[Engine]:
    eng = make_engine(database.url)  # `portal init` makes the tables
    yield eng
    eng.dispose()


@pytest.fixture
def world(portal: Portal, engine: Engine) -> World:
    assert portal("init").exit_code == 0
    with make_session_factory(engine)() as session:
        provider = make.provider(session)
        listed, loose = make.item(session, provider), make.item(session, provider)
        authority = make.authority(session)
        rfa = make.rfa(session, authority, items=[listed])
        first, second = make.user(session), make.user(session)
        others = [
            make.user(session, is_active=False),
            make.user(session, "admin"),
            make.user(session, "requester", authority=authority),
        ]
        session.commit()
        return World(
            listed=listed.code, loose=loose.code, rfa=rfa.code,
            first=(first.id, first.email), second=(second.id, second.email),
            others=[user.id for user in others],
        )  # fmt: skip


def _bundle(tmp_path: Path, world: World) -> Path:
    records = [
        {"type": "redaction_mark", "item": world.listed, "code": "IMP-1", "kind": "term",
         "term": TERM, "reason": REASON, "applies": "always"},
        {"type": "redaction_mark", "item": world.listed, "code": "IMP-2", "kind": "text_span",
         "span": [0, 8], "reason": REASON, "applies": "always"},
        {"type": "redaction_mark", "item": world.loose, "code": "IMP-1", "kind": "text_span",
         "span": [2, 9], "reason": REASON, "applies": "without_protection"},
    ]  # fmt: skip
    path = tmp_path / "marks.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def _marks(portal: Portal, *args: str) -> Result:
    result = portal.runner.invoke(main, ["marks", *args], env=portal.env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _notes(engine: Engine, user_id: int, item_code: str) -> list[Notification]:
    with make_session_factory(engine)() as session:
        return list(
            session.scalars(
                select(Notification)
                .where(Notification.user_id == user_id, Notification.topic == f"marks:{item_code}")
                .order_by(Notification.id)
            )
        )


def _unread(engine: Engine, user_id: int, item_code: str) -> int:
    return sum(1 for note in _notes(engine, user_id, item_code) if note.read_at is None)


def test_an_import_tells_the_officers_once_per_item_and_confirming_reads_it_for_all(
    portal: Portal, world: World, engine: Engine, tmp_path: Path
) -> None:
    bundle = _bundle(tmp_path, world)
    imported = portal("import", str(bundle))
    assert imported.exit_code == 0, imported.output
    assert "redaction_mark        3 created" in imported.stdout
    for officer, _email in (world.first, world.second):
        (listed,) = _notes(engine, officer, world.listed)  # two marks, one notice
        assert listed.read_at is None
        assert listed.link == f"/review/{world.rfa}/items/{world.listed}"
        assert listed.subject == (
            f"Redaction marks of {world.listed} await confirmation by a second legal officer"
        )
        (loose,) = _notes(engine, officer, world.loose)
        assert loose.read_at is None and loose.link is None  # no request to review it under
        assert TERM not in listed.subject + loose.subject
    for never in world.others:
        assert _notes(engine, never, world.listed) == _notes(engine, never, world.loose) == []
    again = portal("import", str(bundle))  # nothing new arrives: nobody is told again
    assert again.exit_code == 0 and "nothing to do" in again.stdout
    assert len(_notes(engine, world.first[0], world.listed)) == 1

    # Any officer may confirm an imported mark; once none waits, it is read for everyone.
    _marks(portal, "confirm", world.listed, "--all", "--as", world.first[1])
    for officer, _email in (world.first, world.second):
        assert _unread(engine, officer, world.listed) == 0
        assert _unread(engine, officer, world.loose) == 1  # the other item still waits

    # Removing the loose item's mark takes two officers; the removal reads it for everyone.
    _marks(portal, "remove", world.loose, "IMP-1", "--version", "1", "--as", world.first[1])
    assert _unread(engine, world.second[0], world.loose) == 1
    _marks(
        portal, "confirm-removal", world.loose, "IMP-1", "--version", "2", "--as", world.second[1]
    )
    for officer, _email in (world.first, world.second):
        assert _unread(engine, officer, world.loose) == 0
        assert len(_notes(engine, officer, world.loose)) == 1


def test_an_import_onto_an_item_already_waiting_adds_no_second_notice(
    portal: Portal, world: World, engine: Engine, tmp_path: Path
) -> None:
    """The officer who proposed a mark was not told of it, but is told of the imported ones
    (they did not propose those); the other officer keeps the one notice of the item."""
    sealer = sealer_for(Settings.from_env(portal.env))
    with make_session_factory(engine)() as session:
        item = session.scalars(select(Item).where(Item.code == world.listed)).one()
        first = session.get_one(User, world.first[0])
        propose_term(session, sealer, item, "Convoy Mill", REASON, by=first)
        session.commit()
    assert _notes(engine, world.first[0], world.listed) == []
    assert _unread(engine, world.second[0], world.listed) == 1
    assert portal("import", str(_bundle(tmp_path, world))).exit_code == 0
    assert _unread(engine, world.first[0], world.listed) == 1
    assert len(_notes(engine, world.second[0], world.listed)) == 1

    # The proposer confirms the imported marks but not their own: the item still waits.
    done = _marks(portal, "confirm", world.listed, "--all", "--as", world.first[1])
    assert done.stdout.strip() == (
        "Confirmed: IMP-1, IMP-2. Left for another legal officer (you proposed them): M1."
    )
    assert _unread(engine, world.second[0], world.listed) == 1
    _marks(portal, "confirm", world.listed, "--all", "--as", world.second[1])
    for officer, _email in (world.first, world.second):
        assert _unread(engine, officer, world.listed) == 0
