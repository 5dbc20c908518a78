"""Several nodes: two web nodes and two workers on one PostgreSQL, one Redis and one data
directory (issue 23), laid out as on several machines (tests/support/nodes.py;
docs/deployment.md, "Several nodes"): each node an instance directory of its own holding
copies of the keys every node shares (secret, sealing and TOTP keys, made once), a local copy
of the signing key for its worker, and the one shared data directory (the blob store; on
several machines a POSIX filesystem such as NFS or CephFS).

1. **Load** (bench/load.py's seed, virtual users and figures; a database of this bench's
   own): the same users for the same time through one node, then through both, ``--runs``
   times in turn. Through both, user ``n`` signs in on node ``n % 2`` and browses on the
   other one, so every session crosses nodes: a session one node cannot read is an error
   ("signed out"). Each run first measures the raw baseline (``/healthz``, one ``SELECT 1``,
   from as many clients, split the same way). Printed per run and as min / median: pages/s,
   p50/p95/p99, errors, gunicorn CPU per page, the ratios to the baseline (p95 and CPU) and
   two nodes ÷ one node. On one machine both nodes share its cores: expect about 1x; the
   point is that nothing breaks.
2. **Assembly**: ``--packages`` requests (the package world of tests/support/package_world.py,
   each with a cleared video of its own of ``--video-mb``) are made into packages at once
   through both web nodes by one signed-in officer (half on each node, with the same session)
   while a ``portal worker`` runs on each node. When all are done: every package must be
   assembled, with exactly one ``package.assembly_started`` and one ``package.assembled``
   event and one attempt; the two workers' logs together must name every package exactly
   once, both must have run some and neither log may show an error or a traceback;
   ``portal-verify`` (the recipient's tool) must accept every package with the recipient's
   example key (NWU-NL) and the pinned signing key.
   Printed: wall time, seconds per package (audit log, started to assembled), the workers'
   CPU (their process trees: gpg, the document worker) against the raw ``tar c | gpg --sign
   --encrypt`` of the same files measured in the same run (bench/assembly.py's baseline).

Everything it starts (gunicorn, workers, gpg agents) is stopped and its directories and
database removed at the end, also on Ctrl-C or a failure (``--keep``: keep the seeded database
and the run's directory). Exits 1 when anything was wrong (an error, a package not assembled
exactly once, a package that does not verify).

    .venv/bin/python bench/multinode.py --pg postgresql://postgres@127.0.0.1:5432/postgres \\
        --redis redis://127.0.0.1:6379/5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the test world's helpers (tests/support)

import requests  # noqa: E402
from assembly import baseline as raw_tar_gpg  # noqa: E402
from benchdb import postgres_database, postgres_engine  # noqa: E402
from faults import FINAL, csrf, descendants, wait_for  # noqa: E402
from load import (  # noqa: E402
    BENCH_RATE_LIMIT,
    Result,
    Server,
    gunicorn,
    measure,
    percentile,
    prepare,
    run_threads,
    sign_in,
)
from sqlalchemy import make_url, select, text  # noqa: E402

from portal.accounts.models import User  # noqa: E402
from portal.audit import AuditEvent  # noqa: E402
from portal.config import Settings  # noqa: E402
from portal.db import aware_utc, make_engine, normalize_url  # noqa: E402
from portal.packages.assembly.jobs import make_jobs  # noqa: E402
from portal.packages.models import Package, PackageItem  # noqa: E402
from portal.registry.models import Item  # noqa: E402
from portal.state import PortalState, build_state  # noqa: E402
from tests.support.nodes import (  # noqa: E402
    Node,
    claims,
    make_nodes,
    package_requests,
    portal_init,
    workers,
)
from tests.support.packages import AUTHORITY, SENDER_FPR, keyring  # noqa: E402

PG_DATABASE = "portal_multinode"
NODES = 2


def say(line: str) -> None:
    print(line, flush=True)


def _min_median(values: Sequence[float], fmt: str = ".0f") -> str:
    return f"{min(values):{fmt}} / {statistics.median(values):{fmt}}"


# --- 1. load ------------------------------------------------------------------------------


def _figures(result: Result) -> dict[str, float]:
    times, floor = result.load.all_times(), result.baseline.all_times()
    pages, floor_count = max(len(times), 1), max(len(floor), 1)
    base_p95 = percentile(floor, 0.95)
    cpu_page = 1000 * result.load_cpu / pages
    cpu_floor = 1000 * result.baseline_cpu / floor_count
    return {
        "pages/s": len(times) / result.seconds,
        "p50": percentile(times, 0.5),
        "p95": percentile(times, 0.95),
        "p99": percentile(times, 0.99),
        "errors": float(sum(result.load.errors.values())),
        "cpu": cpu_page,
        "client cpu": 1000 * result.client_cpu / pages,
        "baseline/s": len(floor) / result.baseline_seconds,
        "baseline p95": base_p95,
        "p95 ratio": percentile(times, 0.95) / base_p95 if base_p95 else 0.0,
        "cpu ratio": cpu_page / cpu_floor if cpu_floor else 0.0,
    }


def _print_run(label: str, result: Result) -> None:
    f = _figures(result)
    say(
        f"  {label:<8} {f['pages/s']:6.0f} pages/s  p50 {f['p50']:5.0f}  p95 {f['p95']:5.0f}  "
        f"p99 {f['p99']:5.0f} ms  errors {f['errors']:.0f}  CPU/page gunicorn "
        f"{f['cpu']:4.1f} ms, client {f['client cpu']:4.1f} ms | baseline /healthz "
        f"{f['baseline/s']:.0f}/s p95 {f['baseline p95']:.0f} ms: p95 x{f['p95 ratio']:.1f}, "
        f"CPU x{f['cpu ratio']:.1f} | load {result.loadavg[0]:.1f}-{result.loadavg[1]:.1f}"
    )
    for sample in result.load.samples + result.baseline.samples:
        say(f"           error: {sample}")


def phase_load(args: argparse.Namespace, root: Path, queue: str) -> bool:
    say(f"1. load: {args.users} users, {args.duration:g} s each run (after {args.baseline:g} s "
        f"of baseline), {args.runs} runs of one node then two")  # fmt: skip
    prepared = prepare("postgresql", args.pg, args.users, args.cache, PG_DATABASE)
    shared = {"PORTAL_DATA_DIR": str(root / "load-data"), "PORTAL_QUEUE_NAME": queue}
    nodes = make_nodes(root / "load", NODES, shared, keys_from=prepared.home)
    runs: dict[int, list[Result]] = {1: [], NODES: []}
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(
                gunicorn(prepared.url, node.instance, args.redis, args.workers, node.env)
            )
            for node in nodes
        ]
        for n in range(1, args.runs + 1):
            say(f" run {n}")
            for count in (1, NODES):
                result = measure(servers[:count], prepared, args, f"{count} node(s)")
                runs[count].append(result)
                _print_run("1 node" if count == 1 else f"{count} nodes", result)
    one = [_figures(r) for r in runs[1]]
    two = [_figures(r) for r in runs[NODES]]
    say(f" over {args.runs} runs, min / median (load average now "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}, {os.cpu_count()} cores):")  # fmt: skip
    for key, unit, fmt in (
        ("pages/s", "", ".0f"),
        ("p95", " ms", ".0f"),
        ("p95 ratio", " (x the baseline p95)", ".1f"),
        ("cpu", " ms CPU a page", ".1f"),
        ("cpu ratio", " (x the baseline's CPU a request)", ".1f"),
    ):
        say(
            f"  {key:<10} 1 node {_min_median([f[key] for f in one], fmt)}{unit}; "
            f"{NODES} nodes {_min_median([f[key] for f in two], fmt)}{unit}"
        )
    ratio = [b["pages/s"] / a["pages/s"] for a, b in zip(one, two, strict=True)]
    errors = sum(f["errors"] for f in one + two)
    say(
        f"  throughput {NODES} nodes ÷ 1 node: {_min_median(ratio, '.2f')} (both nodes share "
        f"this machine's {os.cpu_count()} cores, so about 1x is expected: the figure that "
        f"matters is errors {errors:.0f}, with every session used on the other node)"
    )
    return errors == 0


# --- 2. assembly --------------------------------------------------------------------------


def _tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its live descendants, with the children each reaped."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for each in (pid, *descendants(pid)):
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(value) for value in fields[11:15])
    return total / tick


def _queue_all(servers: Sequence[Server], officer: requests.Session, codes: list[str]) -> None:
    """Make every request's package at once, request ``n`` through node ``n % 2``, with the
    one officer's session (a copy of its cookies per thread)."""

    def make_one(n: int) -> None:
        http = requests.Session()
        http.cookies.update(officer.cookies)
        url = f"{servers[n % len(servers)].base}/packages/requests/{codes[n]}"
        answer = http.post(
            url, data={"csrf_token": csrf(http, url), "reviewed": "yes"}, timeout=120
        )
        if answer.status_code != 200 or "/login" in answer.url:
            raise RuntimeError(f"{codes[n]}: making the package answered {answer.status_code}")

    run_threads(len(codes), make_one)


def _events(state: PortalState, codes: list[str]) -> dict[str, Counter[str]]:
    with state.sessions() as db:
        rows = db.execute(
            select(AuditEvent.target, AuditEvent.action).where(
                AuditEvent.target.in_([f"package:{code}" for code in codes])
            )
        )
        counts: dict[str, Counter[str]] = {code: Counter() for code in codes}
        for target, action in rows:
            counts[target.removeprefix("package:")][action] += 1
    return counts


def _seconds_each(state: PortalState, codes: list[str]) -> list[float]:
    """Per package, from its ``package.assembly_started`` to its ``package.assembled``."""
    with state.sessions() as db:
        rows = db.execute(
            select(AuditEvent.target, AuditEvent.action, AuditEvent.occurred_at).where(
                AuditEvent.target.in_([f"package:{code}" for code in codes]),
                AuditEvent.action.in_(["package.assembly_started", "package.assembled"]),
            )
        )
        when: dict[tuple[str, str], Any] = {(t, a): aware_utc(at) for t, a, at in rows}
    seconds = []
    for code in codes:
        target = f"package:{code}"
        if (target, "package.assembled") in when:
            ended = when[(target, "package.assembled")]
            seconds.append((ended - when[(target, "package.assembly_started")]).total_seconds())
    return seconds


def _verify(state: PortalState, packages: list[Package], scratch: Path) -> list[str]:
    """``portal-verify`` on every package file and its detached signature, as the recipient
    runs it; the packages it refused, with why."""
    refused = []
    verifier = str(Path(sys.executable).with_name("portal-verify"))
    with keyring(secret=(AUTHORITY,), public=("mechanism-signing",), parent=scratch) as home:
        for package in packages:
            if not (package.file_sha256 and package.signature_sha256):
                refused.append(f"{package.code}: no file")
                continue
            target = scratch / f"{package.code}.tar.gpg"
            shutil.copyfile(state.blobs.path(package.file_sha256), target)
            shutil.copyfile(
                state.blobs.path(package.signature_sha256), scratch / f"{target.name}.sig"
            )
            done = subprocess.run(
                [verifier, str(target), "--sender-fingerprint", SENDER_FPR,
                 "--gnupghome", str(home), "--json"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            report = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
            if done.returncode != 0 or report.get("ok") is not True:
                refused.append(f"{package.code}: exit {done.returncode} {report.get('message')}")
            target.unlink()
    return refused


def _raw_baseline(state: PortalState, packages: list[Package], scratch: Path) -> dict[str, float]:
    """``tar c | gpg --sign --encrypt`` of each package's source files (one after another):
    wall and CPU seconds summed."""
    total = {"seconds": 0.0, "cpu_seconds": 0.0}
    with state.sessions() as db:
        sources = {
            package.code: list(
                db.execute(
                    select(Item.code, Item.sha256)
                    .join(PackageItem, PackageItem.item_id == Item.id)
                    .where(PackageItem.package_id == package.id)
                )
            )
            for package in packages
        }
    for code, items in sources.items():
        payload = scratch / "raw" / code
        payload.mkdir(parents=True)
        for item_code, sha256 in items:
            shutil.copyfile(state.blobs.path(sha256), payload / item_code)
        raw = raw_tar_gpg(payload, scratch / "raw.tar.gpg", home_parent=scratch)
        total["seconds"] += raw["seconds"]
        total["cpu_seconds"] += raw["cpu_seconds"]
        shutil.rmtree(payload)
        (scratch / "raw.tar.gpg").unlink()
    return total


def phase_assembly(args: argparse.Namespace, root: Path, queue: str, database: str) -> bool:
    say(f"2. assembly: {args.packages} packages at once through both web nodes, a worker on "
        f"each node")  # fmt: skip
    with postgres_engine(database) as engine:
        url = engine.url.render_as_string(hide_password=False)
        shared = {
            "PORTAL_DATABASE_URL": url,
            "PORTAL_REDIS_URL": args.redis,
            "PORTAL_QUEUE_NAME": queue,
            "PORTAL_DATA_DIR": str(root / "data"),
            "PORTAL_DEMO": "1",  # the example signing and recipient keys
            "PORTAL_HTTPS": "0",
            "PORTAL_LOGIN_RATE_LIMIT": BENCH_RATE_LIMIT,
        }
        portal_init(shared, root / "first")  # the shared keys, made once
        nodes = make_nodes(root / "assembly", NODES, shared, keys_from=root / "first")
        settings = Settings.from_env({**nodes[0].env, **nodes[0].signing})
        state = build_state(settings)
        try:
            return _assemble_and_check(args, root, state, nodes, url)
        finally:
            with contextlib.suppress(Exception):
                make_jobs(settings).huey.flush()  # this run's queue in the shared Redis
            state.engine.dispose()


def _assemble_and_check(
    args: argparse.Namespace, root: Path, state: PortalState, nodes: list[Node], url: str
) -> bool:
    world, codes = package_requests(state, args.packages, args.video_mb << 20)
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(gunicorn(url, node.instance, args.redis, args.workers, node.env))
            for node in nodes
        ]
        started = stack.enter_context(workers(nodes))
        with state.sessions() as db:
            last = db.scalar(select(User.totp_last_step).where(User.id == world.officer_id))
        officer = sign_in(servers[0].base, world.officer, last)  # type: ignore[arg-type]
        cpu = sum(_tree_cpu(process.pid) for process in started)
        began = time.monotonic()
        _queue_all(servers, officer, codes)
        queued = time.monotonic() - began

        def done() -> bool:
            with state.sessions() as db:
                statuses = db.scalars(select(Package.status)).all()
            return len(statuses) == len(codes) and all(s in FINAL for s in statuses)

        wait_for(done, 60 + 30 * len(codes), "every package to finish")
        wall = time.monotonic() - began
        cpu = sum(_tree_cpu(process.pid) for process in started) - cpu
    with state.sessions() as db:
        packages = list(db.scalars(select(Package).order_by(Package.id)))
        for package in packages:
            db.expunge(package)
    package_codes = [p.code for p in packages]
    by_id = {p.id: p.code for p in packages}
    events = _events(state, package_codes)
    ran = {node.name: claims(node) for node in nodes}
    ran_all = Counter(package_id for ids in ran.values() for package_id in ids)
    idle = [name for name, ids in ran.items() if not ids]
    troubles = {node.name: _troubles(node.worker_log) for node in nodes}
    scratch = root / "verify"
    scratch.mkdir()
    refused = _verify(state, packages, scratch)
    raw = _raw_baseline(state, packages, scratch)
    each = _seconds_each(state, package_codes)
    statuses = Counter(p.status for p in packages)
    wrong = [
        f"{p.code}: {p.status}, started x{events[p.code]['package.assembly_started']}, "
        f"assembled x{events[p.code]['package.assembled']}, attempts {p.attempts}, "
        f"claimed x{ran_all[p.id]}"
        for p in packages
        if (p.status, p.attempts, ran_all[p.id]) != ("assembled", 1, 1)
        or events[p.code]["package.assembly_started"] != 1
        or events[p.code]["package.assembled"] != 1
    ]
    size = sum(p.file_size or 0 for p in packages) / (1 << 20)
    say(
        f"  {len(packages)} packages made through {NODES} web nodes in {queued:.1f} s, all "
        f"finished {wall:.1f} s after the first was queued: "
        + ", ".join(f"{n} {s}" for s, n in statuses.items())
        + f"; {size:.0f} MiB of packages"
    )
    say(
        f"  per package (audit log, started to assembled), min / median / max: "
        f"{min(each):.1f} / {statistics.median(each):.1f} / {max(each):.1f} s"
        if each
        else "  no package was assembled"
    )
    for name, ids in ran.items():
        say(f"  {name}'s worker ran {len(ids)}: {', '.join(by_id.get(i, str(i)) for i in ids)}")
    say(
        f"  exactly once: {len(packages) - len(wrong)} of {len(packages)} packages with one "
        f"run claimed (in one worker's log), one package.assembly_started, one "
        f"package.assembled and one attempt"
        + (f"; wrong: {'; '.join(wrong)}" if wrong else "")
        + (f"; idle worker(s): {', '.join(idle)}" if idle else "")
    )
    count = len(packages)
    median = statistics.median(each) if each else 0.0
    say(
        f"  a package, portal against the raw tar | gpg --sign --encrypt of its files (one after "
        f"another, same run): wall {median:.2f} s (median) against {raw['seconds'] / count:.2f} "
        f"s, ratio {median / (raw['seconds'] / count):.1f}; CPU {cpu / count:.2f} s (the "
        f"workers' process trees: gpg, the document worker) against "
        f"{raw['cpu_seconds'] / count:.3f} s, ratio {cpu / raw['cpu_seconds']:.0f}"
    )
    say(
        f"  portal-verify with the recipient's example key ({AUTHORITY}): "
        f"{len(packages) - len(refused)} of {len(packages)} verified"
        + (f"; refused: {'; '.join(refused)}" if refused else "")
    )
    say(
        "  worker logs: "
        + "; ".join(f"{name} {len(lines)} errors or tracebacks" for name, lines in troubles.items())
    )
    for lines in troubles.values():
        for line in lines[:3]:
            say(f"    {line}")
    bad_logs = any(troubles.values())
    return not (wrong or idle or refused or bad_logs) and statuses == {"assembled": args.packages}


def _troubles(log: Path) -> list[str]:
    """The lines of a worker's log that say something went wrong."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return [line for line in lines if " ERROR " in line or line.startswith("Traceback")]


# --- main ---------------------------------------------------------------------------------


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM too: every context above stops what it started


@contextlib.contextmanager
def _run_directory(keep: bool) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="multinode-"))
    root.chmod(0o700)
    try:
        yield root
    finally:
        if keep:
            say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _drop_database(url: str) -> None:
    server = make_url(normalize_url(url)).set(database="postgres")
    admin = make_engine(server.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))
    finally:
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get("PORTAL_TEST_DATABASE_URL"),
        help="a PostgreSQL server (this bench makes its own database there)",
    )
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/5",
        help="Redis shared by the nodes (a queue name of this run's own)",
    )
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load a run")
    parser.add_argument("--baseline", type=float, default=5.0, help="seconds of baseline a run")
    parser.add_argument("--think", type=float, default=0.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, help="gunicorn workers a node (default: its config)")
    parser.add_argument("--packages", type=int, default=20)
    parser.add_argument("--video-mb", type=int, default=3, help="each package's own video, MiB")
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-assembly", action="store_true")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "portal-multinode"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the seeded database, its cache and the run's directory",
    )
    args = parser.parse_args()  # fmt: skip
    if not args.pg:
        raise SystemExit("several nodes need PostgreSQL: --pg URL (or PORTAL_TEST_DATABASE_URL)")
    signal.signal(signal.SIGTERM, _interrupted)
    queue = f"multinode-{secrets.token_hex(4)}"
    say(f"multinode bench, {time.strftime('%Y-%m-%d %H:%M')}, {NODES} nodes on one machine "
        f"({os.cpu_count()} cores), load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; PostgreSQL database "
        f"{PG_DATABASE}, Redis {args.redis} queue {queue}")  # fmt: skip
    ok = True
    try:
        with _run_directory(args.keep) as root:
            if not args.skip_load:
                ok = phase_load(args, root, queue) and ok
            if not args.skip_assembly:
                database = postgres_database(args.pg, PG_DATABASE)
                ok = phase_assembly(args, root, queue, database) and ok
    finally:
        if not args.keep:
            _drop_database(args.pg)
            shutil.rmtree(args.cache, ignore_errors=True)
    say("result: " + ("everything as it should be" if ok else "SOMETHING WAS WRONG (above)"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
