"""portal-verify and the RFC 3161 time-stamp over the manifest signature, against a real TSA
(OpenSSL's ``openssl ts -reply``, tests/support/tsa.py) and real packages.

A good time-stamp is reported with the TSA's time and where its chain was checked (the CA the
recipient gave with ``--tsa-ca``, or the chain the bag carries). A time-stamp that is missing
though expected, damaged, over other bytes or by an untrusted TSA each fails with its own exit
code and words.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portal import verify
from portal.verify.results import (
    EXIT_TIMESTAMP_CORRUPT,
    EXIT_TIMESTAMP_MISSING,
    EXIT_TIMESTAMP_OTHER_BYTES,
    EXIT_TIMESTAMP_UNTRUSTED,
    EXIT_USAGE,
)
from portal.verify.timestamp import (
    CHAIN_PATH,
    TOKEN_PATH,
    TokenProblem,
    check_token,
    read_certificates,
)
from tests.support.packages import (
    AUTHORITY,
    SENDER,
    SENDER_FPR,
    BuiltPackage,
    FastSealer,
    build_package,
    keyring,
)
from tests.support.tsa import LocalTsa, running_tsa

Stamper = Callable[[bytes], dict[str, bytes]]


@pytest.fixture(scope="module")
def tsa() -> Iterator[LocalTsa]:
    with running_tsa() as local:
        yield local


@pytest.fixture(scope="module")
def rogue() -> Iterator[LocalTsa]:
    """Another TSA, with a CA of its own that the recipient does not trust."""
    with running_tsa("Rogue TSA") as local:
        yield local


@pytest.fixture(scope="module")
def sealer() -> Iterator[FastSealer]:
    with FastSealer() as fast:
        yield fast


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    with keyring(secret=(AUTHORITY,), public=(SENDER,)) as path:
        yield path


@pytest.fixture(scope="module")
def make(
    sealer: FastSealer, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[Stamper | None], BuiltPackage]:
    def build(stamper: Stamper | None) -> BuiltPackage:
        return build_package(tmp_path_factory.mktemp("pkg"), sealer=sealer, time_stamp=stamper)

    return build


@pytest.fixture(scope="module")
def stamped(tsa: LocalTsa, make: Callable[[Stamper | None], BuiltPackage]) -> BuiltPackage:
    return make(tsa.bag_files)


@pytest.fixture
def verify_json(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, dict[str, object]]]:
    def call(package: BuiltPackage, *extra: str) -> tuple[int, dict[str, object]]:
        capsys.readouterr()
        code = verify.main(
            [str(package.path), "--sender-fingerprint", SENDER_FPR, "--gnupghome", str(home),
             "--json", *extra]
        )  # fmt: skip
        report: dict[str, object] = json.loads(capsys.readouterr().out)
        return code, report

    return call


Verify = Callable[..., tuple[int, dict[str, object]]]


def check_named(report: dict[str, object], name: str) -> dict[str, object]:
    checks = report["checks"]
    assert isinstance(checks, list)
    found: list[dict[str, object]] = [check for check in checks if check["name"] == name]
    assert len(found) == 1, checks
    return found[0]


def flipped(data: bytes, offset: int) -> bytes:
    damaged = bytearray(data)
    damaged[offset] ^= 0x01
    return bytes(damaged)


# --------------------------------------------------------------------------- good


def test_a_stamped_package_verifies_against_the_recipients_ca(
    verify_json: Verify, stamped: BuiltPackage, tsa: LocalTsa
) -> None:
    code, report = verify_json(stamped, "--tsa-ca", str(tsa.ca_file))
    assert code == 0, report["message"]
    step = check_named(report, "timestamp")
    assert step["ok"] is True and step["skipped"] is False
    detail = str(step["detail"])
    assert "data/manifest.json.asc existed at " in detail
    assert f"chains to the CA you gave (--tsa-ca {tsa.ca_file})" in detail
    assert "CN=Test TSA" in detail
    stamp = report["timestamp"]
    assert isinstance(stamp, dict)
    assert stamp["tsa"] == tsa.subject and stamp["hash"] == "SHA-256"
    assert stamp["time"][:4] >= "2025"


def test_without_tsa_ca_the_bags_chain_is_used_and_the_report_says_so(
    home: Path, stamped: BuiltPackage, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = verify.main(
        [str(stamped.path), "--sender-fingerprint", SENDER_FPR, "--gnupghome", str(home)]
    )
    text = capsys.readouterr().out
    assert code == 0, text
    assert "Time-stamped   " in text and "by CN=Test TSA" in text
    assert f"chains to the chain the bag carries ({CHAIN_PATH}" in text
    assert "--tsa-ca to trust the time without trusting the mechanism" in text


def test_an_unstamped_package_says_it_is_not_time_stamped(
    verify_json: Verify, make: Callable[[Stamper | None], BuiltPackage]
) -> None:
    code, report = verify_json(make(None))
    assert code == 0
    step = check_named(report, "timestamp")
    assert step["skipped"] is True and "not time-stamped" in str(step["detail"])
    assert report["timestamp"] is None


# --------------------------------------------------------------------------- failures


def test_tsa_ca_given_but_no_time_stamp(
    verify_json: Verify, make: Callable[[Stamper | None], BuiltPackage], tsa: LocalTsa
) -> None:
    code, report = verify_json(make(None), "--tsa-ca", str(tsa.ca_file))
    assert code == EXIT_TIMESTAMP_MISSING == 33
    assert report["message"] == (
        f"you gave --tsa-ca, but the package carries no time-stamp ({TOKEN_PATH})"
    )


def test_a_damaged_token_is_corrupt(
    verify_json: Verify, make: Callable[[Stamper | None], BuiltPackage], tsa: LocalTsa
) -> None:
    """One bit of the TSA's signature (the token's last bytes) changed: still a readable reply,
    but not what the TSA signed."""

    def damaged(asc: bytes) -> dict[str, bytes]:
        files = tsa.bag_files(asc)
        files[TOKEN_PATH] = flipped(files[TOKEN_PATH], -5)
        return files

    code, report = verify_json(make(damaged), "--tsa-ca", str(tsa.ca_file))
    assert code == EXIT_TIMESTAMP_CORRUPT == 34
    assert report["message"] == (
        f"the time-stamp {TOKEN_PATH} is damaged: its signature does not verify (altered)"
    )


def test_garbage_instead_of_a_token_is_corrupt(
    verify_json: Verify, make: Callable[[Stamper | None], BuiltPackage], tsa: LocalTsa
) -> None:
    garbage = {TOKEN_PATH: b"<html>not a reply</html>", CHAIN_PATH: tsa.ca_file.read_bytes()}
    code, report = verify_json(make(lambda asc: garbage))
    assert code == EXIT_TIMESTAMP_CORRUPT
    assert "is damaged: it is not a readable time-stamp reply" in str(report["message"])


def test_a_time_stamp_over_other_bytes(
    verify_json: Verify, make: Callable[[Stamper | None], BuiltPackage], tsa: LocalTsa
) -> None:
    """A genuine token of the same TSA, but over the manifest instead of its signature."""
    code, report = verify_json(
        make(lambda asc: tsa.bag_files(b"the manifest, not its signature")),
        "--tsa-ca",
        str(tsa.ca_file),
    )
    assert code == EXIT_TIMESTAMP_OTHER_BYTES == 35
    assert report["message"] == (
        f"the time-stamp {TOKEN_PATH} is not of data/manifest.json.asc: it is over other bytes "
        "(its SHA-256 imprint is not of these)"
    )


def test_a_token_by_an_untrusted_tsa(
    verify_json: Verify,
    make: Callable[[Stamper | None], BuiltPackage],
    tsa: LocalTsa,
    rogue: LocalTsa,
) -> None:
    """Stamped by another TSA: refused against the recipient's CA, even though the bag's own
    chain (the rogue's CA) would accept it, and refused against the bag's chain when that
    names the genuine TSA's CA."""
    code, report = verify_json(make(rogue.bag_files), "--tsa-ca", str(tsa.ca_file))
    assert code == EXIT_TIMESTAMP_UNTRUSTED == 36
    message = str(report["message"])
    assert message.startswith(f"the time-stamp {TOKEN_PATH} is by an untrusted TSA: ")
    assert "does not chain to a trusted CA" in message
    assert f"checked the CA you gave (--tsa-ca {tsa.ca_file})" in message

    def posing(asc: bytes) -> dict[str, bytes]:
        return rogue.bag_files(asc, chain=tsa.ca_file.read_bytes())

    code, report = verify_json(make(posing))
    assert code == EXIT_TIMESTAMP_UNTRUSTED
    assert f"checked the chain the bag carries ({CHAIN_PATH}" in str(report["message"])


def test_a_token_without_any_chain_to_check_it_against(
    verify_json: Verify, make: Callable[[Stamper | None], BuiltPackage], tsa: LocalTsa
) -> None:
    code, report = verify_json(make(lambda asc: {TOKEN_PATH: tsa.stamp(asc)}))
    assert code == EXIT_TIMESTAMP_UNTRUSTED
    assert report["message"] == (
        f"the bag has a time-stamp but no {CHAIN_PATH}: give the TSA's CA certificate with --tsa-ca"
    )


def test_tsa_ca_must_hold_certificates(
    stamped: BuiltPackage, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("this is not a certificate\n")
    for path, words in ((not_pem, "holds not one or more PEM certificates"),
                        (tmp_path / "missing.pem", "No such file")):  # fmt: skip
        code = verify.main(
            [str(stamped.path), "--sender-fingerprint", SENDER_FPR, "--gnupghome", str(home),
             "--tsa-ca", str(path)]
        )  # fmt: skip
        assert code == EXIT_USAGE
        assert words in capsys.readouterr().err


def test_help_documents_the_time_stamp_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        verify.main(["--help"])
    text = capsys.readouterr().out
    assert "--tsa-ca FILE" in text
    for code in ("30 ", "31 ", "32 ", "33 "):
        assert f"\n  {code}" in text


def test_no_single_bit_flip_changes_what_a_token_says(tsa: LocalTsa) -> None:
    """Every bit-0 flip of a real token is refused (damaged, or no longer chaining), never a
    crash; the few that pass touch only unsigned wrapping (a version number, an algorithm
    identifier the signature does not depend on) and leave the time, TSA and serial as
    they were."""
    roots = read_certificates(tsa.ca_file.read_bytes())
    token = tsa.stamp(b"manifest signature")
    genuine = check_token(token, b"manifest signature", roots)
    refused = 0
    for offset in range(len(token)):
        try:
            said = check_token(flipped(token, offset), b"manifest signature", roots)
        except TokenProblem:
            refused += 1
            continue
        assert said == genuine, offset
    assert refused > 0.98 * len(token)
