"""Pages in process: the CPU and wall time of each page bench/load.py's users open, without
gunicorn, sockets or other clients — where a page's own cost is measured and profiled.

Uses load.py's seeded database (``--cache``; SQLite, or with ``--pg`` its PostgreSQL database
``portal_load``), signs one legal officer, one requester and one recipient in for real
through Flask's test client, and requests each page ``--rounds`` times per run (the request
list and searches vary as in load.py, from a fixed seed). ``/healthz`` is measured in the same
run as the floor: the ratios say how many health checks a page costs, which holds on a busy
machine better than milliseconds do. On PostgreSQL it also prints the CPU the database server
spent on each page (its backends' time from ``/proc``, when the server runs on this machine):
planning and executing the page's statements, which load.py's gunicorn figure leaves out.
Prints min / median over ``--runs`` runs, and with ``--profile PAGE`` the functions taking
most of that page's time (cProfile).

    .venv/bin/python bench/pages.py                                  # SQLite
    .venv/bin/python bench/pages.py --pg postgresql://postgres@127.0.0.1:5432/test \\
        --redis redis://127.0.0.1:6379/0
    .venv/bin/python bench/pages.py --profile "triage queue"
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
from benchdb import postgres_database
from flask import Flask
from flask.testing import FlaskClient
from load import BENCH_RATE_LIMIT, PG_DATABASE, SEARCHES
from seed import Login, Scale, Seeded, ensure_seeded
from sqlalchemy import Engine, event, select
from sqlalchemy.pool import Pool

from portal import create_app
from portal.accounts.models import User
from portal.config import Settings, ensure_secret_key
from portal.db import make_engine

_CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
Path_ = Callable[[random.Random], str]


def _csrf(html: str) -> str:
    found = _CSRF.search(html)
    if found is None:
        raise SystemExit("no CSRF token on the sign-in page")
    return found.group(1)


def sign_in(app: Flask, login: Login, last_step: int | None) -> FlaskClient:
    """Both sign-in steps through the test client; exits when either is refused."""
    client = app.test_client()
    token = _csrf(client.get("/login").get_data(as_text=True))
    first = client.post("/login", data={"csrf_token": token, "email": login.email,
                                        "password": login.password})  # fmt: skip
    if first.status_code != 303:
        raise SystemExit(f"{login.email}: password step answered {first.status_code}")
    step = int(time.time()) // 30
    if last_step is not None and last_step >= step:
        step = last_step + 1
    code = pyotp.TOTP(login.totp_secret).at(datetime.fromtimestamp(step * 30, UTC))
    token = _csrf(client.get("/login/code").get_data(as_text=True))
    second = client.post("/login/code", data={"csrf_token": token, "code": code})
    if second.status_code != 303:
        raise SystemExit(f"{login.email}: code step answered {second.status_code}")
    return client


def pages(seeded: Seeded, authority: str) -> dict[str, tuple[str, Path_]]:
    """Page name -> (role, path) as load.py's users open them."""
    providers = Scale().providers
    mine = seeded.released[authority]
    return {
        "officer dashboard": ("legal_officer", lambda rng: "/"),
        "triage queue": ("legal_officer", lambda rng: "/triage"),
        "request list (officer)": (
            "legal_officer",
            lambda rng: f"/requests?page={rng.randint(1, 100)}",
        ),
        "repository search": (
            "legal_officer",
            lambda rng: (
                f"/triage/{rng.choice(seeded.queue_requests)}/search?"
                + rng.choice(SEARCHES).format(provider=rng.randint(1, providers))
            ),
        ),
        "package page (officer)": (
            "legal_officer",
            lambda rng: f"/packages/{rng.choice(seeded.packages)}",
        ),
        "requester dashboard": ("requester", lambda rng: "/"),
        "request list (requester)": (
            "requester",
            lambda rng: f"/requests?page={rng.randint(1, 18)}",
        ),
        "recipient dashboard": ("recipient", lambda rng: "/"),
        "package list (recipient)": ("recipient", lambda rng: "/received"),
        "package page (recipient)": ("recipient", lambda rng: f"/received/{rng.choice(mine)}"),
    }


#: Process ids of the PostgreSQL backends serving this process's connections.
_BACKENDS: set[int] = set()


def _note_backend(dbapi_connection: Any, _record: object) -> None:
    if type(dbapi_connection).__module__.startswith("psycopg"):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            _BACKENDS.add(int(cursor.fetchone()[0]))


def backend_cpu() -> float:
    """CPU seconds (user + system) the backends of :data:`_BACKENDS` have used so far; 0 when
    the server is not on this machine (no such processes)."""
    ticks = 0
    for pid in _BACKENDS:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def measure(
    client: FlaskClient, path: Path_, rounds: int, rng: random.Random
) -> tuple[float, float, float]:
    """CPU, wall and database-server CPU ms per request of ``rounds`` requests; exits on any
    failure."""
    cpu, wall, server = time.process_time(), time.perf_counter(), backend_cpu()
    for _ in range(rounds):
        url = path(rng)
        response = client.get(url)
        if not 200 <= response.status_code < 300:
            raise SystemExit(f"{url} answered {response.status_code}")
    return (
        1000 * (time.process_time() - cpu) / rounds,
        1000 * (time.perf_counter() - wall) / rounds,
        1000 * (backend_cpu() - server) / rounds,
    )


def show_statements(client: FlaskClient, path: Path_) -> None:
    """Each SQL statement one request of ``path`` runs, with its time."""
    began: list[float] = []

    def before(*_: object) -> None:
        began.append(time.perf_counter())

    def after(conn: object, cursor: object, statement: str, *_: object) -> None:
        ms = 1000 * (time.perf_counter() - began.pop())
        print(f"{ms:7.2f} ms  {' '.join(statement.split())[:300]}")

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    try:
        measure(client, path, 1, random.Random(0))
    finally:
        event.remove(Engine, "before_cursor_execute", before)
        event.remove(Engine, "after_cursor_execute", after)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pg", help="PostgreSQL server (its database portal_load is used)")
    parser.add_argument("--redis")
    parser.add_argument("--rounds", type=int, default=40, help="requests of each page per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", metavar="PAGE", help="profile this page (cProfile)")
    parser.add_argument("--sql", metavar="PAGE", help="print the statements of one such page")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "portal-load")
    args = parser.parse_args()
    backend = "postgresql" if args.pg else "sqlite"
    home = args.cache / backend
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if args.pg:
        url = postgres_database(args.pg, PG_DATABASE, recreate=False)
    else:
        url = f"sqlite:///{home / 'portal.db'}"
    seeded = ensure_seeded(url, Scale(), home / "logins.json")
    env = {
        "PORTAL_DATABASE_URL": url,
        "PORTAL_INSTANCE_DIR": str(home),
        "PORTAL_LOGIN_RATE_LIMIT": BENCH_RATE_LIMIT,
        "PORTAL_HTTPS": "0",
        **({"PORTAL_REDIS_URL": args.redis} if args.redis else {}),
    }
    event.listen(Pool, "connect", _note_backend)
    settings = Settings.from_env(env)
    ensure_secret_key(settings)
    app = create_app(settings.with_overrides(signing_key_file=None, signing_passphrase_file=None))
    engine = make_engine(url)
    with engine.connect() as conn:
        steps = {e: s for e, s in conn.execute(select(User.email, User.totp_last_step))}
    engine.dispose()
    by_role: dict[str, Login] = {}
    for login in sorted(seeded.logins, key=lambda lg: steps.get(lg.email) or 0):
        by_role.setdefault(login.role, login)  # the one whose last code is oldest
    clients = {role: sign_in(app, login, steps.get(login.email)) for role, login in by_role.items()}
    table = pages(seeded, by_role["recipient"].authority or "")
    table["baseline: /healthz"] = ("legal_officer", lambda rng: "/healthz")
    for role, path in table.values():  # warm caches, templates and connections
        measure(clients[role], path, 3, random.Random(0))
    if args.sql:
        role, path = table[args.sql]
        show_statements(clients[role], path)
        return
    if args.profile:
        role, path = table[args.profile]
        profiler = cProfile.Profile(time.process_time)  # CPU, not waiting: holds when busy
        profiler.runcall(measure, clients[role], path, args.rounds, random.Random(1))
        stats = pstats.Stats(profiler).strip_dirs().sort_stats("tottime")
        stats.print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
        return
    cpu: dict[str, list[float]] = {name: [] for name in table}
    wall: dict[str, list[float]] = {name: [] for name in table}
    server: dict[str, list[float]] = {name: [] for name in table}
    for run in range(args.runs):
        for name, (role, path) in table.items():
            c, w, s = measure(clients[role], path, args.rounds, random.Random(run))
            cpu[name].append(c)
            wall[name].append(w)
            server[name].append(s)
    floor = statistics.median(cpu["baseline: /healthz"])
    print(f"{backend}: {args.runs} runs x {args.rounds} requests of each page, in process")
    with_server = any(any(values) for values in server.values())
    print(
        f"{'page':<26} {'CPU ms min/median':>18} {'wall ms min/median':>19} {'x /healthz':>11}"
        + (f" {'database CPU ms':>16}" if with_server else "")
    )
    for name in table:
        c, w, s = cpu[name], wall[name], server[name]
        print(
            f"{name:<26} {min(c):8.2f} /{statistics.median(c):7.2f} "
            f"{min(w):9.2f} /{statistics.median(w):7.2f} {statistics.median(c) / floor:12.1f}"
            + (f" {min(s):8.2f} /{statistics.median(s):6.2f}" if with_server else "")
        )
    pages_only = [statistics.median(cpu[n]) for n in table if not n.startswith("baseline")]
    if with_server:
        in_server = [statistics.median(server[n]) for n in table if not n.startswith("baseline")]
        print(f"mean of the pages' median database CPU: {statistics.mean(in_server):.2f} ms")
    print(
        f"mean of the pages' median CPU: {statistics.mean(pages_only):.2f} ms "
        f"({statistics.mean(pages_only) / floor:.1f} x /healthz); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    sys.exit(main())
