"""Issue 20's "done when": tools that are not ours check a real package.

The package is made by the portal's own worker (``assemble_package``: redaction, leak check,
bag, manifest, gpg) with a time-stamping authority configured — OpenSSL's own TSA behind a
local HTTP server (tests/support/tsa.py). Then, with nothing of the portal:

- Sequoia's ``sq`` (Debian's 0.27: ``--recipient-key``, ``--signer-cert``) checks the
  detached signature over the package file, and decrypts it verifying the signature inside;
- ``bagit.py`` (the Library of Congress tool) validates the bag;
- ``gpg`` verifies **every** detached signature in the bag (each ``X.asc`` over ``X``: the
  manifest's today, and any other the package comes to carry), by the mechanism's key;
- ``openssl ts -verify`` accepts the RFC 3161 time-stamp over the manifest signature, against
  the TSA's CA certificate as the recipient obtained it and against the chain in the bag.

These tools come from the Makefile's system packages (``sq``, ``gnupg``, ``openssl``); the test
never skips when one is missing: ``make system-packages`` installs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal import verify
from portal.config import REPO_ROOT, Settings
from portal.db import make_engine
from portal.models import Base
from portal.packages.assembly.assemble import assemble_package
from portal.packages.models import Package
from portal.state import build_state
from portal.verify.timestamp import CHAIN_PATH, STAMPED_PATH, TOKEN_PATH
from tests.support.package_world import make_world, new_package, signing_settings
from tests.support.packages import AUTHORITY, KEYS, SENDER, SENDER_FPR, keyring
from tests.support.tsa import LocalTsa, running_tsa


@pytest.fixture(scope="module")
def tsa() -> Iterator[LocalTsa]:
    with running_tsa("Independent Time Authority") as local:
        yield local


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory, tsa: LocalTsa) -> Path:
    """What a recipient receives: ``PKG-….tar.gpg`` and its ``.sig``, made by the worker
    with PORTAL_TSA_URL and PORTAL_TSA_CA_FILE set (SQLite: the database plays no part in
    what the tools check)."""
    root = tmp_path_factory.mktemp("portal")
    instance = root / "instance"
    settings = Settings(
        instance_dir=instance,
        database_url=f"sqlite:///{root / 'portal.db'}",
        data_dir=instance / "data",
        policies_dir=REPO_ROOT / "policies",
        templates_dir=REPO_ROOT / "templates",
        secret_key_file=instance / "secret_key",
        testing=True,
    )
    settings = signing_settings(settings).with_overrides(tsa_url=tsa.url, tsa_ca_file=tsa.ca_file)
    engine = make_engine(settings.database_url)
    Base.metadata.create_all(engine)
    try:
        state = build_state(settings, engine=engine)
        package_id = new_package(state, make_world(state))
        assemble_package(state, package_id)
        with state.sessions() as session:
            package = session.get_one(Package, package_id)
            assert package.status == "assembled", package.failure_reason
            assert package.file_sha256 and package.signature_sha256
            code, file, signature = package.code, package.file_sha256, package.signature_sha256
        received = root / "inbox"
        received.mkdir()
        shutil.copy(state.blobs.path(file), received / f"{code}.tar.gpg")
        shutil.copy(state.blobs.path(signature), received / f"{code}.tar.gpg.sig")
    finally:
        engine.dispose()
    return received


@pytest.fixture(scope="module")
def bag(inbox: Path) -> Path:
    """The package checked and decrypted by ``sq``, unpacked with ``tar``: the bag."""
    package = next(inbox.glob("*.tar.gpg"))
    code = package.name.removesuffix(".tar.gpg")
    signer = str(KEYS / f"{SENDER}.pub.asc")
    detached = run(
        ["sq", "verify", "--signer-cert", signer, "--detached", f"{package.name}.sig",
         package.name], inbox,
    )  # fmt: skip
    assert detached.returncode == 0, detached.stderr
    assert "Good signature" in detached.stderr
    decrypted = run(
        ["sq", "decrypt", "--recipient-key", str(KEYS / f"{AUTHORITY}.sec.asc"),
         "--signer-cert", signer, "--output", f"{code}.tar", package.name], inbox,
    )  # fmt: skip
    assert decrypted.returncode == 0, decrypted.stderr
    assert "Good signature" in decrypted.stderr
    untarred = run(["tar", "-xf", f"{code}.tar"], inbox)
    assert untarred.returncode == 0, untarred.stderr
    return inbox / code


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """One tool, as a recipient runs it: a private HOME (sq keeps nothing of ours), the
    venv's bin on PATH (for bagit.py)."""
    home = Path(tempfile.mkdtemp(prefix="home-"))
    environment = {**os.environ, "HOME": str(home), **env}
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    try:
        return subprocess.run(
            command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_bagit_validates_the_bag(bag: Path) -> None:
    validated = run(["bagit.py", "--validate", bag.name], bag.parent)
    assert validated.returncode == 0, validated.stderr
    assert f"{bag.name} is valid" in validated.stderr


def test_gpg_verifies_every_signature_in_the_bag(bag: Path) -> None:
    signatures = sorted(bag.rglob("*.asc"))
    assert bag / STAMPED_PATH in signatures  # the manifest's, at least
    with keyring(secret=(), public=(SENDER,)) as home:
        for signature in signatures:
            signed = signature.with_suffix("")
            assert signed.is_file(), f"{signature.name} signs {signed.name}, not in the bag"
            checked = run(
                ["gpg", "--batch", "--status-fd", "1", "--verify", str(signature), str(signed)],
                bag, GNUPGHOME=str(home),
            )  # fmt: skip
            assert checked.returncode == 0, f"{signature}: {checked.stderr}"
            valid = [
                line.split()[-1]
                for line in checked.stdout.splitlines()
                if line.startswith("[GNUPG:] VALIDSIG ")
            ]
            assert valid == [SENDER_FPR], f"{signature}: {checked.stdout}"


def test_sq_verifies_every_signature_in_the_bag_too(bag: Path) -> None:
    for signature in sorted(bag.rglob("*.asc")):
        checked = run(
            ["sq", "verify", "--signer-cert", str(KEYS / f"{SENDER}.pub.asc"),
             "--detached", str(signature), str(signature.with_suffix(""))], bag,
        )  # fmt: skip
        assert checked.returncode == 0, f"{signature}: {checked.stderr}"


def test_openssl_accepts_the_time_stamp(bag: Path, tsa: LocalTsa) -> None:
    """Against the TSA's CA as the recipient obtained it, and against the bag's chain."""
    for ca in (str(tsa.ca_file), CHAIN_PATH):
        checked = run(
            ["openssl", "ts", "-verify", "-data", STAMPED_PATH, "-in", TOKEN_PATH,
             "-CAfile", ca], bag,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "Verification: OK" in checked.stdout


def test_openssl_refuses_the_time_stamp_against_another_tsas_ca(bag: Path) -> None:
    """The last check is not decoration: another authority's CA does not vouch for it."""
    with running_tsa("Another Time Authority") as other:
        checked = run(
            ["openssl", "ts", "-verify", "-data", STAMPED_PATH, "-in", TOKEN_PATH,
             "-CAfile", str(other.ca_file)], bag,
        )  # fmt: skip
    assert checked.returncode != 0
    assert "Verification: FAILED" in checked.stdout


def test_portal_verify_reports_the_tsa_time_of_the_same_package(
    inbox: Path, tsa: LocalTsa, capsys: pytest.CaptureFixture[str]
) -> None:
    """And our own verifier agrees, naming the TSA's time and where its chain was checked."""
    package = next(inbox.glob("*.tar.gpg"))
    with keyring(secret=(AUTHORITY,), public=(SENDER,)) as home:
        capsys.readouterr()
        code = verify.main(
            [str(package), "--sender-fingerprint", SENDER_FPR, "--gnupghome", str(home),
             "--tsa-ca", str(tsa.ca_file)]
        )  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0, text
    assert "Time-stamped   " in text and "CN=Independent Time Authority" in text
    assert f"chains to the CA you gave (--tsa-ca {tsa.ca_file})" in text
