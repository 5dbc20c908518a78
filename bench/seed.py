"""A populated portal for the load benchmark, seeded once and kept between runs.

``ensure_seeded`` brings a database up to the migration head (so index migrations added
later apply to a kept database too), and when the database does not hold the data of the
current :class:`Scale` and ``SEED_VERSION`` it seeds it with bulk inserts: authorities,
providers, 100k items, 10k requests across authorities and statuses with candidate items,
1k packages (each with its decision record, items and some downloads) and one enrolled user
per virtual user (standard argon2id hashes, TOTP secrets). Candidates are added after their
request was submitted and before its decision, but for ``STALE_SHARE`` of the decided
requests, which got one more candidate after it (the officers' "decisions older than their
facts"; until SEED_VERSION 2 every candidate was stamped at seeding, after every decision).
The logins and the codes the benchmark visits are kept beside the database in
``logins.json`` (mode 0600).

Package rows have no files: the pages measured show a package's record, not its bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pyotp
from search import PLACES, TAGS, WORDS
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from portal.accounts.creation import NewUser, create_user
from portal.accounts.models import User
from portal.accounts.totp_key import ensure_totp_key
from portal.accounts.totp_seeds import attach_sealer, sealer_for_settings
from portal.audit import CLI_ACTOR
from portal.config import Settings
from portal.db import make_engine, make_session_factory, refresh_planner_statistics
from portal.eligibility.models import Decision
from portal.migrate import upgrade
from portal.packages.models import Download, Package, PackageItem, Recall
from portal.registry.models import ITEM_KINDS, Authority, Item, Provider
from portal.rfa.models import Rfa, RfaItem
from portal.sealing import Sealer, ensure_sealing_key

#: Bump when the seeded data changes shape: kept databases are then seeded again.
SEED_VERSION = 2
CHUNK = 5000
CANDIDATES_PER_REQUEST = 5
ITEMS_PER_PACKAGE = 5
STALE_SHARE = 0.05
#: Request statuses and their share of the 10k requests.
STATUS_MIX = {
    "draft": 5, "submitted": 12, "in_review": 13, "clarification_requested": 5,
    "approved": 10, "partially_approved": 8, "declined": 7, "transmitted": 20,
    "acknowledged": 12, "closed": 5, "withdrawn": 3,
}  # fmt: skip
PACKAGE_MIX = {
    "released": 80, "assembled": 6, "queued": 2, "blocked": 3, "failed": 1,
    "withdrawn": 3, "recalled": 2, "expired": 3,
}  # fmt: skip
SEEDED_AT = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Scale:
    items: int = 100_000
    requests: int = 10_000
    packages: int = 1_000
    authorities: int = 10
    providers: int = 12
    officers: int = 8
    users_per_authority: int = 1  # requesters and recipients each

    def key(self) -> str:
        data = json.dumps({**asdict(self), "seed": SEED_VERSION}, sort_keys=True)
        return hashlib.sha256(data.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Login:
    email: str
    password: str
    totp_secret: str
    role: str
    authority: str | None = None


@dataclass
class Seeded:
    """What the benchmark needs to know about a seeded database."""

    key: str
    logins: list[Login]
    #: Requests in the triage queue (officers search the repository for them).
    queue_requests: list[str] = field(default_factory=list)
    #: Package codes an officer may open.
    packages: list[str] = field(default_factory=list)
    #: Released package codes by authority code (what its recipients open).
    released: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Seeded:
        data = json.loads(path.read_text())
        data["logins"] = [Login(**entry) for entry in data["logins"]]
        return cls(**data)

    def save(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(self), handle, indent=1)


def _hex(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def _mix(rng: random.Random, shares: dict[str, int], n: int) -> list[str]:
    return rng.choices(list(shares), weights=list(shares.values()), k=n)


def _bulk(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    for first in range(0, len(rows), CHUNK):
        session.execute(insert(model), rows[first : first + CHUNK])


def _ids(session: Session, column: Any) -> list[int]:
    return list(session.scalars(select(column).order_by(column)))


def _registry(session: Session, scale: Scale, rng: random.Random) -> list[str]:
    authorities = [f"LOAD-A{n:02d}" for n in range(scale.authorities)]
    session.add_all(
        Authority(code=code, name=f"Load authority {n}", kind="war_crimes_unit", country="ZZ")
        for n, code in enumerate(authorities)
    )
    session.add_all(
        Provider(code=f"LOAD-P{n:02d}", name=f"Provider {n}", kind="ngo", public_name=f"P{n}")
        for n in range(scale.providers)
    )
    session.flush()
    providers = _ids(session, Provider.id)
    start = date(2015, 1, 1)
    _bulk(
        session,
        Item,
        [
            {
                "code": f"ITM-{n:06d}",
                "provider_id": rng.choice(providers),
                "kind": rng.choice(ITEM_KINDS),
                "title": " ".join(rng.sample(WORDS, 3)).capitalize() + f" no. {n}",
                "description": "",
                "media_type": "application/pdf",
                "original_filename": f"{n}.pdf",
                "size_bytes": rng.randrange(1, 10_000_000),
                "sha256": _hex(f"item {n}"),
                "collected_at": start + timedelta(days=rng.randrange(3650)),
                "place": rng.choice(PLACES),
                "sensitivity": rng.choice(("low", "medium", "high")),
                "tags": rng.sample(TAGS, rng.randrange(0, 4)),
                "cleared_as_is": False,
            }
            for n in range(scale.items)
        ],
    )
    return authorities


def _users(session: Session, scale: Scale, authorities: list[str]) -> list[Login]:
    """One account per virtual user, with the standard (production) password hash."""
    wanted: list[tuple[str, str | None]] = [("legal_officer", None)] * scale.officers
    for code in authorities:
        wanted += [("requester", code), ("recipient", code)] * scale.users_per_authority
    logins = []
    for n, (role, authority) in enumerate(wanted):
        login = Login(
            email=f"{role.replace('_', '.')}.{n}@load.example",
            password=secrets.token_urlsafe(18),
            totp_secret=pyotp.random_base32(),
            role=role,
            authority=authority,
        )
        create_user(
            session,
            NewUser(
                email=login.email,
                display_name=f"Load {role.replace('_', ' ')} {n}",
                role=role,
                authority_code=authority,
            ),
            password=login.password,
            totp_secret=login.totp_secret,
            actor=CLI_ACTOR,
        )
        logins.append(login)
    return logins


class SeededRequest(NamedTuple):
    id: int
    code: str
    authority_id: int
    status: str
    submitted_at: datetime | None


def _requests(
    session: Session, scale: Scale, rng: random.Random, officers: list[int]
) -> list[SeededRequest]:
    """The requests, in id order."""
    authorities = _ids(session, Authority.id)
    counters: dict[int, int] = {}
    rows = []
    for n, status in enumerate(_mix(rng, STATUS_MIX, scale.requests)):
        submitted = SEEDED_AT - timedelta(minutes=rng.randrange(3 * 365 * 24 * 60))
        counters[submitted.year] = counters.get(submitted.year, 0) + 1
        urgency = rng.choices(("normal", "urgent", "very_urgent"), weights=(8, 3, 1))[0]
        rows.append(
            {
                "code": f"RFA-{submitted.year}-{counters[submitted.year]:04d}",
                "authority_id": authorities[n % len(authorities)],
                "status": status,
                "their_reference": f"LOAD/{n}",
                "legal_basis": "Mutual legal assistance arrangement",
                "proceedings_type": rng.choice(("investigation", "prosecution", "trial")),
                "offences": ["war_crimes"],
                "summary_of_facts": "Seeded for the load benchmark.",
                "assistance_sought": "Statements and photographs.",
                "urgency": urgency,
                "urgency_justification": "" if urgency == "normal" else "Trial date set.",
                "created_at": submitted - timedelta(days=1),
                "submitted_at": None if status == "draft" else submitted,
                "updated_at": submitted + timedelta(days=rng.randrange(60)),
                "assigned_to_id": rng.choice([None, *officers]) if status != "draft" else None,
                "version": 1,
            }
        )
    _bulk(session, Rfa, rows)
    found = session.execute(
        select(Rfa.id, Rfa.code, Rfa.authority_id, Rfa.status, Rfa.submitted_at).order_by(Rfa.id)
    ).all()
    return [SeededRequest(*r) for r in found]


def _packages(
    session: Session,
    scale: Scale,
    rng: random.Random,
    rfas: list[SeededRequest],
    officers: list[int],
) -> None:
    items = _ids(session, Item.id)
    submitted = [r for r in rfas if r.submitted_at is not None]
    sent = [r for r in submitted if r.status in ("transmitted", "acknowledged", "closed")]
    chosen = rng.sample(sent, min(scale.packages, len(sent)))
    decided_at = {r.id: _decided_at(rng, r) for r in chosen}
    candidates = {r.id: rng.sample(items, CANDIDATES_PER_REQUEST + 1) for r in submitted}
    _bulk(session, RfaItem, _candidate_rows(rng, submitted, candidates, decided_at))
    statuses = _mix(rng, PACKAGE_MIX, len(chosen))
    decisions, packages = [], []
    for n, (request, status) in enumerate(zip(chosen, statuses, strict=True)):
        rfa_id, authority_id = request.id, request.authority_id
        decision_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        made = decided_at[rfa_id]
        decisions.append(
            {
                "id": decision_id,
                "rfa_id": rfa_id,
                "policy_id": "load",
                "policy_revision": _hex("policy"),
                "engine_version": "1",
                "snapshot_json": "{}",
                "snapshot_sha256": _hex("{}"),
                "results_json": "{}",
                "outcome": "eligible",
                "requested_by_id": officers[0],
                "created_at": made,
            }
        )
        assembler, releaser = rng.sample(officers, 2)
        shipped = status in ("released", "withdrawn", "recalled", "expired")
        released_at = made + timedelta(days=2)
        packages.append(
            {
                "code": f"PKG-{made.year}-{n + 1:04d}",
                "rfa_id": rfa_id,
                "decision_id": decision_id,
                "authority_id": authority_id,
                "status": status,
                "stage": "" if status in ("queued", "blocked", "failed") else "done",
                "progress": 0 if status in ("queued", "blocked", "failed") else 100,
                "failure_reason": "Seeded failure." if status in ("blocked", "failed") else None,
                "file_sha256": _hex(f"package {n}") if status != "queued" else None,
                "file_size": rng.randrange(10_000, 50_000_000) if status != "queued" else None,
                "assembled_by_id": assembler,
                "released_by_id": releaser if shipped else None,
                "released_at": released_at if shipped else None,
                "expires_at": (
                    released_at + timedelta(days=30 if status == "expired" else 3650)
                    if shipped
                    else None
                ),
                "created_at": made + timedelta(hours=1),
                "updated_at": made + timedelta(days=2),
                "version": 1,
            }
        )
    _bulk(session, Decision, decisions)
    _bulk(session, Package, packages)
    package_rows = session.execute(
        select(Package.id, Package.rfa_id, Package.status, Package.released_at)
    ).all()
    _bulk(
        session,
        PackageItem,
        [
            {
                "package_id": p.id,
                "item_id": i,
                "rendition": "redacted",
                "path": f"data/items/ITM-{i:06d}/document.pdf",
                "source_sha256": _hex(f"item {i}"),
                "rendition_sha256": _hex(f"rendition {p.id} {i}"),
                "redaction_count": rng.randrange(4),
            }
            for p in package_rows
            for i in candidates[p.rfa_id][:ITEMS_PER_PACKAGE]  # never the late one
        ],
    )
    downloads, recalls = [], []
    for p in package_rows:
        if p.released_at is None:
            continue
        for _ in range(rng.choice((0, 0, 1, 2))):
            downloads.append(
                {
                    "package_id": p.id,
                    "range_start": None,
                    "bytes_sent": 1000,
                    "started_at": p.released_at + timedelta(days=1),
                    "completed_at": p.released_at + timedelta(days=1, minutes=1),
                }
            )
        if p.status == "recalled":
            recalls.append(
                {
                    "package_id": p.id,
                    "reason": "Consent revoked (seeded).",
                    "created_at": p.released_at + timedelta(days=5),
                    "acknowledged_at": p.released_at + timedelta(days=6),
                }
            )
    _bulk(session, Download, downloads)
    _bulk(session, Recall, recalls)


def _decided_at(rng: random.Random, request: SeededRequest) -> datetime:
    """30-100% of the time from submission to SEEDED_AT, at most 45 days (at least 2 hours:
    a request submitted just before SEEDED_AT is decided a little after it)."""
    assert request.submitted_at is not None
    room = max(SEEDED_AT - request.submitted_at, timedelta(hours=2))
    return request.submitted_at + min(room, timedelta(days=45)) * rng.uniform(0.3, 1.0)


def _candidate_rows(
    rng: random.Random,
    submitted: list[SeededRequest],
    candidates: dict[int, list[int]],
    decided_at: dict[int, datetime],
) -> list[dict[str, Any]]:
    """Each request's candidates, added after submission and before its decision; a decided
    request in ``STALE_SHARE`` also gets its last one after the decision."""
    rows = []
    for request in submitted:
        assert request.submitted_at is not None
        decided = decided_at.get(request.id)
        until = decided or min(SEEDED_AT, request.submitted_at + timedelta(days=14))
        span = max(until - request.submitted_at, timedelta(minutes=10))
        *chosen, late = candidates[request.id]
        for item_id in chosen:
            added = request.submitted_at + span * rng.uniform(0.0, 0.9)
            rows.append({"rfa_id": request.id, "item_id": item_id, "added_at": added})
        if decided is not None and rng.random() < STALE_SHARE:
            added = decided + timedelta(days=rng.uniform(0.5, 20))
            rows.append({"rfa_id": request.id, "item_id": late, "added_at": added})
    return rows


def seed(
    engine: Engine, scale: Scale, rng: random.Random, totp_sealer: Sealer | None = None
) -> Seeded:
    """Fill an empty, migrated database; returns what the benchmark visits. ``totp_sealer``
    seals the users' TOTP seeds (the served portal's, so that they can sign in)."""
    sessions = make_session_factory(engine)
    if totp_sealer is not None:
        attach_sealer(sessions, totp_sealer)
    with sessions() as session:
        authorities = _registry(session, scale, rng)
        logins = _users(session, scale, authorities)
        officers = _ids(session, User.id)[: scale.officers]
        rfas = _requests(session, scale, rng, officers)
        _packages(session, scale, rng, rfas, officers)
        session.commit()
        return describe(session, scale.key(), logins)


def describe(session: Session, key: str, logins: list[Login]) -> Seeded:
    queue = list(
        session.scalars(
            select(Rfa.code).where(Rfa.status == "in_review").order_by(Rfa.id).limit(200)
        )
    )
    packages = list(session.scalars(select(Package.code).order_by(Package.id)))
    released: dict[str, list[str]] = {}
    for code, authority in session.execute(
        select(Package.code, Authority.code)
        .join(Authority, Authority.id == Package.authority_id)
        .where(Package.status == "released")
        .order_by(Package.id)
    ):
        released.setdefault(authority, []).append(code)
    return Seeded(
        key=key, logins=logins, queue_requests=queue, packages=packages, released=released
    )


def _holds(engine: Engine, scale: Scale) -> bool:
    with engine.connect() as conn:
        try:
            items = conn.scalar(select(func.count()).select_from(Item.__table__))
            packages = conn.scalar(select(func.count()).select_from(Package.__table__))
        except DBAPIError:  # no tables yet: not seeded
            conn.rollback()
            return False
    return items == scale.items and packages == scale.packages


def ensure_seeded(url: str, scale: Scale, logins_file: Path) -> Seeded:
    """Migrate the database at ``url`` to head and seed it unless it holds this scale's
    data already (known by ``logins_file``, written after a successful seed)."""
    engine = make_engine(url)
    try:
        known = Seeded.load(logins_file) if logins_file.exists() else None
        kept = known is not None and known.key == scale.key() and _holds(engine, scale)
        if not kept and _holds_anything(engine):
            raise SystemExit(
                f"{url}: not empty and not this benchmark's data (another scale, or a seed "
                f"before SEED_VERSION {SEED_VERSION}); start afresh (bench/load.py does: it "
                "empties its databases when their seed is not the current one)"
            )
        began = time.perf_counter()
        upgrade(engine)
        if kept:
            assert known is not None
            refresh_planner_statistics(engine)  # as portal worker does (new indexes of a kept file)
            return known
        # the TOTP key of the portal served from logins_file's directory (its instance)
        home = Settings.from_env({"PORTAL_INSTANCE_DIR": str(logins_file.parent)})
        ensure_sealing_key(home)  # what `portal init` makes
        ensure_totp_key(home)
        seeded = seed(engine, scale, random.Random(8), sealer_for_settings(home))
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        seeded.save(logins_file)
        print(f"seeded {url.split('@')[-1]} in {time.perf_counter() - began:.0f} s")
        return seeded
    finally:
        engine.dispose()


def _holds_anything(engine: Engine) -> bool:
    with engine.connect() as conn:
        try:
            return bool(conn.scalar(select(func.count()).select_from(User.__table__)))
        except DBAPIError:  # no tables yet
            return False
