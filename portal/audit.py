"""The hash-chained audit log: append with :func:`record`, check with :func:`verify`.

Each event is one ``audit_event`` row. Events are numbered 1, 2, 3, ... without
gaps, and each carries the hash of the one before it, so altering, deleting,
inserting or reordering rows breaks the chain at that point.

How an event's hash is made (an auditor can recompute it with the standard
library alone)::

    import hashlib, json
    from datetime import timezone

    def event_hash(prev_hash, seq, occurred_at, actor, action, target, details):
        fields = {
            "seq": seq,                    # integer, 1 for the first event
            "occurred_at": occurred_at.astimezone(timezone.utc).isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "target": target,
            "details": details,            # the stored column: JSON *text*, hashed as a string
        }
        payload = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256((prev_hash + payload).encode("utf-8")).hexdigest()

``prev_hash`` is the previous event's ``hash`` and ``"0" * 64`` (:data:`GENESIS_HASH`)
for event 1; it is always 64 lowercase hex digits, so no separator is needed.
``occurred_at`` looks like ``2026-03-01T09:30:00.000000+00:00``.

What the chain cannot show by itself: that the newest events were deleted, or that
someone with write access rebuilt the whole chain (the hash has no key). Anchor it:
publish :func:`head` (``SEQ:HASH``) somewhere the database's writers cannot alter -
a signed report, a message to the oversight office - and pass it back as
``verify(session, anchor=...)``; verification then also fails when that event is
missing or differs.

Details never carry secrets. Keys (at any depth) are refused when, lowercased with
separators removed, they contain ``password``, ``passwd``, ``passphrase``, ``secret``,
``token``, ``totp``, ``hotp``, ``credential``, ``privatekey`` or ``apikey``; when one of
their words is ``otp``, ``pwd``, ``pin`` or ``cookie``; or when they are ``code`` alone
or a code qualified as a login code (``recovery_code``, ``verification_code``,
``auth_code``, ``backupCode``, ...). ``authority_code`` is fine. Values are not
inspected: record *that* something happened, never the secret itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import BigInteger, Boolean, ForeignKey, String, Text, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from portal.canonical import canonical_json, format_datetime, sha256_hex
from portal.db import Base, UTCDateTime, hex_digest, utcnow

__all__ = [
    "CHAIN_LOCK_KEY",
    "CLI_ACTOR",
    "GENESIS_HASH",
    "SYSTEM_ACTOR",
    "AuditCheck",
    "AuditVerification",
    "ChainHead",
    "actor_label",
    "event_hash",
    "head",
    "lock_chain",
    "record",
    "verify",
]


class AuditEvent(Base):
    __tablename__ = "audit_event"
    __table_args__ = (hex_digest("prev_hash"), hex_digest("hash"))

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    target: Mapped[str] = mapped_column(String(200), index=True)
    details: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditCheck(Base):
    """One verification of the chain (:func:`verify`) an admin ran from the audit-log page:
    what it found and the head it verified, so the page can say when the chain was last
    checked without recomputing it on every visit."""

    __tablename__ = "audit_check"

    id: Mapped[int] = mapped_column(primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    checked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    ok: Mapped[bool] = mapped_column(Boolean)
    event_count: Mapped[int] = mapped_column(BigInteger)
    head_seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    first_bad_seq: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)


GENESIS_HASH = "0" * 64
SYSTEM_ACTOR = "system"
CLI_ACTOR = "cli"

# Key of the PostgreSQL advisory lock serialising appends: the first 8 bytes of
# sha256(b"portal.audit.chain") as a signed 64-bit integer.
CHAIN_LOCK_KEY = 6241236603233829539

_SECRET_STEMS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "totp",
    "hotp",
    "credential",
    "privatekey",
    "apikey",
)
_SECRET_WORDS = frozenset({"otp", "pwd", "pin", "cookie"})
_CODE_QUALIFIERS = frozenset(
    {
        "2fa",
        "auth",
        "authentication",
        "backup",
        "confirmation",
        "login",
        "mfa",
        "one",
        "recovery",
        "reset",
        "security",
        "verification",
    }
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class UserLike(Protocol):
    @property
    def id(self) -> int | None: ...


def actor_label(user: UserLike) -> str:
    """The actor string for a user: ``"user:12"`` (an API client acting for its authority
    names itself through ``audit_actor``: ``"api:<client_id>"``)."""
    label = getattr(user, "audit_actor", None)
    if isinstance(label, str):
        return label
    if user.id is None:
        raise ValueError("user has no id yet; flush it before recording what it did")
    return f"user:{user.id}"


@dataclass(frozen=True)
class ChainHead:
    """The last event of the chain, to publish elsewhere and pass back to :func:`verify`."""

    seq: int
    hash: str

    def __post_init__(self) -> None:
        if self.seq < 0:
            raise ValueError(f"chain head sequence number must be 0 or more, not {self.seq}")
        if not _HEX64.fullmatch(self.hash):
            raise ValueError("chain head hash must be 64 lowercase hex digits")
        if self.seq == 0 and self.hash != GENESIS_HASH:
            raise ValueError("chain head 0 (empty chain) must have the genesis hash (64 zeros)")

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, value: str) -> ChainHead:
        """Read ``SEQ:HASH`` as printed by ``str(head)``."""
        seq_text, sep, digest = value.strip().partition(":")
        if not sep or not seq_text.isdecimal():
            raise ValueError("chain head must look like SEQ:HASH, e.g. 200:9f86d0...")
        return cls(int(seq_text), digest.lower())


@dataclass(frozen=True)
class AuditVerification:
    """The outcome of :func:`verify`.

    ``count`` is the number of events found intact (all of them when ``ok``, those
    before the break otherwise). ``reason`` reads ``"event N: what is wrong"``.
    """

    ok: bool
    count: int
    first_bad_seq: int | None = None
    reason: str | None = None

    def message(self) -> str:
        """One line for people: ``audit chain intact: 200 events``."""
        if self.ok:
            return f"audit chain intact: {self.count} event{'' if self.count == 1 else 's'}"
        return f"audit chain broken at {self.reason}"


def event_hash(
    prev_hash: str,
    seq: int,
    occurred_at: datetime,
    actor: str,
    action: str,
    target: str,
    details: str,
) -> str:
    """The hash of an event; ``details`` is the stored canonical JSON text."""
    fields = {
        "seq": seq,
        "occurred_at": format_datetime(occurred_at),
        "actor": actor,
        "action": action,
        "target": target,
        "details": details,
    }
    return sha256_hex(prev_hash + canonical_json(fields))


def lock_chain(session: Session) -> None:
    """Hold the chain's append lock until ``session``'s transaction ends.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: a write that matches
    no row, which makes pysqlite open the transaction and SQLite take the
    database write lock (other writers wait on the busy timeout). Either way no
    one else can read the head and append until we commit or roll back.
    (Without it the chain still could not fork - ``seq`` is the primary key and
    ``hash`` is unique - but racing writers would fail instead of waiting.)
    """
    dialect = session.get_bind(AuditEvent).dialect.name
    if dialect == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(CAST(:key AS BIGINT))"), {"key": CHAIN_LOCK_KEY}
        )
    elif dialect == "sqlite":
        session.execute(text("UPDATE audit_event SET seq = seq WHERE 1 = 0"))
    else:
        raise RuntimeError(f"no audit chain lock for database dialect {dialect!r}")


def head(session: Session) -> ChainHead:
    """The newest event's number and hash (``0`` and the genesis hash when empty)."""
    row = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    if row is None:
        return ChainHead(0, GENESIS_HASH)
    return ChainHead(row.seq, row.hash)


def record(
    session: Session,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, object] | None = None,
    *,
    now: datetime | None = None,
) -> AuditEvent:
    """Append an event within the caller's transaction (flushed, not committed).

    The chain lock is held from here until the caller commits or rolls back,
    so keep the transaction short after recording.
    """
    for name, value in (("actor", actor), ("action", action), ("target", target)):
        _check_label(name, value)
    if details is None:
        details = {}
    if not isinstance(details, Mapping):
        raise TypeError(f"audit details must be a mapping, not {type(details).__name__}")
    details_json = canonical_json(details)  # first: it refuses cycles and odd types
    _refuse_secrets(details, "details")
    if now is not None:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("naive datetime given; use a timezone-aware UTC datetime")
        now = now.astimezone(UTC)

    lock_chain(session)
    last = head(session)
    occurred_at = now if now is not None else utcnow()
    seq = last.seq + 1
    event = AuditEvent(
        seq=seq,
        occurred_at=occurred_at,
        actor=actor,
        action=action,
        target=target,
        details=details_json,
        prev_hash=last.hash,
        hash=event_hash(last.hash, seq, occurred_at, actor, action, target, details_json),
    )
    session.add(event)
    session.flush()
    return event


def verify(
    session: Session, *, anchor: ChainHead | None = None, chunk_size: int = 1000
) -> AuditVerification:
    """Recompute the chain in order and report the first event that is wrong.

    Rows are streamed ``chunk_size`` at a time, so memory stays flat however long
    the log. With ``anchor`` (a previously published :func:`head`), the event it
    names must still be there with the same hash.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    stmt = (
        select(
            AuditEvent.seq,
            AuditEvent.occurred_at,
            AuditEvent.actor,
            AuditEvent.action,
            AuditEvent.target,
            AuditEvent.details,
            AuditEvent.prev_hash,
            AuditEvent.hash,
        )
        .order_by(AuditEvent.seq)
        .execution_options(yield_per=chunk_size)
    )
    count = 0
    prev_hash = GENESIS_HASH
    result = session.execute(stmt)
    try:
        for row in result:
            expected = count + 1
            problem = _missing(row.seq, expected)
            if problem is None:
                recomputed = event_hash(
                    row.prev_hash,
                    row.seq,
                    row.occurred_at,
                    row.actor,
                    row.action,
                    row.target,
                    row.details,
                )
                problem = _mismatch(
                    row.seq, content_ok=recomputed == row.hash, link_ok=row.prev_hash == prev_hash
                )
            if (
                problem is None
                and anchor is not None
                and row.seq == anchor.seq
                and row.hash != anchor.hash
            ):
                problem = (row.seq, "hash differs from the published head (chain rewritten?)")
            if problem is not None:
                bad_seq, detail = problem
                return AuditVerification(False, count, bad_seq, f"event {bad_seq}: {detail}")
            count += 1
            prev_hash = row.hash
    finally:
        result.close()
    if anchor is not None and anchor.seq > count:
        missing = count + 1
        detail = (
            f"missing (deleted from the end?): the chain ends at event {count} "
            f"but the published head is event {anchor.seq}"
        )
        return AuditVerification(False, count, missing, f"event {missing}: {detail}")
    return AuditVerification(True, count)


def _missing(seq: int, expected: int) -> tuple[int, str] | None:
    """A gap or an impossible number where event ``expected`` should be."""
    if seq < expected:  # rows come sorted and unique, so only seq < 1 gets here
        return seq, "sequence numbers start at 1 (inserted?)"
    if seq == expected:
        return None
    if expected == 1:
        return 1, f"missing (deleted?): the chain starts at event {seq}"
    also = f", as are events up to {seq - 1}" if seq - expected > 1 else ""
    return expected, f"missing (deleted?){also}: event {seq} follows event {expected - 1}"


def _mismatch(seq: int, *, content_ok: bool, link_ok: bool) -> tuple[int, str] | None:
    predecessor = "the genesis hash" if seq == 1 else f"the hash of event {seq - 1}"
    if content_ok and link_ok:
        return None
    if link_ok:
        return seq, "hash does not match its content (altered?)"
    if content_ok:
        return seq, f"prev_hash is not {predecessor} (inserted or reordered?)"
    return seq, (
        f"hash does not match its content and prev_hash is not {predecessor} "
        "(replaced, inserted or reordered?)"
    )


def _check_label(name: str, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"audit {name} must be a non-empty string")
    if _CONTROL.search(value):
        raise ValueError(f"audit {name} must not contain control characters")
    column_type = AuditEvent.__table__.c[name].type
    if isinstance(column_type, String) and column_type.length and len(value) > column_type.length:
        raise ValueError(f"audit {name} is longer than {column_type.length} characters")


def _secret_reason(key: str) -> str | None:
    """Why ``key`` looks like it names a secret, or None."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).lower()
    words = [word for word in re.split(r"[^a-z0-9]+", spaced) if word]
    compact = "".join(words)
    for stem in _SECRET_STEMS:
        if stem in compact:
            return f"contains {stem!r}"
    for word in words:
        if word in _SECRET_WORDS:
            return f"has the word {word!r}"
    if "code" in words and (len(words) == 1 or _CODE_QUALIFIERS.intersection(words)):
        return "names a login or recovery code"
    return None


def _refuse_secrets(value: object, where: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{where}.{key}"
            if isinstance(key, str):
                why = _secret_reason(key)
                if why is not None:
                    raise ValueError(
                        f"audit {path} looks like a secret ({why}); "
                        "record that something happened, never the secret itself"
                    )
            _refuse_secrets(item, path)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _refuse_secrets(item, f"{where}[{index}]")
