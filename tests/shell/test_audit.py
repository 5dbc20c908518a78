"""The hash-chained audit log (portal.audit) on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import textwrap
import threading
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, func, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

import portal.audit
from portal.accounts.models import User
from portal.audit import (
    CHAIN_LOCK_KEY,
    CLI_ACTOR,
    GENESIS_HASH,
    SYSTEM_ACTOR,
    AuditEvent,
    AuditVerification,
    ChainHead,
    actor_label,
    event_hash,
    head,
    lock_chain,
    record,
    verify,
)
from portal.db import transaction
from portal.models import Base

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
AUDIT = Base.metadata.tables["audit_event"]


def build_chain(session: Session, count: int) -> list[AuditEvent]:
    events = [
        record(
            session,
            f"user:{n % 3 + 1}",
            "rfa.submit" if n % 2 else "package.release",
            f"RFA-2026-{n:04d}",
            {"n": n, "note": "Prüfung für Behörde"},
            now=T0 + timedelta(minutes=n),
        )
        for n in range(1, count + 1)
    ]
    session.commit()
    return events


def run_sql(engine: Engine, sql: str, **params: object) -> None:
    """Tamper behind the application's back."""
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def event_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def stored_hash(engine: Engine, seq: int) -> str:
    with engine.connect() as conn:
        value = conn.scalar(text("SELECT hash FROM audit_event WHERE seq = :s"), {"s": seq})
    assert isinstance(value, str)
    return value


def forge(engine: Engine, seq: int, prev_hash: str, *, good_hash: bool) -> None:
    """Insert an event at ``seq``, hashed correctly or not."""
    fields: dict[str, Any] = {
        "seq": seq,
        "occurred_at": T0 + timedelta(minutes=seq, seconds=30),
        "actor": "user:99",
        "action": "package.release",
        "target": "PKG-2026-0099",
        "details": "{}",
    }
    digest = event_hash(prev_hash, **fields) if good_hash else "ab" * 32
    with engine.begin() as conn:
        conn.execute(insert(AUDIT).values(prev_hash=prev_hash, hash=digest, **fields))


def shift_up(engine: Engine, from_seq: int) -> None:
    """Renumber events ``from_seq``.. one up, in two steps so unique keys never clash."""
    run_sql(engine, "UPDATE audit_event SET seq = seq + 100000 WHERE seq >= :s", s=from_seq)
    run_sql(engine, "UPDATE audit_event SET seq = seq - 99999 WHERE seq >= 100000")


def assert_broken(result: AuditVerification, seq: int, words: str) -> None:
    assert not result.ok
    assert result.first_bad_seq == seq
    assert result.count == max(seq - 1, 0)
    assert result.reason is not None
    assert result.reason.startswith(f"event {seq}: ")
    assert words in result.reason
    assert result.message() == f"audit chain broken at {result.reason}"


# --- recording -------------------------------------------------------------------------


def test_empty_chain_is_intact(session: Session) -> None:
    result = verify(session)
    assert result == AuditVerification(ok=True, count=0)
    assert result.message() == "audit chain intact: 0 events"
    assert head(session) == ChainHead(0, GENESIS_HASH)


def test_recorded_events_form_a_chain(session: Session) -> None:
    events = build_chain(session, 5)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
    assert len({e.hash for e in events}) == 5
    assert head(session) == ChainHead(5, events[-1].hash)
    result = verify(session)
    assert result == AuditVerification(ok=True, count=5)
    assert result.message() == "audit chain intact: 5 events"


def test_single_event_message(session: Session) -> None:
    build_chain(session, 1)
    assert verify(session).message() == "audit chain intact: 1 event"


def test_auditor_recomputes_hashes_from_the_docstring_recipe(session: Session) -> None:
    """The recipe in the module docstring, run as written, gives every stored hash."""
    doc = portal.audit.__doc__ or ""
    match = re.search(r"library alone\)::\n\n(.*?)\n\n\S", doc, re.DOTALL)
    assert match is not None
    namespace: dict[str, Any] = {}
    exec(textwrap.dedent(match.group(1)), namespace)  # noqa: S102 - our own docstring
    recipe: Callable[..., str] = namespace["event_hash"]

    build_chain(session, 4)
    prev = "0" * 64
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
        digest = recipe(
            prev,
            event.seq,
            event.occurred_at,
            event.actor,
            event.action,
            event.target,
            event.details,
        )
        assert digest == event.hash
        prev = digest


def test_record_does_not_commit(session: Session, sessions: sessionmaker[Session]) -> None:
    record(session, SYSTEM_ACTOR, "startup", "portal")
    with sessions() as other:
        assert event_count(other) == 0
    session.rollback()
    assert event_count(session) == 0
    record(session, SYSTEM_ACTOR, "startup", "portal")
    session.commit()
    with sessions() as other:
        assert verify(other) == AuditVerification(ok=True, count=1)


def test_times_and_details_are_stored_canonically(session: Session) -> None:
    tokyo = timezone(timedelta(hours=9))
    event = record(
        session,
        CLI_ACTOR,
        "assessment.add",
        "authority:3",
        {"valid_until": datetime(2027, 1, 1, 9, 0, tzinfo=tokyo), "b": [1, 2], "a": "Zoë"},
        now=datetime(2026, 3, 1, 18, 30, tzinfo=tokyo),
    )
    session.commit()
    session.expire_all()
    stored = session.get(AuditEvent, event.seq)
    assert stored is not None
    assert stored.occurred_at == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert (
        stored.details == '{"a":"Zoë","b":[1,2],"valid_until":"2027-01-01T00:00:00.000000+00:00"}'
    )
    assert json.loads(stored.details)["a"] == "Zoë"


def test_default_time_is_now(session: Session) -> None:
    before = datetime.now(UTC)
    event = record(session, SYSTEM_ACTOR, "startup", "portal")
    assert before <= event.occurred_at <= datetime.now(UTC)
    assert event.occurred_at.tzinfo is not None


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"actor": ""}, ValueError, "actor must be a non-empty string"),
        ({"actor": "   "}, ValueError, "actor must be a non-empty string"),
        ({"action": "rfa.submit\nforged line"}, ValueError, "control characters"),
        ({"action": "a" * 101}, ValueError, "longer than 100"),
        ({"target": "t" * 201}, ValueError, "longer than 200"),
        ({"details": ["not", "a", "mapping"]}, TypeError, "must be a mapping"),
        ({"details": {"blob": b"raw"}}, TypeError, "type bytes"),
        ({"details": {"ratio": float("nan")}}, ValueError, "not allowed"),
        ({"now": datetime(2026, 3, 1, 9, 0)}, ValueError, "naive datetime"),  # naive on purpose
    ],
)
def test_bad_input_is_refused_and_loses_nothing(
    session: Session, kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    build_chain(session, 2)
    args: dict[str, Any] = {"actor": "user:1", "action": "rfa.submit", "target": "RFA-1"}
    args.update(kwargs)
    with pytest.raises(error, match=re.escape(words)):
        record(session, **args)
    session.rollback()
    assert verify(session) == AuditVerification(ok=True, count=2)


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "new_password",
        "Password2",
        "passwd",
        "passphrase",
        "signing_key_passphrase",
        "secret",
        "clientSecret",
        "totp_secret",
        "totp",
        "otp",
        "one_time_code",
        "code",
        "recovery_code",
        "backupCode",
        "verification-code",
        "token",
        "access_token",
        "accesstoken",
        "api_key",
        "private_key",
        "credentials",
        "pin",
        "session cookie",
        "pwd",
    ],
)
def test_details_with_secret_keys_are_refused(session: Session, key: str) -> None:
    with pytest.raises(ValueError, match="looks like a secret") as caught:
        record(session, "user:1", "user.update", "user:1", {key: "hunter2-value"})
    assert "hunter2-value" not in str(caught.value)
    with pytest.raises(ValueError, match=r"details\.changes\[1\]\."):
        record(session, "user:1", "user.update", "user:1", {"changes": [{}, {key: "x"}]})
    session.rollback()
    assert event_count(session) == 0


@pytest.mark.parametrize(
    "key",
    ["authority_code", "fingerprint", "blob_key", "code_version", "footprint", "pinned", "reason"],
)
def test_ordinary_keys_are_accepted(session: Session, key: str) -> None:
    event = record(session, "user:1", "authority.update", "authority:1", {key: "x"})
    assert json.loads(event.details) == {key: "x"}


def test_actor_labels() -> None:
    assert actor_label(User(id=12)) == "user:12"
    with pytest.raises(ValueError, match="no id yet"):
        actor_label(User())
    assert (SYSTEM_ACTOR, CLI_ACTOR) == ("system", "cli")


def test_chain_head_text_round_trip() -> None:
    digest = "ab" * 32
    assert ChainHead.parse(f" 17:{digest.upper()}\n") == ChainHead(17, digest)
    assert str(ChainHead(17, digest)) == f"17:{digest}"
    for bad in ["17", "x:" + digest, "17:abc", f"0:{digest}", f"-1:{digest}"]:
        with pytest.raises(ValueError, match="chain head"):
            ChainHead.parse(bad)


FIELD_NAMES = ("prev_hash", "seq", "occurred_at", "actor", "action", "target", "details")
fields = st.fixed_dictionaries(
    {
        "prev_hash": st.sampled_from([GENESIS_HASH, "ab" * 32]),
        "seq": st.integers(min_value=1, max_value=2**62),
        "occurred_at": st.datetimes(timezones=st.just(UTC)),
        "actor": st.text(min_size=1, max_size=20),
        "action": st.text(min_size=1, max_size=20),
        "target": st.text(min_size=1, max_size=20),
        "details": st.text(max_size=40),
    }
)


@given(fields, fields, st.sampled_from(FIELD_NAMES))
def test_any_changed_field_changes_the_hash(
    event: dict[str, Any], other: dict[str, Any], name: str
) -> None:
    changed = {**event, name: other[name]}
    digest = event_hash(**event)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert (event_hash(**changed) == digest) == (changed == event)


# --- tampering -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "bad_seq", "words"),
    [
        ("UPDATE audit_event SET details = '{\"n\": 999}' WHERE seq = 5", 5, "(altered?)"),
        ("UPDATE audit_event SET actor = 'user:99' WHERE seq = 5", 5, "(altered?)"),
        ("UPDATE audit_event SET target = 'RFA-X' WHERE seq = 1", 1, "(altered?)"),
        ("UPDATE audit_event SET action = 'x' WHERE seq = 8", 8, "(altered?)"),
        ("DELETE FROM audit_event WHERE seq = 5", 5, "missing (deleted?): event 6 follows event 4"),
        (
            "DELETE FROM audit_event WHERE seq BETWEEN 4 AND 6",
            4,
            "missing (deleted?), as are events up to 6: event 7 follows event 3",
        ),
        (
            "DELETE FROM audit_event WHERE seq = 1",
            1,
            "missing (deleted?): the chain starts at event 2",
        ),
        (
            "UPDATE audit_event SET prev_hash = hash WHERE seq = 5",
            5,
            "prev_hash is not the hash of event 4",
        ),
    ],
)
def test_tampering_with_sql_is_found(
    engine: Engine, session: Session, sql: str, bad_seq: int, words: str
) -> None:
    build_chain(session, 8)
    run_sql(engine, sql)
    assert_broken(verify(session), bad_seq, words)


def test_altered_time_is_found(engine: Engine, session: Session) -> None:
    build_chain(session, 8)
    with engine.begin() as conn:
        later = T0 + timedelta(minutes=5, microseconds=1)
        conn.execute(update(AUDIT).where(AUDIT.c.seq == 5).values(occurred_at=later))
    assert_broken(verify(session), 5, "hash does not match its content (altered?)")


def test_deleted_tail_needs_an_anchor(engine: Engine, session: Session) -> None:
    """Without a published head, a chain cut short still verifies: that is the limitation."""
    build_chain(session, 8)
    published = head(session)
    run_sql(engine, "DELETE FROM audit_event WHERE seq >= 7")
    assert verify(session) == AuditVerification(ok=True, count=6)
    assert_broken(
        verify(session, anchor=published),
        7,
        "missing (deleted from the end?): the chain ends at event 6 "
        "but the published head is event 8",
    )


def test_an_anchor_from_earlier_still_verifies_a_longer_chain(session: Session) -> None:
    build_chain(session, 3)
    published = head(session)
    record(session, SYSTEM_ACTOR, "startup", "portal")
    session.commit()
    assert verify(session, anchor=published) == AuditVerification(ok=True, count=4)
    assert verify(session, anchor=ChainHead(0, GENESIS_HASH)).ok


def test_rewritten_chain_is_found_only_with_an_anchor(engine: Engine, session: Session) -> None:
    """Someone with write access alters event 5 and recomputes every hash after it."""
    build_chain(session, 8)
    published = head(session)
    run_sql(engine, "UPDATE audit_event SET details = '{\"n\": 999}' WHERE seq = 5")
    rows = session.execute(select(AUDIT).order_by(AUDIT.c.seq)).all()
    prev = GENESIS_HASH
    with engine.begin() as conn:
        for row in rows:
            digest = event_hash(
                prev, row.seq, row.occurred_at, row.actor, row.action, row.target, row.details
            )
            conn.execute(
                update(AUDIT).where(AUDIT.c.seq == row.seq).values(prev_hash=prev, hash=digest)
            )
            prev = digest
    session.expire_all()
    assert verify(session).ok
    assert_broken(
        verify(session, anchor=published),
        8,
        "hash differs from the published head (chain rewritten?)",
    )


def test_forged_event_with_a_bad_hash_is_found(engine: Engine, session: Session) -> None:
    build_chain(session, 8)
    shift_up(engine, 5)
    forge(engine, 5, stored_hash(engine, 4), good_hash=False)
    assert_broken(verify(session), 5, "hash does not match its content (altered?)")


def test_forged_event_with_a_good_hash_breaks_the_next_link(
    engine: Engine, session: Session
) -> None:
    """A well-made forgery verifies itself; the renumbered event after it does not."""
    build_chain(session, 8)
    shift_up(engine, 5)
    forge(engine, 5, stored_hash(engine, 4), good_hash=True)
    assert_broken(
        verify(session),
        6,
        "hash does not match its content and prev_hash is not the hash of event 5 "
        "(replaced, inserted or reordered?)",
    )


def test_event_appended_after_a_gap_is_found(engine: Engine, session: Session) -> None:
    build_chain(session, 8)
    forge(engine, 10, stored_hash(engine, 8), good_hash=True)
    assert_broken(verify(session), 9, "missing (deleted?): event 10 follows event 8")


def test_event_numbered_zero_is_found(engine: Engine, session: Session) -> None:
    build_chain(session, 3)
    forge(engine, 0, GENESIS_HASH, good_hash=True)
    result = verify(session)
    assert not result.ok
    assert result.first_bad_seq == 0
    assert result.reason == "event 0: sequence numbers start at 1 (inserted?)"


def test_swapped_numbers_are_found(engine: Engine, session: Session) -> None:
    build_chain(session, 8)
    run_sql(engine, "UPDATE audit_event SET seq = 1000 WHERE seq = 5")
    run_sql(engine, "UPDATE audit_event SET seq = 5 WHERE seq = 6")
    run_sql(engine, "UPDATE audit_event SET seq = 6 WHERE seq = 1000")
    assert_broken(verify(session), 5, "(replaced, inserted or reordered?)")


def test_swapped_contents_are_found(engine: Engine, session: Session) -> None:
    build_chain(session, 8)
    columns = ("occurred_at", "actor", "action", "target", "details")
    rows = {
        row.seq: row for row in session.execute(select(AUDIT).where(AUDIT.c.seq.in_([5, 6]))).all()
    }
    with engine.begin() as conn:
        for seq, source in ((5, 6), (6, 5)):
            values = {name: getattr(rows[source], name) for name in columns}
            conn.execute(update(AUDIT).where(AUDIT.c.seq == seq).values(**values))
    assert_broken(verify(session), 5, "hash does not match its content (altered?)")


@pytest.mark.parametrize("chunk_size", [1, 3, 1000])
def test_chunk_boundaries_do_not_matter(engine: Engine, session: Session, chunk_size: int) -> None:
    build_chain(session, 10)
    assert verify(session, chunk_size=chunk_size) == AuditVerification(ok=True, count=10)
    run_sql(engine, "DELETE FROM audit_event WHERE seq = 7")
    assert_broken(verify(session, chunk_size=chunk_size), 7, "missing (deleted?)")


def test_verify_refuses_a_chunk_size_below_one(session: Session) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        verify(session, chunk_size=0)


@pytest.mark.slow
def test_verify_streams_in_flat_memory(engine: Engine, session: Session) -> None:
    """Memory for a long log stays near that of one chunk, not of the whole log."""
    total = 12_000
    prev = GENESIS_HASH
    rows = []
    details = json.dumps({"note": "x" * 200})
    for seq in range(1, total + 1):
        when = T0 + timedelta(seconds=seq)
        digest = event_hash(prev, seq, when, "user:1", "item.view", f"item:{seq}", details)
        rows.append(
            {
                "seq": seq,
                "occurred_at": when,
                "actor": "user:1",
                "action": "item.view",
                "target": f"item:{seq}",
                "details": details,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    with engine.begin() as conn:
        conn.execute(insert(AUDIT), rows)
    del rows

    tracemalloc.start()
    try:
        result = verify(session)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result == AuditVerification(ok=True, count=total)
    # Held at once, these rows take about 13 MB; one chunk of 1000 about 1.5 MB.
    assert peak < 4_000_000, f"verify peaked at {peak} bytes"


# --- serialisation ---------------------------------------------------------------------


def test_the_chain_lock_is_really_held(engine: Engine, sessions: sessionmaker[Session]) -> None:
    """While one transaction holds the lock, nobody else can take it."""
    with sessions() as holder:
        lock_chain(holder)
        pid = holder.scalar(text("SELECT pg_backend_pid()")) if _on_postgres(engine) else None
        assert _holds_lock(engine, pid)
        holder.rollback()
        assert not _holds_lock(engine, pid)


def _on_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _holds_lock(engine: Engine, pid: int | None) -> bool:
    """Whether the chain lock is held (on PostgreSQL: by backend ``pid``)."""
    if _on_postgres(engine):
        # The advisory lock is server-wide, so other test runs may take it too:
        # ask for the holder's own lock rather than whether the lock is free.
        with engine.connect() as conn:
            held = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = :pid AND (classid::bigint << 32) + objid::bigint = :key"
                ),
                {"pid": pid, "key": CHAIN_LOCK_KEY},
            )
        return bool(held == 1)
    database = engine.url.database
    assert database is not None
    probe = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")  # asks for the write lock, without waiting
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return True
    finally:
        probe.close()


def test_an_append_waits_for_the_one_before_it(sessions: sessionmaker[Session]) -> None:
    """A second writer blocks until the first commits, then links to its event."""
    outcome: list[AuditEvent | BaseException] = []

    def second_writer() -> None:
        try:
            with transaction(sessions) as session:
                outcome.append(record(session, "user:2", "rfa.submit", "RFA-2"))
        except BaseException as exc:  # reported in the main thread
            outcome.append(exc)

    with sessions() as first_session:
        first = record(first_session, "user:1", "rfa.submit", "RFA-1")
        thread = threading.Thread(target=second_writer)
        thread.start()
        time.sleep(0.5)
        assert outcome == [], "the second append did not wait for the first"
        first_session.commit()
    thread.join(timeout=20)
    assert not thread.is_alive()
    [second] = outcome
    assert isinstance(second, AuditEvent), second
    assert (second.seq, second.prev_hash) == (2, first.hash)
    with sessions() as session:
        assert verify(session) == AuditVerification(ok=True, count=2)


def test_concurrent_writers_keep_one_chain(sessions: sessionmaker[Session]) -> None:
    """8 threads x 25 appends, each in its own session and transaction."""
    threads, per_thread = 8, 25
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            start.wait()
            for n in range(per_thread):
                with transaction(sessions) as session:
                    record(session, f"user:{worker}", "item.view", f"item:{n}", {"n": n})
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    workers = [threading.Thread(target=writer, args=(w,)) for w in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in workers)
    assert errors == []

    total = threads * per_thread
    with sessions() as session:
        assert verify(session) == AuditVerification(ok=True, count=total)
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [e.seq for e in events] == list(range(1, total + 1))
    for worker in range(threads):
        mine = [json.loads(e.details)["n"] for e in events if e.actor == f"user:{worker}"]
        assert mine == list(range(per_thread))
