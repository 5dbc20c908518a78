"""Every package is checked against the register of protected identifiers, not only its items'
marks: real files, real gpg, a real decision.

An item with no mark at all whose text names a registered identifier of a person at risk is
released redacted to an authority without witness-protection capacity (the package's files
hold the name nowhere), and shared as it is to an authority with capacity unless a mark of
that person applies always; a file that cannot be redacted and names an identifier blocks
the package, naming the file and the identifier's code, never the name.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pdfminer.high_level import extract_text
from sqlalchemy import Engine, select

from portal import audit
from portal.config import Settings
from portal.packages.assembly.assemble import AssemblyFailed, assemble_package
from portal.packages.assembly.manifest import MANIFEST_PATH, parse_manifest
from portal.packages.models import Package, PackageItem
from portal.redaction.leakcheck import check_files
from portal.registry.models import Item
from portal.sealing import Sealer
from portal.state import PortalState, build_state
from tests.packages.test_assemble import open_package, package_row
from tests.support import factories as make
from tests.support.identifiers import register
from tests.support.package_world import (
    SECRET_TERM,
    World,
    _add_item,
    build_world,
    lapse_witness_protection,
    new_package,
    recheck,
    signing_settings,
)

NAME = "Ottilie Brannvik Sorel"  # fictional; registered for a person at risk
NOTES = f"Field notes, day 3.\nA farmer said {NAME} hid in the mill before the raid.\n"
ITEM = "ITM-N0001"  # text, no mark, linked to no person
VIDEO = "ITM-N0002"  # cleared as-is; cannot be redacted


@pytest.fixture
def state(settings: Settings, engine: Engine) -> Iterator[PortalState]:
    yield build_state(signing_settings(settings), engine=engine)


def _world(
    state: PortalState,
    *,
    capacity: bool,
    always: bool = False,
    video: bool = False,
    place: str | None = None,
) -> tuple[World, str]:
    """The package world, a person at risk whose name is registered and named in an item with
    no mark (and, given, a place of theirs); returns the world and the name's code."""
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer)
        person = make.person(session)
        code = register(session, state.sealer, person, NAME).code
        if place is not None:
            register(session, state.sealer, person, place, "place")
        _add_item(session, state.blobs, world, ITEM, "text/plain", "notes.txt", NOTES.encode(), [])
        if video:
            data = b"\x00\x00\x00\x18ftypmp42 subtitle: " + NAME.encode()
            _add_item(
                session, state.blobs, world, VIDEO, "video/mp4", "clip.mp4", data, [], cleared=True
            )
        if always:  # a mark elsewhere says this person's identity leaves for no authority
            other = session.scalars(select(Item).where(Item.code == "ITM-T0002")).one()
            make.redaction_mark(
                session, other, person=person, kind="text_span", span_start=0, span_end=5,
                applies="always",
            )  # fmt: skip
        if not capacity:
            lapse_witness_protection(session, world)
        recheck(session, world)
        session.commit()
    return world, code


def _item_row(state: PortalState, package_id: int, code: str) -> PackageItem:
    with state.sessions() as session:
        row = session.scalars(
            select(PackageItem)
            .join(Item, Item.id == PackageItem.item_id)
            .where(PackageItem.package_id == package_id, Item.code == code)
        ).one()
        session.expunge(row)
        return row


def _files(bag: Path) -> list[tuple[str, Path]]:
    return [(str(p.relative_to(bag)), p) for p in sorted(bag.rglob("*")) if p.is_file()]


def test_no_capacity_an_unmarked_item_is_released_redacted(
    state: PortalState, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    world, code = _world(state, capacity=False)
    package_id = new_package(state, world)
    assert _item_row(state, package_id, ITEM).rendition == "as_is"  # as planned: no mark

    assemble_package(state, package_id)

    package = package_row(state, package_id)
    assert package.status == "assembled"
    assert package.leak_check is not None and package.leak_check["clean"] is True
    row = _item_row(state, package_id, ITEM)
    assert row.rendition == "redacted" and row.path.endswith(".pdf")
    assert row.redaction_count >= 1
    bag = open_package(state, package, tmp_path)
    manifest = parse_manifest((bag / MANIFEST_PATH).read_bytes())
    entry = next(e for e in manifest["items"] if e["code"] == ITEM)
    assert entry["rendition"] == "redacted"
    assert {(r["kind"], r["reason"]) for r in entry["redactions"]} == {
        ("term", "protected identifier")
    }
    text = extract_text(bag / entry["path"])
    assert "farmer said" in text and "Ottilie" not in text and "Brannvik" not in text
    # the name is nowhere in the package: raw bytes, text, metadata, documents
    files = _files(bag)
    assert check_files(files, [(code, NAME)]).clean
    for _, path in files:
        data = path.read_bytes().lower()
        assert b"brannvik" not in data and "brannvik".encode("utf-16-le") not in data, path
    # and nowhere in what the portal recorded or logged
    with state.sessions() as session:
        recorded = json.dumps(
            [e.details for e in session.scalars(select(audit.AuditEvent))]
        ) + json.dumps(package.leak_check)
    assert "Brannvik" not in recorded and "Brannvik" not in caplog.text


def test_items_redacted_anyway_lose_the_identifiers_too(state: PortalState, tmp_path: Path) -> None:
    # ITM-T0002 ("<marked name> saw the convoy.") is redacted for its own mark M-1; ITM-T0001
    # ("The convoy left at dawn.") has no mark and is planned as-is.
    world, _code = _world(state, capacity=False, place="the convoy")
    package_id = new_package(state, world)
    assemble_package(state, package_id)
    package = package_row(state, package_id)
    assert package.status == "assembled"
    bag = open_package(state, package, tmp_path)
    manifest = parse_manifest((bag / MANIFEST_PATH).read_bytes())
    entries = {entry["code"]: entry for entry in manifest["items"]}
    marked = entries["ITM-T0002"]
    assert {r["reason"] for r in marked["redactions"]} == {
        "Identifies a witness",
        "protected identifier",
    }
    assert entries["ITM-T0001"]["rendition"] == "redacted"
    for code in ("ITM-T0001", "ITM-T0002"):
        assert "convoy" not in extract_text(bag / entries[code]["path"]).lower()


def test_with_capacity_it_is_shared_with_the_name(state: PortalState, tmp_path: Path) -> None:
    world, _code = _world(state, capacity=True)
    package_id = new_package(state, world)
    assemble_package(state, package_id)
    package = package_row(state, package_id)
    assert package.status == "assembled"
    row = _item_row(state, package_id, ITEM)
    assert (row.rendition, row.redaction_count) == ("as_is", 0)
    bag = open_package(state, package, tmp_path)
    assert (bag / row.path).read_text(encoding="utf-8") == NOTES


def test_with_capacity_a_mark_that_applies_always_withholds_it(
    state: PortalState, tmp_path: Path
) -> None:
    world, code = _world(state, capacity=True, always=True)
    package_id = new_package(state, world)
    assemble_package(state, package_id)
    package = package_row(state, package_id)
    assert package.status == "assembled"
    assert _item_row(state, package_id, ITEM).rendition == "redacted"
    assert check_files(_files(open_package(state, package, tmp_path)), [(code, NAME)]).clean


def test_a_file_that_cannot_be_redacted_blocks_naming_the_code(state: PortalState) -> None:
    world, code = _world(state, capacity=False, video=True)
    package_id = new_package(state, world)

    with pytest.raises(AssemblyFailed, match="leak check") as caught:
        assemble_package(state, package_id)

    package = package_row(state, package_id)
    assert package.status == "blocked" and package.file_sha256 is None
    assert f"data/items/{VIDEO}/clip.mp4 ({code})" in caught.value.reason
    assert package.leak_check is not None
    assert {(hit["path"], hit["mark_code"]) for hit in package.leak_check["hits"]} == {
        (f"data/items/{VIDEO}/clip.mp4", code)
    }
    for text in (caught.value.reason, json.dumps(package.leak_check), package.failure_reason):
        assert "Brannvik" not in str(text)


def test_a_wrong_sealing_key_fails_on_a_mark_term_without_the_term(state: PortalState) -> None:
    """Mark terms are sealed too: with another key, the first mark that cannot be opened
    fails the package, named by its codes."""
    world, _code = _world(state, capacity=True)  # nothing withheld: only the marks
    package_id = new_package(state, world)
    state.sealer = Sealer.random()
    unreadable = "The term of mark M-1 of ITM-T0002 cannot be read"
    with pytest.raises(AssemblyFailed, match=unreadable) as caught:
        assemble_package(state, package_id)
    assert SECRET_TERM not in caught.value.reason


def test_a_wrong_sealing_key_fails_the_package_without_a_value(state: PortalState) -> None:
    world, code = _world(state, capacity=False)
    package_id = new_package(state, world)
    state.sealer = Sealer.random()  # as if the key file had been replaced
    with pytest.raises(AssemblyFailed, match="protected identifiers could not be read") as caught:
        assemble_package(state, package_id)
    assert code in caught.value.reason and "Brannvik" not in caught.value.reason
    with state.sessions() as session:
        package = session.get(Package, package_id)
        assert package is not None and package.status == "failed"
        assert package.file_sha256 is None
