"""The package file's detached signature made from the ciphertext's kept sha256 state by
gpg-agent (:mod:`portal.packages.assembly.agent_signature`), checked with the stock tools:
``gpg --verify`` and ``sq verify``; for the example Ed25519 key, a generated RSA key, and a
key the agent path does not handle (ECDSA), which falls back to ``gpg --detach-sign``."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
from pathlib import Path
from typing import BinaryIO

import pytest

from portal.packages.assembly.agent_signature import (
    AgentSignatureUnavailable,
    sign_digest_state,
    signing_key,
)
from portal.packages.assembly.gpgstream import (
    Recipient,
    Signer,
    load_signer,
    sealer,
    verify_detached,
)
from portal.registry.openpgp import temporary_keyring

KEYS = Path(__file__).resolve().parents[2] / "keys_example"
FPR: dict[str, str] = json.loads((KEYS / "fingerprints.json").read_text("utf-8"))
FALLBACK = "instead of its agent"


def _recipient() -> Recipient:
    return Recipient(FPR["NWU-NL"], (KEYS / "NWU-NL.pub.asc").read_text())


def _generated(tmp: Path, algo: str, passphrase: str) -> tuple[Signer, str]:
    """A fresh signing key of ``algo`` (gpg --quick-gen-key), its Signer and public key."""
    with temporary_keyring() as gpg:
        home = gpg.gnupghome
        (Path(home) / "gpg-agent.conf").write_text("s2k-count 65536\n")  # no calibration
        base = ["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback"]
        subprocess.run(
            [*base, "--passphrase", passphrase, "--quick-gen-key", f"Test {algo} <t@example>",
             algo, "sign", "never"],
            check=True, capture_output=True,
        )  # fmt: skip
        listing = subprocess.run(
            [*base, "--with-colons", "--list-secret-keys"], check=True, capture_output=True,
            text=True,
        ).stdout  # fmt: skip
        fingerprint = next(ln.split(":")[9] for ln in listing.splitlines() if ln.startswith("fpr"))
        secret = subprocess.run(
            [*base, "--passphrase", passphrase, "--armor", "--export-secret-keys", fingerprint],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        public = subprocess.run(
            [*base, "--armor", "--export", fingerprint], check=True, capture_output=True, text=True
        ).stdout
    (tmp / "pass").write_text(passphrase)
    (tmp / "key.asc").write_text(secret)
    return load_signer(tmp / "key.asc", tmp / "pass"), public


def _stock_tools_verify(data: Path, signature: bytes, public: str, tmp: Path) -> None:
    """gpg --verify and sq verify, both as a recipient would run them."""
    sig, cert = tmp / f"{data.name}.sig", tmp / "signer.pub.asc"
    sig.write_bytes(signature)
    cert.write_text(public)
    with temporary_keyring() as gpg:
        home = gpg.gnupghome
        subprocess.run(["gpg", "--homedir", home, "--batch", "--import", str(cert)],
                       check=True, capture_output=True)  # fmt: skip
        done = subprocess.run(
            ["gpg", "--homedir", home, "--batch", "--status-fd", "1", "--verify", str(sig),
             str(data)], capture_output=True, text=True, check=False,
        )  # fmt: skip
    assert done.returncode == 0 and "[GNUPG:] GOODSIG " in done.stdout, done.stderr
    sq = subprocess.run(
        ["sq", "verify", "--signer-cert", str(cert), "--detached", str(sig), str(data)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert sq.returncode == 0, sq.stderr


def _seal(signer: Signer, out: Path, data: bytes) -> tuple[str, bytes]:
    def write(stream: BinaryIO) -> None:
        stream.write(data)

    with sealer(signer, [_recipient()]) as seal:
        _, digest, _, signature = seal.sign_encrypt_and_detach(write, out)
    return digest, signature


def _signature_packet_tag(armored: bytes) -> int:
    import base64

    lines = armored.decode("ascii").splitlines()
    body = "".join(line for line in lines[2:] if line and not line.startswith(("=", "-----")))
    return base64.b64decode(body)[0]


@pytest.mark.parametrize("kind", ["ed25519-example", "rsa2048", "nistp256"])
def test_package_signature_verifies_with_stock_tools(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if kind == "ed25519-example":
        signer = load_signer(KEYS / "mechanism-signing.sec.asc",
                             KEYS / "mechanism-signing.passphrase")  # fmt: skip
        public = (KEYS / "mechanism-signing.pub.asc").read_text()
    else:
        signer, public = _generated(tmp_path, kind, "correct horse % battery")
    out = tmp_path / "PKG.tar.gpg"
    data = os.urandom(1_500_000)
    with caplog.at_level(logging.WARNING):
        digest, signature = _seal(signer, out, data)
    assert digest == hashlib.sha256(out.read_bytes()).hexdigest()
    verify_detached(out, signature, public, signer.fingerprint)
    _stock_tools_verify(out, signature, public, tmp_path)
    agent_made = _signature_packet_tag(signature) == 0xC2  # new-format header: built here
    if kind == "nistp256":  # not handled by the agent path: gpg signed instead
        assert FALLBACK in caplog.text and not agent_made
    else:
        assert FALLBACK not in caplog.text and agent_made
    tampered = tmp_path / "tampered.gpg"
    tampered.write_bytes(out.read_bytes()[:-1] + bytes([out.read_bytes()[-1] ^ 1]))
    with pytest.raises(AssertionError):
        _stock_tools_verify(tampered, signature, public, tmp_path)


def test_agent_asks_for_the_passphrase_and_refuses_a_wrong_one(tmp_path: Path) -> None:
    """A fresh keyring's agent has no cached passphrase: it inquires (loopback), and a wrong
    answer is an error (the caller then falls back), not a hang or a bad signature."""
    signer = load_signer(KEYS / "mechanism-signing.sec.asc", KEYS / "mechanism-signing.passphrase")
    data = b"evidence\n" * 1000
    (tmp_path / "data").write_bytes(data)
    with sealer(signer, [_recipient()]) as seal:
        home = seal._gpg.gnupghome
        key = signing_key(home, signer.fingerprint, 22)
        with pytest.raises(AgentSignatureUnavailable, match="refused"):
            sign_digest_state(home, key, hashlib.sha256(data), "wrong passphrase")
        signature = sign_digest_state(home, key, hashlib.sha256(data), signer.passphrase)
    public = (KEYS / "mechanism-signing.pub.asc").read_text()
    _stock_tools_verify(tmp_path / "data", signature, public, tmp_path)
    with pytest.raises(AgentSignatureUnavailable):
        signing_key("/nonexistent", signer.fingerprint, 19)  # ECDSA: not handled here
