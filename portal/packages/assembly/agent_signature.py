"""A detached OpenPGP signature made from a sha256 state already computed, signed by gpg-agent.

The package file is hashed (sha256) as gpg writes it; a second gpg would read all of it again
(a gigabyte through a pipe, and its own hash) only to sign the same digest. Instead the
signature packet is built here and only its final hash goes to the agent of the package's
temporary keyring, which holds the signing key:

- a version 4 signature packet (RFC 4880 §5.2.3, RFC 9580 §5.2.3) of type 0x00 (binary
  document), hash algorithm SHA-256, hashed subpackets *signature creation time* (2) and
  *issuer fingerprint* (33), unhashed subpacket *issuer key ID* (16);
- the hash is the data's sha256 state (``hashlib`` ``.copy()``), updated with the packet's
  hashed part (version through hashed subpackets) and the v4 trailer ``0x04 0xFF`` + its
  length (four octets, big-endian) (RFC 4880 §5.2.4);
- the agent signs it (Assuan on its socket: ``SIGKEY`` keygrip, ``SETHASH 8 <hex>``,
  ``PKSIGN``; a passphrase inquiry is answered in loopback mode, as gpg does), and its
  S-expression becomes the algorithm's MPIs: ``s`` for RSA, ``r`` and ``s`` for EdDSA (the
  legacy algorithm 22 of v4 keys, MPIs with leading zero octets stripped, as gpg writes them);
- the packet (new-format header, tag 2) is ASCII-armored like ``gpg --armor`` (RFC 4880 §6).

Only v4 keys with RSA (1) or EdDSA (22) signing keys are handled; anything else (or any
answer of the agent that is not what is expected) raises :class:`AgentSignatureUnavailable`
and the caller signs with gpg instead. Nothing here logs, and no error message holds the
passphrase.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

__all__ = ["AgentSignatureUnavailable", "SigningKey", "armor_signature", "sign_digest_state"]

_PK_RSA = 1
_PK_EDDSA = 22
_HASH_SHA256 = 8
_SIG_BINARY = 0x00
_SUB_CREATED, _SUB_ISSUER, _SUB_ISSUER_FPR = 2, 16, 33
_GRIP = re.compile(r"[0-9A-F]{40}")
_TIMEOUT = 30.0


class AgentSignatureUnavailable(Exception):
    """The agent could not make the signature here; sign with gpg instead (the reason says why,
    never a passphrase)."""


@dataclass(frozen=True)
class SigningKey:
    """The (sub)key that signs: its v4 fingerprint, public-key algorithm and agent keygrip."""

    fingerprint: str
    algorithm: int
    keygrip: str


# --------------------------------------------------------------------------- packet


def _subpacket(kind: int, body: bytes) -> bytes:
    length = 1 + len(body)
    if length >= 192:
        raise AgentSignatureUnavailable("subpacket too long")
    return bytes([length, kind]) + body


def _new_length(length: int) -> bytes:
    """RFC 4880 §4.2.2 new-format body length."""
    if length < 192:
        return bytes([length])
    if length < 8384:
        length -= 192
        return bytes([(length >> 8) + 192, length & 0xFF])
    return b"\xff" + length.to_bytes(4, "big")


def _mpi(value: bytes) -> bytes:
    """An MPI (RFC 4880 §3.2) of the big-endian octets ``value``, leading zeros stripped."""
    value = value.lstrip(b"\0")
    bits = (len(value) - 1) * 8 + value[0].bit_length() if value else 0
    return bits.to_bytes(2, "big") + value


def hashed_part(key: SigningKey, created: int) -> bytes:
    """The signature packet from its version octet through its hashed subpackets."""
    fingerprint = bytes.fromhex(key.fingerprint)
    subpackets = _subpacket(_SUB_CREATED, created.to_bytes(4, "big")) + _subpacket(
        _SUB_ISSUER_FPR, b"\x04" + fingerprint
    )
    head = bytes([4, _SIG_BINARY, key.algorithm, _HASH_SHA256])
    return head + len(subpackets).to_bytes(2, "big") + subpackets


def final_digest(state: hashlib._Hash, hashed: bytes) -> bytes:
    """The digest to sign: the data's state, then the hashed part and the v4 trailer."""
    digest = state.copy()
    digest.update(hashed)
    digest.update(b"\x04\xff" + len(hashed).to_bytes(4, "big"))
    return digest.digest()


def signature_packet(key: SigningKey, hashed: bytes, digest: bytes, mpis: bytes) -> bytes:
    unhashed = _subpacket(_SUB_ISSUER, bytes.fromhex(key.fingerprint)[-8:])
    body = hashed + len(unhashed).to_bytes(2, "big") + unhashed + digest[:2] + mpis
    return b"\xc2" + _new_length(len(body)) + body


def _crc24(data: bytes) -> int:
    crc = 0xB704CE
    for octet in data:
        crc ^= octet << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def armor_signature(packet: bytes) -> bytes:
    """``packet`` as an ASCII-armored signature, as ``gpg --armor`` writes one."""
    text = base64.b64encode(packet).decode("ascii")
    lines = [text[index : index + 64] for index in range(0, len(text), 64)]
    checksum = base64.b64encode(_crc24(packet).to_bytes(3, "big")).decode("ascii")
    body = "\n".join(["-----BEGIN PGP SIGNATURE-----", "", *lines, f"={checksum}",
                      "-----END PGP SIGNATURE-----"])  # fmt: skip
    return (body + "\n").encode("ascii")


# --------------------------------------------------------------------------- key lookup


def signing_key(home: str, fingerprint: str, algorithm: int) -> SigningKey:
    """The keygrip of the (sub)key ``fingerprint`` in the keyring ``home`` (the key gpg just
    signed the package with, from its SIG_CREATED status line)."""
    fingerprint = fingerprint.upper()
    if len(fingerprint) != 40 or algorithm not in (_PK_RSA, _PK_EDDSA):
        raise AgentSignatureUnavailable("only v4 RSA and EdDSA signing keys are signed here")
    listing = _run(
        ["gpg", "--homedir", home, "--batch", "--no-tty", "--with-colons", "--with-keygrip",
         "--list-secret-keys", fingerprint]
    )  # fmt: skip
    last_fpr = None
    for line in listing.splitlines():
        fields = line.split(":")
        if fields[0] == "fpr":
            last_fpr = fields[9].upper()
        elif fields[0] == "grp" and last_fpr == fingerprint and _GRIP.fullmatch(fields[9]):
            return SigningKey(fingerprint, algorithm, fields[9])
    raise AgentSignatureUnavailable("the signing key's keygrip is not listed")


def _run(argv: list[str]) -> str:
    program = shutil.which(argv[0])
    if program is None:
        raise AgentSignatureUnavailable(f"{argv[0]} is not installed")
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [program, *argv[1:]], capture_output=True, timeout=_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise AgentSignatureUnavailable(f"could not run {argv[0]}: {exc}") from None
    if done.returncode != 0:
        raise AgentSignatureUnavailable(f"{argv[0]} failed with status {done.returncode}")
    return done.stdout.decode("utf-8", "replace")


# --------------------------------------------------------------------------- agent


class _Assuan:
    """A minimal Assuan client (the protocol gpg and gpg-connect-agent speak to the agent)."""

    def __init__(self, path: str) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(_TIMEOUT)
        try:
            self._sock.connect(path)
        except OSError as exc:
            self._sock.close()
            raise AgentSignatureUnavailable(f"cannot reach the agent: {exc.strerror}") from None
        self._file = self._sock.makefile("rwb", buffering=0)
        self._expect_ok()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.write(b"BYE\n")
        self._file.close()
        self._sock.close()

    def _line(self) -> bytes:
        line = self._file.readline(4096)
        if not line.endswith(b"\n"):
            raise AgentSignatureUnavailable("the agent closed the connection")
        return line.rstrip(b"\n")

    def _expect_ok(self, passphrase: str | None = None) -> bytes:
        data = bytearray()
        while True:
            line = self._line()
            if line == b"OK" or line.startswith(b"OK "):
                return bytes(data)
            if line.startswith(b"D "):
                data += unquote_to_bytes(line[2:])
            elif line.startswith(b"ERR "):
                raise AgentSignatureUnavailable(
                    "the agent refused: " + line[4:].decode("ascii", "replace")
                )
            elif line.startswith(b"INQUIRE PASSPHRASE") and passphrase is not None:
                self._file.write(b"D " + quote(passphrase, safe=" ").encode("utf-8") + b"\nEND\n")
            elif line.startswith(b"INQUIRE "):
                self._file.write(b"END\n")  # nothing to tell (e.g. PINENTRY_LAUNCHED)
            # "S ..." status and "#" comment lines are ignored

    def command(self, line: str, passphrase: str | None = None) -> bytes:
        self._file.write(line.encode("ascii") + b"\n")
        return self._expect_ok(passphrase)


def _agent_socket(home: str) -> str:
    for line in _run(["gpgconf", "--homedir", home, "--list-dirs"]).splitlines():
        name, _, value = line.partition(":")
        if name == "agent-socket":
            return unquote_to_bytes(value).decode("utf-8")
    raise AgentSignatureUnavailable("gpgconf names no agent socket")


def _sexp(data: bytes) -> list[object]:
    """A canonical S-expression (``(7:sig-val(5:eddsa(1:r32:...)...))``) as nested lists."""
    stack: list[list[object]] = [[]]
    index = 0
    while index < len(data):
        char = data[index : index + 1]
        if char == b"(":
            stack.append([])
            index += 1
        elif char == b")":
            if len(stack) < 2:
                raise AgentSignatureUnavailable("the agent's signature is malformed")
            done = stack.pop()
            stack[-1].append(done)
            index += 1
        else:
            colon = data.find(b":", index)
            if colon < 0 or not data[index:colon].isdigit():
                raise AgentSignatureUnavailable("the agent's signature is malformed")
            length = int(data[index:colon])
            stack[-1].append(data[colon + 1 : colon + 1 + length])
            index = colon + 1 + length
    if len(stack) != 1 or len(stack[0]) != 1 or not isinstance(stack[0][0], list):
        raise AgentSignatureUnavailable("the agent's signature is malformed")
    return stack[0][0]


def _mpis(sexp: list[object], algorithm: int) -> bytes:
    """The OpenPGP MPIs of the agent's ``(sig-val (<algo> (r ..) (s ..)))``."""
    if len(sexp) != 2 or sexp[0] != b"sig-val" or not isinstance(sexp[1], list):
        raise AgentSignatureUnavailable("the agent's answer is not a signature")
    algo, *params = sexp[1]
    values = {
        param[0]: param[1]
        for param in params
        if isinstance(param, list) and len(param) == 2 and isinstance(param[1], bytes)
    }
    wanted = {_PK_RSA: (b"rsa", [b"s"]), _PK_EDDSA: (b"eddsa", [b"r", b"s"])}[algorithm]
    if algo != wanted[0] or any(name not in values for name in wanted[1]):
        raise AgentSignatureUnavailable("the agent signed with another algorithm")
    return b"".join(_mpi(values[name]) for name in wanted[1])


def sign_digest_state(
    home: str, key: SigningKey, state: hashlib._Hash, passphrase: str | None
) -> bytes:
    """An armored detached signature over the data whose sha256 state is ``state``, by
    ``key`` through the agent of the keyring ``home``."""
    if state.name != "sha256":
        raise AgentSignatureUnavailable("the data's hash is not sha256")
    created = int(time.time())
    hashed = hashed_part(key, created)
    digest = final_digest(state, hashed)
    agent = _Assuan(_agent_socket(home))
    try:
        agent.command("OPTION pinentry-mode=loopback")
        agent.command(f"SIGKEY {key.keygrip}")
        agent.command(f"SETHASH {_HASH_SHA256} {digest.hex().upper()}")
        answer = agent.command("PKSIGN", passphrase)
    finally:
        agent.close()
    packet = signature_packet(key, hashed, digest, _mpis(_sexp(answer), key.algorithm))
    return armor_signature(packet)
