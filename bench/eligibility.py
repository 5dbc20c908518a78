"""Eligibility check speed: snapshot + evaluate for requests of 1k, 10k and 100k items.

Seeds one repository of the largest size with realistic data, then times, for a request
of each size, building the snapshot from the database and evaluating the shipped policy:

- media: 40% text statements, 33% PDFs, 17% photos, 10% audio, video and archives (which
  the portal cannot redact; half of the audio and video cleared as-is);
- a dozen providers, eight with a standing consent for the authority (one later revoked);
  30% of items have events of their own (grants, some with conditions, expiring or expired;
  grants later revoked; declines), and 30% have events for other authorities;
- persons named: statements name 1-3, documents 0-2, photos and recordings 0-1, among
  20,000 people of whom 30% are at risk; 85% of at-risk people named have a redaction mark
  for them, others 20%; 10% of items carry a general mark; 3% of marks await review, half
  of the person marks apply only "without protection";
- the authority lacks witness-protection capacity, so the redaction paths are exercised.

Targets (issue 23): snapshot + evaluate of 100k items under 0.5 s on SQLite and PostgreSQL;
1M items under 5 s with the process under 1 GB; run_check of 100k items under 1.5 s.

    .venv/bin/python bench/eligibility.py                     # SQLite (temporary file)
    .venv/bin/python bench/eligibility.py --pg postgresql://postgres@127.0.0.1:5432/test

PostgreSQL is also used when PORTAL_TEST_DATABASE_URL is set; the run gets a schema of its
own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from benchdb import postgres_database, postgres_engine, sqlite_engine
from sqlalchemy import Engine, insert, inspect, literal, select, text
from sqlalchemy.orm import Session

from portal.canonical import sha256_hex
from portal.consent.models import Consent
from portal.db import make_engine, make_session_factory
from portal.eligibility.decisions import canonical_text, run_check
from portal.eligibility.policy import (
    EvaluationResult,
    Snapshot,
    build_snapshot,
    evaluate,
    load_policy,
)
from portal.eligibility.policy.gcpause import paused_gc
from portal.migrate import upgrade
from portal.registry.mark_terms import seal_term
from portal.registry.models import (
    Assessment,
    Authority,
    Item,
    ItemPerson,
    Person,
    Provider,
    RedactionMark,
)
from portal.rfa.models import Rfa, RfaItem
from portal.sealing import Sealer

POLICIES = Path(__file__).resolve().parent.parent / "policies"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MEDIA = [
    ("text/plain", "witness_statement", 40),
    ("application/pdf", "document", 33),
    ("image/jpeg", "photo", 17),
    ("audio/wav", "audio", 5),
    ("video/mp4", "video", 3),
    ("application/zip", "archive", 2),
]
# How many people an item names, by kind (a choice among these counts).
NAMED = {
    "witness_statement": [1, 1, 2, 3],
    "document": [0, 0, 1, 2],
    "photo": [0, 0, 0, 1],
    "audio": [0, 1],
    "video": [0, 1],
    "archive": [0, 0, 1],
}
CHUNK = 5000
# Term marks keep their term sealed (portal.registry.mark_terms); the check never opens them.
SEALER = Sealer.random()


def _insert(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(model), rows)


class _Ledger:
    """Consent events, numbered in the order made, inserted a batch at a time."""

    def __init__(self, session: Session, target: int) -> None:
        self.session, self.target = session, target
        self.rows: list[dict[str, Any]] = []
        self.count = 0

    def event(self, provider: int, kind: str, days: float, **more: Any) -> None:
        self.count += 1
        self.rows.append(
            {
                "code": f"CNS-{self.count:08d}",
                "provider_id": provider,
                "authority_id": more.get("authority", self.target),
                "item_id": more.get("item"),
                "event": kind,
                "purpose": "criminal_proceedings",
                "conditions": more.get("conditions", ""),
                "expires_at": more.get("expires"),
                "reason": None if kind == "grant" else "Benchmark reason.",
                "recorded_at": NOW - timedelta(days=days),
            }
        )

    def flush(self) -> None:
        _insert(self.session, Consent, self.rows)
        self.rows = []


def _authorities(session: Session) -> list[int]:
    """Three authorities; the first (the requesting one) is assessed unable to protect
    witnesses."""
    authorities = []
    for code in ("NWU-NL", "SPR-ES", "ECT-EV"):
        authority = Authority(code=code, name=f"Authority {code}", kind="prosecution", country="XN")
        session.add(authority)
        authorities.append(authority)
    session.flush()
    for criterion, finding in (
        ("fair_trial", "satisfied"),
        ("death_penalty", "satisfied"),
        ("witness_protection", "not_satisfied"),
    ):
        session.add(
            Assessment(
                code=f"A-{criterion}",
                authority_id=authorities[0].id,
                criterion=criterion,
                finding=finding,
                basis="Benchmark.",
                assessed_at=NOW - timedelta(days=60),
                valid_until=NOW + timedelta(days=300),
                assessed_by="Bench",
            )
        )
    return [a.id for a in authorities]


def seed(session: Session, size: int, sizes: list[int]) -> dict[int, int]:
    """Fill the repository a batch of items at a time (memory stays flat whatever the
    size); return request id per size."""
    rng = random.Random(4)
    authorities = _authorities(session)
    target = authorities[0]
    providers = [
        Provider(code=f"PRV-{n:02d}", name=f"Provider {n}", kind="ngo", public_name=f"P{n}")
        for n in range(12)
    ]
    session.add_all(providers)
    session.flush()
    provider_ids = [p.id for p in providers]

    people = max(size // 5, 10)
    at_risk = {n for n in range(1, people + 1) if rng.random() < 0.3}
    for start in range(1, people + 1, CHUNK):
        _insert(
            session,
            Person,
            [
                {
                    "id": n,
                    "code": f"PER-{n:07d}",
                    "pseudonym": f"Witness {n}",
                    "role": "witness",
                    "at_risk": n in at_risk,
                }
                for n in range(start, min(start + CHUNK, people + 1))
            ],
        )
    ledger = _Ledger(session, target)
    for index, provider in enumerate(provider_ids[:8]):
        ledger.event(provider, "grant", 300 - index)
    ledger.event(provider_ids[7], "revoke", 20)  # one provider withdrew everything

    media = [m for m, _kind, weight in MEDIA for _ in range(weight)]
    kinds = {m: kind for m, kind, _weight in MEDIA}
    for start in range(1, size + 1, CHUNK):
        items = [
            _item(n, rng.choice(media), rng.choice(provider_ids), kinds, rng)
            for n in range(start, min(start + CHUNK, size + 1))
        ]
        named: list[dict[str, Any]] = []
        marks: list[dict[str, Any]] = []
        for row in items:
            n = row["id"]
            persons = rng.sample(range(1, people + 1), rng.choice(NAMED[row["kind"]]))
            named.extend({"item_id": n, "person_id": p} for p in persons)
            for m, person in enumerate(persons, start=1):
                if rng.random() < (0.85 if person in at_risk else 0.2):
                    marks.append(_mark(n, m, person, rng))
            if rng.random() < 0.1:
                marks.append(_mark(n, 9, None, rng))
            _item_consents(ledger, n, row["provider_id"], authorities, rng)
        _insert(session, Item, items)
        _insert(session, ItemPerson, named)
        _insert(session, RedactionMark, marks)
        ledger.flush()

    requests: dict[int, int] = {}
    for count in sizes:
        rfa = Rfa(
            code=f"RFA-BENCH-{count}",
            authority_id=target,
            status="in_review",
            their_reference=f"BENCH-{count}",
            proceedings_type="investigation",
            offences=["War crime of torture"],
            period_from=date(2023, 6, 1),
            period_to=date(2023, 12, 31),
            submitted_at=NOW - timedelta(days=5),
        )
        session.add(rfa)
        session.flush()
        session.execute(  # the first ``count`` items, copied by the database
            insert(RfaItem).from_select(
                ["rfa_id", "item_id"],
                select(literal(rfa.id), Item.id).where(Item.id <= count),
            )
        )
        requests[count] = rfa.id
    return requests


def _item(
    n: int, media_type: str, provider: int, kinds: dict[str, str], rng: random.Random
) -> dict[str, Any]:
    return {
        "id": n,
        "code": f"ITM-{n:07d}",
        "provider_id": provider,
        "kind": kinds[media_type],
        "title": f"Item {n}",
        "description": "",
        "media_type": media_type,
        "original_filename": f"item-{n}",
        "size_bytes": 1000 + n,
        "sha256": sha256_hex(str(n)),
        "sensitivity": rng.choice(["low", "medium", "high", "very_high"]),
        "tags": [],
        "cleared_as_is": media_type in ("audio/wav", "video/mp4") and n % 2 == 0,
        "place": "",
        "created_at": NOW - timedelta(days=400),
    }


def _item_consents(
    ledger: _Ledger, n: int, provider: int, authorities: list[int], rng: random.Random
) -> None:
    """The item's own consent events: grants (some with conditions, expiring or expired),
    grants later revoked, declines; and noise in other authorities' ledger."""
    roll = rng.random()
    if roll < 0.15:
        ledger.event(provider, "grant", 90, item=n, conditions="Criminal proceedings only.")
    elif roll < 0.22:
        expires = NOW + timedelta(days=rng.choice([-5, 30]))
        ledger.event(provider, "grant", 90, item=n, expires=expires)
    elif roll < 0.27:
        ledger.event(provider, "grant", 90, item=n)
        ledger.event(provider, "revoke", 10, item=n)
    elif roll < 0.30:
        ledger.event(provider, "decline", 40, item=n)
    if rng.random() < 0.3:  # noise: other authorities' ledger
        ledger.event(provider, "grant", 50, item=n, authority=rng.choice(authorities[1:]))


def _mark(item: int, number: int, person: int | None, rng: random.Random) -> dict[str, Any]:
    return {
        "code": f"M{number}",
        "item_id": item,
        "person_id": person,
        "kind": "term",
        "term_sealed": seal_term(SEALER, f"ITM-{item:07d}", f"M{number}", f"name {item}-{number}"),
        "reason": "Identifies a person at risk" if person else "Private details",
        "applies": "without_protection" if person and rng.random() < 0.5 else "always",
        "review": "pending" if rng.random() < 0.03 else "confirmed",
        "created_at": NOW - timedelta(days=100),
    }


class Timing(NamedTuple):
    """Wall and CPU seconds of one run."""

    wall: float
    cpu: float


def _timed(action: Callable[[], object]) -> tuple[Timing, object]:
    w0, c0 = time.perf_counter(), time.process_time()
    value = action()
    return Timing(time.perf_counter() - w0, time.process_time() - c0), value


@dataclass
class Stats:
    """Min and median of several runs, wall and CPU."""

    runs: list[Timing]

    def min(self, field: str = "wall") -> float:
        return min(getattr(r, field) for r in self.runs)

    def median(self, field: str = "wall") -> float:
        return statistics.median(getattr(r, field) for r in self.runs)


@dataclass
class Row:
    backend: str
    items: int
    baseline: Stats
    check: Stats  # snapshot + evaluate
    snapshot: float  # of the fastest check
    record: float
    run_check: Stats
    outcome: str
    peak_check_mb: float
    peak_run_check_mb: float


def _reset_peak() -> None:
    """Start the process's peak resident memory afresh (Linux: VmHWM)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


BASELINE_SQL = text(
    "SELECT i.* FROM rfa_item ri JOIN item i ON i.id = ri.item_id WHERE ri.rfa_id = :rfa"
)


def raw_baseline(engine: Engine, rfa_id: int, runs: int) -> Stats:
    """The floor any check must pay: one plain SQL read of the request's candidate item
    rows, fetched with no further Python work."""
    timings = []
    for _ in range(runs):
        with engine.connect() as conn:
            timing, _rows = _timed(lambda: conn.execute(BASELINE_SQL, {"rfa": rfa_id}).fetchall())
            timings.append(timing)
    return Stats(timings)


def _seeded(engine: Engine, sizes: list[int]) -> dict[int, int] | None:
    """The requests of a database seeded by an earlier run (``--keep``) for these sizes (it
    may hold others), or None."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("rfa"):
            upgrade(engine)
            return None
        found = dict(
            conn.execute(select(Rfa.code, Rfa.id).where(Rfa.code.like("RFA-BENCH-%"))).all()
        )
    requests = {size: found.get(f"RFA-BENCH-{size}") for size in sizes}
    if not found:
        return None
    if None in requests.values():
        raise SystemExit(f"the kept database was seeded for other sizes: {sorted(found)}")
    return {size: rfa_id for size, rfa_id in requests.items() if rfa_id is not None}


def _record_time(snapshot: Snapshot, result: EvaluationResult) -> float:
    w0 = time.perf_counter()
    sha256_hex(canonical_text(snapshot.to_json()))
    canonical_text(result.to_json())
    return time.perf_counter() - w0


def _analyze(engine: Engine) -> None:
    """Fresh planner statistics, as a production database has after autovacuum."""
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def measure(engine: Engine, backend: str, sizes: list[int], runs: int) -> list[Row]:
    sessions = make_session_factory(engine)
    requests = _seeded(engine, sizes)
    if requests is None:
        started = time.perf_counter()
        with sessions() as session, session.begin():
            requests = seed(session, max(sizes), sizes)
        _analyze(engine)
        print(
            f"{backend}: seeded {max(sizes):,} items in {time.perf_counter() - started:.1f} s "
            f"(peak {_peak_mb():.0f} MB)",
            flush=True,
        )
    policy = load_policy(POLICIES)
    rows = []
    for size in sizes:
        rfa_id = requests[size]
        checks: list[Timing] = []
        snapshot_s = float("inf")
        _reset_peak()
        last: tuple[Snapshot, EvaluationResult] | None = None
        for _ in range(runs):
            last = None  # the previous run's snapshot and results go first: one check's peak
            # As run_check does it: one pause of the garbage collector around both, whose
            # collection on the way out is counted.
            with sessions() as session:
                w0, c0 = time.perf_counter(), time.process_time()
                with paused_gc():
                    snapshot = build_snapshot(session, rfa_id, now=NOW)
                    w1 = time.perf_counter()
                    result = evaluate(policy, snapshot)
                timing = Timing(time.perf_counter() - w0, time.process_time() - c0)
            if timing.wall < min((c.wall for c in checks), default=float("inf")):
                snapshot_s = w1 - w0
            checks.append(timing)
            last = (snapshot, result)
            del snapshot, result
        peak_check = _peak_mb()
        assert last is not None
        record = _record_time(*last)
        outcome = last[1].outcome
        del last
        stored: list[Timing] = []
        _reset_peak()
        for _ in range(runs):
            with sessions() as session, session.begin():
                rfa = session.get(Rfa, rfa_id)
                assert rfa is not None
                timing, _decision = _timed(
                    lambda rfa=rfa, session=session: run_check(
                        session, rfa, policy, requested_by=None, actor="bench", now=NOW
                    )
                )
                stored.append(timing)
                session.rollback()
        rows.append(
            Row(
                backend,
                size,
                raw_baseline(engine, rfa_id, runs),
                Stats(checks),
                snapshot_s,
                record,
                Stats(stored),
                outcome,
                peak_check,
                _peak_mb(),
            )
        )
        print(_line(rows[-1]), flush=True)
    return rows


def _line(row: Row) -> str:
    raw_wall, raw_cpu = row.baseline.min(), row.baseline.min("cpu")
    check = row.check
    return (
        f"{row.backend:<11}{row.items:>10,}{raw_wall:>11.3f}"
        f"{check.min():>9.3f}/{check.median():<7.3f}"
        f"{check.min('cpu'):>7.3f}/{check.median('cpu'):<7.3f}"
        f"{check.min() / raw_wall:>8.1f}/{check.min('cpu') / max(raw_cpu, 1e-6):<7.1f}"
        f"{row.snapshot:>8.3f}{row.record:>10.3f}"
        f"{row.run_check.min():>12.3f}/{row.run_check.median():<8.3f}"
        f"{row.run_check.min('cpu'):>8.3f}"
        f"{row.peak_check_mb:>7.0f}/{row.peak_run_check_mb:<6.0f}  {row.outcome}"
    )


def report(rows: list[Row], runs: int) -> None:
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"\n{os.cpu_count()} CPUs; load average at the end of the run: {load}; {runs} runs each")
    print(
        f"{'backend':<11}{'items':>10}{'raw SQL s':>11}{'check min/med s':>17}"
        f"{'CPU min/med s':>15}{'x raw wall/CPU':>16}{'snap s':>8}{'record s':>10}"
        f"{'run_check min/med s':>21}{'CPU s':>8}{'peak MB':>14}  outcome"
    )
    for row in rows:
        print(_line(row))
    print()
    for backend in dict.fromkeys(row.backend for row in rows):
        by_size = {row.items: row for row in rows if row.backend == backend}
        for size, limit in ((100_000, 0.5), (1_000_000, 5.0)):
            if size in by_size:
                total = by_size[size].check.min()
                verdict = "ok" if total < limit else "OVER TARGET"
                print(f"{backend}: {size:,} items, snapshot + evaluate: {total:.2f} s ({verdict})")
        if 1_000_000 in by_size:
            peak = by_size[1_000_000].peak_check_mb
            verdict = "ok" if peak < 1024 else "OVER TARGET"
            print(f"{backend}: 1,000,000 items, peak memory of the check {peak:.0f} MB ({verdict})")
        if 100_000 in by_size:
            total = by_size[100_000].run_check.min()
            verdict = "ok" if total < 1.5 else "OVER TARGET"
            print(f"{backend}: 100,000 items, run_check: {total:.2f} s ({verdict})")
    print(
        "\nraw SQL = one plain query reading the candidate item rows (the baseline, same run; "
        "its CPU is this process's only). check = snapshot + evaluate, timed as run_check runs "
        "them (one pause of the garbage collector, the collection after it counted); x raw = "
        "check / raw SQL, wall and CPU. snap = the snapshot's part of the fastest check. "
        "record = canonical JSON + SHA-256 of the snapshot and results; run_check = the whole "
        "stored decision (snapshot, evaluate, record, audit event), rolled back. "
        "peak MB = the process's peak resident memory during the checks "
        "/ during run_check (seeding excluded)."
    )


@contextlib.contextmanager
def _sqlite(keep: str | None) -> Iterator[Engine]:
    if keep is None:
        with sqlite_engine("bench-elig-") as engine:
            yield engine
        return
    engine = make_engine(f"sqlite:////tmp/{keep}.db")
    try:
        yield engine
    finally:
        engine.dispose()


@contextlib.contextmanager
def _postgres(url: str, keep: str | None) -> Iterator[Engine]:
    if keep is None:
        with postgres_engine(url) as engine:
            yield engine
        return
    engine = make_engine(postgres_database(url, keep))
    try:
        yield engine
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pg", default=os.environ.get("PORTAL_TEST_DATABASE_URL"))
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=3, help="min and median of this many runs")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--keep",
        metavar="NAME",
        help="seed once and keep the data between runs: SQLite file /tmp/NAME.db and "
        "PostgreSQL database NAME (seeding 1M items takes minutes); drop them yourself",
    )
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    rows: list[Row] = []
    if not args.no_sqlite:
        with _sqlite(args.keep) as engine:
            rows += measure(engine, "sqlite", sizes, args.runs)
    if args.pg:
        with _postgres(args.pg, args.keep) as engine:
            rows += measure(engine, "postgresql", sizes, args.runs)
    report(rows, args.runs)


if __name__ == "__main__":
    main()
