"""Fault injection on the production path: what is lost, and what is left behind.

Starts the pieces a deployment runs — gunicorn (2 workers, ``gunicorn.conf.py``) and
``portal worker`` processes, on PostgreSQL when ``PORTAL_TEST_DATABASE_URL`` (or ``--pg``)
names one (a schema of its own, dropped at the end), else SQLite — with a Redis of its own on
a free loopback port (queue and rate limits; ``appendonly yes`` as the README asks; a shared
Redis is never stopped, so none is used), a package world (PDF, JPEG, text and a 24 MiB video,
see tests/support/package_world.py) and, when this process may mount one, the data directory
on a 512 MiB tmpfs. Then, in order:

1. **worker SIGKILL**: a package is queued; the worker is killed (SIGKILL to its main process,
   as the OOM killer does) while it streams the package into gpg; the processes it had started
   and the files it left are listed; a second worker (heartbeat 2 s) must clean up and
   assemble the package.
2. **gunicorn SIGTERM / SIGKILL**: four clients upload 4 MiB attachments while one web worker
   gets SIGTERM and another SIGKILL (gunicorn starts new ones).
3. **Redis stopped**: Redis is stopped while clients sign in, browse, read /readyz and an
   officer queues a package; then it is started again and the officer retries.
4. **store full** (tmpfs only): the data disk is filled; an upload and an assembly meet it;
   then space is freed and the officer retries.

Then everything is stopped and it checks. **Lost**: every upload the portal recorded reads
back (over HTTP) as the bytes sent, every upload it did not record left no blob, no answer
was a 500, and every package ended assembled exactly once (one ``package.assembled`` event,
its file in the store and sound) or failed with a reason. **Left behind**: staging
directories, blob-store temporaries, ``/tmp/portal-gpg-*`` keyrings made during the run and
not in use, processes still running with this run's instance directory in their environment
(forkserver, document workers, gpg, gpg-agent), and unreferenced blobs — counted before and
after ``portal sweep`` run as a day later (leftovers aged by 25 h: the sweep keeps fresh
temporaries for an hour and unreferenced blobs for a day). ``portal scrub`` re-hashes the
store. Exits 1 when anything was lost or left behind.

Never run by the tests or CI (minutes, kills processes, may mount a tmpfs).

    .venv/bin/python bench/faults.py                  # SQLite + own Redis
    PORTAL_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/faults.py              # PostgreSQL + own Redis
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the test world's factories (tests/support)

import requests  # noqa: E402
from load import free_port, sign_in  # noqa: E402
from sqlalchemy import select, text  # noqa: E402

from portal import audit  # noqa: E402
from portal.accounts.models import User  # noqa: E402
from portal.config import Settings  # noqa: E402
from portal.db import make_engine, normalize_url, utcnow  # noqa: E402
from portal.eligibility.decisions import run_check  # noqa: E402
from portal.eligibility.policy import load_policy  # noqa: E402
from portal.integrity.full import ASSEMBLY_REASON  # noqa: E402
from portal.notifications import service as notifications  # noqa: E402
from portal.packages.models import Package  # noqa: E402
from portal.registry.models import Authority, Item  # noqa: E402
from portal.registry.openpgp import KEYRING_DIR, KEYRING_PREFIX, _in_use  # noqa: E402
from portal.rfa.models import Attachment, Rfa  # noqa: E402
from portal.state import PortalState, build_state  # noqa: E402
from tests.support import factories as make  # noqa: E402
from tests.support.auth import Credentials, make_user  # noqa: E402
from tests.support.package_world import POLICIES, World, _add_item, make_world, user  # noqa: E402

KEYS = REPO_ROOT / "keys_example"
UPLOAD = 4 << 20
_CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
FINAL = ("assembled", "failed", "blocked")


def say(text_: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text_}", flush=True)


# --- processes ---------------------------------------------------------------------------


def _proc_table() -> dict[int, int]:
    """pid -> ppid of every process."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            table[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    return table


def descendants(pid: int) -> set[int]:
    table, found, frontier = _proc_table(), set(), {pid}
    while frontier:
        frontier = {child for child, parent in table.items() if parent in frontier} - found
        found |= frontier
    return found


def command_of(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "(gone)"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:90]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def marked(marker: bytes, exclude: set[int] = frozenset()) -> list[int]:  # type: ignore[assignment]
    """Processes whose environment holds ``marker`` (this run's instance directory)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        if pid == os.getpid() or pid in exclude:
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "environ").read_bytes().split(b"\0") and alive(pid):
                found.append(pid)
    return sorted(found)


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=handle, stderr=handle, start_new_session=True
    )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, wait: float = 60) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, sig)
    try:
        process.wait(wait)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Redis:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--dir", str(self.directory), "--appendonly", "yes",
             "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={"PATH": os.environ["PATH"]},
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None


# --- the portal ---------------------------------------------------------------------------


@dataclass
class Run:
    root: Path
    env: dict[str, str]
    settings: Settings
    state: PortalState
    redis: Redis
    world: World
    requesters: list[Credentials]
    admin: Credentials
    draft: str
    spare_rfas: list[str]
    tmpfs: bool
    base: str = ""
    web: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    sent: dict[str, bytes] = field(default_factory=dict)  # upload name -> bytes
    answers: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def marker(self) -> bytes:
        return f"PORTAL_INSTANCE_DIR={self.settings.instance_dir}".encode()

    def portal(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(Path(sys.executable).with_name("portal")), *args],
            env={**self.env, **extra}, cwd=REPO_ROOT, capture_output=True, text=True,
        )  # fmt: skip

    def start_worker(self) -> None:
        self.worker = start(
            [str(Path(sys.executable).with_name("portal")), "worker", "--workers", "1"],
            {**self.env, **_signing()},
            self.root / "worker.log",
        )

    def start_web(self) -> None:
        port = free_port()
        self.web = start(
            [str(Path(sys.executable).with_name("gunicorn")), "--config", "gunicorn.conf.py",
             "--workers", "2", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
             "wsgi:app"],
            self.env, self.root / "gunicorn.log",
        )  # fmt: skip
        self.base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _healthy(self.base), 60, "gunicorn to answer /healthz")

    def sign_in(self, who: Credentials) -> requests.Session:
        """Both sign-in steps, with a code of a time step the portal has not seen yet."""
        with self.state.sessions() as db:
            last = db.scalar(select(User.totp_last_step).where(User.id == who.user_id))
        return sign_in(self.base, who, last)

    def package(self, code: str) -> Package:
        with self.state.sessions() as db:
            return db.scalars(select(Package).where(Package.code == code)).one()

    def packages(self) -> list[Package]:
        with self.state.sessions() as db:
            return list(db.scalars(select(Package).order_by(Package.id)))


def _signing() -> dict[str, str]:
    return {
        "PORTAL_SIGNING_KEY": str(KEYS / "mechanism-signing.sec.asc"),
        "PORTAL_SIGNING_PASSPHRASE_FILE": str(KEYS / "mechanism-signing.passphrase"),
    }


def _healthy(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what} after {seconds:.0f} s")
        time.sleep(0.1)


def csrf(http: requests.Session, url: str) -> str:
    found = _CSRF.search(http.get(url, timeout=60).text)
    if found is None:
        raise RuntimeError(f"no form on {url}")
    return found.group(1)


@contextlib.contextmanager
def database(pg: str | None, root: Path) -> Iterator[tuple[str, str]]:
    """(URL, backend label): a fresh schema on PostgreSQL, or a SQLite file."""
    if not pg:
        yield f"sqlite:///{root / 'instance' / 'portal.db'}", "SQLite"
        return
    base = normalize_url(pg)
    schema = f"faults_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}", "PostgreSQL"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextlib.contextmanager
def data_disk(where: Path) -> Iterator[bool]:
    """The data directory on a 512 MiB tmpfs when this process may mount one."""
    where.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512m,mode=0700", "tmpfs", str(where)],
        capture_output=True,
    )
    try:
        yield done.returncode == 0
    finally:
        if done.returncode == 0:
            subprocess.run(["umount", "--lazy", str(where)], check=False)


def seed(state: PortalState) -> tuple[World, list[Credentials], Credentials, str, list[str]]:
    """The package world plus a 24 MiB cleared video, three more approved requests for the
    same items, four requesters with a draft for uploads and an admin."""
    world = make_world(state)
    with state.sessions() as db:
        _add_item(
            db, state.blobs, world, "ITM-V0100", "video/mp4", "long.mp4",
            b"\x00\x00\x00\x18ftypmp42" + os.urandom(24 << 20), [], cleared=True,
        )  # fmt: skip
        authority = make.stored(db, Authority, world.authority_id)
        items = list(db.scalars(select(Item).where(Item.provider_id == world.provider_id)))
        officer = user(db, world.officer_id)
        rfas = [make.stored(db, Rfa, world.rfa_id)]
        for n in range(3):
            rfas.append(
                make.rfa(db, authority, f"RFA-2026-09{n:02d}", status="approved", items=items,
                         submitted_at=utcnow() - timedelta(days=9))
            )  # fmt: skip
        for rfa in rfas:
            run_check(db, rfa, load_policy(POLICIES), requested_by=officer,
                      actor=audit.actor_label(officer))  # fmt: skip
        codes = [rfa.code for rfa in rfas]
        draft = make.rfa(db, authority, "RFA-2026-0999", status="draft").code
        db.commit()
    with state.sessions() as db:
        requesters = [make_user(db, "requester", authority_code="NWU-NL") for _ in range(4)]
        admin = make_user(db, "admin")
    return world, requesters, admin, draft, codes


# --- scenarios ----------------------------------------------------------------------------


def queue_package(run: Run, http: requests.Session, rfa_code: str) -> str:
    """The officer makes a package of the request (the web queues its assembly)."""
    url = f"{run.base}/packages/requests/{rfa_code}"
    answer = http.post(url, data={"csrf_token": csrf(http, url), "reviewed": "yes"}, timeout=60)
    run.answers[f"package create {answer.status_code}"] += 1
    with run.state.sessions() as db:
        code = db.scalar(
            select(Package.code)
            .join(Rfa, Rfa.id == Package.rfa_id)
            .where(Rfa.code == rfa_code)
            .order_by(Package.id.desc())
            .limit(1)
        )
    if code is None:
        raise SystemExit(f"no package was made for {rfa_code} ({answer.status_code})")
    return code


def retry(run: Run, http: requests.Session, code: str) -> None:
    url = f"{run.base}/packages/{code}"
    answer = http.post(f"{url}/retry", data={"csrf_token": csrf(http, url)}, timeout=60)
    run.answers[f"package retry {answer.status_code}"] += 1


def settle(run: Run, code: str, seconds: float = 240) -> Package:
    wait_for(lambda: run.package(code).status in FINAL, seconds, f"{code} to finish")
    return run.package(code)


def worker_killed(run: Run, officer: requests.Session) -> None:
    say("1. worker SIGKILL mid-assembly")
    run.start_worker()
    code = queue_package(run, officer, run.spare_rfas[0])
    wait_for(
        lambda: run.package(code).stage.startswith("bagging"), 240, f"{code} to stream into gpg"
    )
    assert run.worker is not None
    children = descendants(run.worker.pid)
    os.kill(run.worker.pid, signal.SIGKILL)  # the main process only, as the OOM killer does
    run.worker.wait()
    time.sleep(3)
    orphans = [pid for pid in marked(run.marker, _web_pids(run)) if pid not in (run.worker.pid,)]
    staging = list((run.settings.data_dir / "staging").glob("*"))
    keyrings = _keyrings(run)
    say(
        f"   killed worker {run.worker.pid} at stage {run.package(code).stage!r}: "
        f"{len(children)} child processes then, {len(orphans)} still running 3 s later "
        f"({', '.join(command_of(p).split(' ')[0].rsplit('/', 1)[-1] for p in orphans) or '-'}),"
        f" {len(staging)} staging dir(s), {len(keyrings)} keyring(s) left for the next worker"
    )
    run.start_worker()
    package = settle(run, code)
    say(f"   a new worker: {code} {package.status} after {package.attempts} attempt(s)")
    if package.status != "assembled":
        run.lost.append(f"{code}: {package.status} after the worker was killed")


def _web_pids(run: Run) -> set[int]:
    assert run.web is not None
    return {run.web.pid, *descendants(run.web.pid)}


def _keyrings(run: Run) -> list[Path]:
    since = run.root.stat().st_mtime - 1
    return [
        path
        for path in Path(KEYRING_DIR).glob(f"{KEYRING_PREFIX}*")
        if path.stat().st_mtime >= since and not _in_use(str(path))
    ]


def uploads_under_kills(run: Run) -> None:
    say("2. gunicorn SIGTERM and SIGKILL during uploads")
    clients = [run.sign_in(requester) for requester in run.requesters]
    detail = f"{run.base}/requests/{run.draft}"
    tokens = [csrf(http, detail) for http in clients]
    outcome: Counter[str] = Counter()

    def client(n: int) -> None:
        for k in range(8):
            name = f"upload-{n}-{k}.txt"
            data = base64.encodebytes(os.urandom(UPLOAD * 3 // 4))
            run.sent[name] = data
            try:
                answer = clients[n].post(
                    f"{detail}/attachments",
                    data={"csrf_token": tokens[n]},
                    files={"file": (name, data, "text/plain")},
                    allow_redirects=False,
                    timeout=120,
                )
                outcome[str(answer.status_code)] += 1
                run.answers[f"upload {answer.status_code}"] += 1
                if answer.status_code not in (303, 503) and not run.notes:
                    run.notes.append(f"upload answered {answer.status_code}: {_gist(answer)}")
            except requests.RequestException as exc:
                outcome[type(exc).__name__] += 1
                run.answers[f"upload {type(exc).__name__}"] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    killed: dict[int, str] = {}
    for delay, sig in ((1.0, signal.SIGTERM), (1.5, signal.SIGKILL), (1.5, signal.SIGKILL)):
        time.sleep(delay)
        assert run.web is not None
        workers = [pid for pid, ppid in _proc_table().items() if ppid == run.web.pid]
        fresh = sorted(pid for pid in workers if pid not in killed)
        if fresh:
            os.kill(fresh[0], sig)
            killed[fresh[0]] = signal.Signals(sig).name
    for thread in threads:
        thread.join()
    signalled = ", ".join(f"{name} {pid}" for pid, name in killed.items())
    say(f"   signalled web workers: {signalled}; answers: {dict(outcome)}")


def _gist(answer: requests.Response) -> str:
    """The first error message on a page (for the notes)."""
    found = re.search(r'class="[^"]*(?:error|flash)[^"]*"[^>]*>([^<]{1,160})', answer.text)
    return " ".join(found.group(1).split()) if found else answer.text[:160]


def redis_outage(run: Run, officer: requests.Session) -> None:
    say("3. Redis stopped during requests and queuing")
    anonymous = requests.Session()
    stop_probing = threading.Event()
    statuses: Counter[str] = Counter()

    def probe() -> None:
        urls = ["/login", "/readyz", f"/packages/requests/{run.spare_rfas[2]}", "/"]
        while not stop_probing.is_set():
            for path in urls:
                http = anonymous if path in ("/login", "/readyz") else officer
                try:
                    status = http.get(f"{run.base}{path}", timeout=30).status_code
                except requests.RequestException as exc:
                    status = type(exc).__name__  # type: ignore[assignment]
                statuses[f"GET {path.split('/')[1] or '/'} {status}"] += 1
            try:
                wrong = anonymous.post(
                    f"{run.base}/login",
                    data={"csrf_token": csrf(anonymous, f"{run.base}/login"),
                          "email": "nobody@example.test", "password": "wrong password"},
                    allow_redirects=False, timeout=30,
                )  # fmt: skip
                statuses[f"POST login {wrong.status_code}"] += 1
            except (requests.RequestException, RuntimeError) as exc:
                statuses[f"POST login {type(exc).__name__}"] += 1

    prober = threading.Thread(target=probe)
    prober.start()
    time.sleep(1)
    run.redis.stop()
    time.sleep(1)
    code = queue_package(run, officer, run.spare_rfas[1])
    time.sleep(1)
    package = run.package(code)
    say(f"   queued while Redis was down: {code} {package.status}: {package.failure_reason}")
    run.redis.start()
    time.sleep(1)
    stop_probing.set()
    prober.join()
    for key, count in statuses.items():
        run.answers[key] += count
    retry(run, officer, code)
    package = settle(run, code)
    say(f"   after Redis came back and a retry: {code} {package.status}")
    say(f"   answers while it was down: {dict(statuses)}")


def store_full(run: Run, officer: requests.Session) -> None:
    if not run.tmpfs:
        run.notes.append("store full: skipped (this process cannot mount a tmpfs)")
        say("4. store full: skipped (cannot mount a tmpfs here)")
        return
    say("4. store full")
    data = run.settings.data_dir
    stats = os.statvfs(data)
    filler = data / "filler"
    with filler.open("wb") as out:
        out.truncate(0)
        left = stats.f_bavail * stats.f_frsize - (256 << 10)
        block = b"\0" * (1 << 20)
        while left > 0:
            left -= out.write(block[: min(len(block), left)])
    http = run.sign_in(run.requesters[0])
    detail = f"{run.base}/requests/{run.draft}"
    answer = http.post(
        f"{detail}/attachments",
        data={"csrf_token": csrf(http, detail)},
        files={"file": ("too-much.txt", b"A full disk.\n" * 200_000, "text/plain")},
        allow_redirects=False,
        timeout=60,
    )
    run.sent["too-much.txt"] = b""  # must not be recorded
    said = "storage is full; nothing was saved" in answer.text
    run.answers[f"upload on a full disk {answer.status_code}"] += 1
    code = queue_package(run, officer, run.spare_rfas[2])
    package = settle(run, code)
    full_reason = package.failure_reason == ASSEMBLY_REASON
    with run.state.sessions() as db:
        told = [
            n.subject
            for n in notifications.inbox(db, db.get_one(User, run.admin.user_id))
            if n.subject == notifications.STORAGE_FULL
        ]
    say(
        f"   upload answered {answer.status_code} (storage-full words: {said}); {code} "
        f"{package.status} (storage-full reason: {full_reason}); admin told {len(told)} time(s)"
    )
    if answer.status_code != 507 or not said or not full_reason or len(told) != 1:
        run.lost.append("the full disk was not reported as such")
    filler.unlink()
    retry(run, officer, code)
    package = settle(run, code)
    say(f"   space freed, retried: {code} {package.status}")


# --- the reckoning ------------------------------------------------------------------------


def check_uploads(run: Run) -> tuple[int, int]:
    """(recorded uploads verified, unrecorded uploads); missing or wrong bytes are lost."""
    with run.state.sessions() as db:
        rows = {a.filename: a.id for a in db.scalars(select(Attachment))}
    http = run.sign_in(run.requesters[0])
    verified = 0
    for name, attachment_id in rows.items():
        got = http.get(f"{run.base}/requests/{run.draft}/attachments/{attachment_id}", timeout=60)
        if got.status_code != 200 or got.content != run.sent.get(name):
            run.lost.append(f"upload {name}: {got.status_code}, bytes differ")
        else:
            verified += 1
    unrecorded = [name for name in run.sent if name not in rows]
    for name in unrecorded:
        data = run.sent[name]
        if data and run.state.blobs.exists(hashlib.sha256(data).hexdigest()):
            run.notes.append(f"upload {name} not recorded but its blob is stored (swept later)")
    return verified, len(unrecorded)


def check_packages(run: Run) -> list[str]:
    """One line per package: how it ended, and its assembly events from the audit log."""
    lines = []
    with run.state.sessions() as db:
        events = list(
            db.execute(
                select(audit.AuditEvent.target, audit.AuditEvent.action)
                .where(audit.AuditEvent.action.like("package.%"))
                .order_by(audit.AuditEvent.seq)
            )
        )
    for package in run.packages():
        mine = Counter(
            action.removeprefix("package.")
            for target, action in events
            if target == f"package:{package.code}" and action != "package.create"
        )
        trail = ", ".join(f"{action} x{count}" for action, count in mine.items())
        if package.status == "assembled":
            sound = package.file_sha256 is not None and run.state.blobs.exists(package.file_sha256)
            if mine["assembled"] != 1 or not sound:
                run.lost.append(f"{package.code}: assembled {mine['assembled']} times")
            lines.append(f"{package.code} assembled once ({trail})")
        elif package.status in ("failed", "blocked") and package.failure_reason:
            lines.append(f"{package.code} {package.status}: {package.failure_reason[:70]}…")
        else:
            run.lost.append(f"{package.code} ended {package.status} without a reason")
            lines.append(f"{package.code} {package.status}")
    return lines


def leftovers(run: Run) -> dict[str, int]:
    data = run.settings.data_dir
    with run.state.sessions() as db:
        from portal.integrity.janitor import referenced_blobs

        referenced = referenced_blobs(db)
    return {
        "staging directories": len(list((data / "staging").glob("*"))),
        "blob-store temporaries": len(list((data / "blobs" / "tmp").glob("*"))),
        "unreferenced blobs": len(set(run.state.blobs.keys()) - referenced),
        "keyrings /tmp/portal-gpg-*": len(_keyrings(run)),
        "processes of this run": len(marked(run.marker)),
    }


def age(paths: list[Path], by: timedelta) -> None:
    for path in paths:
        stamp = path.stat().st_mtime - by.total_seconds()
        os.utime(path, (stamp, stamp))


def reckon(run: Run, began: float, load: tuple[float, float, float]) -> bool:
    say("stopping gunicorn and the worker; checking")
    verified, unrecorded = check_uploads(run)
    packages = check_packages(run)
    assert run.web is not None and run.worker is not None
    stop(run.web)
    stop(run.worker, signal.SIGINT)
    run.redis.stop()
    time.sleep(2)
    orphans = [f"{pid} {command_of(pid)}" for pid in marked(run.marker)]
    before = leftovers(run)
    data = run.settings.data_dir
    age([*(data / "blobs" / "tmp").glob("*"), *run.state.blobs.root.glob("??/??/*")],
        timedelta(hours=25))  # fmt: skip
    swept = run.portal("sweep")
    after = leftovers(run)
    scrub = run.portal("scrub", "--restart")
    # A 500 is never expected; nor is a dropped connection, but for the uploads in flight to
    # a web worker killed with SIGKILL. 503 (queue down) and 507 (disk full) are the answers.
    unexpected = [
        k
        for k in run.answers
        if re.search(r" (5\d\d|[A-Z]\w+Error)$", k)
        and not re.search(r" (503|507)$", k)
        and k != "upload ConnectionError"
    ]
    left = {k: v for k, v in after.items() if v}
    print()
    print("=" * 78)
    print(f"fault injection, {run.env['BACKEND']} + Redis {_version()}, gunicorn 2 workers, "
          f"{time.strftime('%Y-%m-%d')}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"at start, {time.monotonic() - began:.0f} s")  # fmt: skip
    print("-" * 78)
    print(f"answers: {', '.join(f'{k} x{v}' for k, v in sorted(run.answers.items()))}")
    print(f"uploads: {verified} recorded, each read back over HTTP and byte-identical; "
          f"{unrecorded} not recorded (killed in flight or refused)")  # fmt: skip
    for line in packages:
        print(f"package {line}")
    print(f"lost: {'; '.join(run.lost) if run.lost else 'nothing'}"
          f"{'; unexpected answers: ' + ', '.join(unexpected) if unexpected else ''}")  # fmt: skip
    print("left behind before the sweep: "
          + ", ".join(f"{k} {v}" for k, v in before.items()))  # fmt: skip
    print(f"portal sweep (a day later): {swept.stdout.strip()}")
    remaining = ", ".join(f"{k} {v}" for k, v in left.items()) or "nothing"
    print(f"left behind after the sweep: {remaining}")
    if orphans:
        print("processes still running: " + "; ".join(orphans))
    print(f"portal scrub: {scrub.stdout.strip()} (exit {scrub.returncode})")
    for note in run.notes:
        print(f"note: {note}")
    print("=" * 78)
    return not (run.lost or unexpected or left or scrub.returncode)


def _version() -> str:
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    found = re.search(r"v=(\S+)", out)
    return found.group(1) if found else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pg",
        default=os.environ.get("PORTAL_TEST_DATABASE_URL"),
        help="PostgreSQL URL (default: $PORTAL_TEST_DATABASE_URL; else SQLite)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's directory")
    args = parser.parse_args()  # fmt: skip
    load = os.getloadavg()
    began = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="faults-"))
    os.chmod(root, 0o700)
    redis = Redis(free_port(), root / "redis")
    redis.directory.mkdir()
    try:
        with database(args.pg, root) as (url, backend), data_disk(root / "data") as tmpfs:
            env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
            env.update({
                "PORTAL_INSTANCE_DIR": str(root / "instance"),
                "PORTAL_DATA_DIR": str(root / "data"),
                "PORTAL_DATABASE_URL": url,
                "PORTAL_REDIS_URL": redis.url,
                "PORTAL_QUEUE_NAME": f"faults-{secrets.token_hex(4)}",
                "PORTAL_DEMO": "1",  # the example keys of keys_example/
                "PORTAL_HTTPS": "0",
                "PORTAL_LOGIN_RATE_LIMIT": "100000 per minute",
                "PORTAL_WORKER_HEARTBEAT": "2",
                "BACKEND": backend,
            })  # fmt: skip
            redis.start()
            say(f"{backend}, own Redis on port {redis.port}, data on "
                f"{'a 512 MiB tmpfs' if tmpfs else 'the disk'}, in {root}")  # fmt: skip
            settings = Settings.from_env(env)
            init = subprocess.run(
                [str(Path(sys.executable).with_name("portal")), "init"], env=env,
                capture_output=True, text=True,
            )  # fmt: skip
            if init.returncode:
                raise SystemExit(f"portal init failed: {init.stderr}")
            state = build_state(settings)
            world, requesters, admin, draft, rfas = seed(state)
            run = Run(root, env, settings, state, redis, world, requesters, admin, draft,
                      rfas[1:], tmpfs)  # fmt: skip
            run.start_web()
            officer = run.sign_in(world.officer)
            try:
                worker_killed(run, officer)
                uploads_under_kills(run)
                redis_outage(run, officer)
                store_full(run, officer)
                ok = reckon(run, began, load)
            finally:
                for process in (run.web, run.worker):
                    if process is not None and process.poll() is None:
                        stop(process)
                state.engine.dispose()
    finally:
        redis.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
