"""Package assembly against a raw ``tar c | gpg --sign --encrypt`` of the same files, measured
in the same run: the ratio, the peak RSS of each side, the time per stage, and PDF redaction
throughput.

For each size the payload is a realistic mix shared as-is (no redaction, so no protected terms
and no leak check to do): two large "videos" (about 55 %), real multi-page PDFs with scanned
pages (about 15 %), real JPEG photos of 2-6 MB (about 15 %), and binaries of 1-5 MB, plus
a tail of small text files. The portal side runs in a child process: it registers the files
as items of a fresh SQLite portal with the example keys, makes a real decision and package,
and times :func:`portal.packages.assembly.assemble.assemble_package` alone (claim, facts, keyring,
bag, tar, sign + encrypt, detached signatures, letter, custody log, manifest, blob store,
database). The baseline is ``tar c`` piped into ``gpg --sign --encrypt --compress-algo none``
to the same key, signed by the same key. Peak memory is sampled every 50 ms from /proc (PSS,
see :class:`TreeRss`): for the portal, the sum over its process tree (Python, its gpg
processes and the document worker); for the baseline, tar and gpg. The portal's own Python
process is also given apart ("python"): its exact peak RSS (VmHWM) during the assembly, the
mark reset after the setup. The assembling process imports the document renderers before the
package, as ``portal worker`` does once when it starts (``preload_renderers``); the document
worker forked for the package starts with them. ``--cold`` leaves them out, as in a process
that did not preload them (``portal package assemble``): the worker then imports WeasyPrint
and ReportLab's fonts itself, within the assembly's cost.

A second baseline, the format floor, is what the package format itself costs when stock tools
do it, in the same run: the same ``tar c | gpg --sign --encrypt`` with the portal's SHA-256
signature digest (the raw side takes SHA-512 from the keys' preferences), plus one sha256 pass
over every payload file (the bag's manifest, and the check that stored bytes still match their
address) and one over the ciphertext (what the detached signature signs). The portal's CPU
over this floor is what its own work adds: the letter and custody log, the leak check, the
database and the plumbing.

PDF redaction throughput reuses ``bench/redaction.py`` (its source PDF and raw rasteriser).

A scanned statement (``--scan-pages N``; the README quotes 500), reported apart from the
payload figures: a package of ONE item, an image-only PDF of N pages at 300 dpi made by
``bench/redaction.py``'s ``make_scan`` (the name on every page), with a confirmed term mark
for the name, so the real policy shares it redacted (``mechanism-review``: marks that apply
"always" are redacted for every authority). The portal is built in a child process the same
way as for the payload; :func:`assemble_package` renders every page, reads it with Tesseract,
burns the hits, then the leak check reads every page of the rendition again with OCR (its
pixels layer). Printed: wall and CPU seconds of the assembly (CPU of the process tree: the
Tesseract, gpg and document worker processes it waited for, and the parser limits'
forkserver with the children it reaped), seconds per page, the tree's peak PSS, the time in
the redaction stage (``rendering``) and in the leak check (the package's stage column,
polled), the package's status and the mark's hit count (it must be N).

    .venv/bin/python bench/assembly.py                   # 100 MiB and 1000 MiB, 3 runs each
    .venv/bin/python bench/assembly.py --mb 100 --runs 3 --pages 50
    .venv/bin/python bench/assembly.py --mb 0 --pages 0 --scan-pages 500  # scanned pages only
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from portal.registry.models import Provider
    from portal.rfa.models import Rfa
    from portal.state import PortalState

REPO = Path(__file__).resolve().parent.parent
KEYS = REPO / "keys_example"
FINGERPRINTS: dict[str, str] = json.loads((KEYS / "fingerprints.json").read_text("utf-8"))
AUTHORITY = "NWU-NL"
MIB = 1024 * 1024
COLD = "BENCH_ASSEMBLY_COLD"  # set (by --cold): the assembler does not preload the renderers


# --------------------------------------------------------------------------- payload


MEDIA_TYPES = {
    ".mp4": ("video", "video/mp4"),
    ".pdf": ("document", "application/pdf"),
    ".jpg": ("photo", "image/jpeg"),
    ".bin": ("other", "application/octet-stream"),
    ".txt": ("document", "text/plain"),
}


def _photo(path: Path, rng: random.Random, target: int) -> None:
    """A real JPEG of about ``target`` bytes: noisy pixels, so it does not compress away."""
    from PIL import Image

    side = max(64, int((target / 0.75) ** 0.5))  # about 0.75 bytes per noisy pixel
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    image.save(path, "JPEG", quality=85)


def _scanned_pdf(path: Path, scans: list[Path], pages: int) -> None:
    """A real PDF of ``pages`` scanned pages: a JPEG per page (each of ``scans`` is embedded
    once, however often it is shown) and a line of text."""
    from reportlab.pdfgen.canvas import Canvas

    canvas = Canvas(str(path), pagesize=(595, 842), pageCompression=1)
    for number in range(pages):
        scan = scans[number % len(scans)]
        canvas.drawImage(str(scan), 40, 120, width=515, height=680)
        canvas.drawString(60, 80, f"Scanned statement, page {number + 1}")
        canvas.showPage()
    canvas.save()


def _binary(path: Path, size: int, block: bytes) -> None:
    with path.open("wb") as out:
        remaining = size
        while remaining:
            chunk = block[: min(len(block), remaining)]
            out.write(chunk)
            remaining -= len(chunk)


def make_payload(directory: Path, size_mb: int) -> list[Path]:
    """A realistic mix adding up to about ``size_mb`` MiB (see the module notes)."""
    directory.mkdir(parents=True)
    rng = random.Random(size_mb)
    total = size_mb * MIB
    paths: list[Path] = []

    def name(suffix: str) -> Path:
        path = directory / f"file-{len(paths):04d}{suffix}"
        paths.append(path)
        return path

    block = os.urandom(MIB)
    for _ in range(2):
        _binary(name(".mp4"), int(total * 0.275), block)
        block = os.urandom(MIB)  # different files must differ (content-addressed store)
    budget = int(total * 0.15)
    while budget > 0:  # photos of 2-6 MB
        path = name(".jpg")
        _photo(path, rng, rng.randint(2 * MIB, 6 * MIB))
        budget -= path.stat().st_size
    budget = int(total * 0.15)
    scans = [directory.parent / f"scan-{index}.jpg" for index in range(6)]
    for scan in scans:
        _photo(scan, rng, 600 * 1024)
    while budget > 0:  # PDFs of 2-12 scanned pages
        path = name(".pdf")
        _scanned_pdf(path, scans, rng.randint(2, 12))
        budget -= path.stat().st_size
    for scan in scans:
        scan.unlink()
    budget = total - sum(path.stat().st_size for path in paths)
    while budget > 64 * 1024:  # binaries of 1-5 MB, then small text files
        size = min(budget, rng.randint(1 * MIB, 5 * MIB)) if budget > MIB else 8 * 1024
        path = name(".bin" if size >= MIB else ".txt")
        if size >= MIB:
            _binary(path, size, rng.randbytes(MIB))
        else:
            path.write_text(f"Note {len(paths)}\n" + "x" * (size - 16), encoding="ascii")
        budget -= path.stat().st_size
    return paths


# --------------------------------------------------------------------------- baseline


class TreeRss:
    """Samples, every 50 ms from /proc, the summed memory of this process (when
    ``include_self``) and its descendants: gpg, tar, Tesseract and Python (the document
    worker, the parser limits' forkserver). Proportional set size (PSS), so the pages a forked
    worker shares with its parent are counted once; a fork that has not exec'd yet would otherwise
    count its parent's pages again (``RUSAGE_CHILDREN`` has the same flaw)."""

    def __init__(self, *, include_self: bool) -> None:
        self.include_self = include_self
        self.peak_kib = 0
        self.peak_parts: dict[str, int] = {}  # KiB per process at the peak
        self.cpu_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _children(pid: int) -> list[int]:
        found = []
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                found += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
        return found

    @staticmethod
    def _pss_kib(pid: int) -> int:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            return 0
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
        return 0

    def _sample(self) -> dict[str, int]:
        """KiB of PSS per process: "self", then "<comm> <pid>" for each descendant."""
        me = os.getpid()
        parts = {"self": self._pss_kib(me)} if self.include_self else {}
        pending = self._children(me)
        while pending:
            pid = pending.pop()
            pending += self._children(pid)
            try:
                name = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            if name in {"gpg", "tar", "tesseract"} or name.startswith("python"):
                parts[f"{name} {pid}"] = self._pss_kib(pid)
        return parts

    def _run(self) -> None:
        while True:
            parts = self._sample()
            if sum(parts.values()) > self.peak_kib:
                self.peak_kib, self.peak_parts = sum(parts.values()), parts
            self.cpu_seconds = time.thread_time()  # the sampling's own cost (see _assemble_timed)
            if self._stop.wait(0.05):
                return

    def stop(self) -> float:
        """Stop sampling; the peak in MiB."""
        self._stop.set()
        self._thread.join()
        return self.peak_kib / 1024


def gpg_home(parent: Path | None = None) -> Path:
    from portal.registry.openpgp import KEYRING_DIR  # /tmp: short, for gpg-agent's socket

    home = Path(tempfile.mkdtemp(prefix="pg-", dir=parent or KEYRING_DIR))
    home.chmod(0o700)
    for name in ("mechanism-signing.sec.asc", f"{AUTHORITY}.pub.asc"):
        subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--import", str(KEYS / name)],
            check=True,
            capture_output=True,
        )
    return home


def baseline(
    payload: Path, out: Path, home_parent: Path | None = None, *, digest: str | None = None
) -> dict[str, float]:
    """``tar c payload | gpg --sign --encrypt``; wall seconds (and with the fsync), CPU seconds
    of tar and gpg (``wait4``), and the peak PSS (MiB) of the two. The keyring is made under
    ``home_parent`` (default /tmp; a short path: gpg-agent's socket lives there). ``digest``:
    gpg's ``--digest-algo`` (default: the keys' preference, SHA-512 here)."""
    home = gpg_home(home_parent)
    digest_args = ["--digest-algo", digest] if digest else []
    os.sync()  # start on a quiet disk: the payload just written is not this side's cost
    try:
        start = time.perf_counter()
        tar = subprocess.Popen(
            ["tar", "c", "-C", str(payload.parent), payload.name], stdout=subprocess.PIPE
        )
        gpg = subprocess.Popen(
            ["gpg", "--homedir", str(home), "--batch", "--yes", "--pinentry-mode", "loopback",
             "--passphrase-file", str(KEYS / "mechanism-signing.passphrase"),
             "--local-user", FINGERPRINTS["mechanism-signing"], "--trust-model", "always",
             "--recipient", FINGERPRINTS[AUTHORITY], "--compress-algo", "none", *digest_args,
             "--sign", "--encrypt", "--output", str(out)],
            stdin=tar.stdout,
        )  # fmt: skip
        assert tar.stdout is not None
        tar.stdout.close()
        sampler = TreeRss(include_self=False)
        _, tar_status, tar_usage = os.wait4(tar.pid, 0)
        _, gpg_status, gpg_usage = os.wait4(gpg.pid, 0)
        cpu = sum(u.ru_utime + u.ru_stime for u in (tar_usage, gpg_usage))
        rss = sampler.stop()
        seconds = time.perf_counter() - start
        tar.returncode = gpg.returncode = 0  # reaped above
        if tar_status or gpg_status:
            raise SystemExit(f"baseline failed: tar {tar_status}, gpg {gpg_status}")
        fd = os.open(out, os.O_RDONLY)  # the portal fsyncs its file; so does this, timed apart
        os.fsync(fd)
        os.close(fd)
        synced = time.perf_counter() - start
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
        shutil.rmtree(home, ignore_errors=True)
    return {
        "seconds": seconds,
        "synced_seconds": synced,
        "cpu_seconds": cpu,
        "rss_mib": rss,
    }


def _sha256_cpu(paths: list[Path]) -> float:
    """CPU seconds (this process: reads and hashlib's sha256, as the portal hashes) of one
    sha256 pass over ``paths``."""
    from portal.storage import file_sha256

    start = time.process_time()
    for path in paths:
        file_sha256(path)
    return time.process_time() - start


def format_floor(payload: Path, out: Path) -> dict[str, float]:
    """The CPU the package format itself asks for, done by stock tools: ``tar c | gpg --sign
    --encrypt`` with the portal's SHA-256 signature digest, one sha256 of every payload file
    (the bag's manifest, and the check that stored bytes still match their address), and one
    of the ciphertext (what the detached signature signs). No letter, no custody log, no
    database: what any implementation of the format pays."""
    raw = baseline(payload, out, digest="SHA256")
    files = sorted(path for path in payload.rglob("*") if path.is_file())
    hashing = _sha256_cpu(files) + _sha256_cpu([out])
    return {"cpu_seconds": raw["cpu_seconds"] + hashing, "hash_seconds": hashing}


# --------------------------------------------------------------------------- portal (child)


def _new_portal(
    instance: Path, register: Callable[[Session, PortalState, Provider, Rfa], None]
) -> tuple[PortalState, int, dict[str, str]]:
    """A fresh SQLite portal with the example keys: an authority with current assessments and
    a verified key, a provider with standing consent, an officer and an approved request whose
    candidates ``register`` adds; a real decision and a queued package. The state, the
    package's id and the decision's outcome per item code."""

    from portal import audit
    from portal.accounts.models import User
    from portal.config import REPO_ROOT, Settings
    from portal.consent.models import Consent
    from portal.db import utcnow
    from portal.eligibility.decisions import load_result, run_check
    from portal.models import Base
    from portal.packages.lifecycle import create_package
    from portal.registry.models import Assessment, Authority, Provider, RecipientKey
    from portal.rfa.models import Rfa
    from portal.state import build_state

    settings = Settings(
        instance_dir=instance,
        database_url=f"sqlite:///{instance / 'bench.db'}",
        data_dir=instance / "data",
        policies_dir=REPO_ROOT / "policies",
        templates_dir=REPO_ROOT / "templates",
        secret_key_file=instance / "secret_key",
        signing_key_file=KEYS / "mechanism-signing.sec.asc",
        signing_passphrase_file=KEYS / "mechanism-signing.passphrase",
        testing=True,
    )
    instance.mkdir(parents=True)
    state = build_state(settings)
    Base.metadata.create_all(state.engine)
    now = utcnow()
    with state.sessions() as db:
        authority = Authority(
            code=AUTHORITY, name="Northland War Crimes Unit", kind="war_crimes_unit", country="NL"
        )
        provider = Provider(code="PRV-B", name="Bench NGO", kind="ngo", public_name="Bench NGO")
        officer = User(email="officer@bench.example", display_name="Bench Officer",
                       role="legal_officer")  # fmt: skip
        db.add_all([authority, provider, officer])
        db.flush()
        for criterion in ("fair_trial", "death_penalty", "witness_protection"):
            db.add(
                Assessment(
                    code=f"A-{criterion}", authority_id=authority.id, criterion=criterion,
                    finding="satisfied", basis="Bench.", assessed_at=now - timedelta(days=1),
                    valid_until=now + timedelta(days=30), assessed_by="Bench Officer",
                )
            )  # fmt: skip
        db.add(
            RecipientKey(
                authority_id=authority.id, fingerprint=FINGERPRINTS[AUTHORITY],
                armored=(KEYS / f"{AUTHORITY}.pub.asc").read_text(), algorithm="ed25519",
                uid="bench", verified_by="Bench", verification_method="Bench",
                verified_at=now - timedelta(days=1),
            )
        )  # fmt: skip
        db.add(
            Consent(code="CNS-BENCH-1", provider_id=provider.id, item_id=None,
                    authority_id=authority.id, event="grant",
                    recorded_at=now - timedelta(days=1))
        )  # fmt: skip
        rfa = Rfa(
            code="RFA-2026-0001", authority_id=authority.id, status="approved",
            their_reference="BENCH-1", proceedings_type="investigation",
            offences=["War crime of torture"], period_from=date(2023, 6, 1),
            period_to=date(2023, 12, 31), submitted_at=now - timedelta(days=1),
        )  # fmt: skip
        db.add(rfa)
        db.flush()
        register(db, state, provider, rfa)
        db.flush()
        decision = run_check(
            db, rfa, state.policy, requested_by=officer, actor=audit.actor_label(officer)
        )
        outcomes = {item.item: item.outcome for item in load_result(decision).items}
        package = create_package(db, rfa, state.policy.redactable_media_types, by=officer)
        db.commit()
        package_id = package.id
    return state, package_id, outcomes


def _tree_cpu() -> float:
    """CPU seconds (user + system) so far of this process, the children it waited for
    (Tesseract, gpg, the document worker) and its live descendants with the children they
    reaped (the parser limits' forkserver, which reaps its workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
    tick = os.sysconf("SC_CLK_TCK")
    pending = TreeRss._children(os.getpid())
    while pending:
        pid = pending.pop()
        pending += TreeRss._children(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15]) / tick  # utime stime cutime cstime
    return total


def _own_cpu() -> tuple[float, float]:
    """CPU seconds of this process (all threads) and of the children it waited for (gpg)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, reaped.ru_utime + reaped.ru_stime


def _max_rss_mib() -> float:
    """This process's peak RSS since the mark was last reset (the kernel's high-water mark,
    VmHWM: exact, not sampled)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_max_rss() -> None:
    """Start the high-water mark again from the current RSS (Linux 4.0 and later), so the
    setup (registering the items, the decision) is not counted as assembly's."""
    Path("/proc/self/clear_refs").write_text("5")


def _assemble_timed(state: PortalState, package_id: int) -> dict[str, Any]:
    """Time :func:`assemble_package` alone: wall and CPU seconds, peak memory, the stages."""
    from sqlalchemy import select

    from portal.packages.assembly.assemble import AssemblyFailed, assemble_package
    from portal.packages.models import Package

    if not os.environ.get(COLD):
        from portal.packages.assembly.document_worker import preload_renderers

        preload_renderers()  # as `portal worker` does when it starts
    os.sync()  # start on a quiet disk: the blob store import above is not assembly's cost
    before = _max_rss_mib()
    _reset_max_rss()
    sampler = TreeRss(include_self=True)
    stages: dict[str, float] = {}
    stage_rss: dict[str, float] = {}  # this process's high-water mark when the stage ended
    done_event = threading.Event()
    watcher_cpu = [0.0]  # the stage watcher's own CPU seconds (not the assembly's)

    def watch() -> None:
        """Time the stages as the package page sees them (the stage column, polled)."""
        last, since = "", time.perf_counter()
        while True:
            finished = done_event.wait(0.05)
            with state.sessions() as db:
                stage = db.scalar(select(Package.stage).where(Package.id == package_id)) or ""
            stage = stage.split(" (", 1)[0].split(" ITM-", 1)[0]  # "rendering ITM-1 (1/9)"
            if stage != last or finished:
                now_ = time.perf_counter()
                stages[last] = stages.get(last, 0.0) + now_ - since
                stage_rss[last] = _max_rss_mib()
                last, since = stage, now_
            watcher_cpu[0] = time.thread_time()
            if finished:
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    cpu = _tree_cpu()
    own = _own_cpu()
    sampled_before = sampler.cpu_seconds + watcher_cpu[0]
    if os.environ.get("BENCH_PERF_MARK"):  # to profile the assembly alone: perf record -p PID
        Path(os.environ["BENCH_PERF_MARK"]).write_text(str(os.getpid()))
        time.sleep(1)
    start = time.perf_counter()
    failure = None
    try:
        assemble_package(state, package_id)
    except AssemblyFailed as exc:
        failure = str(exc)
    seconds = time.perf_counter() - start
    cpu = _tree_cpu() - cpu
    (own_after, reaped_after), (own_before, reaped_before) = _own_cpu(), own
    own = (own_after - own_before, reaped_after - reaped_before)
    done_event.set()
    watcher.join()
    rss_tree = sampler.stop()
    # The sampler and the watcher are threads of this process: their CPU (reading
    # /proc/*/smaps_rollup every 50 ms costs ~0.4 s per 1 GB run) is the bench's, not the
    # assembly's; the raw side's sampler runs in the parent and is not counted either.
    instrumentation = sampler.cpu_seconds + watcher_cpu[0] - sampled_before
    cpu -= instrumentation
    own = (own[0] - instrumentation, own[1])
    with state.sessions() as db:
        done = db.scalars(select(Package).where(Package.id == package_id)).one()
        status, size, leak = done.status, done.file_size, done.leak_check
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "cpu_python": own[0],
        "cpu_instrumentation": instrumentation,
        "cpu_waited": own[1],
        "status": status,
        "failure": failure,
        "file_size": size,
        "leak_check": leak,
        "rss_python_mib": _max_rss_mib(),
        "rss_python_before_mib": before,
        "rss_tree_mib": rss_tree,
        "rss_tree_parts_mib": {name: round(kib / 1024) for name, kib in sampler.peak_parts.items()},
        "stages": {name: round(value, 2) for name, value in stages.items() if name},
        "stage_rss_mib": {name: round(value) for name, value in stage_rss.items() if name},
    }


def portal_child(payload: Path, instance: Path) -> dict[str, Any]:
    """Register the payload as items, make a decision and a package, time the assembly."""
    from portal.registry.models import Item
    from portal.rfa.models import RfaItem

    def register(db: Session, state: PortalState, provider: Provider, rfa: Rfa) -> None:
        for index, path in enumerate(sorted(payload.iterdir()), start=1):
            with path.open("rb") as handle:
                info = state.blobs.put_stream(handle)
            kind, media_type = MEDIA_TYPES[path.suffix]
            item = Item(
                code=f"ITM-{index:06d}", provider_id=provider.id, kind=kind,
                title=f"Bench file {index}", media_type=media_type,
                original_filename=path.name, size_bytes=info.size,
                sha256=info.sha256, sensitivity="low", tags=[], cleared_as_is=True,
            )  # fmt: skip
            db.add(item)
            db.flush()
            db.add(RfaItem(rfa_id=rfa.id, item_id=item.id))

    state, package_id, _ = _new_portal(instance, register)
    return _assemble_timed(state, package_id)


SCAN_ITEM, SCAN_MARK = "ITM-000001", "M-1"


def scan_child(scan: Path, instance: Path) -> dict[str, Any]:
    """Register the scanned statement as one item with a confirmed term mark for the name
    (its term sealed with the portal's sealer, as the portal seals it), make a decision and a
    package, time the assembly; the decision's outcome, the package item's rendition and the
    mark's hit count with the timings."""
    from sqlalchemy import select

    from portal.packages.assembly.item_report import ItemReport
    from portal.packages.models import PackageItem
    from portal.registry.mark_terms import seal_term
    from portal.registry.models import Item, RedactionMark
    from portal.rfa.models import RfaItem

    name = _bench_redaction().NAME

    def register(db: Session, state: PortalState, provider: Provider, rfa: Rfa) -> None:
        with scan.open("rb") as handle:
            info = state.blobs.put_stream(handle)
        item = Item(
            code=SCAN_ITEM, provider_id=provider.id, kind="witness_statement",
            title="Scanned statement", media_type="application/pdf",
            original_filename="statement.pdf", size_bytes=info.size, sha256=info.sha256,
            sensitivity="high", tags=[],
        )  # fmt: skip
        db.add(item)
        db.flush()
        db.add(
            RedactionMark(
                code=SCAN_MARK, item_id=item.id, kind="term",
                term_sealed=seal_term(state.sealer, item.code, SCAN_MARK, name),
                reason="Identifies a witness at risk", applies="always", review="confirmed",
            )
        )  # fmt: skip
        db.add(RfaItem(rfa_id=rfa.id, item_id=item.id))

    state, package_id, outcomes = _new_portal(instance, register)
    with state.sessions() as db:
        rendition = db.scalar(
            select(PackageItem.rendition).where(PackageItem.package_id == package_id)
        )
    result = _assemble_timed(state, package_id)
    with state.sessions() as db:
        report = db.scalar(select(PackageItem.report).where(PackageItem.package_id == package_id))
    marks = ItemReport.from_json(report).marks
    hits = sum(mark.count for mark in marks if mark.code == SCAN_MARK)
    return {**result, "outcome": outcomes[SCAN_ITEM], "rendition": rendition, "hits": hits}


# --------------------------------------------------------------------------- main


def _bench_redaction() -> ModuleType:
    """``bench/redaction.py``, imported as ``redaction`` (its scan, source PDF, rasteriser)."""
    if str(REPO / "bench") not in sys.path:
        sys.path.insert(0, str(REPO / "bench"))
    return importlib.import_module("redaction")


def _child(*args: str) -> dict[str, Any]:
    """Run this file with ``args`` in a child process; the JSON it prints last."""
    child = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if child.returncode != 0:
        raise SystemExit(f"portal assembly failed:\n{child.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def run_size(size_mb: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-pkg-") as tmp:
        root = Path(tmp)
        payload = root / "payload"
        files = make_payload(payload, size_mb)
        mix = Counter(path.suffix for path in files)
        actual = sum(path.stat().st_size for path in files) / MIB
        raw = baseline(payload, root / "raw.tar.gpg")
        (root / "raw.tar.gpg").unlink()
        floor = format_floor(payload, root / "floor.tar.gpg")
        (root / "floor.tar.gpg").unlink()
        portal = _child("--child", str(payload), str(root / "instance"))
        return {
            "mb": actual,
            "files": len(files),
            "mix": dict(mix),
            "raw": raw,
            "floor": floor,
            "portal": portal,
        }


def run_scan(pages: int) -> dict[str, Any]:
    """The package of one scanned statement of ``pages`` pages (see the module notes)."""
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        root = Path(tmp)
        scan = root / "statement.pdf"
        _bench_redaction().make_scan(scan, pages)
        portal = _child("--scan-child", str(scan), str(root / "instance"))
        return {**portal, "pages": pages, "mb": scan.stat().st_size / MIB}


def print_scan(result: dict[str, Any]) -> None:
    pages, stages = result["pages"], result["stages"]
    leak = result["leak_check"] or {}
    print(
        f"Scanned statement, {pages} pages at {_bench_redaction().SCAN_DPI} dpi "
        f"({result['mb']:.1f} MiB), one term mark: decision {result['outcome']}, "
        f"rendition {result['rendition']}; package {result['status']}; mark {SCAN_MARK} "
        f"hits {result['hits']} (expected {pages}); leak check clean={leak.get('clean')} "
        f"({leak.get('files_checked')} files)",
        flush=True,
    )
    if result["failure"]:
        print(f"{'':>2}failure: {result['failure']}", flush=True)
    wall, cpu = result["seconds"], result["cpu_seconds"]
    print(
        f"{'':>2}assemble_package: wall {wall:.2f} s, CPU {cpu:.2f} s (process tree), "
        f"{wall / pages:.2f} s/page wall, {cpu / pages:.2f} s/page CPU; peak PSS "
        f"{result['rss_tree_mib']:.0f} MB (tree), python max RSS {result['rss_python_mib']:.0f} MB",
        flush=True,
    )
    redaction, check = stages.get("rendering", 0.0), stages.get("leak check", 0.0)
    print(
        f"{'':>2}redaction (render, OCR, burn) {redaction:.2f} s ({redaction / pages:.2f} s/page), "
        f"leak check with pixels {check:.2f} s ({check / pages:.2f} s/page), "
        f"rest {wall - redaction - check:.2f} s",
        flush=True,
    )
    print(
        f"{'':>2}portal stages: "
        + ", ".join(f"{name} {value:.2f}s" for name, value in stages.items()),
        flush=True,
    )
    marks = ", ".join(f"{name} {value}MB" for name, value in result["stage_rss_mib"].items())
    print(
        f"{'':>2}python max RSS at the end of each stage: {marks} "
        f"(setup before assembly: {result['rss_python_before_mib']:.0f}MB)",
        flush=True,
    )


def redaction_throughput(pages: int, dpi: int) -> dict[str, float]:
    """Pages per second of :func:`redact_pdf` and of raw rasterisation (bench/redaction.py's
    source PDF and rasteriser), one term and one page box per page."""
    from portal.redaction.pdf import redact_pdf
    from portal.redaction.renditions import MarkSpec

    redaction = _bench_redaction()
    with tempfile.TemporaryDirectory(prefix="bench-redaction-") as folder:
        source, dest = Path(folder) / "source.pdf", Path(folder) / "redacted.pdf"
        redaction.make_source(source, pages)
        marks = [MarkSpec("T1", "term", "witness", term=redaction.NAME)] + [
            MarkSpec(f"B{page}", "pdf_box", "face", page=page, box=(0.6, 0.1, 0.9, 0.3))
            for page in range(1, pages + 1)
        ]
        raw = redaction.raw_rasterise(source, dpi)
        start = time.perf_counter()
        redact_pdf(source, marks, dest, "REDACTED", dpi=dpi)
        redacted = time.perf_counter() - start
    return {"raw": pages / raw, "redact": pages / redacted}


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _min_median(values: list[float], unit: str = "") -> str:
    return f"{min(values):.2f}{unit} / {statistics.median(values):.2f}{unit}"


def _ratio(tops: list[dict[str, Any]], bottoms: list[dict[str, Any]], top: str, bottom: str) -> str:
    """Min / median over the runs of ``tops[i][top] / bottoms[i][bottom]``."""
    return _min_median([t[top] / b[bottom] for t, b in zip(tops, bottoms, strict=True)])


def print_summary(size: int, runs: list[dict[str, Any]]) -> None:
    """The figures of the issue's table: min / median over the runs."""
    raw = [run["raw"] for run in runs]
    floor = [run["floor"] for run in runs]
    portal = [run["portal"] for run in runs]
    cpu = "cpu_seconds"

    def spread(sides: list[dict[str, Any]], key: str, unit: str) -> str:
        return _min_median([side[key] for side in sides], unit)

    lines = [
        f"{size} MiB, {len(runs)} runs, min / median (load now {_load()}):",
        "  wall ratio (portal / raw tar|gpg)  " + _ratio(portal, raw, "seconds", "seconds"),
        "  wall ratio with the raw fsync      " + _ratio(portal, raw, "seconds", "synced_seconds"),
        "  CPU ratio (portal tree / tar+gpg)  "
        + _ratio(portal, raw, cpu, cpu)
        + f"  (portal {spread(portal, cpu, ' s')}, raw {spread(raw, cpu, ' s')})",
        "  format floor CPU / raw             "
        + _ratio(floor, raw, cpu, cpu)
        + f"  (floor {spread(floor, cpu, ' s')}, of which sha256"
        f" {spread(floor, 'hash_seconds', ' s')})",
        "  CPU ratio (portal tree / floor)    " + _ratio(portal, floor, cpu, cpu),
        "  peak PSS, whole portal tree        "
        + spread(portal, "rss_tree_mib", " MB")
        + f"  (raw {spread(raw, 'rss_mib', ' MB')})",
    ]
    for line in lines:
        print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mb", type=int, nargs="+", default=[100, 1000], help="payload MiB (0: no payload runs)"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pages", type=int, default=100, help="pages for PDF redaction")
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument(
        "--scan-pages", type=int, default=0,
        help="pages of the scanned statement packaged with OCR (0: skip; the README quotes 500)",
    )  # fmt: skip
    parser.add_argument(
        "--cold", action="store_true",
        help="the assembler has not imported the document renderers (see the module notes)",
    )  # fmt: skip
    parser.add_argument("--child", nargs=2, metavar=("PAYLOAD", "INSTANCE"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--scan-child", nargs=2, metavar=("SCAN", "INSTANCE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(portal_child(Path(args.child[0]), Path(args.child[1]))))
        return
    if args.scan_child:
        print(json.dumps(scan_child(Path(args.scan_child[0]), Path(args.scan_child[1]))))
        return
    if args.cold:
        os.environ[COLD] = "1"  # read by the children
    sizes = [size for size in args.mb if size > 0]
    for size in sizes:
        print(
            f"{'MiB':>6} {'files':>5} {'raw s':>6} {'+fsync':>6} {'raw CPU':>7} {'portal s':>8} "
            f"{'CPU s':>6} {'wall ratio':>10} {'+fsync':>6} {'CPU ratio':>9} {'portal PSS':>10} "
            f"{'(python)':>8} {'raw PSS':>7}  load"
        )
        runs = []
        for _ in range(args.runs):
            result = run_size(size)
            raw, portal = result["raw"], result["portal"]
            assert portal["status"] == "assembled", portal
            runs.append(result)
            print(
                f"{result['mb']:>6.0f} {result['files']:>5} {raw['seconds']:>6.2f} "
                f"{raw['synced_seconds']:>6.2f} {raw['cpu_seconds']:>7.2f} "
                f"{portal['seconds']:>8.2f} {portal['cpu_seconds']:>6.2f} "
                f"{portal['seconds'] / raw['seconds']:>10.2f} "
                f"{portal['seconds'] / raw['synced_seconds']:>6.2f} "
                f"{portal['cpu_seconds'] / raw['cpu_seconds']:>9.2f} "
                f"{portal['rss_tree_mib']:>8.0f}MB {portal['rss_python_mib']:>6.0f}MB "
                f"{raw['rss_mib']:>5.0f}MB  {_load()}",
                flush=True,
            )
            mix = ", ".join(f"{count} {suffix}" for suffix, count in result["mix"].items())
            print(f"{'':>13}files: {mix}", flush=True)
            stages = ", ".join(f"{name} {value:.2f}s" for name, value in portal["stages"].items())
            print(f"{'':>13}portal stages: {stages}", flush=True)
            rest = portal["cpu_seconds"] - portal["cpu_python"] - portal["cpu_waited"]
            peak = portal["rss_tree_parts_mib"].items()
            parts = ", ".join(f"{name} {mib} MB" for name, mib in peak)
            print(f"{'':>13}portal PSS at the peak: {parts}", flush=True)
            print(
                f"{'':>13}portal CPU: python {portal['cpu_python']:.2f} s, gpg and the document "
                f"worker (waited for) "
                f"{portal['cpu_waited']:.2f} s, the rest {rest:.2f} s "
                f"(bench sampling {portal['cpu_instrumentation']:.2f} s, not counted)",
                flush=True,
            )
        print_summary(size, runs)
    if args.pages:
        pdf = redaction_throughput(args.pages, args.dpi)
        print(
            f"PDF redaction, {args.pages} pages at {args.dpi} dpi: redact_pdf {pdf['redact']:.1f} "
            f"pages/s, raw rasterisation {pdf['raw']:.1f} pages/s "
            f"(ratio {pdf['raw'] / pdf['redact']:.2f})",
            flush=True,
        )
    if args.scan_pages:
        for _ in range(args.runs):
            result = run_scan(args.scan_pages)
            print_scan(result)
            ok = result["status"] == "assembled" and result["hits"] == args.scan_pages
            if not ok:
                raise SystemExit("the scanned package is not assembled, or the hits are wrong")


if __name__ == "__main__":
    main()
