"""Races with real parallel connections (threads or processes, each with its own database
connection) on PostgreSQL, and on SQLite where the race means something there too.

Covered elsewhere, not repeated here:
- many threads appending audit events keep one chain:
  tests/shell/test_audit.py::test_concurrent_writers_keep_one_chain (8 threads x 25 appends);
- two officers releasing the same package at once release it once:
  tests/packages/test_packages_domain.py::test_two_officers_releasing_at_once_release_once.

Here: audit appends from separate *processes* (as several gunicorn workers and `portal
worker`s do) on a migrated schema with its append-only trigger; a consent revocation racing
a package assembly, started at every stage of the assembly, always ends with the package
blocked and unreleasable; a revocation racing a release never leaves a released package
resting on a revoked consent.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from portal import migrate
from portal.accounts.models import User
from portal.audit import AuditEvent, verify
from portal.config import Settings
from portal.consent.ledger import ConsentError
from portal.consent.models import Consent
from portal.consent.revocation import revoke_consent
from portal.db import make_engine, make_session_factory, serialize_on
from portal.packages.assembly.assemble import AssemblyFailed, assemble_package
from portal.packages.lifecycle import PackageRefused, create_package, release_package
from portal.packages.models import Package
from portal.registry.models import Item, Provider
from portal.rfa.models import Rfa
from portal.state import PortalState, build_state
from tests.conftest import DatabaseUnderTest
from tests.support.auth import make_user
from tests.support.package_world import (
    REDACTABLE,
    World,
    make_world,
    new_package,
    signing_settings,
)

# --------------------------------------------------------------------------- audit appends

APPENDER = """
import sys
from portal.audit import record
from portal.db import make_engine, make_session_factory, transaction

url, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
engine = make_engine(url)
sessions = make_session_factory(engine)
for n in range(count):
    with transaction(sessions) as session:
        record(session, f"process:{worker}", "test.append", f"n:{n}", {"worker": worker, "n": n})
engine.dispose()
"""


def test_audit_appends_from_several_processes_keep_one_chain(database: DatabaseUnderTest) -> None:
    engine = make_engine(database.url)
    try:
        migrate.upgrade(engine)  # with the append-only trigger of 0007
        processes, per_process = 4, 40
        command = [sys.executable, "-c", APPENDER, database.url]
        running = [
            subprocess.Popen(
                [*command, str(w), str(per_process)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for w in range(processes)
        ]
        for process in running:
            _, err = process.communicate(timeout=300)
            assert process.returncode == 0, err.decode()
        with make_session_factory(engine)() as session:
            result = verify(session)
            assert result.ok, result.message()
            assert result.count == processes * per_process
            rows = session.execute(select(AuditEvent.actor, AuditEvent.target)).all()
        for worker in range(processes):
            mine = [int(t.split(":")[1]) for a, t in rows if a == f"process:{worker}"]
            assert mine == list(range(per_process))  # each process's events in its order
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- consent races


@pytest.fixture
def state(settings: Settings, engine: Engine) -> Iterator[PortalState]:
    yield build_state(signing_settings(settings), engine=engine)


def _revoke(state: PortalState, world: World, by_id: int) -> list[str]:
    """The provider revokes the consent for the item with a protected term; returns the
    packages the revocation blocked."""
    with state.sessions() as session:
        grant = session.scalars(
            select(Consent).where(
                Consent.item_id == world.items["redact"], Consent.event == "grant"
            )
        ).one()
        by = session.get(User, by_id)
        assert by is not None
        revocation = revoke_consent(session, grant, reason="The witness withdrew.", by=by)
        session.commit()
        return list(revocation.blocked)


def _race(*tasks: Callable[[], Any]) -> list[Any]:
    """Run the tasks in threads released together; their results, or their exceptions."""
    start = threading.Barrier(len(tasks))
    results: list[Any] = [None] * len(tasks)

    def run(index: int, task: Callable[[], Any]) -> None:
        start.wait()
        try:
            results[index] = task()
        except BaseException as exc:  # reported by the caller
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(tasks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    return results


def _wait_for_stage(state: PortalState, package_id: int, stage: str) -> str:
    """Poll (on its own connection) until the package reaches ``stage`` or is no longer being
    assembled; the stage it was at."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        with state.sessions() as session:
            status, current = session.execute(
                select(Package.status, Package.stage).where(Package.id == package_id)
            ).one()
        if status not in ("queued", "assembling") or current.startswith(stage):
            return f"{status}/{current}"
        time.sleep(0.003)
    raise AssertionError(f"package never reached stage {stage!r}")


def _release(state: PortalState, code: str, by_id: int) -> str:
    with state.sessions() as session:
        package = session.scalars(select(Package).where(Package.code == code)).one()
        officer = session.get(User, by_id)
        assert officer is not None
        try:
            release_package(session, package, by=officer)
            session.commit()
        except PackageRefused as exc:
            session.rollback()
            return f"refused: {exc}"
        return "released"


REVOKE_AT = ["starting", "rendering", "leak check", "bagging", "storing", "assembled"]


@pytest.mark.parametrize("revoke_at", REVOKE_AT)
def test_a_revocation_racing_an_assembly_leaves_the_package_blocked(
    state: PortalState, revoke_at: str
) -> None:
    world = make_world(state)
    package_id = new_package(state, world)
    blobs_before = set(state.blobs.keys())
    with state.sessions() as session:
        provider = make_user(session, "provider", provider_code="PRV-T")
        code = session.get_one(Package, package_id).code

    def assemble() -> str:
        try:
            assemble_package(state, package_id)
        except AssemblyFailed as exc:
            return f"failed: {exc}"
        return "returned"

    def revoke() -> tuple[str, list[str]]:
        seen = _wait_for_stage(state, package_id, revoke_at)
        return seen, _revoke(state, world, provider.user_id)

    assembly, revocation = _race(assemble, revoke)
    assert not isinstance(assembly, BaseException), assembly
    assert not isinstance(revocation, BaseException), repr(revocation)
    seen, blocked = revocation
    assert blocked == [code], f"revoked at {seen}"

    with state.sessions() as session:
        package = session.get_one(Package, package_id)
        assert package.status == "blocked", f"revoked at {seen}: {assembly}"
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.target == f"package:{code}")
        ).all()
        assert verify(session).ok
    if "package.assembled" not in actions:  # stopped mid-way: nothing of it was kept
        assert package.file_sha256 is None
        assert set(state.blobs.keys()) == blobs_before
        assert assembly.startswith("failed: The package was blocked"), assembly
    assert _release(state, code, world.second_id).startswith("refused")
    assert "package.release" not in actions


@pytest.mark.parametrize("attempt", range(3))
def test_a_revocation_racing_a_release_never_leaves_it_released(
    state: PortalState, attempt: int
) -> None:
    world = make_world(state)
    package_id = new_package(state, world)
    assemble_package(state, package_id)
    with state.sessions() as session:
        provider = make_user(session, "provider", provider_code="PRV-T")
        code = session.get_one(Package, package_id).code

    def release() -> str:
        time.sleep(0.002 * attempt)
        return _release(state, code, world.second_id)

    released, revocation = _race(release, lambda: _revoke(state, world, provider.user_id))
    assert not isinstance(released, BaseException), repr(released)
    assert not isinstance(revocation, BaseException), repr(revocation)
    with state.sessions() as session:
        status = session.get_one(Package, package_id).status
    if released == "released":
        assert status == "withdrawn"  # released, then withdrawn before any download
    else:
        assert status == "blocked" and code in revocation


def test_two_revocations_of_one_consent_at_once_revoke_it_once(state: PortalState) -> None:
    """The provider's two users (or a double click) revoke the same grant at once: one
    revocation is recorded and applied; the other is refused, saying there is nothing left to
    revoke; the released package is withdrawn once."""
    world = make_world(state)
    package_id = new_package(state, world)
    assemble_package(state, package_id)
    with state.sessions() as session:
        code = session.get_one(Package, package_id).code
        first = make_user(session, "provider", provider_code="PRV-T")
        second = make_user(session, "provider", provider_code="PRV-T")
    assert _release(state, code, world.second_id) == "released"

    def revoke(by_id: int) -> Callable[[], list[str] | str]:
        def run() -> list[str] | str:
            with state.sessions() as session:
                grant = session.scalars(
                    select(Consent).where(
                        Consent.item_id == world.items["redact"], Consent.event == "grant"
                    )
                ).one()
                try:
                    done = revoke_consent(
                        session, grant, reason="Withdrawn.", by=session.get_one(User, by_id)
                    )
                    session.commit()
                except ConsentError as exc:
                    return f"refused: {exc}"
                return list(done.withdrawn)

        return run

    results = _race(revoke(first.user_id), revoke(second.user_id))
    assert not any(isinstance(r, BaseException) for r in results), results
    assert sorted(results, key=str) == [[code], "refused: there is no active grant to revoke here"]
    with state.sessions() as session:
        revokes = session.scalars(
            select(Consent).where(
                Consent.item_id == world.items["redact"], Consent.event == "revoke"
            )
        ).all()
        assert len(revokes) == 1
        assert session.get_one(Package, package_id).status == "withdrawn"
        assert verify(session).ok


def test_a_revocation_that_waited_for_another_reads_the_ledger_after_its_wait(
    state: PortalState,
) -> None:
    """The second revocation starts (and would read the clock) while the first holds the
    provider's turn, and the first records its revoke event only afterwards: the second must
    still see it and be refused. CI once caught the second recording a revocation of its own,
    because its moment, taken before the wait, was earlier than the first one's event."""
    world = make_world(state)
    with state.sessions() as session:
        first = make_user(session, "provider", provider_code="PRV-T")
        second = make_user(session, "provider", provider_code="PRV-T")
    holding = threading.Event()

    def revoke_holding_the_turn() -> str:
        with state.sessions() as session:
            provider_id = session.get_one(Item, world.items["redact"]).provider_id
            serialize_on(session, Provider, provider_id)  # what revoke_consent takes first
            holding.set()
            time.sleep(1.0)  # the other revocation is now waiting for the turn
            grant = _grant(session, world)
            revoke_consent(
                session, grant, reason="Withdrawn.", by=session.get_one(User, first.user_id)
            )
            session.commit()
            return "revoked"

    def revoke_after() -> str:
        assert holding.wait(60)
        with state.sessions() as session:
            grant = _grant(session, world)
            try:
                revoke_consent(
                    session, grant, reason="Withdrawn.", by=session.get_one(User, second.user_id)
                )
                session.commit()
            except ConsentError as exc:
                return f"refused: {exc}"
            return "revoked"

    results = _race(revoke_holding_the_turn, revoke_after)
    assert results == ["revoked", "refused: there is no active grant to revoke here"], results
    with state.sessions() as session:
        assert len(session.scalars(select(Consent).where(Consent.event == "revoke")).all()) == 1


def _grant(session: Session, world: World) -> Consent:
    return session.scalars(
        select(Consent).where(Consent.item_id == world.items["redact"], Consent.event == "grant")
    ).one()


def test_two_officers_making_the_next_package_at_once_make_one(state: PortalState) -> None:
    """Two officers press "Make the package" at once (as after a recall, for the replacement):
    one package is made, the other officer is told one is on its way."""
    world = make_world(state)

    def make(by_id: int) -> Callable[[], str]:
        def run() -> str:
            with state.sessions() as session:
                rfa = session.get_one(Rfa, world.rfa_id)
                try:
                    package = create_package(
                        session, rfa, REDACTABLE, by=session.get_one(User, by_id)
                    )
                    session.commit()
                except PackageRefused as exc:
                    return f"refused: {exc}"
                return package.code

        return run

    results = _race(make(world.officer_id), make(world.second_id))
    assert not any(isinstance(r, BaseException) for r in results), results
    made = [r for r in results if not r.startswith("refused")]
    assert len(made) == 1, results
    with state.sessions() as session:
        assert (
            len(session.scalars(select(Package).where(Package.rfa_id == world.rfa_id)).all()) == 1
        )


@pytest.mark.parametrize("attempt", range(8))
def test_a_revocation_racing_the_making_of_a_package_never_leaves_it_going_out(
    state: PortalState, attempt: int
) -> None:
    """An officer makes the (next, or replacement) package while the provider revokes: either
    the package is refused (the revocation came first) or it is made and blocked at once —
    never a queued package resting on the revoked consent."""
    world = make_world(state)
    with state.sessions() as session:
        provider = make_user(session, "provider", provider_code="PRV-T")

    def make() -> str:
        with state.sessions() as session:
            rfa = session.get_one(Rfa, world.rfa_id)
            try:
                package = create_package(
                    session, rfa, REDACTABLE, by=session.get_one(User, world.officer_id)
                )
                session.commit()
            except PackageRefused as exc:
                return f"refused: {exc}"
            return package.code

    def revoke() -> list[str]:
        time.sleep(0.001 * attempt)
        return _revoke(state, world, provider.user_id)

    made, revocation = _race(make, revoke)
    assert not isinstance(made, BaseException), repr(made)
    assert not isinstance(revocation, BaseException), repr(revocation)
    with state.sessions() as session:
        packages = session.scalars(select(Package).where(Package.rfa_id == world.rfa_id)).all()
        assert verify(session).ok
    if made.startswith("refused"):
        assert packages == [] and revocation == [], made
    else:
        assert [(p.code, p.status) for p in packages] == [(made, "blocked")]
        assert revocation == [made]
