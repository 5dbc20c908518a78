"""portal-verify on the package's own evidence (issue 20): the signed decision record, the
item index and the release statement, on real packages (real gpg, real BagIt tars). Each
tampering is made so that only the check under test can notice (the bag's manifests are made
to agree, the package is signed and encrypted again), and fails with its own exit code.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from portal import verify
from portal.verify.results import (
    EXIT_DECISION_RECORD,
    EXIT_DECISION_SIGNATURE,
    EXIT_ITEM_INDEX,
    EXIT_RELEASE_MISMATCH,
    EXIT_RELEASE_SIGNATURE,
)
from tests.support.packages import (
    AUTHORITY,
    SENDER,
    SENDER_FPR,
    BuiltPackage,
    FastSealer,
    Members,
    build_package,
    keyring,
    release_statement,
    repack,
    replace_in_bag,
)

CODE = "PKG-2026-0001"
Run = Callable[..., tuple[int, dict[str, Any]]]


@pytest.fixture(scope="module")
def sealer() -> Iterator[FastSealer]:
    with FastSealer() as fast:
        yield fast


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    with keyring(secret=(AUTHORITY,), public=(SENDER,)) as path:
        yield path


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory, sealer: FastSealer) -> BuiltPackage:
    return build_package(tmp_path_factory.mktemp("genuine"), sealer=sealer)


@pytest.fixture
def run(home: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    def call(package: Path, *extra: str) -> tuple[int, dict[str, Any]]:
        capsys.readouterr()
        code = verify.main(
            [str(package), "--sender-fingerprint", SENDER_FPR, "--gnupghome", str(home),
             "--json", *extra]
        )  # fmt: skip
        report: dict[str, Any] = json.loads(capsys.readouterr().out)
        return code, report

    return call


def alone(built: BuiltPackage, dest: Path) -> BuiltPackage:
    """A copy of the package and its signature in a directory of its own."""
    dest.mkdir(parents=True, exist_ok=True)
    path = Path(shutil.copy(built.path, dest))
    signature = Path(shutil.copy(built.signature, dest))
    return BuiltPackage(path, signature, built.code, built.manifest)


def failed(report: dict[str, Any]) -> dict[str, Any]:
    found = [check for check in report["checks"] if not check["ok"]]
    assert len(found) == 1, report["checks"]
    return found[0]


def tampered(
    genuine: BuiltPackage, dest: Path, sealer: FastSealer, changes: dict[str, bytes]
) -> BuiltPackage:
    def edit(members: Members) -> Members:
        return replace_in_bag(members, changes)

    return repack(genuine, dest, edit, sealer=sealer)


def bag_file(genuine: BuiltPackage, sealer: FastSealer, dest: Path, path: str) -> bytes:
    plain = dest / "plain.tar"
    sealer.decrypt(genuine.path, plain, AUTHORITY)
    import tarfile

    with tarfile.open(plain) as tar:
        stream = tar.extractfile(f"{CODE}/{path}")
        assert stream is not None
        return stream.read()


# --------------------------------------------------------------------------- genuine


def test_the_package_carries_its_evidence_and_verifies(
    run: Run, genuine: BuiltPackage, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, report = run(genuine.path, "--out", str(out))
    assert code == 0, report
    data = out / CODE / "data"
    record = json.loads((data / "decision-record.json").read_bytes())
    assert record["decision"]["id"] == "DEC-2026-0031"
    assert record["decision"]["deciding_officers"] == ["A. Legal Officer"]
    assert [item["outcome"] for item in record["items"]] == ["share_redacted", "share"]
    assert record["items"][0]["rules"][0]["reference"] == "ToR para. 12 (consent)"
    assert record["items_not_in_package"] == {"withhold": 1}
    assert (data / "decision-record.json.asc").read_bytes().startswith(b"-----BEGIN PGP")
    rows = list(csv.DictReader(io.StringIO((data / "item-index.csv").read_text("utf-8"))))
    assert [row["item_code"] for row in rows] == ["ITM-000123", "ITM-000124"]
    assert rows[0]["original_or_redacted"] == "redacted" and rows[1]["language"] == "en"
    indexed = json.loads((data / "item-index.json").read_bytes())["items"]
    assert indexed == [dict(sorted(row.items())) for row in rows]
    manifest = json.loads((data / "manifest.json").read_bytes())
    assert manifest["schema_version"] == "3"
    mark = manifest["items"][0]["marks"][0]
    assert mark["proposed_by"] == "A. Legal Officer" and mark["confirmed_by"] == "B. Second Officer"
    sources = [event["time_source"] for event in manifest["items"][0]["custody"]]
    assert sources == ["provider-declared", "portal-clock"]
    checks = {check["name"]: check for check in report["checks"]}
    assert "decision DEC-2026-0031" in checks["decision_record"]["detail"]
    assert checks["decision_signature"]["detail"].startswith("good signature by 4DA6")
    assert "2 item(s)" in checks["item_index"]["detail"]


def test_the_release_statement_beside_the_package_is_found_and_checked(
    run: Run, genuine: BuiltPackage, sealer: FastSealer, tmp_path: Path
) -> None:
    built = alone(genuine, tmp_path)
    release_statement(built, sealer=sealer)
    code, report = run(built.path)
    assert code == 0, report
    check = report["checks"][-1]
    assert check["name"] == "release_statement" and check["ok"]
    assert "released by B. Second Officer" in check["detail"]
    assert "assembled by A. Legal Officer" in check["detail"]
    assert "the release statement, signed by the same key, releases this file" in report["message"]


def test_a_release_statement_can_be_named(
    run: Run, genuine: BuiltPackage, sealer: FastSealer, tmp_path: Path
) -> None:
    built = alone(genuine, tmp_path / "a")
    statement = release_statement(built, sealer=sealer)
    elsewhere = Path(shutil.move(statement, tmp_path / "statement.asc"))
    code, report = run(built.path, "--release-statement", str(elsewhere))
    assert code == 0, report
    assert report["checks"][-1]["name"] == "release_statement"


# --------------------------------------------------------------------------- tampering


def test_an_altered_decision_record_fails_43(
    run: Run, genuine: BuiltPackage, sealer: FastSealer, tmp_path: Path
) -> None:
    record = bag_file(genuine, sealer, tmp_path, "data/decision-record.json")
    forged = record.replace(b'"withhold"', b'"share"')
    assert forged != record
    built = tampered(genuine, tmp_path / "p", sealer, {"data/decision-record.json": forged})
    code, report = run(built.path)
    assert code == EXIT_DECISION_RECORD == 43
    check = failed(report)
    assert check["name"] == "decision_record"
    assert "is not the file the signed manifest names: altered" in check["detail"]


@pytest.mark.parametrize("how", ["another key", "flipped"])
def test_a_bad_decision_record_signature_fails_44(
    run: Run, genuine: BuiltPackage, sealer: FastSealer, tmp_path: Path, how: str
) -> None:
    record = tmp_path / "record.json"
    record.write_bytes(bag_file(genuine, sealer, tmp_path, "data/decision-record.json"))
    if how == "another key":
        signature = sealer.detached(record, AUTHORITY)
    else:
        genuine_signature = bag_file(genuine, sealer, tmp_path, "data/decision-record.json.asc")
        signature = genuine_signature.replace(b"\n=", b"\n=A", 1)[:-40] + genuine_signature[-40:]
    changes = {"data/decision-record.json.asc": signature}
    built = tampered(genuine, tmp_path / "p", sealer, changes)
    code, report = run(built.path)
    assert code == EXIT_DECISION_SIGNATURE == 44
    check = failed(report)
    assert check["name"] == "decision_signature"
    assert "decision record signature" in check["detail"]


def test_an_altered_item_index_fails_45(
    run: Run, genuine: BuiltPackage, sealer: FastSealer, tmp_path: Path
) -> None:
    index = bag_file(genuine, sealer, tmp_path, "data/item-index.csv")
    forged = index.replace(b"Northtown", b"Southtown", 1)
    built = tampered(genuine, tmp_path / "p", sealer, {"data/item-index.csv": forged})
    code, report = run(built.path)
    assert code == EXIT_ITEM_INDEX == 45
    check = failed(report)
    assert check["name"] == "item_index" and "altered" in check["detail"]


@pytest.mark.parametrize("other", ["code", "file"])
def test_a_release_statement_for_another_package_fails_46(
    run: Run, genuine: BuiltPackage, sealer: FastSealer, tmp_path: Path, other: str
) -> None:
    built = alone(genuine, tmp_path)
    if other == "code":
        release_statement(built, sealer=sealer, code="PKG-2026-0002")
    else:
        release_statement(built, sealer=sealer, file_sha256="0" * 64)
    code, report = run(built.path)
    assert code == EXIT_RELEASE_MISMATCH == 46
    check = failed(report)
    assert check["name"] == "release_statement"
    assert "the release statement is for another package" in check["detail"]
    assert ("PKG-2026-0002" in check["detail"]) == (other == "code")


@pytest.mark.parametrize("how", ["another key", "altered", "unsigned"])
def test_an_unsigned_or_altered_release_statement_fails_47(
    run: Run, genuine: BuiltPackage, sealer: FastSealer, tmp_path: Path, how: str
) -> None:
    built = alone(genuine, tmp_path)
    statement = release_statement(
        built, sealer=sealer, signed_by=AUTHORITY if how == "another key" else SENDER
    )
    text = statement.read_text("utf-8")
    if how == "altered":
        statement.write_text(text.replace("B. Second Officer", "C. Someone Else"), "utf-8")
    elif how == "unsigned":
        body = text.split("\n\n", 1)[1].split("-----BEGIN PGP SIGNATURE-----")[0]
        statement.write_text(body, "utf-8")
    code, report = run(built.path)
    assert code == EXIT_RELEASE_SIGNATURE == 47
    check = failed(report)
    assert check["name"] == "release_statement"
    assert "release statement" in check["detail"]


def test_help_lists_the_new_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        verify.main(["--help"])
    text = capsys.readouterr().out
    for code in ("30 ", "31 ", "32 ", "33 ", "34 "):
        assert f"\n  {code}" in text
    assert "--release-statement" in text
