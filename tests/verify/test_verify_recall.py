"""``portal-verify --recall``: a recall notice checked against the package it recalls, with
real gpg and real notices (the portal's own text and clearsigning, the example keys).

Each wrong notice is wrong in one way: another package, another item digest, another package
file, altered after signing, signed by another key, not clearsigned.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from portal import verify
from portal.packages.assembly.documents import NoticeItem, recall_notice_text
from portal.packages.assembly.gpgstream import clearsign
from portal.verify.results import EXIT_RECALL_MISMATCH
from tests.support.packages import (
    AUTHORITY,
    SENDER,
    SENDER_FPR,
    BuiltPackage,
    build_package,
    gpg_run,
    keyring,
    signer,
)

Run = Callable[..., tuple[int, dict[str, Any]]]


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    with keyring(secret=(AUTHORITY,), public=(SENDER,)) as path:
        yield path


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> BuiltPackage:
    return build_package(tmp_path_factory.mktemp("recalled"))


@pytest.fixture
def run(home: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    def call(path: Path, notice: Path) -> tuple[int, dict[str, Any]]:
        capsys.readouterr()
        code = verify.main(
            [str(path), "--sender-fingerprint", SENDER_FPR, "--gnupghome", str(home),
             "--recall", str(notice), "--json"]
        )  # fmt: skip
        report: dict[str, Any] = json.loads(capsys.readouterr().out)
        return code, report

    return call


def _item(package: BuiltPackage, index: int = 0, **changes: str) -> NoticeItem:
    entry = package.manifest["items"][index]
    fields = {"code": entry["code"], "title": entry["title"], "path": entry["path"],
              "sha256": entry["sha256"], **changes}  # fmt: skip
    return NoticeItem(**fields)


def _notice(
    tmp_path: Path,
    package: BuiltPackage,
    *,
    code: str | None = None,
    items: list[NoticeItem] | None = None,
    package_sha256: str | None = "",
    signed_by: str = SENDER,
) -> Path:
    if package_sha256 == "":
        package_sha256 = hashlib.sha256(package.path.read_bytes()).hexdigest()
    chosen = [_item(package)] if items is None else items
    text = recall_notice_text(
        package_code=code or package.code,
        authority_name="Northland War Crimes Unit",
        reason="The information provider withdrew its consent.",
        issued_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        package_sha256=package_sha256,
        items=chosen,
        kept=len(package.manifest["items"]) - len(chosen),
    )
    path = tmp_path / "notice.asc"
    path.write_text(clearsign(text, signer(signed_by)), encoding="utf-8")
    return path


def _recall_check(report: dict[str, Any]) -> dict[str, Any]:
    (check,) = [c for c in report["checks"] if c["name"] == "recall_notice"]
    return check


def test_a_genuine_item_level_notice_applies_to_its_package(
    run: Run, package: BuiltPackage, tmp_path: Path
) -> None:
    item = _item(package)
    code, report = run(package.path, _notice(tmp_path, package))
    assert code == 0, report
    check = _recall_check(report)
    assert check["ok"]
    assert f"withdraws 1 item(s) of {package.code}: {item.code} ({item.path})" in check["detail"]
    assert "good signature by" in check["detail"]
    assert report["message"].startswith("VERIFIED, AND RECALLED")


def test_a_whole_package_notice_of_before_applies_too(
    run: Run, package: BuiltPackage, tmp_path: Path
) -> None:
    code, report = run(package.path, _notice(tmp_path, package, items=[], package_sha256=None))
    assert code == 0, report
    assert f"recalls the whole package {package.code}" in _recall_check(report)["detail"]


@pytest.mark.parametrize(
    ("wrong", "says"),
    [
        ({"code": "PKG-2026-0999"}, "it recalls package PKG-2026-0999"),
        ({"package_sha256": "0" * 64}, "the package file's SHA-256 is not the one it names"),
        ({"item_sha256": "f" * 64}, "is not at the path or with the SHA-256 it names"),
        ({"item_code": "ITM-NOT-HERE"}, "withdraws ITM-NOT-HERE, which is not in the package"),
    ],
)
def test_a_notice_for_something_else_does_not_apply(
    run: Run, package: BuiltPackage, tmp_path: Path, wrong: dict[str, str], says: str
) -> None:
    changes = {}
    if "item_sha256" in wrong:
        changes["sha256"] = wrong["item_sha256"]
    if "item_code" in wrong:
        changes["code"] = wrong["item_code"]
    notice = _notice(
        tmp_path, package, code=wrong.get("code"), items=[_item(package, **changes)],
        package_sha256=wrong.get("package_sha256", ""),
    )  # fmt: skip
    code, report = run(package.path, notice)
    assert code == EXIT_RECALL_MISMATCH
    assert not _recall_check(report)["ok"]
    assert says in report["message"]


def test_a_notice_altered_after_signing_is_refused(
    run: Run, package: BuiltPackage, tmp_path: Path
) -> None:
    notice = _notice(tmp_path, package)
    text = notice.read_text(encoding="utf-8")
    other = package.manifest["items"][1]["code"]
    notice.write_text(text.replace(_item(package).code, other, 1), encoding="utf-8")
    code, report = run(package.path, notice)
    assert code == verify.EXIT_BAD_SIGNATURE
    assert "the recall notice notice.asc is not valid" in report["message"]


def test_a_notice_signed_by_another_key_is_refused(
    run: Run, package: BuiltPackage, tmp_path: Path
) -> None:
    code, report = run(package.path, _notice(tmp_path, package, signed_by=AUTHORITY))
    assert code == verify.EXIT_WRONG_SIGNER
    assert "not by the pinned sender key" in report["message"]


def test_only_a_clearsigned_notice_is_read(run: Run, package: BuiltPackage, tmp_path: Path) -> None:
    """Any other OpenPGP message (here a compressed packet, which could unpack to gigabytes)
    is refused before gpg reads it."""
    binary = tmp_path / "notice.gpg"
    binary.write_bytes(b"\xa3\x01" + zlib.compress(b"\0" * 1_000_000))
    code, report = run(package.path, binary)
    assert code == verify.EXIT_BAD_SIGNATURE
    assert "is not a clearsigned recall notice" in report["message"]


def test_the_readme_recipe_checks_a_notice_with_stock_tools(
    home: Path, package: BuiltPackage, tmp_path: Path
) -> None:
    """The README's commands: gpg --verify (VALIDSIG with the pinned fingerprint), gpg
    --decrypt for the signed text, then the package file's and each item's SHA-256."""
    notice = _notice(tmp_path, package)
    verified = gpg_run(home, "--status-fd", "1", "--verify", str(notice), check=False)
    assert re.search(rf"^\[GNUPG:\] VALIDSIG .* {SENDER_FPR}$", verified.stdout.decode(), re.M)
    text = gpg_run(home, "--decrypt", str(notice)).stdout.decode()
    found = re.search(r"^Package SHA-256: ([0-9a-f]{64})$", text, re.M)
    assert found is not None
    assert found.group(1) == hashlib.sha256(package.path.read_bytes()).hexdigest()
    (path, digest), *_ = re.findall(r"^  Path:\s+(\S+)\n  SHA-256:\s+(\S+)$", text, re.M)
    assert {"path": path, "sha256": digest}.items() <= package.manifest["items"][0].items()
    tampered = notice.read_text(encoding="utf-8").replace(path, path + "x")
    notice.write_text(tampered, encoding="utf-8")
    refused = gpg_run(home, "--status-fd", "1", "--verify", str(notice), check=False)
    assert "VALIDSIG" not in refused.stdout.decode()


def test_a_compressed_message_hidden_in_the_signature_block_is_refused(
    run: Run, package: BuiltPackage, home: Path, tmp_path: Path
) -> None:
    """The armor after the signed text holds 16 MiB of zeros, zlib-compressed, instead of a
    signature: gpg refuses a second plaintext, and ``--max-output`` bounds what it gives back
    whatever the notice holds."""
    stored = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--store", "--armor",
         "--compress-algo", "zlib", "-z", "9"],
        input=b"\0" * (16 << 20), capture_output=True, check=True, timeout=60,
    ).stdout.decode()  # fmt: skip
    body = stored.split("-----BEGIN PGP MESSAGE-----")[1].split("-----END PGP MESSAGE-----")[0]
    signed = _notice(tmp_path, package).read_text(encoding="utf-8")
    head = signed.split("-----BEGIN PGP SIGNATURE-----")[0]
    hostile = tmp_path / "hostile.asc"
    hostile.write_text(
        f"{head}-----BEGIN PGP SIGNATURE-----{body}-----END PGP SIGNATURE-----\n", "utf-8"
    )
    assert hostile.stat().st_size < 64 * 1024
    code, report = run(package.path, hostile)
    assert code == verify.EXIT_BAD_SIGNATURE, report
    assert not _recall_check(report)["ok"]
