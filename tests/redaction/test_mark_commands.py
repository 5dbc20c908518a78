"""`portal marks …` through the real command line: the review page's four-eyes steps with the
same rules and authorization; a term goes in through standard input and never comes out;
every refusal says why on stderr, exits 1 and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from click.testing import Result
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.cli import main
from portal.config import Settings
from portal.db import make_engine, make_session_factory
from portal.eligibility.models import Decision
from portal.packages.models import Package, PackageItem
from portal.registry.mark_terms import term_of
from portal.registry.models import Item, RedactionMark, RedactionMarkEvent
from portal.sealing import sealer_for
from portal.storage import FileBlobStore
from tests.conftest import DatabaseUnderTest
from tests.support import factories as make
from tests.support.packages import sample_pdf

if TYPE_CHECKING:
    from tests.support.cli import Portal

pytest_plugins = ["tests.support.cli"]  # the `portal` fixture

TERM = "Mirela Quenzi"  # fictional; a protected name the statement holds twice
GHOST = "Velmira Ostrakova"  # fictional; named nowhere
REASON = "Identifies a witness or victim at risk"
STATEMENT = f"{TERM} saw the convoy. Later {TERM} left the village.\n".encode()


@dataclass
class World:
    text: str  # item codes
    pdf: str
    first: str  # e-mails of two legal officers and an administrator
    second: str
    admin: str
    first_name: str
    second_name: str
    outputs: list[Result]  # every command run, to check that no term ever shows


@pytest.fixture
def engine(database: DatabaseUnderTest) -> Iterator[Engine]:
    eng = make_engine(database.url)
    yield eng
    eng.dispose()


@pytest.fixture
def world(portal: Portal, engine: Engine) -> World:
    assert portal("init").exit_code == 0
    blobs = FileBlobStore(Settings.from_env(portal.env).blob_dir)
    with make_session_factory(engine)() as session:
        provider = make.provider(session)
        text = blobs.put_bytes(STATEMENT)
        pdf = blobs.put_bytes(sample_pdf("Statement", ["The convoy passed the mill."]))
        items = [
            make.item(session, provider, sha256=text.sha256, size_bytes=text.size),
            make.item(
                session, provider, sha256=pdf.sha256, size_bytes=pdf.size,
                media_type="application/pdf", original_filename="s.pdf",
            ),
        ]  # fmt: skip
        first, second = make.user(session), make.user(session)
        admin = make.user(session, "admin")
        session.commit()
        return World(
            text=items[0].code, pdf=items[1].code,
            first=first.email, second=second.email, admin=admin.email,
            first_name=first.display_name, second_name=second.display_name, outputs=[],
        )  # fmt: skip


def run(portal: Portal, world: World, *args: str, stdin: str | None = None) -> Result:
    result = portal.runner.invoke(
        main, ["marks", *args], env=portal.env, input=stdin, catch_exceptions=False
    )
    world.outputs.append(result)
    return result


def refused(result: Result, says: str) -> None:
    assert result.exit_code == 1, result.output
    assert says in result.stderr, result.stderr
    assert result.stdout == ""


def snapshot(engine: Engine) -> tuple[list[tuple[object, ...]], int, int]:
    """Every mark's state, the marks' history and the audit log's length."""
    with engine.connect() as conn:
        marks = [
            tuple(row)
            for row in conn.execute(
                select(
                    RedactionMark.item_id, RedactionMark.code, RedactionMark.review,
                    RedactionMark.version, RedactionMark.confirmed_by_id,
                    RedactionMark.removal_requested_by_id, RedactionMark.checked_by_eye_by_id,
                ).order_by(RedactionMark.id)
            )
        ]  # fmt: skip
        events = conn.scalar(select(func.count()).select_from(RedactionMarkEvent)) or 0
        audit = conn.scalar(select(func.count()).select_from(AuditEvent)) or 0
    return marks, events, audit


def version(engine: Engine, item_code: str, mark_code: str) -> int:
    with engine.connect() as conn:
        found = conn.scalar(
            select(RedactionMark.version)
            .join(Item, Item.id == RedactionMark.item_id)
            .where(Item.code == item_code, RedactionMark.code == mark_code)
        )
    assert found is not None
    return found


def no_term_anywhere(world: World) -> None:
    for result in world.outputs:
        for shown in (result.stdout, result.stderr):
            assert TERM not in shown and GHOST not in shown
            assert "Mirela" not in shown and "Quenzi" not in shown


def test_a_term_goes_in_by_stdin_and_is_confirmed_by_another_officer(
    portal: Portal, world: World, engine: Engine
) -> None:
    proposed = run(portal, world, "propose-term", world.text, "--reason", "1",
                   "--as", world.first, stdin=f"{TERM}\n")  # fmt: skip
    assert proposed.exit_code == 0, proposed.output
    assert proposed.stdout.startswith(f"Mark M1 of {world.text} proposed: 2 hit(s) in the text")
    with make_session_factory(engine)() as session:
        mark = session.scalars(select(RedactionMark)).one()
        sealer = sealer_for(Settings.from_env(portal.env))
        assert term_of(sealer, mark, world.text) == TERM  # sealed with the portal's key
        assert TERM not in (mark.term_sealed or "")
        assert (mark.reason, mark.review, mark.applies) == (REASON, "pending", "always")

    listed = run(portal, world, "list", world.text, "--as", world.second)
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.strip() == (
        f"M1 | term (sealed) | pending | version 1 | proposed by {world.first_name} | "
        f"applies always | reason: {REASON}"
    )

    before = snapshot(engine)
    own = run(portal, world, "confirm", world.text, "M1", "--version", "1", "--as", world.first)
    refused(own, "nothing was changed: Mark M1 of")
    assert "you proposed it; another legal officer must confirm it" in own.stderr
    assert snapshot(engine) == before

    confirmed = run(portal, world, "confirm", world.text, "M1", "--version", "1",
                    "--as", world.second)  # fmt: skip
    assert confirmed.exit_code == 0, confirmed.output
    assert confirmed.stdout.strip() == f"Mark M1 of {world.text} confirmed."
    again = run(portal, world, "list", world.text, "--as", world.first)
    assert f"M1 | term (sealed) | confirmed | version 2 | proposed by {world.first_name} | " \
        f"confirmed by {world.second_name}" in again.stdout  # fmt: skip
    assert run(portal, world, "list", world.text, "--pending", "--as", world.first).stdout == (
        f"{world.text} has no pending marks.\n"
    )

    history = run(portal, world, "history", world.text, "M1", "--as", world.first)
    assert history.exit_code == 0, history.output
    steps = [line.split(" | ") for line in history.stdout.splitlines()]
    assert [step[1:] for step in steps] == [
        ["M1", "version 1", "proposed", world.first_name],
        ["M1", "version 2", "confirmed", world.second_name],
    ]
    assert all(step[0].endswith(" UTC") for step in steps)
    no_term_anywhere(world)


def test_confirm_all_confirms_what_is_stored_now_and_leaves_your_own(
    portal: Portal, world: World, engine: Engine
) -> None:
    for who, term in ((world.first, TERM), (world.first, GHOST), (world.second, "Convoy")):
        done = run(portal, world, "propose-term", world.text, "--reason", REASON,
                   "--as", who, stdin=term)  # fmt: skip
        assert done.exit_code == 0, done.output
    assert "no hit in the text" in world.outputs[1].stdout
    pending = run(portal, world, "list", world.text, "--pending", "--as", world.second)
    assert [line.split(" | ")[0] for line in pending.stdout.splitlines()] == ["M1", "M2", "M3"]

    both = run(portal, world, "confirm", world.text, "M1", "--all", "--as", world.second)
    assert both.exit_code == 2 and "give either MARK with --version N, or --all" in both.stderr
    neither = run(portal, world, "confirm", world.text, "--as", world.second)
    assert neither.exit_code == 2

    confirmed = run(portal, world, "confirm", world.text, "--all", "--as", world.second)
    assert confirmed.exit_code == 0, confirmed.output
    assert confirmed.stdout.strip() == (
        "Confirmed: M1, M2. Left for another legal officer (you proposed them): M3."
    )
    rest = run(portal, world, "confirm", world.text, "--all", "--as", world.first)
    assert rest.stdout.strip() == "Confirmed: M3."
    before = snapshot(engine)
    refused(run(portal, world, "confirm", world.text, "--all", "--as", world.first),
            f"{world.text} has no pending mark to confirm")  # fmt: skip
    assert snapshot(engine) == before
    no_term_anywhere(world)


def test_a_stale_version_is_refused_and_an_edit_needs_a_new_confirmation(
    portal: Portal, world: World, engine: Engine
) -> None:
    run(portal, world, "propose-term", world.text, "--reason", "1", "--as", world.first,
        stdin=TERM)  # fmt: skip
    edited = run(portal, world, "edit", world.text, "M1", "--version", "1", "--reason", "2",
                 "--applies", "without_protection", "--as", world.first)  # fmt: skip
    assert edited.exit_code == 0, edited.output
    before = snapshot(engine)
    stale = run(portal, world, "confirm", world.text, "M1", "--version", "1", "--as", world.second)
    refused(stale, "changed since you opened it (version 1, now 2)")
    unknown = run(
        portal, world, "confirm", world.text, "M7", "--version", "1", "--as", world.second
    )
    refused(unknown, f"{world.text} has no mark M7")
    assert snapshot(engine) == before
    done = run(portal, world, "confirm", world.text, "M1", "--version", "2", "--as", world.second)
    assert done.exit_code == 0, done.output
    listed = run(portal, world, "list", world.text, "--as", world.second).stdout
    assert "applies without_protection | reason: Identifies a source" in listed
    no_term_anywhere(world)


def test_boxes_are_checked_and_removals_need_a_second_officer(
    portal: Portal, world: World, engine: Engine
) -> None:
    before = snapshot(engine)
    for box, page, says in [
        ("1.5", "1", "Give the box as four numbers from 0 to 1"),
        ("0.1,0.1,1.5,0.5", "1", "each coordinate is a fraction from 0 to 1"),
        ("0.5,0.5,0.1,0.1", "1", "A box needs a width and a height"),
        ("0.1,0.1,0.5,0.5", "2", f"{world.pdf} has 1 page(s)"),
    ]:
        bad = run(portal, world, "propose-box", world.pdf, "--page", page, "--box", box,
                  "--reason", "1", "--as", world.first)  # fmt: skip
        refused(bad, says)
    on_text = run(portal, world, "propose-box", world.text, "--box", "0.1,0.1,0.5,0.5",
                  "--reason", "1", "--as", world.first)  # fmt: skip
    refused(on_text, "text/plain: a box cannot be drawn on it")
    assert snapshot(engine) == before

    drawn = run(portal, world, "propose-box", world.pdf, "--page", "1", "--box",
                "0.1,0.1,0.5,0.25", "--reason", "3", "--as", world.first)  # fmt: skip
    assert drawn.exit_code == 0, drawn.output
    assert drawn.stdout.strip() == (
        f"Box M1 of {world.pdf} proposed. Another legal officer must confirm it."
    )
    listed = run(portal, world, "list", world.pdf, "--as", world.first).stdout
    assert listed.startswith("M1 | pdf_box page 1 box 0.1,0.1,0.5,0.25 | pending | version 1")
    run(portal, world, "confirm", world.pdf, "M1", "--version", "1", "--as", world.second)

    asked = run(portal, world, "remove", world.pdf, "M1", "--version", "2", "--as", world.first)
    assert asked.exit_code == 0, asked.output
    assert "it still applies until another legal officer confirms" in asked.stdout
    assert (
        f"removal asked by {world.first_name}"
        in run(portal, world, "list", world.pdf, "--as", world.first).stdout
    )
    current = version(engine, world.pdf, "M1")
    before = snapshot(engine)
    own = run(portal, world, "confirm-removal", world.pdf, "M1", "--version", str(current),
              "--as", world.first)  # fmt: skip
    refused(own, "another legal officer must agree")
    assert snapshot(engine) == before
    removed = run(portal, world, "confirm-removal", world.pdf, "M1", "--version", str(current),
                  "--as", world.second)  # fmt: skip
    assert removed.exit_code == 0, removed.output
    assert run(portal, world, "list", world.pdf, "--as", world.first).stdout == (
        f"{world.pdf} has no marks.\n"
    )

    run(portal, world, "propose-box", world.pdf, "--page", "1", "--box", "0.2,0.2,0.3,0.3",
        "--reason", "1", "--as", world.second)  # fmt: skip
    withdrawn = run(portal, world, "remove", world.pdf, "M2", "--version", "1",
                    "--as", world.second)  # fmt: skip
    assert "withdrawn (it was yours and never confirmed)" in withdrawn.stdout
    actions = run(portal, world, "history", world.pdf, "--as", world.first).stdout
    assert [line.split(" | ")[3] for line in actions.splitlines()] == [
        "proposed", "confirmed", "removal_requested", "removed", "proposed", "withdrawn",
    ]  # fmt: skip


def test_a_term_is_never_taken_from_the_arguments_and_bad_ones_change_nothing(
    portal: Portal, world: World, engine: Engine
) -> None:
    before = snapshot(engine)
    extra = run(portal, world, "propose-term", world.text, "Mirela", "--reason", "1",
                "--as", world.first)  # fmt: skip
    refused(extra, "the term is read from standard input, never from the arguments")
    for stdin, reason, says in [
        ("", "1", "give the term on standard input, on one line"),
        (f"{TERM}\n{GHOST}\n", "1", "give the term on standard input, on one line"),
        ("Q", "1", "The term is too short"),
        (TERM, "because", "Choose the reason for the mark from the list"),
        (TERM, "99", "Choose the reason for the mark from the list"),
    ]:
        bad = run(portal, world, "propose-term", world.text, "--reason", reason,
                  "--as", world.first, stdin=stdin)  # fmt: skip
        refused(bad, says)
    assert snapshot(engine) == before
    no_term_anywhere(world)


@pytest.mark.parametrize(
    "args",
    [
        ("list", "{text}"),
        ("history", "{text}"),
        ("confirm", "{text}", "M1", "--version", "1"),
        ("confirm", "{text}", "--all"),
        ("propose-box", "{pdf}", "--page", "1", "--box", "0.1,0.1,0.2,0.2", "--reason", "1"),
        ("remove", "{text}", "M1", "--version", "1"),
        ("confirm-removal", "{text}", "M1", "--version", "1"),
        ("cancel-removal", "{text}", "M1"),
        ("edit", "{text}", "M1", "--version", "1", "--reason", "2"),
    ],
    ids=lambda args: args[0] + ("-all" if "--all" in args else ""),
)
def test_only_legal_officers_and_known_items(
    portal: Portal, world: World, engine: Engine, args: tuple[str, ...]
) -> None:
    run(portal, world, "propose-term", world.text, "--reason", "1", "--as", world.first,
        stdin=TERM)  # fmt: skip
    before = snapshot(engine)
    shaped = [arg.format(text=world.text, pdf=world.pdf) for arg in args]
    refused(run(portal, world, *shaped, "--as", world.admin), "is not an active user allowed")
    refused(run(portal, world, *shaped, "--as", "nobody@example.test"), "not an active user")
    unknown = [shaped[0], "ITM-NOPE", *shaped[2:]]
    refused(run(portal, world, *unknown, "--as", world.second), "no item ITM-NOPE that")
    assert snapshot(engine) == before
    no_term_anywhere(world)


def _package(session: Session, item_code: str, assembled_by: str) -> str:
    """A failed package of the item (its assembly found nothing for a term mark)."""
    item = session.scalars(select(Item).where(Item.code == item_code)).one()
    authority = make.authority(session)
    rfa = make.rfa(session, authority, status="approved", items=[item])
    decision = Decision(
        id=str(uuid.uuid4()), rfa_id=rfa.id, policy_id="test", policy_revision="1" * 64,
        engine_version="1", snapshot_json="{}", snapshot_sha256="0" * 64, results_json="{}",
        outcome="eligible",
    )  # fmt: skip
    session.add(decision)
    session.flush()
    officer = session.scalars(select(User).where(User.email == assembled_by)).one()
    package = Package(
        code=f"PKG-2026-{make.number(session):04d}", rfa_id=rfa.id, decision_id=decision.id,
        authority_id=authority.id, status="failed", assembled_by_id=officer.id,
    )  # fmt: skip
    session.add(package)
    session.flush()
    session.add(
        PackageItem(
            package_id=package.id, item_id=item.id, rendition="redacted",
            path=f"data/items/{item.code}/s.txt", source_sha256=item.sha256,
        )
    )  # fmt: skip
    session.commit()
    return package.code


def test_checks_by_eye_need_read_and_a_second_officer(
    portal: Portal, world: World, engine: Engine
) -> None:
    run(portal, world, "propose-term", world.text, "--reason", "1", "--as", world.first,
        stdin=GHOST)  # fmt: skip
    run(portal, world, "confirm", world.text, "M1", "--version", "1", "--as", world.second)
    with make_session_factory(engine)() as session:
        code = _package(session, world.text, assembled_by=world.second)
    before = snapshot(engine)
    unread = run(portal, world, "checked-by-eye", code, world.text, "M1", "--as", world.second)
    refused(unread, "nothing was recorded: pass --read to confirm that you read the whole item")
    own = run(portal, world, "checked-by-eye", code, world.text, "M1", "--read",
              "--as", world.first)  # fmt: skip
    refused(own, "nothing was recorded: Mark M1 of")
    assert "you proposed it" in own.stderr
    elsewhere = run(portal, world, "checked-by-eye", code, world.pdf, "M1", "--read",
                    "--as", world.second)  # fmt: skip
    refused(elsewhere, f"{code} has no item {world.pdf} with a mark M1")
    admin = run(portal, world, "checked-by-eye", code, world.text, "M1", "--read",
                "--as", world.admin)  # fmt: skip
    refused(admin, "is not an active user allowed")
    assert snapshot(engine) == before
    checked = run(portal, world, "checked-by-eye", code, world.text, "M1", "--read",
                  "--as", world.second)  # fmt: skip
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.startswith(f"Recorded: mark M1 does not occur in {world.text}.")
    assert "checked by eye" in run(portal, world, "list", world.text, "--as", world.first).stdout

    unread = run(portal, world, "pixels-checked-by-eye", code, world.text, "--as", world.first)
    refused(unread, "nothing was recorded: pass --read to confirm that you read every page")
    assembler = run(portal, world, "pixels-checked-by-eye", code, world.text, "--read",
                    "--as", world.second)  # fmt: skip
    refused(assembler, f"You assembled {code}")
    with engine.connect() as conn:
        assert conn.scalar(select(Item.pixels_checked_at).where(Item.code == world.text)) is None
    read = run(portal, world, "pixels-checked-by-eye", code, world.text, "--read",
               "--as", world.first)  # fmt: skip
    assert read.exit_code == 0, read.output
    assert read.stdout.strip() == f"Recorded: you read {world.text} by eye. Retry the assembly."
    with engine.connect() as conn:
        assert conn.scalar(select(Item.pixels_checked_at).where(Item.code == world.text))
    no_term_anywhere(world)
