"""Streaming sign+encrypt, detached signatures and clearsigning with the real gpg and the
example keys (their secret halves let the tests decrypt and check who signed)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tracemalloc
from pathlib import Path
from typing import BinaryIO

import pytest

from portal.packages.assembly.gpgstream import (
    GpgError,
    Recipient,
    Signer,
    clearsign,
    detached_signature,
    load_signer,
    sealer,
    sign_and_encrypt,
    sign_encrypt_and_detach,
    signer_public_key,
    verify_detached,
)
from portal.registry.openpgp import temporary_keyring

REPO = Path(__file__).resolve().parents[2]
KEYS = REPO / "keys_example"
BAD_KEYS = Path(__file__).resolve().parents[1] / "data" / "keys"
FPR: dict[str, str] = json.loads((KEYS / "fingerprints.json").read_text("utf-8"))
PASSPHRASE = (KEYS / "mechanism-signing.passphrase").read_text().strip()


def recipient(name: str) -> Recipient:
    return Recipient(FPR[name], (KEYS / f"{name}.pub.asc").read_text())


@pytest.fixture(scope="module")
def signer() -> Signer:
    return load_signer(KEYS / "mechanism-signing.sec.asc", KEYS / "mechanism-signing.passphrase")


def decrypt(path: Path, key_name: str, dest: Path) -> tuple[bool, str | None, str]:
    """Decrypt with one example secret key; (ok, primary fingerprint of the signer, status)."""
    with temporary_keyring() as gpg:
        subprocess.run(
            [
                "gpg",
                "--homedir",
                gpg.gnupghome,
                "--batch",
                "--import",
                str(KEYS / f"{key_name}.sec.asc"),
                str(KEYS / "mechanism-signing.pub.asc"),
            ],
            capture_output=True,
            check=True,
        )
        result = gpg.decrypt_file(str(path), output=str(dest))
    return bool(result.ok), result.pubkey_fingerprint, str(result.status)


def write_bytes(data: bytes) -> object:
    def producer(out: BinaryIO) -> str:
        out.write(data)
        return "producer result"

    return producer


def leftovers(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def test_round_trip_to_two_recipients(tmp_path: Path, signer: Signer) -> None:
    data = os.urandom(300_000) + b"\0" * 1_000_000  # the zeros would shrink if compressed
    out = tmp_path / "out" / "PKG.tar.gpg"

    value, digest, size = sign_and_encrypt(
        write_bytes(data),  # type: ignore[arg-type]
        [recipient("NWU-NL"), recipient("mechanism-archive")],
        signer,
        out,
    )

    assert value == "producer result"
    assert size == out.stat().st_size > len(data)  # --compress-algo none
    assert digest == hashlib.sha256(out.read_bytes()).hexdigest()
    assert leftovers(out.parent) == ["PKG.tar.gpg"]  # no temp file left beside it
    for key_name in ("NWU-NL", "mechanism-archive"):
        plain = tmp_path / f"{key_name}.tar"
        ok, by, status = decrypt(out, key_name, plain)
        assert ok, status
        assert by == FPR["mechanism-signing"] == signer.fingerprint
        assert plain.read_bytes() == data
    ok, _, status = decrypt(out, "ECT-EV", tmp_path / "other.tar")
    assert not ok and status in {"decryption failed", "no secret key"}


def test_the_signature_inside_hashes_with_sha256(tmp_path: Path, signer: Signer) -> None:
    """gpg would take SHA-512 from the keys' preferences (slower per byte here); the package's
    inner signature is made with SHA-256 (hash algorithm 8), which every OpenPGP tool checks."""
    out = tmp_path / "PKG.tar.gpg"
    sign_and_encrypt(write_bytes(b"payload " * 1000), [recipient("NWU-NL")], signer, out)  # type: ignore[arg-type]
    with temporary_keyring() as gpg:
        home = gpg.gnupghome
        for name in ("NWU-NL.sec.asc", "mechanism-signing.pub.asc"):
            subprocess.run(["gpg", "--homedir", home, "--batch", "--import", str(KEYS / name)],
                           capture_output=True, check=True)  # fmt: skip
        done = subprocess.run(
            ["gpg", "--homedir", home, "--batch", "--status-fd", "1", "--output", os.devnull,
             "--decrypt", str(out)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    valid = [line.split()[2:] for line in done.stdout.splitlines() if " VALIDSIG " in line]
    assert len(valid) == 1 and valid[0][0] == signer.fingerprint
    assert valid[0][7] == "8"  # SHA256 (RFC 4880 9.4)


def test_load_signer_reads_key_and_passphrase(signer: Signer) -> None:
    assert signer.fingerprint == FPR["mechanism-signing"]
    assert signer.passphrase == PASSPHRASE
    assert PASSPHRASE not in repr(signer) and "PRIVATE" not in repr(signer)
    unprotected = load_signer(KEYS / "NWU-NL.sec.asc", None)
    assert unprotected.fingerprint == FPR["NWU-NL"] and unprotected.passphrase is None


def test_load_signer_refusals(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.passphrase"
    wrong.write_text("not the passphrase\n")
    garbage = tmp_path / "garbage.asc"
    garbage.write_text("hello")
    binary = tmp_path / "binary.asc"
    binary.write_bytes(b"\xff\xfe\x00")
    cases = [
        (tmp_path / "missing.asc", None, "does not exist"),
        (KEYS / "mechanism-signing.sec.asc", tmp_path / "missing", "does not exist"),
        (KEYS / "mechanism-signing.pub.asc", None, "exactly one secret key"),
        (garbage, None, r"could not be imported|exactly one secret key"),
        (binary, None, "not text"),
        (KEYS / "mechanism-signing.sec.asc", wrong, "passphrase was not accepted"),
        (KEYS / "mechanism-signing.sec.asc", None, "needs a passphrase"),
    ]
    for key_file, passphrase_file, message in cases:
        with pytest.raises(GpgError, match=message) as caught:
            load_signer(key_file, passphrase_file)
        assert PASSPHRASE not in str(caught.value)


def test_wrong_passphrase_fails_and_leaves_nothing(tmp_path: Path, signer: Signer) -> None:
    bad = Signer(signer.secret_key_armored, "wrong passphrase", signer.fingerprint)
    out = tmp_path / "PKG.tar.gpg"
    with pytest.raises(GpgError, match="passphrase") as caught:
        sign_and_encrypt(write_bytes(os.urandom(2_000_000)), [recipient("NWU-NL")], bad, out)  # type: ignore[arg-type]
    assert "wrong passphrase" not in str(caught.value) and PASSPHRASE not in str(caught.value)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: _key_file_recipient(BAD_KEYS / "expired.pub.asc"),
            r"cannot be used for encryption|expired",
        ),
        (lambda: _key_file_recipient(BAD_KEYS / "signonly.pub.asc"), "cannot be used"),
        (lambda: Recipient(FPR["NWU-NL"], "-----BEGIN PGP garbage"), "could not be imported"),
        (
            lambda: Recipient(FPR["SPR-ES"], (KEYS / "NWU-NL.pub.asc").read_text()),
            "could not be imported",
        ),
        (lambda: Recipient("NWU-NL", "x"), "not a full fingerprint"),
    ],
)
def test_bad_recipients_fail_and_leave_nothing(
    tmp_path: Path, signer: Signer, make: object, message: str
) -> None:
    out = tmp_path / "PKG.tar.gpg"
    with pytest.raises(GpgError, match=message):
        sign_and_encrypt(write_bytes(os.urandom(3_000_000)), [make()], signer, out)  # type: ignore[operator, arg-type]
    assert leftovers(tmp_path) == []


def _key_file_recipient(path: Path) -> Recipient:
    with temporary_keyring() as gpg:
        fingerprint = gpg.import_keys(path.read_text()).fingerprints[0]
    return Recipient(fingerprint, path.read_text())


def test_no_recipients_refused(tmp_path: Path, signer: Signer) -> None:
    with pytest.raises(GpgError, match="no recipient"):
        sign_and_encrypt(write_bytes(b"x"), [], signer, tmp_path / "p")  # type: ignore[arg-type]


def test_producer_error_propagates_and_leaves_nothing(tmp_path: Path, signer: Signer) -> None:
    class Boom(Exception):
        pass

    def producer(out: BinaryIO) -> None:
        out.write(os.urandom(500_000))
        raise Boom("payload file vanished")

    with pytest.raises(Boom):
        sign_and_encrypt(producer, [recipient("NWU-NL")], signer, tmp_path / "p.gpg")
    assert leftovers(tmp_path) == []


def test_existing_out_path_is_replaced_only_on_success(tmp_path: Path, signer: Signer) -> None:
    out = tmp_path / "p.gpg"
    out.write_bytes(b"previous")
    bad = Signer(signer.secret_key_armored, "wrong", signer.fingerprint)
    with pytest.raises(GpgError):
        sign_and_encrypt(write_bytes(b"abc"), [recipient("NWU-NL")], bad, out)  # type: ignore[arg-type]
    assert leftovers(tmp_path) == ["p.gpg"]  # a failed run removes nothing it did not make


def test_64_mb_stream_keeps_memory_flat(tmp_path: Path, signer: Signer) -> None:
    block = os.urandom(1 << 20)
    expected = hashlib.sha256()
    for _ in range(64):
        expected.update(block)

    def producer(out: BinaryIO) -> int:
        for _ in range(64):
            out.write(block)
        return 64 << 20

    out = tmp_path / "big.gpg"
    tracemalloc.start()
    try:
        value, _, size = sign_and_encrypt(producer, [recipient("NWU-NL")], signer, out)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert value == 64 << 20 and size > 64 << 20
    assert peak < 8 * 1024 * 1024, peak
    plain = tmp_path / "big.tar"
    ok, by, _ = decrypt(out, "NWU-NL", plain)
    assert ok and by == signer.fingerprint
    actual = hashlib.sha256()
    with plain.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            actual.update(chunk)
    assert actual.hexdigest() == expected.hexdigest()


def test_detached_signature_verifies_only_for_the_pinned_signer(
    tmp_path: Path, signer: Signer
) -> None:
    data = tmp_path / "PKG.tar.gpg"
    data.write_bytes(os.urandom(200_000))
    signature = detached_signature(data, signer)
    assert signature.startswith(b"-----BEGIN PGP SIGNATURE-----")
    public = signer_public_key(signer)
    assert "PUBLIC KEY BLOCK" in public and "PRIVATE" not in public

    verify_detached(data, signature, public, signer.fingerprint)

    other = load_signer(KEYS / "NWU-NL.sec.asc", None)
    other_signature = detached_signature(data, other)
    other_public = (KEYS / "NWU-NL.pub.asc").read_text()
    with pytest.raises(GpgError, match=r"not good|could not be imported"):
        verify_detached(data, other_signature, public, signer.fingerprint)
    with pytest.raises(GpgError, match="made by"):  # good signature, wrong signer
        verify_detached(data, other_signature, public + other_public, signer.fingerprint)
    with pytest.raises(GpgError, match="could not be imported"):
        verify_detached(data, other_signature, other_public, FPR["mechanism-signing"][:-1] + "0")

    tampered = bytearray(data.read_bytes())
    tampered[1000] ^= 1
    data.write_bytes(bytes(tampered))
    with pytest.raises(GpgError, match="not good"):
        verify_detached(data, signature, public, signer.fingerprint)
    with pytest.raises(GpgError, match="not good"):
        verify_detached(data, b"garbage", public, signer.fingerprint)


def test_clearsign_utf8_text(tmp_path: Path, signer: Signer) -> None:
    text = "Recall notice — PKG-2026-0001: please return or destroy. Ünïcödé.\n"
    signed = clearsign(text, signer)
    assert signed.startswith("-----BEGIN PGP SIGNED MESSAGE-----")
    assert text.strip() in signed
    path = tmp_path / "notice.asc"
    path.write_text(signed, encoding="utf-8")
    with temporary_keyring() as gpg:
        gpg.import_keys((KEYS / "mechanism-signing.pub.asc").read_text())
        result = gpg.verify_file(str(path))
    assert result.valid and result.pubkey_fingerprint == signer.fingerprint


def test_detached_signature_made_while_encrypting(tmp_path: Path, signer: Signer) -> None:
    out = tmp_path / "PKG.tar.gpg"
    data = os.urandom(3_000_000)
    value, digest, size, signature = sign_encrypt_and_detach(
        write_bytes(data),  # type: ignore[arg-type]
        [recipient("NWU-NL")],
        signer,
        out,
    )
    assert value == "producer result"
    assert (digest, size) == (hashlib.sha256(out.read_bytes()).hexdigest(), out.stat().st_size)
    public = (KEYS / "mechanism-signing.pub.asc").read_text()
    verify_detached(out, signature, public, signer.fingerprint)
    ok, by, _ = decrypt(out, "NWU-NL", tmp_path / "plain")
    assert ok and by == signer.fingerprint and (tmp_path / "plain").read_bytes() == data

    bad = Signer(signer.secret_key_armored, "wrong", signer.fingerprint)
    with pytest.raises(GpgError, match="passphrase"):
        sign_encrypt_and_detach(write_bytes(data), [recipient("NWU-NL")], bad, tmp_path / "b")  # type: ignore[arg-type]
    assert not (tmp_path / "b").exists()


def test_one_sealer_signs_the_manifest_and_seals_the_package(
    tmp_path: Path, signer: Signer
) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(b'{"package": "PKG-2026-0001"}\n')
    out = tmp_path / "PKG.tar.gpg"
    data = os.urandom(2_000_000)
    with sealer(signer, [recipient("NWU-NL")]) as seal:
        home = Path(seal._gpg.gnupghome)
        manifest_signature = seal.detached_signature(manifest)
        _, digest, _, signature = seal.sign_encrypt_and_detach(write_bytes(data), out)  # type: ignore[arg-type]
        again = seal.detached_signature(manifest)  # the keyring is still usable
    assert not home.exists()  # removed (agent ended) when the block ends
    public = (KEYS / "mechanism-signing.pub.asc").read_text()
    verify_detached(manifest, manifest_signature, public, signer.fingerprint)
    verify_detached(manifest, again, public, signer.fingerprint)
    verify_detached(out, signature, public, signer.fingerprint)
    assert digest == hashlib.sha256(out.read_bytes()).hexdigest()
    ok, by, _ = decrypt(out, "NWU-NL", tmp_path / "plain")
    assert ok and by == signer.fingerprint and (tmp_path / "plain").read_bytes() == data
    with pytest.raises(GpgError, match="no recipient"), sealer(signer, []):
        pass
    bad = Signer(signer.secret_key_armored, "wrong", signer.fingerprint)
    with sealer(bad, [recipient("NWU-NL")]) as seal, pytest.raises(GpgError, match="passphrase"):
        seal.detached_signature(manifest)
