"""The log itself: leaves made from the audit log, appended by :func:`catch_up`, and the proofs
served from the stored complete subtrees.

**A leaf** is the public digest of one audit event (:func:`leaf_record`): its sequence number,
time, action and object code, and ``event_sha256``, the event's hash in the audit chain. That
hash is the SHA-256 of the full event as :func:`portal.audit.event_hash` defines it (actor,
details, and the previous event's hash included), so the mechanism can later show a court the
whole event and anyone can check it against the leaf; the leaf itself never carries the
actor or the details. An object that is not a plain ``kind:code`` (an import bundle's file
name) and an action that is not a plain dotted name are published as ``(withheld)``.

**Appending** happens after the audit row is committed, not in its transaction: the worker
(and the assembler, before it signs a package's evidence) calls :func:`catch_up`, which turns
the committed audit events after the tree's last leaf into leaves, in order. The leaves are a
deterministic function of the audit rows, so nothing is lost when it runs late. ``audit.record``
is left as it was (its lock order is untouched): the log's own lock (:func:`lock_log`) is only
ever taken *without* the chain lock held, or after it, never before. Since the chain lock is
held until commit, the committed events are always a prefix of the chain (no gaps). Each event
appended must link to the previous leaf's event (``prev_hash``) and hash to its own
``event_sha256``: a chain altered at the log's edge stops the log instead of being signed.

**Stored**: the leaf (its record, as text, and its hash), and the hash of every complete
subtree (``transparency_node``), written as the leaves arrive (on average two nodes a leaf).
A proof then needs O(log² n) stored nodes, fetched in one query per level, whatever the size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, insert, or_, select, text
from sqlalchemy.orm import Session

from portal.audit import GENESIS_HASH, AuditEvent, event_hash
from portal.canonical import format_datetime
from portal.transparency.models import TransparencyLeaf, TransparencyNode
from portal.verify.merkle import (
    EMPTY_ROOT,
    Node,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    leaf_record_bytes,
    node_hash,
    resolve,
)

__all__ = [
    "LOG_LOCK_KEY",
    "WITHHELD",
    "LeafEntry",
    "LogBroken",
    "TransparencyError",
    "catch_up",
    "consistency_proof",
    "find_leaf",
    "inclusion_proof",
    "leaf_record",
    "leaves",
    "leaves_of_objects",
    "lock_log",
    "root_at",
    "tree_size",
]

#: The PostgreSQL advisory lock serialising appends to the log (sha256(b"portal.transparency")).
LOG_LOCK_KEY = 3180795727312766523
WITHHELD = "(withheld)"
CATCH_UP_CHUNK = 2000  # audit events read and appended at a time
_OBJECT = re.compile(r"[a-z_]{1,40}:[A-Za-z0-9][A-Za-z0-9._@-]{0,150}")
_ACTION = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)*")


class TransparencyError(Exception):
    """The log could not do what was asked; the message says why (never content)."""


class LogBroken(TransparencyError):
    """The audit chain does not continue the log (altered or reordered at the log's edge):
    nothing is appended or signed; the administrators must look."""


@dataclass(frozen=True)
class LeafEntry:
    """One leaf as stored: its index, its record (the leaf bytes, as text) and its hash."""

    index: int
    record: str
    leaf_hash: bytes


def leaf_record(event: AuditEvent) -> dict[str, object]:
    """The public digest of an audit event (see the module notes)."""
    target = event.target if _OBJECT.fullmatch(event.target) else WITHHELD
    action = event.action if _ACTION.fullmatch(event.action) else WITHHELD
    return {
        "seq": event.seq,
        "time": format_datetime(event.occurred_at),
        "action": action,
        "object": target,
        "event_sha256": event.hash,
    }


def lock_log(session: Session) -> None:
    """Hold the log's append lock until the transaction ends (never before the audit
    chain's lock: see the module notes)."""
    dialect = session.get_bind(TransparencyLeaf).dialect.name
    if dialect == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(CAST(:key AS BIGINT))"), {"key": LOG_LOCK_KEY}
        )
    elif dialect == "sqlite":  # a write matching nothing takes SQLite's write lock
        session.execute(text("UPDATE transparency_leaf SET leaf_index = leaf_index WHERE 1 = 0"))
    else:
        raise RuntimeError(f"no transparency log lock for database dialect {dialect!r}")


def tree_size(session: Session) -> int:
    last = session.scalar(select(func.max(TransparencyLeaf.leaf_index)))
    return 0 if last is None else int(last) + 1


def catch_up(session: Session, *, limit: int | None = None) -> int:
    """Append a leaf for every committed audit event not in the log yet (at most ``limit``),
    within the caller's transaction (flushed, not committed); returns how many. Takes the
    log's lock. Raises :class:`LogBroken` when the chain does not continue the log."""
    lock_log(session)
    size = tree_size(session)
    appended = 0
    previous = _last_event_hash(session, size)
    frontier = _frontier(session, size)
    while limit is None or appended < limit:
        chunk = CATCH_UP_CHUNK if limit is None else min(CATCH_UP_CHUNK, limit - appended)
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.seq > size).order_by(AuditEvent.seq).limit(chunk)
        ).all()
        if not events:
            break
        leaves: list[dict[str, object]] = []
        nodes: list[dict[str, object]] = []
        for event in events:
            _check_continues(event, size + 1, previous)
            record = leaf_record_bytes(leaf_record(event))
            digest = leaf_hash(record)
            leaves.append(
                {"leaf_index": size, "record": record.decode("utf-8"), "leaf_hash": digest.hex()}
            )
            nodes.extend(_append(frontier, size, digest))
            size, previous = size + 1, event.hash
        session.execute(insert(TransparencyLeaf), leaves)
        session.execute(insert(TransparencyNode), nodes)
        appended += len(events)
        session.expunge_all()  # the audit rows read: memory stays flat over a long backlog
    return appended


def _check_continues(event: AuditEvent, seq: int, previous: str) -> None:
    if event.seq != seq:
        raise LogBroken(f"audit event {seq} is missing: the chain goes on at {event.seq}")
    recomputed = event_hash(
        event.prev_hash,
        event.seq,
        event.occurred_at,
        event.actor,
        event.action,
        event.target,
        event.details,
    )
    if event.prev_hash != previous or recomputed != event.hash:
        raise LogBroken(
            f"audit event {seq} does not continue the transparency log (the audit chain was "
            "altered); nothing was appended or signed"
        )


def _last_event_hash(session: Session, size: int) -> str:
    """The ``event_sha256`` of the last leaf (the genesis hash for an empty log)."""
    if size == 0:
        return GENESIS_HASH
    record = session.scalar(
        select(TransparencyLeaf.record).where(TransparencyLeaf.leaf_index == size - 1)
    )
    return str(json.loads(record or "{}").get("event_sha256", ""))


def _frontier(session: Session, size: int) -> dict[int, bytes]:
    """The hashes of the complete subtrees a new leaf may combine with: for each level whose
    bit is set in ``size``, the last complete node at that level."""
    wanted = {
        (level, (size >> level) - 1) for level in range(size.bit_length()) if size >> level & 1
    }
    return {level: digest for (level, _), digest in _nodes(session, wanted).items()}


def _append(frontier: dict[int, bytes], size: int, digest: bytes) -> list[dict[str, object]]:
    """Add leaf ``size`` with hash ``digest``: the rows of the nodes it completes."""
    rows: list[dict[str, object]] = [{"level": 0, "node_index": size, "hash": digest.hex()}]
    level, current, index = 0, digest, size
    while index & 1:
        current = node_hash(frontier.pop(level), current)
        level, index = level + 1, index >> 1
        rows.append({"level": level, "node_index": index, "hash": current.hex()})
    frontier[level] = current
    return rows


def _nodes(session: Session, wanted: set[Node]) -> dict[Node, bytes]:
    """The stored hashes of ``wanted`` (level, index) nodes, one query for them all."""
    if not wanted:
        return {}
    by_level: dict[int, list[int]] = {}
    for level, index in wanted:
        by_level.setdefault(level, []).append(index)
    condition = or_(
        *(
            and_(TransparencyNode.level == level, TransparencyNode.node_index.in_(indexes))
            for level, indexes in by_level.items()
        )
    )
    rows = session.execute(
        select(TransparencyNode.level, TransparencyNode.node_index, TransparencyNode.hash).where(
            condition
        )
    ).all()
    found = {(int(level), int(index)): bytes.fromhex(digest) for level, index, digest in rows}
    missing = wanted - set(found)
    if missing:
        raise LogBroken(f"the log is missing {len(missing)} stored subtree hash(es)")
    return found


def root_at(session: Session, size: int) -> bytes:
    """The root hash of the first ``size`` leaves."""
    if size == 0:
        return EMPTY_ROOT
    return resolve([(0, size)], lambda wanted: _nodes(session, wanted))[0]


def inclusion_proof(session: Session, index: int, size: int) -> list[bytes]:
    """The inclusion proof of leaf ``index`` in the tree of ``size`` leaves (RFC 9162)."""
    return resolve(inclusion_ranges(index, size), lambda wanted: _nodes(session, wanted))


def consistency_proof(session: Session, first: int, second: int) -> list[bytes]:
    """The consistency proof from the tree of ``first`` leaves to ``second`` (RFC 9162)."""
    return resolve(consistency_ranges(first, second), lambda wanted: _nodes(session, wanted))


def leaves(session: Session, start: int, count: int) -> list[LeafEntry]:
    """Up to ``count`` leaves from index ``start``."""
    rows = session.execute(
        select(TransparencyLeaf.leaf_index, TransparencyLeaf.record, TransparencyLeaf.leaf_hash)
        .where(TransparencyLeaf.leaf_index >= start)
        .order_by(TransparencyLeaf.leaf_index)
        .limit(count)
    ).all()
    return [LeafEntry(int(i), record, bytes.fromhex(digest)) for i, record, digest in rows]


def find_leaf(session: Session, digest: bytes) -> LeafEntry | None:
    """The leaf with hash ``digest``, if any."""
    row = session.execute(
        select(TransparencyLeaf.leaf_index, TransparencyLeaf.record).where(
            TransparencyLeaf.leaf_hash == digest.hex()
        )
    ).first()
    return None if row is None else LeafEntry(int(row[0]), row[1], digest)


def leaves_of_objects(session: Session, objects: Sequence[str], size: int) -> list[LeafEntry]:
    """The leaves (below ``size``) of the audit events about ``objects``, in log order."""
    rows = session.execute(
        select(TransparencyLeaf.leaf_index, TransparencyLeaf.record, TransparencyLeaf.leaf_hash)
        .join(AuditEvent, AuditEvent.seq == TransparencyLeaf.leaf_index + 1)
        .where(AuditEvent.target.in_(list(objects)), TransparencyLeaf.leaf_index < size)
        .order_by(TransparencyLeaf.leaf_index)
    ).all()
    found = [LeafEntry(int(i), record, bytes.fromhex(digest)) for i, record, digest in rows]
    # the leaf as logged decides (the audit row joined on may have been altered since)
    return [entry for entry in found if json.loads(entry.record).get("object") in objects]
