"""portal-verify against real packages: real gpg, real BagIt tars, the keys in keys_example/.

The recipient's keyring holds the authority's secret key (NWU-NL) and the mechanism's public
signing key. The genuine package is made with the portal's own pieces (manifest, bag writer,
gpgstream); the tampered ones are each wrong in exactly one way, re-signed where needed so
that only the check under test can notice.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bagit
import pytest

from portal import verify
from tests.support.packages import (
    AUTHORITY,
    FINGERPRINTS,
    SENDER,
    SENDER_FPR,
    BuiltPackage,
    FastSealer,
    Members,
    build_package,
    flip_byte,
    gpg_run,
    keyring,
    member,
    repack,
    write_members,
)

REPO = Path(__file__).resolve().parents[2]
CODE = "PKG-2026-0001"

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="module")
def sealer() -> Iterator[FastSealer]:
    with FastSealer() as fast:
        yield fast


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    """The recipient's keyring: NWU-NL's secret key and the mechanism's public key."""
    with keyring(secret=(AUTHORITY,), public=(SENDER,)) as path:
        yield path


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> BuiltPackage:
    """Made exactly as the portal makes packages (portal.packages.assembly.gpgstream)."""
    return build_package(tmp_path_factory.mktemp("genuine"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Path]:
    counter = iter(range(1_000_000))
    base = tmp_path_factory.mktemp("variants")
    return lambda: base / f"v{next(counter)}"


@pytest.fixture
def run(home: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``portal-verify`` (its ``main``) on a package with the recipient's keyring."""

    def call(
        package: Path, *extra: str, fpr: str = SENDER_FPR, gnupghome: Path = home
    ) -> tuple[int, str, str]:
        capsys.readouterr()
        code = verify.main(
            [str(package), "--sender-fingerprint", fpr, "--gnupghome", str(gnupghome), *extra]
        )
        out, err = capsys.readouterr()
        return code, out, err

    return call


def run_json(run: Run, package: Path, *extra: str, **options: Any) -> tuple[int, dict[str, Any]]:
    code, out, _ = run(package, "--json", *extra, **options)
    report: dict[str, Any] = json.loads(out)
    return code, report


def failed_check(report: dict[str, Any]) -> dict[str, Any]:
    failed: list[dict[str, Any]] = [check for check in report["checks"] if not check["ok"]]
    assert len(failed) == 1, report["checks"]
    return failed[0]


# --------------------------------------------------------------------------- import


def test_imports_nothing_from_the_web_stack() -> None:
    code = (
        "import portal.verify.cli, sys; "
        "assert not any(m.split('.')[0] in {'flask','sqlalchemy','weasyprint','werkzeug'} "
        "for m in sys.modules), sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'flask','sqlalchemy','weasyprint','werkzeug'})"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- genuine


def test_genuine_package_verifies_with_the_console_script(
    genuine: BuiltPackage, home: Path
) -> None:
    script = Path(sys.executable).with_name("portal-verify")
    proc = subprocess.run(
        [
            str(script),
            str(genuine.path),
            "--sender-fingerprint",
            SENDER_FPR,
            "--gnupghome",
            str(home),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = proc.stdout
    assert "VERIFIED: the package is complete and unaltered" in report
    assert "NOT VERIFIED" not in report
    assert CODE in report
    assert "Northland War Crimes Unit (NWU, NL)" in report
    assert "RFA-2026-0007 (your reference: NWU/2026/041)" in report
    assert "Witness statement W-17 (redacted)" in report
    assert "3 redactions: 3 term (protection of a witness at risk)" in report
    assert "4DA6 6F21 B774 DD00 4FC8  AD4E 71CB 3574 A170 734D" in report
    assert "detached signature: good signature" in report


def test_genuine_package_verifies_with_python_m(genuine: BuiltPackage, home: Path) -> None:
    """``python -m portal.verify`` is the same command as the console script."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "portal.verify",
            str(genuine.path),
            "--sender-fingerprint",
            SENDER_FPR,
            "--gnupghome",
            str(home),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True and report["package"]["code"] == CODE


def test_genuine_package_json_report(run: Run, genuine: BuiltPackage) -> None:
    code, report = run_json(run, genuine.path)
    assert code == 0
    assert report["ok"] is True and report["exit_code"] == 0
    assert report["detached_signature_checked"] is True
    names = [check["name"] for check in report["checks"]]
    assert names == [
        "sender_key",
        "detached_signature",
        "decryption",
        "inline_signature",
        "archive_safety",
        "bag",
        "manifest_schema",
        "manifest_signature",
        "timestamp",
        "cross_check",
        "decision_record",
        "decision_signature",
        "item_index",
        "transparency",  # skipped: build_package makes no log evidence (tests/transparency)
    ]
    assert all(check["ok"] for check in report["checks"])
    # no TSA made this package, and no log evidence: the only steps skipped
    # (tests/verify/test_verify_timestamp.py, tests/transparency)
    assert [c["name"] for c in report["checks"] if c["skipped"]] == ["timestamp", "transparency"]
    package = report["package"]
    assert package["code"] == CODE
    assert package["signer_fingerprint"] == SENDER_FPR
    assert package["authority"]["code"] == "NWU"
    assert package["recipient_fingerprints"] == [FINGERPRINTS[AUTHORITY]]
    items = {item["code"]: item for item in package["items"]}
    assert items["ITM-000123"]["redaction_count"] == 3
    assert items["ITM-000124"]["rendition"] == "as_is"
    assert report["extracted_to"] is None


def test_spaced_lowercase_fingerprint_is_accepted(run: Run, genuine: BuiltPackage) -> None:
    spaced = " ".join(SENDER_FPR[i : i + 4] for i in range(0, 40, 4)).lower()
    assert run(genuine.path, fpr=spaced)[0] == 0


def test_without_detached_signature_the_package_is_not_decrypted(
    run: Run, genuine: BuiltPackage, workdir: Callable[[], Path]
) -> None:
    """The detached signature is checked before anything is decrypted: without it (and
    without --no-detached-signature) the verification stops there."""
    alone = workdir()
    alone.mkdir()
    package = Path(shutil.copy(genuine.path, alone))
    code, report = run_json(run, package)
    assert code == verify.EXIT_BAD_SIGNATURE
    check = failed_check(report)
    assert check["name"] == "detached_signature"
    assert f"{package.name}.sig is missing" in check["detail"]
    assert "--no-detached-signature" in check["detail"]
    assert [c["name"] for c in report["checks"]] == ["sender_key", "detached_signature"]


def test_no_detached_signature_flag_reports_origin_after_decryption(
    run: Run, genuine: BuiltPackage, workdir: Callable[[], Path]
) -> None:
    alone = workdir()
    alone.mkdir()
    package = Path(shutil.copy(genuine.path, alone))
    code, report = run_json(run, package, "--no-detached-signature")
    assert code == 0, report
    assert report["detached_signature_checked"] is False
    detached = report["checks"][1]
    assert detached["name"] == "detached_signature" and detached["skipped"] is True
    assert "checked only after decryption" in detached["detail"]
    assert "origin of the package was checked only after decryption" in report["message"]
    text = run(package, "--no-detached-signature")[1]
    assert "[skipped] detached signature: not checked (--no-detached-signature)" in text
    assert "VERIFIED: " in text
    assert "origin of the package was checked only after decryption" in text.splitlines()[-1]


def test_signature_and_no_detached_signature_contradict(run: Run, genuine: BuiltPackage) -> None:
    code, _, err = run(
        genuine.path, "--signature", str(genuine.signature), "--no-detached-signature"
    )
    assert code == verify.EXIT_USAGE
    assert "contradict" in err


def test_out_keeps_the_verified_bag(
    run: Run, genuine: BuiltPackage, workdir: Callable[[], Path]
) -> None:
    out = workdir() / "out"
    code, report = run_json(run, genuine.path, "--out", str(out))
    assert code == 0
    bag_dir = out / CODE
    assert report["extracted_to"] == str(bag_dir)
    bagit.Bag(str(bag_dir)).validate()
    assert json.loads((bag_dir / "data" / "manifest.json").read_bytes())["package"]["code"] == CODE
    assert sorted(p.name for p in out.iterdir()) == [CODE]


def test_out_must_be_empty(run: Run, genuine: BuiltPackage, workdir: Callable[[], Path]) -> None:
    out = workdir()
    out.mkdir()
    (out / "something").write_text("keep me")
    code, _, err = run(genuine.path, "--out", str(out))
    assert code == verify.EXIT_USAGE
    assert "--out must be a missing or empty directory" in err
    assert (out / "something").read_text() == "keep me"


# --------------------------------------------------------------------------- usage


@pytest.mark.parametrize(
    "fpr", ["4DA66F21", SENDER_FPR + "00", "Z" * 40, ""], ids=["short", "long", "nonhex", "empty"]
)
def test_fingerprint_must_be_full(run: Run, genuine: BuiltPackage, fpr: str) -> None:
    code, _, err = run(genuine.path, fpr=fpr)
    assert code == verify.EXIT_USAGE
    assert "40 (or 64) hexadecimal digits" in err


def test_missing_files_are_usage_errors(
    run: Run, genuine: BuiltPackage, workdir: Callable[[], Path]
) -> None:
    missing = workdir() / "PKG-2026-0099.tar.gpg"
    code, _, err = run(missing)
    assert code == verify.EXIT_USAGE and "no such file" in err
    code, _, err = run(genuine.path, "--signature", str(missing) + ".sig")
    assert code == verify.EXIT_USAGE and "no such signature file" in err
    code, _, err = run(genuine.path, gnupghome=missing)
    assert code == verify.EXIT_USAGE and "no such keyring directory" in err


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        verify.main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for code in ("0 ", "2 ", "10 ", "11 ", "12 ", "13 ", "14 ", "15 ", "16 ", "17 "):
        assert f"\n  {code}" in text


# --------------------------------------------------------------------------- 10: signature


def test_flipped_byte_in_ciphertext_fails_the_detached_signature(
    run: Run, genuine: BuiltPackage, workdir: Callable[[], Path]
) -> None:
    dest = workdir()
    dest.mkdir()
    package = Path(shutil.copy(genuine.path, dest))
    shutil.copy(genuine.signature, dest)
    flip_byte(package)
    code, report = run_json(run, package)
    assert code == verify.EXIT_BAD_SIGNATURE
    check = failed_check(report)
    assert check["name"] == "detached_signature"
    assert "signature bad" in check["detail"]
    assert report["ok"] is False and report["package"] is None


def test_flipped_byte_without_detached_signature_is_caught_inside(
    run: Run, genuine: BuiltPackage, workdir: Callable[[], Path]
) -> None:
    dest = workdir()
    dest.mkdir()
    package = Path(shutil.copy(genuine.path, dest))
    flip_byte(package)
    code, report = run_json(run, package, "--no-detached-signature")
    # The cipher's integrity check (MDC) fails before any signature can be checked.
    assert code == verify.EXIT_CANNOT_DECRYPT
    assert failed_check(report)["name"] == "decryption"


def test_sender_key_missing_from_keyring(run: Run, genuine: BuiltPackage) -> None:
    with keyring(secret=(AUTHORITY,), public=()) as bare:
        code, out, _ = run(genuine.path, gnupghome=bare)
    assert code == verify.EXIT_BAD_SIGNATURE
    assert "the sender's public key 4DA6 6F21" in out
    assert "is not in the keyring" in out and "import it first" in out


def test_package_without_inline_signature(
    run: Run, genuine: BuiltPackage, sealer: FastSealer, workdir: Callable[[], Path]
) -> None:
    dest = workdir()
    dest.mkdir()
    plain = dest / "plain.tar"
    sealer.decrypt(genuine.path, plain, AUTHORITY)
    package = dest / genuine.path.name
    gpg_run(
        sealer.home,
        "--trust-model",
        "always",
        "--compress-algo",
        "none",
        "--encrypt",
        "-r",
        FINGERPRINTS[AUTHORITY],
        "--output",
        str(package),
        str(plain),
    )
    (dest / f"{package.name}.sig").write_bytes(sealer.detached(package, SENDER))
    code, report = run_json(run, package)
    assert code == verify.EXIT_BAD_SIGNATURE
    check = failed_check(report)
    assert check["name"] == "inline_signature"
    assert "no signature" in check["detail"]


# --------------------------------------------------------------------------- 11: wrong signer


def test_signed_by_an_unknown_key(
    run: Run, sealer: FastSealer, workdir: Callable[[], Path]
) -> None:
    built = build_package(workdir(), sealer=sealer, signed_by="SPR-ES")
    code, report = run_json(run, built.path)
    assert code == verify.EXIT_WRONG_SIGNER
    check = failed_check(report)
    assert check["name"] == "detached_signature"
    assert "not the pinned sender key" in check["detail"]


def test_signed_by_a_known_but_wrong_key(
    run: Run, sealer: FastSealer, workdir: Callable[[], Path]
) -> None:
    # The recipient's own key is in its keyring: gpg calls the signature good; the verifier
    # still refuses it because the fingerprint is not the pinned one.
    built = build_package(workdir(), sealer=sealer, signed_by=AUTHORITY)
    code, report = run_json(run, built.path)
    assert code == verify.EXIT_WRONG_SIGNER
    check = failed_check(report)
    assert FINGERPRINTS[AUTHORITY][:4] in check["detail"]
    assert "not by the pinned sender key" in check["detail"]


def test_inline_signature_by_another_key(
    run: Run, genuine: BuiltPackage, sealer: FastSealer, workdir: Callable[[], Path]
) -> None:
    """The detached signature is the mechanism's, but the content was signed by another."""
    built = repack(genuine, workdir(), lambda members: members, sealer=sealer, signed_by=AUTHORITY)
    built.signature.write_bytes(sealer.detached(built.path, SENDER))
    code, report = run_json(run, built.path)
    assert code == verify.EXIT_WRONG_SIGNER
    assert failed_check(report)["name"] == "inline_signature"


# --------------------------------------------------------------------------- 12: decrypt


def test_encrypted_to_another_authority(
    run: Run, sealer: FastSealer, workdir: Callable[[], Path]
) -> None:
    built = build_package(workdir(), sealer=sealer, encrypted_to=("SPR-ES",))
    code, report = run_json(run, built.path)
    assert code == verify.EXIT_CANNOT_DECRYPT
    check = failed_check(report)
    assert check["name"] == "decryption"
    assert "none of the keys it is encrypted to" in check["detail"]
    assert report["detached_signature_checked"] is True


# --------------------------------------------------------------------------- 13: bag


def _payload(members: Members, suffix: str) -> int:
    return next(i for i, (info, _) in enumerate(members) if info.name.endswith(suffix))


def test_modified_payload_file_fails_the_bag(
    run: Run, genuine: BuiltPackage, sealer: FastSealer, workdir: Callable[[], Path]
) -> None:
    def edit(members: Members) -> Members:
        index = _payload(members, "analysis.txt")
        info, data = members[index]
        members[index] = (info, data.replace(b"three", b"THREE"))
        return members

    built = repack(genuine, workdir(), edit, sealer=sealer)
    code, report = run_json(run, built.path)
    assert code == verify.EXIT_BAG_INVALID
    check = failed_check(report)
    assert check["name"] == "bag"
    assert "analysis.txt" in check["detail"]


def test_missing_payload_file_fails_the_bag(
    run: Run, genuine: BuiltPackage, sealer: FastSealer, workdir: Callable[[], Path]
) -> None:
    def edit(members: Members) -> Members:
        del members[_payload(members, "analysis.txt")]
        return members

    built = repack(genuine, workdir(), edit, sealer=sealer)
    code, report = run_json(run, built.path)
    assert code == verify.EXIT_BAG_INVALID
    assert failed_check(report)["name"] == "bag"


def test_bag_failing_after_extraction_leaves_an_existing_out_empty(
    run: Run, genuine: BuiltPackage, sealer: FastSealer, workdir: Callable[[], Path]
) -> None:
    """The bag reached --out (through its staging directory) before it failed: --out, which
    existed before, is kept but emptied."""

    def drop(members: Members) -> Members:
        return [entry for entry in members if not entry[0].name.endswith("analysis.txt")]

    dest = workdir()
    built = repack(genuine, dest / "pkg", drop, sealer=sealer)
    out = dest / "out"
    out.mkdir()
    code, report = run_json(run, built.path, "--out", str(out))
    assert code == verify.EXIT_BAG_INVALID, report
    assert [check["name"] for check in report["checks"]][-2:] == ["archive_safety", "bag"]
    assert out.is_dir() and list(out.iterdir()) == []


# --------------------------------------------------------------------------- 14: manifest


def _extra_field(manifest: dict[str, Any]) -> None:
    manifest["items"][0]["witness_name"] = "must never be here"


def _other_digest(manifest: dict[str, Any]) -> None:
    manifest["items"][1]["sha256"] = "0" * 64


def _swap_title(raw: bytes) -> bytes:
    return raw.replace(b"Satellite image", b"Satellite IMAGE")


@pytest.mark.parametrize(
    ("knobs", "check_name", "expected"),
    [
        ({"edit_manifest": _extra_field}, "manifest_schema", "is not an allowed field"),
        ({"manifest_signed_by": "SPR-ES"}, "manifest_signature", "not the pinned sender key"),
        ({"manifest_signed_by": AUTHORITY}, "manifest_signature", "not by the pinned sender"),
        ({"after_manifest_signed": _swap_title}, "manifest_signature", "signature bad"),
        ({"edit_manifest": _other_digest}, "cross_check", "has a different SHA-256"),
        (
            {"extra_payload": {"data/unlisted.txt": b"not in the manifest\n"}},
            "cross_check",
            "data/unlisted.txt is in the bag but not in the manifest",
        ),
    ],
    ids=["schema", "signed-by-unknown", "signed-by-other", "altered", "digest", "unlisted"],
)
def test_manifest_problems(
    run: Run,
    sealer: FastSealer,
    workdir: Callable[[], Path],
    knobs: dict[str, Any],
    check_name: str,
    expected: str,
) -> None:
    built = build_package(workdir(), sealer=sealer, **knobs)
    code, report = run_json(run, built.path)
    assert code == verify.EXIT_MANIFEST_INVALID, report
    check = failed_check(report)
    assert check["name"] == check_name
    assert expected in check["detail"]


def test_manifest_of_another_package(
    run: Run, sealer: FastSealer, workdir: Callable[[], Path]
) -> None:
    def other_code(manifest: dict[str, Any]) -> None:
        manifest["package"]["code"] = "PKG-2026-0002"

    built = build_package(workdir(), sealer=sealer, edit_manifest=other_code)
    code, report = run_json(run, built.path)
    assert code == verify.EXIT_MANIFEST_INVALID
    assert "names package PKG-2026-0002" in failed_check(report)["detail"]


# --------------------------------------------------------------------------- 15: unsafe


def _append(*extra: tuple[tarfile.TarInfo, bytes]) -> Callable[[Members], Members]:
    return lambda members: [*members, *extra]


def _oversize(members: Members) -> Members:
    bag_info = members[_payload(members, "bag-info.txt")][1].decode()
    oxum_bytes = int(bag_info.split("Payload-Oxum: ")[1].split(".")[0])
    index = _payload(members, "analysis.txt")
    info, _ = members[index]
    big = b"x" * (oxum_bytes + 1)
    info.size = len(big)
    members[index] = (info, big)
    return members


def _duplicate(members: Members) -> Members:
    return [*members, members[_payload(members, "analysis.txt")]]


UNSAFE: dict[str, tuple[Callable[[Members], Members], str]] = {
    "dotdot": (_append(member("../x", b"x")), "climbs out of the bag"),
    "dotdot-inside": (_append(member(f"{CODE}/data/../../x", b"x")), "climbs out of the bag"),
    "absolute": (_append(member("/etc/x", b"x")), "is an absolute path"),
    "symlink": (
        _append(member(f"{CODE}/data/link", kind=tarfile.SYMTYPE, linkname="/etc/passwd")),
        "is a symbolic link",
    ),
    "hardlink": (
        _append(member(f"{CODE}/data/hard", kind=tarfile.LNKTYPE, linkname=f"{CODE}/bagit.txt")),
        "is a hard link",
    ),
    "device": (
        _append(member(f"{CODE}/data/null", kind=tarfile.CHRTYPE, devmajor=1, devminor=3)),
        "is a device file",
    ),
    "fifo": (_append(member(f"{CODE}/data/pipe", kind=tarfile.FIFOTYPE)), "is a FIFO"),
    "outside-bag": (_append(member("OTHER/data/x", b"x")), "is outside the bag directory"),
    "duplicate": (_duplicate, "appears twice"),
    "oversize": (_oversize, "more than the whole payload announced by Payload-Oxum"),
    "unannounced": (
        _append(member(f"{CODE}/data/smuggled.txt", b"x")),
        "is not announced in manifest-sha256.txt",
    ),
}


@pytest.mark.parametrize("case", list(UNSAFE))
def test_unsafe_archives_are_refused(
    run: Run,
    genuine: BuiltPackage,
    sealer: FastSealer,
    workdir: Callable[[], Path],
    case: str,
) -> None:
    edit, expected = UNSAFE[case]
    dest = workdir()
    built = repack(genuine, dest / "pkg", edit, sealer=sealer)
    out = dest / "sandbox" / "out"
    code, report = run_json(run, built.path, "--out", str(out))
    assert code == verify.EXIT_UNSAFE_ARCHIVE, report
    check = failed_check(report)
    assert check["name"] == "archive_safety"
    assert expected in check["detail"]
    # Nothing was extracted anywhere: --out is removed again, nothing landed beside it.
    assert not out.exists()
    assert list((dest / "sandbox").iterdir()) == []


def test_not_a_tar_at_all(run: Run, sealer: FastSealer, workdir: Callable[[], Path]) -> None:
    dest = workdir()
    dest.mkdir()
    plain = dest / "plain.bin"
    plain.write_bytes(b"this is not a tar archive\n" * 100)
    package = dest / f"{CODE}.tar.gpg"
    sealer.seal(lambda out: out.write(plain.read_bytes()), SENDER, (AUTHORITY,), package)
    (dest / f"{package.name}.sig").write_bytes(sealer.detached(package, SENDER))
    code, report = run_json(run, package)
    assert code == verify.EXIT_UNSAFE_ARCHIVE
    assert "not a readable tar archive" in failed_check(report)["detail"]


def test_member_writer_round_trips(tmp_path: Path) -> None:
    """The hostile-archive writer really writes what the cases above claim."""
    path = tmp_path / "t.tar"
    with path.open("wb") as out:
        write_members(
            out, [member("../x", b"x"), member("a/l", kind=tarfile.SYMTYPE, linkname="/")]
        )
    with tarfile.open(path) as tar:
        names = [(m.name, m.type) for m in tar]
    assert names == [("../x", tarfile.REGTYPE), ("a/l", tarfile.SYMTYPE)]


# --------------------------------------------------------------------------- signing subkeys

SUBKEY_DATA = REPO / "tests" / "data" / "verify"  # made once by generate.sh there
SUBKEY_PRIMARY, SUBKEY_SIGNING, _SUBKEY_ENCRYPTION = (
    (SUBKEY_DATA / "subkey-signer.fingerprints").read_text("ascii").split()
)


def test_signature_by_a_signing_subkey_counts_for_its_primary_key(
    run: Run, sealer: FastSealer, workdir: Callable[[], Path]
) -> None:
    sealer.add_key("subkey-signer", SUBKEY_DATA / "subkey-signer.sec.asc", SUBKEY_PRIMARY)
    built = build_package(workdir(), sealer=sealer, signed_by="subkey-signer")
    public = SUBKEY_DATA / "subkey-signer.pub.asc"
    with keyring(secret=(AUTHORITY,), public=(), files=(public,)) as subkey_home:
        status = gpg_run(
            subkey_home, "--status-fd", "1", "--verify", str(built.signature), str(built.path)
        ).stdout.decode()
        validsig = next(line for line in status.splitlines() if " VALIDSIG " in line).split()
        assert (validsig[2], validsig[-1]) == (SUBKEY_SIGNING, SUBKEY_PRIMARY)  # made by the subkey

        code, out, _ = run(built.path, fpr=SUBKEY_PRIMARY, gnupghome=subkey_home)
        assert code == 0, out
        assert "VERIFIED" in out

        code, out, _ = run(built.path, fpr=SUBKEY_SIGNING, gnupghome=subkey_home)
        assert code == verify.EXIT_USAGE
        assert "is a subkey of the key" in out and "pin the primary key's fingerprint" in out


def test_package_also_encrypted_to_the_archive_key(
    run: Run, sealer: FastSealer, workdir: Callable[[], Path]
) -> None:
    """The recipient lacks the archive key's secret half: gpg says so, and that is fine."""
    built = build_package(workdir(), sealer=sealer, encrypted_to=(AUTHORITY, "mechanism-archive"))
    code, report = run_json(run, built.path)
    assert code == 0, report
    assert report["package"]["recipient_fingerprints"] == [
        FINGERPRINTS[AUTHORITY],
        FINGERPRINTS["mechanism-archive"],
    ]


EXPIRED_SIGNER = (SUBKEY_DATA / "expired-signer.fingerprint").read_text("ascii").strip()


def test_signature_made_before_the_sender_key_expired_still_verifies(
    run: Run, sealer: FastSealer, workdir: Callable[[], Path]
) -> None:
    """Packages are checked years later: a key valid only in 2020 signed this in June 2020."""
    sealer.add_key("expired-signer", SUBKEY_DATA / "expired-signer.sec.asc", EXPIRED_SIGNER)
    sealer.faked_time = "20200601T000000"
    try:
        built = build_package(workdir(), sealer=sealer, signed_by="expired-signer")
    finally:
        sealer.faked_time = None
    public = SUBKEY_DATA / "expired-signer.pub.asc"
    with keyring(secret=(AUTHORITY,), public=(), files=(public,)) as expired_home:
        code, report = run_json(run, built.path, gnupghome=expired_home, fpr=EXPIRED_SIGNER)
    assert code == 0, report
    notes = [check["detail"] for check in report["checks"] if "signature" in check["name"]]
    assert len(notes) == 4  # package (detached, inline), manifest, decision record
    assert all("made on 2020-06-01, before the key expired on 2020-12-31" in n for n in notes)
