"""Package assembly throughput against a raw ``tar c | gpg --sign --encrypt`` of the same files,
measured in the same run, with the peak RSS of each.

For each size, the payload is a mix of files (one large "video", mid-size files and a tail of
small ones, incompressible bytes) shared as-is (no redaction). The portal side runs in a child
process (so its peak RSS is its own): it registers the files as items of a fresh SQLite portal
with the example keys, makes a real decision and package, and times
:func:`portal.packaging.assemble.assemble_package` alone (leak check, bag, tar, sign+encrypt,
detached signature, blob store). The baseline is ``tar c`` piped into ``gpg --sign --encrypt
--compress-algo none`` to the same key, signed by the same key.

    .venv/bin/python bench/package.py [--mb 100 1000] [--runs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
KEYS = REPO / "keys_example"
FINGERPRINTS: dict[str, str] = json.loads((KEYS / "fingerprints.json").read_text("utf-8"))
AUTHORITY = "NWU-NL"
MIB = 1024 * 1024


# --------------------------------------------------------------------------- payload


def make_payload(directory: Path, size_mb: int) -> list[Path]:
    """Mixed files adding up to ``size_mb`` MiB: half in one file, a quarter in four, the rest
    in files of 1 MiB and a few small ones."""
    directory.mkdir(parents=True)
    sizes = [size_mb * MIB // 2] + [size_mb * MIB // 16] * 4
    rest = size_mb * MIB - sum(sizes)
    while rest > MIB:
        sizes.append(MIB)
        rest -= MIB
    sizes += [rest // 4] * 4
    block = os.urandom(MIB)
    paths = []
    for index, size in enumerate(size for size in sizes if size > 0):
        path = directory / f"file-{index:04d}.bin"
        with path.open("wb") as out:
            remaining = size
            while remaining:
                chunk = block[: min(MIB, remaining)]
                out.write(index.to_bytes(4, "big") + chunk[4:] if len(chunk) > 4 else chunk)
                remaining -= len(chunk)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- baseline


class DescendantRss:
    """Samples the resident memory of this process's gpg and tar descendants every 50 ms, from
    /proc. (``RUSAGE_CHILDREN`` would report the parent's size: a forked child counts its
    parent's pages until it execs.)"""

    def __init__(self) -> None:
        self.peak_kib = 0
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

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            pending, total = self._children(os.getpid()), 0
            while pending:
                pid = pending.pop()
                pending += self._children(pid)
                try:
                    if Path(f"/proc/{pid}/comm").read_text().strip() not in {"gpg", "tar"}:
                        continue  # e.g. a fork that has not exec'd yet: it shows our pages
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmRSS:"):
                        total = max(total, int(line.split()[1]))
            self.peak_kib = max(self.peak_kib, total)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_kib / 1024


def gpg_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp"))
    home.chmod(0o700)
    for name in ("mechanism-signing.sec.asc", f"{AUTHORITY}.pub.asc"):
        subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--import", str(KEYS / name)],
            check=True,
            capture_output=True,
        )
    return home


def baseline(payload: Path, out: Path) -> dict[str, float]:
    """``tar c payload | gpg --sign --encrypt``; seconds, and the peak RSS (MiB) of tar or gpg."""
    home = gpg_home()
    try:
        start = time.perf_counter()
        tar = subprocess.Popen(
            ["tar", "c", "-C", str(payload.parent), payload.name], stdout=subprocess.PIPE
        )
        gpg = subprocess.Popen(
            ["gpg", "--homedir", str(home), "--batch", "--yes", "--pinentry-mode", "loopback",
             "--passphrase-file", str(KEYS / "mechanism-signing.passphrase"),
             "--local-user", FINGERPRINTS["mechanism-signing"], "--trust-model", "always",
             "--recipient", FINGERPRINTS[AUTHORITY], "--compress-algo", "none",
             "--sign", "--encrypt", "--output", str(out)],
            stdin=tar.stdout,
        )  # fmt: skip
        assert tar.stdout is not None
        tar.stdout.close()
        sampler = DescendantRss()
        _, tar_status, _ = os.wait4(tar.pid, 0)
        _, gpg_status, _ = os.wait4(gpg.pid, 0)
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
        "rss_gpg_mib": rss,
    }


# --------------------------------------------------------------------------- portal (child)


def portal_child(payload: Path, instance: Path) -> dict[str, Any]:
    """Register the payload as items, make a decision and a package, time the assembly."""
    from sqlalchemy import select

    from portal import audit
    from portal.config import REPO_ROOT, Settings
    from portal.db import utcnow
    from portal.decisions import run_check
    from portal.models import (
        Assessment,
        Authority,
        Base,
        Consent,
        Item,
        Package,
        Provider,
        RecipientKey,
        Rfa,
        RfaItem,
        User,
    )
    from portal.packages import create_package
    from portal.packaging.assemble import assemble_package
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
        for index, path in enumerate(sorted(payload.iterdir()), start=1):
            with path.open("rb") as handle:
                info = state.blobs.put_stream(handle)
            item = Item(
                code=f"ITM-{index:06d}", provider_id=provider.id, kind="video",
                title=f"Bench file {index}", media_type="video/mp4",
                original_filename=path.name.replace(".bin", ".mp4"), size_bytes=info.size,
                sha256=info.sha256, sensitivity="low", tags=[], cleared_as_is=True,
            )  # fmt: skip
            db.add(item)
            db.flush()
            db.add(RfaItem(rfa_id=rfa.id, item_id=item.id))
        db.flush()
        run_check(db, rfa, state.policy, requested_by=officer, actor=audit.actor_label(officer))
        package = create_package(db, rfa, state.policy.redactable_media_types, by=officer)
        db.commit()
        package_id = package.id

    sampler = DescendantRss()
    stages: dict[str, float] = {}
    done_event = threading.Event()

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
                last, since = stage, now_
            if finished:
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start = time.perf_counter()
    assemble_package(state, package_id)
    seconds = time.perf_counter() - start
    done_event.set()
    watcher.join()
    rss_gpg = sampler.stop()
    with state.sessions() as db:
        done = db.scalars(select(Package).where(Package.id == package_id)).one()
        status, size = done.status, done.file_size
    return {
        "seconds": seconds,
        "status": status,
        "file_size": size,
        "rss_python_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_gpg_mib": rss_gpg,
        "stages": {name: round(value, 2) for name, value in stages.items() if name},
    }


# --------------------------------------------------------------------------- main


def run_size(size_mb: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-pkg-") as tmp:
        root = Path(tmp)
        payload = root / "payload"
        files = make_payload(payload, size_mb)
        raw = baseline(payload, root / "raw.tar.gpg")
        (root / "raw.tar.gpg").unlink()
        child = subprocess.run(
            [sys.executable, __file__, "--child", str(payload), str(root / "instance")],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            raise SystemExit(f"portal assembly failed:\n{child.stderr[-3000:]}")
        portal = json.loads(child.stdout.strip().splitlines()[-1])
        return {"mb": size_mb, "files": len(files), "raw": raw, "portal": portal}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, nargs="+", default=[100], help="payload sizes in MiB")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--child", nargs=2, metavar=("PAYLOAD", "INSTANCE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(portal_child(Path(args.child[0]), Path(args.child[1]))))
        return
    print(
        f"{'MiB':>6} {'files':>5} {'raw s':>6} {'+fsync':>6} {'raw MB/s':>8} {'portal s':>8} "
        f"{'MB/s':>6} {'ratio':>5} {'ratio+fsync':>11} {'RSS portal':>10} {'RSS gpg':>7} "
        f"{'raw RSS':>7}"
    )
    for size in args.mb:
        for _ in range(args.runs):
            result = run_size(size)
            raw, portal = result["raw"], result["portal"]
            assert portal["status"] == "assembled", portal
            print(
                f"{size:>6} {result['files']:>5} {raw['seconds']:>6.2f} "
                f"{raw['synced_seconds']:>6.2f} {size / raw['seconds']:>8.1f} "
                f"{portal['seconds']:>8.2f} {size / portal['seconds']:>6.1f} "
                f"{portal['seconds'] / raw['seconds']:>5.2f} "
                f"{portal['seconds'] / raw['synced_seconds']:>11.2f} "
                f"{portal['rss_python_mib']:>8.0f}MB {portal['rss_gpg_mib']:>5.0f}MB "
                f"{raw['rss_gpg_mib']:>5.0f}MB",
                flush=True,
            )
            stages = ", ".join(f"{name} {value:.1f}s" for name, value in portal["stages"].items())
            print(f"{'':>13}portal stages: {stages}", flush=True)


if __name__ == "__main__":
    main()
