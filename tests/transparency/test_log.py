"""The log over the audit events, on both databases: its leaves are the public digests of the
committed events (never actor or details), appended in order and in pieces as well as at once;
its stored nodes give the RFC 9162 root and proofs that verify; an audit chain altered at the
log's edge stops it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker

from portal import audit
from portal.audit import AuditEvent
from portal.canonical import format_datetime
from portal.transparency import log
from portal.transparency.models import TransparencyLeaf
from portal.verify import merkle

START = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def record_events(sessions: sessionmaker[Session], count: int, first: int = 0) -> None:
    with sessions() as db:
        for i in range(first, first + count):
            target = f"package:PKG-2026-{i:04d}" if i % 3 else "Witness statements Aleppo.zip"
            audit.record(
                db,
                f"user:{i}",
                "package.create",
                target,
                {"note": f"private detail {i}"},
                now=START + timedelta(minutes=i),
            )
        db.commit()


def leaf_hashes(db: Session) -> list[bytes]:
    rows = db.scalars(select(TransparencyLeaf.leaf_hash).order_by(TransparencyLeaf.leaf_index))
    return [bytes.fromhex(h) for h in rows]


def test_leaves_are_public_digests_of_the_events(sessions: sessionmaker[Session]) -> None:
    record_events(sessions, 7)
    with sessions() as db:
        assert log.catch_up(db) == 7
        db.commit()
        entries = log.leaves(db, 0, 10)
        events = db.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [e.index for e in entries] == list(range(7))
    for entry, event in zip(entries, events, strict=True):
        record = merkle.parse_leaf_record(entry.record.encode())
        assert record["seq"] == event.seq
        assert record["event_sha256"] == event.hash  # the chain's hash of the full event
        assert record["time"] == format_datetime(event.occurred_at)
        assert "private detail" not in entry.record and "user:" not in entry.record
        assert entry.leaf_hash == merkle.leaf_hash(entry.record.encode())
    objects = [json.loads(e.record)["object"] for e in entries]
    assert objects[0] == log.WITHHELD  # a file name, not a kind:code
    assert objects[1] == "package:PKG-2026-0001"


def test_appending_in_pieces_equals_appending_at_once(sessions: sessionmaker[Session]) -> None:
    record_events(sessions, 45)
    with sessions() as db:
        assert log.catch_up(db, limit=1) == 1
        assert log.catch_up(db, limit=17) == 17
        db.commit()
    record_events(sessions, 20, first=45)
    with sessions() as db:
        assert log.catch_up(db) == 47
        assert log.catch_up(db) == 0
        db.commit()
        hashes = leaf_hashes(db)
        assert len(hashes) == log.tree_size(db) == 65
        for size in (1, 2, 3, 31, 32, 33, 64, 65):
            root = log.root_at(db, size)
            assert root == merkle.root_of(hashes[:size])
            for index in {0, size // 2, size - 1}:
                proof = log.inclusion_proof(db, index, size)
                merkle.verify_inclusion(index, size, hashes[index], proof, root)
            for first in (1, size // 2 or 1, size):
                proof = log.consistency_proof(db, first, size)
                merkle.verify_consistency(first, size, log.root_at(db, first), root, proof)
        found = log.find_leaf(db, hashes[40])
        assert found is not None and found.index == 40


def test_an_altered_chain_at_the_edge_stops_the_log(
    sessions: sessionmaker[Session],
) -> None:
    record_events(sessions, 3)
    with sessions() as db:
        log.catch_up(db)
        db.commit()
    record_events(sessions, 2, first=3)
    with sessions() as db:  # a superuser rewrites event 4 (the tables here have no triggers)
        db.execute(update(AuditEvent).where(AuditEvent.seq == 4).values(details='{"x":1}'))
        db.commit()
    with sessions() as db, pytest.raises(log.LogBroken, match="audit event 4"):
        log.catch_up(db)
    with sessions() as db:
        assert log.tree_size(db) == 3


def test_the_lock_is_taken(sessions: sessionmaker[Session]) -> None:
    """Both dialects have a lock (the SQLite one is a no-op write, PostgreSQL's advisory)."""
    with sessions() as db:
        log.lock_log(db)
        if db.get_bind().dialect.name == "postgresql":
            held = db.scalar(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
            )
            assert held and held >= 1
        db.rollback()
