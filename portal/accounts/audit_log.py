"""The audit log as admins read it: who did what to which object, and when; never case content.

Admins are the mechanism's IT, not case staff. An event's ``details`` may carry what a legal
officer wrote (a note, a reason, a request's reference), so the page and the CSV export show
only the detail keys of :data:`SAFE_DETAIL_KEYS` — an allow-list of identifiers, codes,
digests, counts and status words — and only values that look like tokens (a list shows as
its length); every other key or value is counted as withheld, never shown. Anyone who needs
the full record reads the database under the mechanism's own procedure.

The chain's verification (:func:`portal.audit.verify`) is run on demand and recorded
(:class:`portal.audit.AuditCheck`), so the page says when it was last verified and up to which
head without recomputing a long chain on every visit.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import User
from portal.audit import AuditCheck, AuditEvent
from portal.canonical import format_datetime
from portal.db import utcnow
from portal.paging import Page, page_number, paginate

__all__ = [
    "CSV_COLUMNS",
    "SAFE_DETAIL_KEYS",
    "AuditQuery",
    "csv_lines",
    "events",
    "last_check",
    "parse",
    "run_check",
    "safe_details",
]

#: Detail keys whose (scalar) values the admin pages show: identifiers, codes, digests,
#: counts, sizes, times and status words. Never free text (notes, reasons, messages,
#: references, summaries, explanations, decision outcomes) and never personal data
#: (addresses): a key not listed here is withheld.
SAFE_DETAIL_KEYS = frozenset(
    {
        "assignee",
        "authority",
        "blocked",
        "bytes",
        "consents",
        "count",
        "counted",
        "decision_id",
        "download_limit",
        "engine_version",
        "expires_at",
        "failures",
        "file_sha256",
        "file_size",
        "files",
        "fingerprint",
        "from",
        "invitation",
        "item_id",
        "item_ids",
        "items",
        "key",
        "leaf_index",
        "locked_until",
        "mark",
        "media_type",
        "old_fingerprint",
        "package",
        "policy_id",
        "policy_revision",
        "progress",
        "provider",
        "recall",
        "recipients",
        "rechecked",
        "redactions",
        "replaces",
        "rfa",
        "role",
        "seq",
        "sessions_ended",
        "signature_sha256",
        "signer",
        "size",
        "stage",
        "status",
        "to",
        "user",
    }
)
#: What a shown string value looks like: a code, digest, status word or timestamp (no spaces).
#: Anything else is text, withheld even under a safe key.
_TOKEN = re.compile(r"[A-Za-z0-9_.:@+/-]{1,128}")
SEARCH_MAX = 200
CSV_COLUMNS = ("seq", "occurred_at", "actor", "action", "target", "details", "withheld", "hash")


@dataclass(frozen=True)
class AuditQuery:
    """The filters of the page; ``problems`` names values that could not be used."""

    actor: str = ""
    action: str = ""
    target: str = ""
    since: date | None = None
    until: date | None = None
    page: int = 1
    problems: tuple[str, ...] = field(default=())

    def args(self, **changes: object) -> dict[str, str]:
        values = {
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "from": self.since.isoformat() if self.since else "",
            "to": self.until.isoformat() if self.until else "",
            **{k: str(v) for k, v in changes.items()},
        }
        return {key: value for key, value in values.items() if value}


def _date(text: str, which: str, problems: list[str]) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append(f"Enter the {which} date as YYYY-MM-DD.")
        return None


def _text(args: Mapping[str, str], name: str, problems: list[str]) -> str:
    value = args.get(name, "").strip()
    if len(value) > SEARCH_MAX:
        problems.append(f"The {name} filter is at most {SEARCH_MAX} characters.")
        return ""
    return value


def parse(args: Mapping[str, str]) -> AuditQuery:
    problems: list[str] = []
    since = _date(args.get("from", ""), "start", problems)
    until = _date(args.get("to", ""), "end", problems)
    if since and until and until < since:
        problems.append("The end date is before the start date.")
        until = None
    return AuditQuery(
        actor=_text(args, "actor", problems),
        action=_text(args, "action", problems),
        target=_text(args, "target", problems),
        since=since,
        until=until,
        page=page_number(args.get("page")),
        problems=tuple(problems),
    )


def _actor_condition(db: Session, actor: str) -> object:
    """``user:12``, ``system``, ``api:...`` as recorded, or a user's e-mail address."""
    if "@" in actor:
        user_id = db.scalar(select(User.id).where(User.email == actor.lower()))
        return AuditEvent.actor == (f"user:{user_id}" if user_id is not None else actor)
    return AuditEvent.actor == actor


def events(db: Session, query: AuditQuery) -> Select[AuditEvent]:
    """The matching events, newest first. ``action`` matches itself and what it prefixes
    (``rfa`` matches ``rfa.transition``); ``target`` matches an object (``rfa:RFA-2026-0001``)
    or a kind of object (``rfa:``)."""
    stmt = select(AuditEvent)
    if query.actor:
        stmt = stmt.where(_actor_condition(db, query.actor))  # type: ignore[arg-type]
    if query.action:
        stmt = stmt.where(
            or_(
                AuditEvent.action == query.action,
                AuditEvent.action.startswith(query.action.rstrip(".") + ".", autoescape=True),
            )
        )
    if query.target:
        stmt = stmt.where(AuditEvent.target.startswith(query.target, autoescape=True))
    if query.since:
        stmt = stmt.where(AuditEvent.occurred_at >= datetime.combine(query.since, time(), UTC))
    if query.until:
        end = datetime.combine(query.until + timedelta(days=1), time(), UTC)
        stmt = stmt.where(AuditEvent.occurred_at < end)
    return stmt.order_by(AuditEvent.seq.desc())


def page_of(db: Session, query: AuditQuery) -> Page[AuditEvent]:
    return paginate(db, events(db, query), query.page)


def safe_details(details_json: str) -> tuple[list[tuple[str, str]], int]:
    """The shown (key, value) pairs of an event's details and how many keys were withheld."""
    try:
        details = json.loads(details_json)
    except ValueError:
        return [], 1
    if not isinstance(details, dict):
        return [], 1
    shown: list[tuple[str, str]] = []
    withheld = 0
    for key in sorted(details):
        value = details[key]
        if key not in SAFE_DETAIL_KEYS:
            withheld += 1
        elif isinstance(value, list):
            shown.append((key, f"{len(value)} value{'' if len(value) == 1 else 's'}"))
        elif value is None or isinstance(value, bool | int | float):
            shown.append((key, json.dumps(value)))
        elif isinstance(value, str) and _TOKEN.fullmatch(value):
            shown.append((key, value))
        else:
            withheld += 1
    return shown, withheld


def actor_names(db: Session, rows: Sequence[AuditEvent]) -> dict[str, str]:
    """``user:12`` -> "Display Name (role)" for the user actors of ``rows``."""
    ids = {
        int(row.actor.split(":", 1)[1])
        for row in rows
        if row.actor.startswith("user:") and row.actor.split(":", 1)[1].isdecimal()
    }
    if not ids:
        return {}
    users = db.execute(select(User.id, User.display_name, User.role).where(User.id.in_(ids)))
    return {f"user:{u.id}": f"{u.display_name} ({u.role.replace('_', ' ')})" for u in users}


def csv_lines(db: Session, query: AuditQuery, *, chunk: int = 500) -> Iterator[str]:
    """The matching events as CSV text, a line at a time (rows streamed from the database)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: Sequence[object]) -> str:
        writer.writerow(values)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield line(CSV_COLUMNS)
    result = db.execute(events(db, query).execution_options(yield_per=chunk))
    try:
        for row in result.scalars():
            shown, withheld = safe_details(row.details)
            yield line(
                (
                    row.seq,
                    format_datetime(row.occurred_at),
                    _cell(row.actor),
                    _cell(row.action),
                    _cell(row.target),
                    _cell("; ".join(f"{k}={v}" for k, v in shown)),
                    withheld,
                    row.hash,
                )
            )
    finally:
        result.close()


def _cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- verification --------------------------------------------------------------------------


def run_check(db: Session, *, by: User, now: datetime | None = None) -> AuditCheck:
    """Verify the whole chain now and record the outcome (flushed, not committed)."""
    head = audit.head(db)
    outcome = audit.verify(db)
    check = AuditCheck(
        checked_at=now or utcnow(),
        checked_by_id=by.id,
        ok=outcome.ok,
        event_count=outcome.count,
        head_seq=head.seq if outcome.ok else outcome.count,
        head_hash=head.hash if outcome.ok else _hash_of(db, outcome.count),
        first_bad_seq=outcome.first_bad_seq,
        reason=outcome.reason,
    )
    db.add(check)
    db.flush()
    audit.record(
        db,
        audit.actor_label(by),
        "audit.verify",
        "audit:chain",
        {"status": "intact" if outcome.ok else "broken", "count": outcome.count},
    )
    return check


def _hash_of(db: Session, seq: int) -> str:
    """The hash of event ``seq`` (the last intact one), or the genesis hash for 0."""
    if seq == 0:
        return audit.GENESIS_HASH
    found = db.scalar(select(AuditEvent.hash).where(AuditEvent.seq == seq))
    return found or audit.GENESIS_HASH


def last_check(db: Session) -> AuditCheck | None:
    return db.scalars(select(AuditCheck).order_by(AuditCheck.id.desc()).limit(1)).first()
