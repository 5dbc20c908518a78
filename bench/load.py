"""Load: 20 signed-in users at once against gunicorn on loopback, on SQLite and PostgreSQL.

Seeds (once; kept under ``--cache``, see bench/seed.py) a portal with 100k items, 10k
requests and 1k packages, starts gunicorn on a free loopback port (``gunicorn.conf.py``
when present, else one worker per core) and waits for ``/healthz``. Then:

1. **Baseline**: the same number of clients request ``/healthz`` (one ``SELECT 1``, no
   session, no template) for ``--baseline`` seconds: the floor of this server, this client
   and this machine.
2. **Sign-in**: every virtual user signs in for real (password, then a TOTP code).
3. **Load**: for ``--duration`` seconds every user loops over its pages: legal officers
   the dashboard, the triage queue, the request list (a random page), a repository search
   (one of a few typical searches) and a package page; requesters the dashboard and their
   request list (first and a random page); recipients the dashboard, their package list
   and a package page. Without ``--think`` nobody pauses (a stress test: latency is then
   mostly waiting for a CPU); ``--think 1`` pauses 0-2 s after each page, baseline too.

Prints p50/p95/p99 per page and overall, pages per second, errors (a status other than
2xx/3xx, a redirect to the sign-in page, or an exception), the CPU time gunicorn and this
client spent per page (the figure that survives a busy machine) and the load average.
Exits 1 when p95 is over the target or any request failed.

The portal runs with a raised ``PORTAL_LOGIN_RATE_LIMIT`` (every user signs in from
127.0.0.1), ``PORTAL_HTTPS=0`` (plain HTTP on loopback) and, on PostgreSQL, Redis for the
limiter (``--redis``). Passwords use the standard argon2id profile. The clients run on the
same machine as the server and take CPU from it.

    .venv/bin/python bench/load.py                                # SQLite
    .venv/bin/python bench/load.py --no-sqlite --pg postgresql://postgres@127.0.0.1:5432/test \\
        --redis redis://127.0.0.1:6379/0                           # PostgreSQL + Redis
    .venv/bin/python bench/load.py --think 1                      # users who pause
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import requests
from benchdb import postgres_database
from seed import Login, Scale, Seeded, ensure_seeded
from sqlalchemy import select

from portal.accounts.models import User
from portal.config import REPO_ROOT, Settings, ensure_secret_key
from portal.db import make_engine

TARGET_P95_MS = 200.0
PG_DATABASE = "portal_load"
BENCH_RATE_LIMIT = "100000 per minute"
_CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
SEARCHES = (
    "title=witness",
    "tags=torture&kind=photo",
    "place=north+market&from=2018-01-01&tags=siege",
    "title=no.+98765",
    "provider={provider}&from=2020-01-01&to=2020-12-31",
    "title=zzz-nothing",
)


# --- measuring ---------------------------------------------------------------------------


@dataclass
class Tally:
    """Latencies (ms) by page, and failures, from many threads."""

    times: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, page: str, ms: float, failure: str | None) -> None:
        with self.lock:
            self.times.setdefault(page, []).append(ms)
            if failure is not None:
                self.errors[page] = self.errors.get(page, 0) + 1
                if len(self.samples) < 5:
                    self.samples.append(f"{page}: {failure}")

    def all_times(self) -> list[float]:
        return [t for values in self.times.values() for t in values]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def timed(http: requests.Session, tally: Tally, page: str, url: str) -> requests.Response | None:
    began = time.perf_counter()
    try:
        response = http.get(url, allow_redirects=False, timeout=30)
    except requests.RequestException as exc:
        tally.add(page, (time.perf_counter() - began) * 1000, type(exc).__name__)
        return None
    ms = (time.perf_counter() - began) * 1000
    failure = None
    if not 200 <= response.status_code < 400:
        failure = f"{response.status_code} {url}"
    elif "/login" in response.headers.get("Location", ""):
        failure = f"signed out: {url}"  # a session lost is an error, not a redirect
    tally.add(page, ms, failure)
    return response


# --- the server --------------------------------------------------------------------------


def server_cpu_seconds(master: int) -> float:
    """CPU time (user + system) of gunicorn's master and workers so far, including workers
    already replaced (``max_requests``), from Linux's /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name (field 2) may hold spaces; the fields after it do not.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == master:  # its own time, and that of the workers it recycled and reaped
            total += sum(int(f) for f in fields[11:15])
        elif ppid == master:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


@dataclass
class Server:
    base: str
    pid: int


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def gunicorn(
    database_url: str,
    instance: Path,
    redis_url: str | None,
    workers: int | None,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[Server]:
    """A gunicorn serving the portal on a free loopback port (``extra_env``: more
    ``PORTAL_*`` settings, such as a data directory shared with other nodes)."""
    port = free_port()
    env = {
        **os.environ,
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_INSTANCE_DIR": str(instance),
        "PORTAL_LOGIN_RATE_LIMIT": BENCH_RATE_LIMIT,
        "PORTAL_HTTPS": "0",
    }
    env.pop("PORTAL_REDIS_URL", None)
    if redis_url:
        env["PORTAL_REDIS_URL"] = redis_url
    env.update(extra_env or {})
    command = [str(Path(sys.executable).with_name("gunicorn"))]
    conf = REPO_ROOT / "gunicorn.conf.py"
    if conf.exists():
        command += ["--config", str(conf)]
    if workers is not None or not conf.exists():
        command += ["--workers", str(workers or max(2, os.cpu_count() or 1))]
    command += ["--bind", f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"]
    log = (instance / "gunicorn.log").open("w")
    server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise SystemExit(f"gunicorn exited ({server.returncode}); see {log.name}")
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not answer /healthz within 60 s; see {log.name}")
            time.sleep(0.25)
        yield Server(base, server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


# --- virtual users ------------------------------------------------------------------------


def _csrf(response: requests.Response) -> str:
    found = _CSRF.search(response.text)
    if found is None:
        raise RuntimeError(f"no CSRF token on {response.url} ({response.status_code})")
    return found.group(1)


def sign_in(base: str, login: Login, last_step: int | None) -> requests.Session:
    """Both sign-in steps, as a browser does them; raises when either is refused."""
    http = requests.Session()
    token = _csrf(http.get(f"{base}/login", timeout=60))
    first = http.post(
        f"{base}/login",
        data={"csrf_token": token, "email": login.email, "password": login.password},
        allow_redirects=False,
        timeout=60,
    )
    if first.status_code != 303 or not first.headers["Location"].endswith("/login/code"):
        raise RuntimeError(f"{login.email}: password step answered {first.status_code}")
    step = int(time.time()) // 30
    if last_step is not None and last_step >= step:
        step = last_step + 1  # still inside the ±1 window
    code = pyotp.TOTP(login.totp_secret).at(datetime.fromtimestamp(step * 30, UTC))
    token = _csrf(http.get(f"{base}/login/code", timeout=60))
    second = http.post(
        f"{base}/login/code",
        data={"csrf_token": token, "code": code},
        allow_redirects=False,
        timeout=60,
    )
    if second.status_code != 303:
        raise RuntimeError(f"{login.email}: code step answered {second.status_code}")
    return http


Visit = Callable[[requests.Session, Tally, random.Random], None]


def pages_of(login: Login, base: str, seeded: Seeded, providers: int) -> list[Visit]:
    """What one user of ``login.role`` opens in each round."""

    def visit(page: str, path: Callable[[random.Random], str]) -> Visit:
        def go(http: requests.Session, tally: Tally, rng: random.Random) -> None:
            timed(http, tally, page, base + path(rng))

        return go

    dashboard = visit("dashboard", lambda rng: "/")
    if login.role == "legal_officer":
        return [
            dashboard,
            visit("triage queue", lambda rng: "/triage"),
            visit("request list (officer)", lambda rng: f"/requests?page={rng.randint(1, 100)}"),
            visit(
                "repository search",
                lambda rng: (
                    f"/triage/{rng.choice(seeded.queue_requests)}/search?"
                    + rng.choice(SEARCHES).format(provider=rng.randint(1, providers))
                ),
            ),
            visit("package page (officer)", lambda rng: f"/packages/{rng.choice(seeded.packages)}"),
        ]
    if login.role == "requester":
        return [
            dashboard,
            visit("request list", lambda rng: "/requests"),
            visit("request list", lambda rng: f"/requests?page={rng.randint(2, 18)}"),
        ]
    mine = seeded.released[login.authority or ""]
    return [
        dashboard,
        visit("package list (recipient)", lambda rng: "/received"),
        visit("package page (recipient)", lambda rng: f"/received/{rng.choice(mine)}"),
    ]


def choose_users(logins: list[Login], count: int) -> list[Login]:
    """Two officers for every requester and recipient pair, up to ``count`` users."""
    by_role: dict[str, list[Login]] = {}
    for login in logins:
        by_role.setdefault(login.role, []).append(login)
    order = ["legal_officer", "requester", "legal_officer", "recipient"]
    chosen: list[Login] = []
    taken: dict[str, int] = {}
    n = 0
    while len(chosen) < count:
        role = order[n % len(order)]
        n += 1
        index = taken.get(role, 0)
        if index < len(by_role.get(role, [])):
            chosen.append(by_role[role][index])
            taken[role] = index + 1
        elif n > 4 * count:
            raise SystemExit(f"the seed has accounts for {len(chosen)} users, not {count}")
    return chosen


def run_threads(count: int, body: Callable[[int], None]) -> None:
    """``body(0)`` to ``body(count - 1)`` at once; the first exception stops the benchmark."""
    failures: list[BaseException] = []

    def run(n: int) -> None:
        try:
            body(n)
        except Exception as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{len(failures)} of {count} clients failed; first: {failures[0]}")


def baseline(bases: Sequence[str], clients: int, seconds: float, think: float) -> Tally:
    """``/healthz`` from ``clients`` clients, paced like the users (see :func:`drive`);
    client ``n`` asks server ``bases[n % len(bases)]``."""
    tally = Tally()
    stop = time.monotonic() + seconds

    def client(n: int) -> None:
        http, rng = requests.Session(), random.Random(n)
        base = bases[n % len(bases)]
        while time.monotonic() < stop:
            timed(http, tally, "baseline: /healthz", f"{base}/healthz")
            if think:
                time.sleep(rng.uniform(0, 2 * think))

    run_threads(clients, client)
    return tally


def drive(
    bases: Sequence[str],
    users: list[Login],
    sessions: list[requests.Session],
    seeded: Seeded,
    seconds: float,
    think: float,
) -> Tally:
    """Every user opens its pages in turn until ``seconds`` have passed, pausing a random
    0 to 2 x ``think`` seconds after each page (none when ``think`` is 0). User ``n`` asks
    server ``bases[(n + 1) % len(bases)]``: with several, not the one it signed in on (see
    :func:`measure`), so a session one node cannot read is an error."""
    tally = Tally()
    stop = time.monotonic() + seconds

    def user(n: int) -> None:
        rng = random.Random(n)
        base = bases[(n + 1) % len(bases)]
        visits = pages_of(users[n], base, seeded, providers=Scale().providers)
        while time.monotonic() < stop:
            for visit in visits:
                visit(sessions[n], tally, rng)
                if think:
                    time.sleep(rng.uniform(0, 2 * think))

    run_threads(len(users), user)
    return tally


# --- one backend --------------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    baseline: Tally
    load: Tally
    baseline_seconds: float
    seconds: float
    loadavg: tuple[float, float]
    #: gunicorn's CPU seconds (master and workers; not the database server's) in each phase
    baseline_cpu: float
    load_cpu: float
    client_cpu: float  # this process's, during the load


@dataclass
class Prepared:
    """A seeded database and what the virtual users need of it."""

    url: str
    home: Path  # the instance directory: secret, sealing and TOTP keys, logins.json
    seeded: Seeded
    users: list[Login]


def prepare(
    backend: str, url: str, users: int, cache: Path, pg_database: str = PG_DATABASE
) -> Prepared:
    """The seeded database of ``backend`` (kept under ``cache``; on PostgreSQL the database
    ``pg_database`` on the server of ``url``) with its instance directory and ``users``
    virtual users."""
    scale = Scale()
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)  # the logins are kept there
    home = cache / backend
    home.mkdir(mode=0o700, exist_ok=True)
    logins_file = home / "logins.json"
    known = Seeded.load(logins_file) if logins_file.exists() else None
    fresh = known is None or known.key != scale.key()
    if backend == "sqlite":
        database = home / "portal.db"
        if fresh:
            for stale in home.glob("portal.db*"):
                stale.unlink()
        url = f"sqlite:///{database}"
    else:
        url = postgres_database(url, pg_database, recreate=fresh)
    seeded = ensure_seeded(url, scale, logins_file)
    ensure_secret_key(Settings.from_env({"PORTAL_INSTANCE_DIR": str(home)}))
    return Prepared(url, home, seeded, choose_users(seeded.logins, users))


def measure(
    servers: Sequence[Server], prepared: Prepared, args: argparse.Namespace, backend: str
) -> Result:
    """Baseline, sign-in and load (see the module notes) against ``servers``: user ``n``
    signs in on ``servers[n % len(servers)]`` and browses on the next one (:func:`drive`)."""
    users, bases = prepared.users, [server.base for server in servers]
    loads = [os.getloadavg()[0]]

    def cpu_now() -> float:
        return sum(server_cpu_seconds(server.pid) for server in servers)

    cpu = cpu_now()
    base_tally = baseline(bases, len(users), args.baseline, args.think)
    base_cpu = cpu_now() - cpu
    loads.append(os.getloadavg()[0])
    engine = make_engine(prepared.url)
    with engine.connect() as conn:
        steps = {e: s for e, s in conn.execute(select(User.email, User.totp_last_step))}
    engine.dispose()
    signed_in: dict[int, requests.Session] = {}

    def login(n: int) -> None:
        signed_in[n] = sign_in(bases[n % len(bases)], users[n], steps.get(users[n].email))

    run_threads(len(users), login)
    sessions = [signed_in[n] for n in range(len(users))]
    cpu, client_cpu = cpu_now(), time.process_time()
    began = time.monotonic()
    tally = drive(bases, users, sessions, prepared.seeded, args.duration, args.think)
    seconds = time.monotonic() - began
    load_cpu = cpu_now() - cpu
    client_cpu = time.process_time() - client_cpu
    loads.append(os.getloadavg()[0])
    return Result(
        backend=backend,
        baseline=base_tally,
        load=tally,
        baseline_seconds=args.baseline,
        seconds=seconds,
        loadavg=(min(loads), max(loads)),
        baseline_cpu=base_cpu,
        load_cpu=load_cpu,
        client_cpu=client_cpu,
    )


def run_backend(backend: str, url: str, args: argparse.Namespace, cache: Path) -> Result:
    prepared = prepare(backend, url, args.users, cache)
    redis = args.redis if backend == "postgresql" else None
    with gunicorn(prepared.url, prepared.home, redis, args.workers) as server:
        return measure([server], prepared, args, f"{backend}+redis" if redis else backend)


# --- report -------------------------------------------------------------------------------


def report(results: list[Result], users: int, think: float) -> bool:
    """Print the tables; True when every backend met the target without errors."""
    met = True
    head = f"{'backend':<16} {'page':<26} {'requests':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
    for result in results:
        print(f"\n{head}  errors")
        load, base = result.load, result.baseline
        rows = [("baseline: /healthz", base.all_times(), sum(base.errors.values()))]
        rows += [(page, t, load.errors.get(page, 0)) for page, t in sorted(load.times.items())]
        rows.append(("all pages", load.all_times(), sum(load.errors.values())))
        for page, times, errors in rows:
            print(
                f"{result.backend:<16} {page:<26} {len(times):>8} {percentile(times, 0.5):7.1f}"
                f" {percentile(times, 0.95):7.1f} {percentile(times, 0.99):7.1f}  {errors}"
            )
        pages, floor_pages = len(load.all_times()), len(base.all_times())
        p95 = percentile(load.all_times(), 0.95)
        floor = percentile(base.all_times(), 0.95)
        errors = sum(load.errors.values())
        print(
            f"{result.backend}: {users} users, think time {think:g} s: "
            f"{pages / result.seconds:.0f} pages/s over {result.seconds:.0f} s, "
            f"CPU a page: gunicorn {1000 * result.load_cpu / max(pages, 1):.1f} ms, "
            f"client {1000 * result.client_cpu / max(pages, 1):.1f} ms; "
            f"baseline {floor_pages / result.baseline_seconds:.0f} requests/s, "
            f"{1000 * result.baseline_cpu / max(floor_pages, 1):.1f} ms CPU each.\n"
            f"p95 {p95:.0f} ms = {p95 / floor if floor else 0:.1f} x the baseline's {floor:.0f} ms;"
            f" {errors} errors; load average {result.loadavg[0]:.1f} to {result.loadavg[1]:.1f}"
            f" on {os.cpu_count()} cores"
        )
        for sample in load.samples + base.samples:
            print(f"  error: {sample}")
        met = met and p95 < TARGET_P95_MS and errors == 0
    print(f"\ntarget: p95 < {TARGET_P95_MS:.0f} ms over all pages, no errors")
    return met


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pg", default=os.environ.get("PORTAL_TEST_DATABASE_URL"))
    parser.add_argument("--redis", default=os.environ.get("PORTAL_TEST_REDIS_URL"))
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds of baseline")
    parser.add_argument(
        "--think", type=float, default=0.0, help="mean pause after each page, seconds"
    )
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: its config)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "portal-load")
    parser.add_argument("--reseed", action="store_true", help="forget the kept databases")
    args = parser.parse_args()
    if args.reseed and args.cache.exists():
        shutil.rmtree(args.cache)
    results = []
    if not args.no_sqlite:
        results.append(run_backend("sqlite", "", args, args.cache))
    if args.pg:
        results.append(run_backend("postgresql", args.pg, args, args.cache))
    sys.exit(0 if report(results, args.users, args.think) else 1)


if __name__ == "__main__":
    main()
