"""portal-verify never writes more than a bound, and refuses compressed data unless allowed.

The hostile messages are made here with real gpg: 32 MiB of zeros, bzip2-compressed (a few
hundred bytes), encrypted to the test authority's key, unsigned or signed by the mechanism's
key. ``portal-verify`` runs as a separate process under ``RLIMIT_FSIZE``: a write past the
limit fails (EFBIG), so a verifier that wrote more than the bound could not pass these tests.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portal import verify
from tests.support.packages import (
    AUTHORITY,
    FINGERPRINTS,
    SENDER,
    SENDER_FPR,
    BuiltPackage,
    FastSealer,
    build_package,
    gpg_run,
    keyring,
)

REPO = Path(__file__).resolve().parents[2]
ZEROS = 32 << 20  # what the bomb expands to
BOUND = 1 << 20  # the --max-output the tests give
FILE_LIMIT = 2 << 20  # RLIMIT_FSIZE of the verifier's process: no file may grow beyond this


@pytest.fixture(scope="module")
def sealer() -> Iterator[FastSealer]:
    with FastSealer() as fast:
        yield fast


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    with keyring(secret=(AUTHORITY,), public=(SENDER,)) as path:
        yield path


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> BuiltPackage:
    return build_package(tmp_path_factory.mktemp("genuine"))


def _seal(sealer: FastSealer, plain: bytes, out: Path, *, signed: bool, algo: str) -> Path:
    """``plain`` compressed with ``algo``, encrypted to the authority (and signed by the
    mechanism when ``signed``), with a detached signature by the mechanism beside it."""
    signing = ["--sign", *sealer._signing(SENDER)] if signed else []
    subprocess.run(
        ["gpg", "--homedir", str(sealer.home), "--batch", "--no-tty", "--yes",
         "--trust-model", "always", "--compress-algo", algo, "-z", "9", *signing,
         "-r", FINGERPRINTS[AUTHORITY], "--encrypt", "--output", str(out)],
        input=plain, capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    (out.parent / f"{out.name}.sig").write_bytes(sealer.detached(out, SENDER))
    return out


@pytest.fixture(scope="module")
def bombs(sealer: FastSealer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bombs")
    made = {}
    for name, signed in (("unsigned", False), ("signed", True)):
        (base / name).mkdir()
        made[name] = _seal(
            sealer, b"\0" * ZEROS, base / name / "PKG-2026-0666.tar.gpg", signed=signed,
            algo="bzip2",
        )  # fmt: skip
        assert made[name].stat().st_size < 4096  # a bomb: tiny file, 32 MiB inside
    return made


def portal_verify(home: Path, package: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    """``python -m portal.verify --json`` in a process whose files cannot exceed FILE_LIMIT."""

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))

    done = subprocess.run(
        [sys.executable, "-m", "portal.verify", str(package), "--sender-fingerprint",
         SENDER_FPR, "--gnupghome", str(home), "--json", *extra],
        capture_output=True, text=True, timeout=120, preexec_fn=limit_files, cwd=REPO,
    )  # fmt: skip
    assert done.stdout, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, report


def _last(report: dict[str, Any]) -> dict[str, Any]:
    check: dict[str, Any] = report["checks"][-1]
    assert not check["ok"]
    return check


# --------------------------------------------------------------------------- the bomb


def test_unsigned_bomb_without_detached_signature_is_not_even_decrypted(
    home: Path, bombs: dict[str, Path], tmp_path: Path
) -> None:
    lone = tmp_path / bombs["unsigned"].name
    shutil.copy(bombs["unsigned"], lone)  # the package file alone
    code, report = portal_verify(home, lone)
    assert code == verify.EXIT_BAD_SIGNATURE
    assert _last(report)["name"] == "detached_signature"
    assert "decryption" not in [check["name"] for check in report["checks"]]


def test_unsigned_bomb_with_no_detached_signature_is_refused_as_compressed(
    home: Path, bombs: dict[str, Path], tmp_path: Path
) -> None:
    lone = tmp_path / bombs["unsigned"].name
    shutil.copy(bombs["unsigned"], lone)
    out = tmp_path / "out"
    code, report = portal_verify(home, lone, "--no-detached-signature", "--out", str(out))
    assert code == verify.EXIT_OUTPUT_LIMIT == 17
    check = _last(report)
    assert check["name"] == "decryption"
    assert "holds compressed data" in check["detail"]
    assert "nothing decrypted was kept" in report["message"]
    assert not out.exists()


def test_bomb_signed_by_the_mechanism_is_still_refused(home: Path, bombs: dict[str, Path]) -> None:
    """The detached signature is good (checked first), yet compressed data is refused."""
    code, report = portal_verify(home, bombs["signed"])
    assert code == verify.EXIT_OUTPUT_LIMIT
    names = [(check["name"], check["ok"]) for check in report["checks"]]
    assert names == [("sender_key", True), ("detached_signature", True), ("decryption", False)]


@pytest.mark.parametrize("which", ["unsigned", "signed"])
def test_allowed_compression_stops_at_the_bound(
    home: Path, bombs: dict[str, Path], which: str
) -> None:
    """Allowed, the bomb expands until the bound and no further (the process could not write
    beyond FILE_LIMIT anyway: it would fail with another code)."""
    extra = ["--allow-compressed", "--max-output", str(BOUND)]
    if which == "unsigned":
        extra.append("--no-detached-signature")
    code, report = portal_verify(home, bombs[which], *extra)
    assert code == verify.EXIT_OUTPUT_LIMIT, report
    check = _last(report)
    assert check["name"] == "decryption"
    assert f"larger than the bound of {BOUND} bytes" in check["detail"]


def test_the_temporary_plaintext_is_deleted(
    home: Path, bombs: dict[str, Path], tmp_path: Path
) -> None:
    """What was written before the bound was crossed does not stay behind in TMPDIR."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "portal.verify", str(bombs["signed"]), "--sender-fingerprint",
         SENDER_FPR, "--gnupghome", str(home), "--allow-compressed", "--max-output", "1M"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, "TMPDIR": str(tmp)},
    )  # fmt: skip
    assert done.returncode == verify.EXIT_OUTPUT_LIMIT, done.stdout + done.stderr
    assert list(tmp.iterdir()) == []


# --------------------------------------------------------------------------- honest data


def test_the_portals_packages_hold_no_compressed_packet(home: Path, genuine: BuiltPackage) -> None:
    """Made by portal.packages.assembly.gpgstream (--compress-algo none)."""
    listing = gpg_run(home, "--list-packets", str(genuine.path), check=False).stdout.decode()
    assert ":literal data packet:" in listing
    assert ":compressed packet:" not in listing


def test_genuine_package_larger_than_the_bound_is_refused(
    home: Path, genuine: BuiltPackage
) -> None:
    code, report = portal_verify(home, genuine.path, "--max-output", "10K")
    assert code == verify.EXIT_OUTPUT_LIMIT
    assert "larger than the bound of 10240 bytes" in _last(report)["detail"]


def test_default_bound_lets_a_genuine_package_through(home: Path, genuine: BuiltPackage) -> None:
    code, report = portal_verify(home, genuine.path)
    assert code == 0, report
    (decryption,) = [check for check in report["checks"] if check["name"] == "decryption"]
    size = genuine.path.stat().st_size
    assert f"within the bound of {size + (1 << 20)} bytes, not compressed" in decryption["detail"]


def test_compressed_package_verifies_only_when_allowed(
    home: Path, genuine: BuiltPackage, sealer: FastSealer, tmp_path: Path
) -> None:
    """A genuine bag, compressed by another tool: refused by default, verified when allowed
    with a bound."""
    plain = tmp_path / "plain.tar"
    sealer.decrypt(genuine.path, plain, AUTHORITY)
    package = _seal(
        sealer, plain.read_bytes(), tmp_path / genuine.path.name, signed=True, algo="zlib"
    )
    assert portal_verify(home, package)[0] == verify.EXIT_OUTPUT_LIMIT
    code, report = portal_verify(home, package, "--allow-compressed", "--max-output", "50M")
    assert code == 0, report
    assert report["package"]["code"] == genuine.code


# --------------------------------------------------------------------------- usage


def test_allow_compressed_needs_a_bound(
    home: Path, genuine: BuiltPackage, capsys: pytest.CaptureFixture[str]
) -> None:
    code = verify.main(
        [str(genuine.path), "--sender-fingerprint", SENDER_FPR, "--gnupghome", str(home),
         "--allow-compressed"]
    )  # fmt: skip
    assert code == verify.EXIT_USAGE
    assert "--allow-compressed needs --max-output" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-5", "lots", "1.5G", "99999999999999999G"])
def test_max_output_must_be_a_positive_byte_count(
    home: Path, genuine: BuiltPackage, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        verify.main(
            [str(genuine.path), "--sender-fingerprint", SENDER_FPR, "--gnupghome", str(home),
             f"--max-output={value}"]
        )  # fmt: skip
    assert exited.value.code == verify.EXIT_USAGE
    assert "--max-output" in capsys.readouterr().err
