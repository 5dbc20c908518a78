"""A recipient can verify a package with nothing but gpg, tar, bagit.py and openssl.

These are, word for word, the commands of the README section "Verifying a package without the
portal's tools"; the test runs them with ``subprocess`` on a genuine package, in a fresh
GNUPGHOME holding the authority's secret key, after the README's one-time import of the
mechanism's public key.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.packages import (
    AUTHORITY,
    FINGERPRINTS,
    KEYS,
    SENDER,
    SENDER_FPR,
    BuiltPackage,
    build_package,
    keyring,
    release_statement,
)
from tests.support.tsa import LocalTsa, running_tsa

CODE = "PKG-2026-0001"

# The README shows these lines verbatim (run in the directory holding the two files; the
# last one inside the extracted bag directory).
IMPORT_SENDER_KEY = "gpg --import mechanism-signing.pub.asc"
VERIFY_DETACHED = "gpg --status-fd 1 --verify PKG-2026-0001.tar.gpg.sig PKG-2026-0001.tar.gpg"
DECRYPT = (
    "gpg --status-fd 1 --max-output $(( $(wc -c < PKG-2026-0001.tar.gpg) + 1048576 )) "
    "--decrypt --output PKG-2026-0001.tar PKG-2026-0001.tar.gpg"
)
UNTAR = "tar -xf PKG-2026-0001.tar"
VALIDATE_BAG = "bagit.py --validate PKG-2026-0001"
VERIFY_MANIFEST = "gpg --status-fd 1 --verify data/manifest.json.asc data/manifest.json"
# After each --verify: fail (and print it) on a revocation or expiry status line.
REVOKED_OR_EXPIRED = "grep -E '^\\[GNUPG:\\] (REVKEYSIG|KEYREVOKED|EXPKEYSIG|KEYEXPIRED)( |$)'"
REJECT_REVOKED_DETACHED = f"! {VERIFY_DETACHED} 2>/dev/null | {REVOKED_OR_EXPIRED}"
REJECT_REVOKED_MANIFEST = f"! {VERIFY_MANIFEST} 2>/dev/null | {REVOKED_OR_EXPIRED}"
VERIFY_TIMESTAMP = (
    "openssl ts -verify -data data/manifest.json.asc -in data/manifest.json.asc.tsr "
    "-CAfile data/tsa-chain.pem"
)


@pytest.fixture(scope="module")
def tsa() -> Iterator[LocalTsa]:
    """The mechanism's time-stamping authority: OpenSSL's own (tests/support/tsa.py)."""
    with running_tsa() as local:
        yield local


VERIFY_DECISION = (
    "gpg --status-fd 1 --verify data/decision-record.json.asc data/decision-record.json"
)
VERIFY_RELEASE = "gpg --status-fd 1 --verify PKG-2026-0001.tar.gpg.release.asc"
REJECT_REVOKED_DECISION = f"! {VERIFY_DECISION} 2>/dev/null | {REVOKED_OR_EXPIRED}"
REJECT_REVOKED_RELEASE = f"! {VERIFY_RELEASE} 2>/dev/null | {REVOKED_OR_EXPIRED}"


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    """The recipient's own keyring: its secret key only (the sender's key is imported below)."""
    with keyring(secret=(AUTHORITY,), public=()) as path:
        yield path


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory, tsa: LocalTsa) -> BuiltPackage:
    """A package whose manifest signature is time-stamped, as with PORTAL_TSA_URL set."""
    return build_package(tmp_path_factory.mktemp("genuine"), time_stamp=tsa.bag_files)


def sh(command: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """Run one README line as a user would, in a POSIX shell (``$(( ))`` is used): GNUPGHOME
    set, the venv's bin on PATH."""
    env = dict(os.environ)
    env["GNUPGHOME"] = str(home)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        ["sh", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def validsig_primaries(status_output: str) -> list[str]:
    """The primary-key fingerprints (last field) of gpg's VALIDSIG status lines."""
    return [
        line.split()[-1]
        for line in status_output.splitlines()
        if line.startswith("[GNUPG:] VALIDSIG ")
    ]


def test_bagit_script_is_installed() -> None:
    assert Path(sys.executable).with_name("bagit.py").is_file()


def test_readme_commands_verify_a_genuine_package(
    genuine: BuiltPackage, home: Path, tmp_path: Path
) -> None:
    work = tmp_path / "inbox"
    work.mkdir()
    shutil.copy(genuine.path, work)
    shutil.copy(genuine.signature, work)
    shutil.copy(KEYS / f"{SENDER}.pub.asc", work)

    imported = sh(IMPORT_SENDER_KEY, work, home)
    assert imported.returncode == 0, imported.stderr

    detached = sh(VERIFY_DETACHED, work, home)
    assert detached.returncode == 0, detached.stderr
    assert validsig_primaries(detached.stdout) == [SENDER_FPR]
    assert sh(REJECT_REVOKED_DETACHED, work, home).returncode == 0

    decrypted = sh(DECRYPT, work, home)
    assert decrypted.returncode == 0, decrypted.stderr
    assert validsig_primaries(decrypted.stdout) == [SENDER_FPR]
    assert "[GNUPG:] DECRYPTION_OKAY" in decrypted.stdout

    untarred = sh(UNTAR, work, home)
    assert untarred.returncode == 0, untarred.stderr
    bag = work / CODE
    assert (bag / "data" / "manifest.json").is_file()

    validated = sh(VALIDATE_BAG, work, home)
    assert validated.returncode == 0, validated.stderr
    assert f"{CODE} is valid" in validated.stderr

    manifest = sh(VERIFY_MANIFEST, bag, home)
    assert manifest.returncode == 0, manifest.stderr
    assert validsig_primaries(manifest.stdout) == [SENDER_FPR]
    assert sh(REJECT_REVOKED_MANIFEST, bag, home).returncode == 0

    stamped = sh(VERIFY_TIMESTAMP, bag, home)
    assert stamped.returncode == 0, stamped.stdout + stamped.stderr
    assert "Verification: OK" in stamped.stdout


def test_the_same_commands_notice_tampering(
    genuine: BuiltPackage, home: Path, tmp_path: Path
) -> None:
    """The commands are not decoration: each one fails on what it is meant to catch."""
    work = tmp_path / "inbox"
    work.mkdir()
    package = Path(shutil.copy(genuine.path, work))
    shutil.copy(genuine.signature, work)
    shutil.copy(KEYS / f"{SENDER}.pub.asc", work)
    assert sh(IMPORT_SENDER_KEY, work, home).returncode == 0
    assert sh(DECRYPT, work, home).returncode == 0
    assert sh(UNTAR, work, home).returncode == 0
    bag = work / CODE

    statement = bag / "data" / "items" / "ITM-000124" / "analysis.txt"
    statement.write_bytes(statement.read_bytes().replace(b"three", b"THREE"))
    validated = sh(VALIDATE_BAG, work, home)
    assert validated.returncode != 0
    assert "analysis.txt" in validated.stderr

    token = bag / "data" / "manifest.json.asc.tsr"
    intact = token.read_bytes()
    token.write_bytes(intact[:-5] + bytes([intact[-5] ^ 1]) + intact[-4:])  # the TSA's signature
    stamped = sh(VERIFY_TIMESTAMP, bag, home)
    assert stamped.returncode != 0
    assert "Verification: FAILED" in stamped.stdout
    token.write_bytes(intact)
    signature = bag / "data" / "manifest.json.asc"  # a time-stamp over other bytes
    signature.write_bytes(signature.read_bytes().replace(b"-----END", b"\n-----END"))
    stamped = sh(VERIFY_TIMESTAMP, bag, home)
    assert stamped.returncode != 0
    assert "message imprint mismatch" in stamped.stderr

    manifest = bag / "data" / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b"Satellite", b"SATELLITE"))
    checked = sh(VERIFY_MANIFEST, bag, home)
    assert checked.returncode != 0
    assert validsig_primaries(checked.stdout) == []

    data = bytearray(package.read_bytes())
    data[len(data) // 2] ^= 1
    package.write_bytes(bytes(data))
    detached = sh(VERIFY_DETACHED, work, home)
    assert detached.returncode != 0
    assert "[GNUPG:] BADSIG" in detached.stdout


def test_the_decrypt_line_stops_a_compression_bomb(home: Path, tmp_path: Path) -> None:
    """``--max-output`` in the README's decrypt line: 16 MiB of bzip2-compressed zeros (a few
    hundred bytes) stop at the package's size plus 1 MiB, and gpg says so (the README says to
    delete the partial file)."""
    work = tmp_path / "inbox"
    work.mkdir()
    bomb = work / f"{CODE}.tar.gpg"
    subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--trust-model", "always",
         "--compress-algo", "bzip2", "-z", "9", "-r", FINGERPRINTS[AUTHORITY], "--encrypt",
         "--output", str(bomb)],
        input=b"\0" * (16 << 20), capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    decrypted = sh(DECRYPT, work, home)
    assert decrypted.returncode != 0
    assert "exceeded --max-output limit" in decrypted.stderr
    assert (work / f"{CODE}.tar").stat().st_size <= bomb.stat().st_size + (1 << 20)


REVOKED = Path(__file__).resolve().parents[1] / "data" / "signing"
REVOKED_FPR = (REVOKED / "revoked-signer.fingerprint").read_text("ascii").strip()


def test_readme_commands_reject_a_revoked_key(tmp_path: Path) -> None:
    """gpg exits 0 and prints VALIDSIG for a key revoked as compromised (REVKEYSIG and
    KEYREVOKED beside it): the README's revocation lines reject it."""
    from tests.support.packages import FastSealer

    with FastSealer() as sealer:
        sealer.add_key("revoked-signer", REVOKED / "revoked-signer.sec.asc", REVOKED_FPR)
        built = build_package(tmp_path / "made", sealer=sealer, signed_by="revoked-signer")
    work = tmp_path / "inbox"
    work.mkdir()
    shutil.copy(built.path, work)
    shutil.copy(built.signature, work)
    shutil.copy(REVOKED / "revoked-signer.pub.asc", work / f"{SENDER}.pub.asc")
    with keyring(secret=(AUTHORITY,), public=()) as own:
        assert sh(IMPORT_SENDER_KEY, work, own).returncode == 0
        sh(f"gpg --import {REVOKED / 'revoked-signer.rev'}", work, own)  # what the owner published
        detached = sh(VERIFY_DETACHED, work, own)
        assert detached.returncode == 0  # the trap: gpg alone accepts it
        assert validsig_primaries(detached.stdout) == [REVOKED_FPR]
        assert "[GNUPG:] REVKEYSIG" in detached.stdout
        rejected = sh(REJECT_REVOKED_DETACHED, work, own)
        assert rejected.returncode != 0
        assert "REVKEYSIG" in rejected.stdout and "KEYREVOKED" in rejected.stdout


def test_readme_commands_verify_the_decision_record_and_release_statement(
    genuine: BuiltPackage, home: Path, tmp_path: Path
) -> None:
    """The README's lines for the signed decision record (inside the bag) and the release
    statement (beside the package): gpg says VALIDSIG by the pinned key, and BADSIG once
    either is altered."""
    work = tmp_path / "inbox"
    work.mkdir()
    shutil.copy(genuine.path, work)
    shutil.copy(genuine.signature, work)
    shutil.copy(KEYS / f"{SENDER}.pub.asc", work)
    statement = release_statement(
        BuiltPackage(work / genuine.path.name, work / genuine.signature.name, CODE, {})
    )
    for line in (IMPORT_SENDER_KEY, DECRYPT, UNTAR):
        assert sh(line, work, home).returncode == 0, line
    bag = work / CODE

    decision = sh(VERIFY_DECISION, bag, home)
    assert decision.returncode == 0, decision.stderr
    assert validsig_primaries(decision.stdout) == [SENDER_FPR]
    released = sh(VERIFY_RELEASE, work, home)
    assert released.returncode == 0, released.stderr
    assert validsig_primaries(released.stdout) == [SENDER_FPR]
    assert sh(REJECT_REVOKED_DECISION, bag, home).returncode == 0
    assert sh(REJECT_REVOKED_RELEASE, work, home).returncode == 0
    assert "Released by:" in statement.read_text("utf-8")

    record = bag / "data" / "decision-record.json"
    record.write_bytes(record.read_bytes().replace(b"share_redacted", b"withhold"))
    assert "[GNUPG:] BADSIG" in sh(VERIFY_DECISION, bag, home).stdout
    statement.write_text(statement.read_text("utf-8").replace("B. Second", "Z. Other"), "utf-8")
    altered = sh(VERIFY_RELEASE, work, home)
    assert altered.returncode != 0 and "[GNUPG:] BADSIG" in altered.stdout
