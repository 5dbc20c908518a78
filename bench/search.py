"""Repository search speed on 1M items: typical officer searches against a raw baseline.

Seeds 1M items (``--size``; streamed in batches of 5000, executemany) over a dozen
providers, with titles, places and tags drawn from small vocabularies, collection dates over
ten years and 500 candidates on one request; then times :func:`portal.rfa.search.search`
plus the candidate lookup the search page makes, for a few typical searches, on a database
migrated as ``portal init`` does (on PostgreSQL: trigram indexes and statistics for the
searched text). The baseline, measured in the same run, is a raw SQL full scan of the item
table (``SELECT count(*) FROM item WHERE lower(title) || '' LIKE``, kept off any index), what
every substring search would pay without a text index (on SQLite the search's FTS5 trigram
index, migration 0029).

Each search is timed ``--runs`` times a round for ``--rounds`` rounds; the table gives p50
and p95 wall time and the p50 as wall and CPU ratios to the baseline's of the same round,
each as min / median over the rounds, with the load average at start and end.

Target (issue 23): p95 under 50 ms per search at 1M items on both databases.

    .venv/bin/python bench/search.py                     # SQLite (temporary file)
    .venv/bin/python bench/search.py --pg postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from benchdb import postgres_engine, sqlite_engine
from sqlalchemy import Connection, Engine, func, insert, select, text
from sqlalchemy.orm import Session

from portal.db import make_session_factory, utcnow
from portal.registry.models import ITEM_KINDS, Authority, Item, Provider
from portal.rfa.models import Rfa, RfaItem
from portal.rfa.search import ItemQuery, search
from portal.rfa.triage import candidate_ids

SIZE = 1_000_000
CHUNK = 5000
TARGET_MS = 50.0
WORDS = [
    "statement", "witness", "photo", "market", "shelling", "checkpoint", "detention",
    "hospital", "convoy", "report", "interview", "video", "school", "bridge", "village",
    "testimony", "map", "satellite", "order", "letter",
]  # fmt: skip
SIDES = ("North", "South", "East", "West", "Old")
SITES = ("Market", "Square", "Harbour", "Camp", "Valley", "Ridge", "Station", "Quarter")
PLACES = [f"{side} {site}" for side in SIDES for site in SITES]
TAGS = ["shelling", "detention", "torture", "displacement", "siege", "looting", "sexual_violence",
        "children", "hospital", "checkpoint", "chain_of_command", "mass_grave"]  # fmt: skip


def _item_rows(rng: random.Random, provider_ids: list[int]) -> Iterator[list[dict[str, Any]]]:
    """The items, CHUNK rows at a time (memory stays flat whatever the size)."""
    start = date(2015, 1, 1)
    for first in range(0, SIZE, CHUNK):
        yield [
            {
                "code": f"ITM-{n:07d}",
                "provider_id": rng.choice(provider_ids),
                "kind": rng.choice(ITEM_KINDS),
                "title": " ".join(rng.sample(WORDS, 3)).capitalize() + f" no. {n}",
                "description": "",
                "media_type": "text/plain",
                "original_filename": f"{n}.txt",
                "size_bytes": rng.randrange(1, 10_000_000),
                "sha256": f"{n:064x}",
                "collected_at": start + timedelta(days=rng.randrange(3650)),
                "place": rng.choice(PLACES),
                "sensitivity": "medium",
                "tags": rng.sample(TAGS, rng.randrange(0, 4)),
                "cleared_as_is": False,
            }
            for n in range(first, min(first + CHUNK, SIZE))
        ]


def seed(session: Session, rng: random.Random) -> tuple[int, int]:
    """The repository; returns (request id, a provider id)."""
    session.add(Authority(code="BENCH-A", name="Bench authority", kind="court", country="ZZ"))
    providers = [
        Provider(code=f"PRV-{n:02d}", name=f"Provider {n}", kind="ngo", public_name=f"P{n}")
        for n in range(12)
    ]
    session.add_all(providers)
    session.flush()
    authority_id = session.scalar(select(Authority.id))
    assert authority_id is not None
    for rows in _item_rows(rng, [p.id for p in providers]):
        session.execute(insert(Item.__table__), rows)  # executemany, no ORM objects
    rfa = Rfa(
        code="RFA-2026-0001", authority_id=authority_id, status="in_review",
        their_reference="BENCH", proceedings_type="investigation", submitted_at=utcnow(),
    )  # fmt: skip
    session.add(rfa)
    session.flush()
    first, last = session.execute(select(func.min(Item.id), func.max(Item.id))).one()
    chosen = rng.sample(range(first, last + 1), 500)  # ids of a fresh table are contiguous
    session.execute(insert(RfaItem), [{"rfa_id": rfa.id, "item_id": i} for i in chosen])
    session.commit()
    return rfa.id, providers[3].id


def searches(provider_id: int, last_id: int) -> dict[str, tuple[ItemQuery, int | None]]:
    return {
        "title, common word": (ItemQuery(title="witness"), None),
        "title, rare (one hit)": (ItemQuery(title="no. 98765"), None),
        "title, no hit": (ItemQuery(title="zzz-nothing"), None),
        "tag + kind": (ItemQuery(tags=("torture",), kind="photo"), None),
        "provider + dates": (
            ItemQuery(
                provider_id=provider_id,
                collected_from=date(2020, 1, 1),
                collected_to=date(2020, 12, 31),
            ),
            None,
        ),
        "place + dates + tag": (
            ItemQuery(place="north market", collected_from=date(2018, 1, 1), tags=("siege",)),
            None,
        ),
        "title, page near the end": (ItemQuery(title="witness"), last_id - 2000),
    }


@dataclass
class Timed:
    """One round of one search: per-call wall and CPU (this process) milliseconds."""

    wall: list[float]
    cpu: list[float]


def _times(action: Callable[[], Any], runs: int) -> Timed:
    action()  # warm
    timed = Timed([], [])
    for _ in range(runs):
        began, began_cpu = time.perf_counter(), time.process_time()
        action()
        timed.cpu.append((time.process_time() - began_cpu) * 1000)
        timed.wall.append((time.perf_counter() - began) * 1000)
    return timed


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Row:
    """One search over all rounds: per round p50 / p95 wall, and p50 wall and CPU as
    ratios to the raw baseline of the same round."""

    backend: str
    name: str
    p50: list[float] = field(default_factory=list)
    p95: list[float] = field(default_factory=list)
    x_wall: list[float] = field(default_factory=list)
    x_cpu: list[float] = field(default_factory=list)

    def add(self, timed: Timed, raw: Timed) -> None:
        self.p50.append(_p(timed.wall, 0.5))
        self.p95.append(_p(timed.wall, 0.95))
        self.x_wall.append(_p(timed.wall, 0.5) / _p(raw.wall, 0.5))
        self.x_cpu.append(_p(timed.cpu, 0.5) / max(_p(raw.cpu, 0.5), 1e-3))


def _raw_scan(conn: Connection) -> None:
    # "|| ''" keeps the baseline off the trigram index (PostgreSQL) and the FTS table is not
    # named (SQLite): a real full scan.
    conn.execute(
        text("SELECT count(*) FROM item WHERE lower(title) || '' LIKE '%zzz-nothing%'")
    ).scalar()


def measure(engine: Engine, backend: str, runs: int, rounds: int) -> list[Row]:
    sessions = make_session_factory(engine)
    with sessions() as session:
        began, began_cpu = time.perf_counter(), time.process_time()
        rfa_id, provider_id = seed(session, random.Random(5))
        print(
            f"[{backend}] seeded {SIZE} items in {time.perf_counter() - began:.1f} s"
            f" (CPU here {time.process_time() - began_cpu:.1f} s), peak RSS {_peak_mib():.0f} MiB"
        )
        session.execute(text("ANALYZE"))
        session.commit()
        last_id = int(session.scalar(select(Item.id).order_by(Item.id.desc()).limit(1)) or 0)
    baseline = Row(backend, "baseline: raw full scan")
    rows = {name: Row(backend, name) for name in searches(provider_id, last_id)}
    for _ in range(rounds):
        with engine.connect() as conn:
            raw = _times(lambda: _raw_scan(conn), runs)
        baseline.add(raw, raw)
        for name, (query, after) in searches(provider_id, last_id).items():

            def once(q: ItemQuery = query, a: int | None = after) -> None:
                with sessions() as session:
                    page = search(session, q, after=a)
                    candidate_ids(session, rfa_id, [i.id for i in page.items])

            rows[name].add(_times(once, runs), raw)
    return [baseline, *rows.values()]


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _mm(values: list[float], digits: int = 1) -> str:
    return f"{min(values):.{digits}f} / {statistics.median(values):.{digits}f}"


def main() -> None:
    global SIZE
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pg", default=os.environ.get("PORTAL_TEST_DATABASE_URL"))
    parser.add_argument("--size", type=int, default=SIZE, help="items (default 1M)")
    parser.add_argument("--runs", type=int, default=20, help="timed calls a search a round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (min / median of them)")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    if args.size < 100_000 or args.rounds < 3:
        parser.error("use at least 100000 items (a rare title is looked up by number) and 3 rounds")
    SIZE = args.size
    print(f"load average at start: {_load()}")
    rows: list[Row] = []
    if not args.no_sqlite:
        with sqlite_engine("bench-search-") as engine:
            rows += measure(engine, "sqlite", args.runs, args.rounds)
    if args.pg:
        with postgres_engine(args.pg) as engine:
            rows += measure(engine, "postgresql", args.runs, args.rounds)
    print(f"\n{SIZE} items, {args.rounds} rounds of {args.runs} calls, min / median over rounds")
    print(
        f"{'backend':<11} {'search':<26} {'p50 ms':>13} {'p95 ms':>13}"
        f" {'x raw wall':>13} {'x raw CPU':>13}"
    )
    slow = False
    for row in rows:
        over = statistics.median(row.p95) >= TARGET_MS and not row.name.startswith("baseline")
        slow = slow or over
        print(
            f"{row.backend:<11} {row.name:<26} {_mm(row.p50):>13} {_mm(row.p95):>13}"
            f" {_mm(row.x_wall, 3):>13} {_mm(row.x_cpu, 3):>13}{'  over target' if over else ''}"
        )
    print(
        f"\ntarget: p95 < {TARGET_MS:.0f} ms per search; CPU is this process's (the client's, on"
        f" PostgreSQL)\nload average at end: {_load()}"
    )
    sys.exit(1 if slow else 0)


if __name__ == "__main__":
    main()
