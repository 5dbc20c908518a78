"""Sign and encrypt a stream with the system ``gpg``, never in memory; sign and verify files.

Every operation runs in a fresh temporary keyring
(:func:`portal.registry.openpgp.temporary_keyring`) holding only the keys it needs; a package uses
one (:func:`sealer`) for its manifest signature and its sealing. Recipients are addressed by their
full pinned fingerprint with ``--trust-model always`` (they were verified out of band, which is the
only trust that counts); signatures are accepted only when made by the expected fingerprint (gpg's
``valid`` alone means any good signature, whoever made it).

The streaming operation (:func:`sign_and_encrypt`, :func:`sign_encrypt_and_detach`) drives gpg
itself rather than through python-gnupg: the producer (e.g. the bag tar writer) writes straight
into gpg's stdin in the calling thread (python-gnupg would add a copying thread and a pipe per
byte); gpg writes the ciphertext itself into a temporary file beside ``out_path`` (its stdout
is that file: no pipe, no copy through Python) while a thread reads the file back as it grows
and hashes it (sha256), so the two overlap. The signature inside hashes the plaintext with
SHA-256 (``--digest-algo``): gpg would otherwise take SHA-512 from the keys' preferences, and
its sign + encrypt then costs ~15% more CPU here (SHA-256 has instructions of its own on current
x86 and ARM cores, SHA-512 mostly not); every OpenPGP implementation verifies SHA-256. The
detached signature over the ciphertext is then
made from that kept hash state by the keyring's gpg-agent (:mod:`.agent_signature`), with
``gpg --detach-sign`` over the finished file as the fallback. The passphrase goes through a
pipe of its own; if the producer fails, gpg is killed so it never signs partial data. The file
is renamed into place only when gpg exited cleanly, reported END_ENCRYPTION and a signature by
the signing key. gpg's messages run in the C locale, so a full disk (reported only in words)
is recognised as one. Everything else (imports, listing, small signatures, verification) goes
through python-gnupg.

Secret keys are imported with a direct ``gpg --import`` from stdin because python-gnupg's
``import_keys`` logs the first bytes of what it imports at DEBUG level. Passphrases reach gpg
only through ``--passphrase-fd`` with ``--pinentry-mode loopback``; they are never logged and
never part of an error message.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

import gnupg

from portal.packages.assembly.agent_signature import (
    AgentSignatureUnavailable,
    sign_digest_state,
    signing_key,
)
from portal.registry.openpgp import temporary_keyring

__all__ = [
    "GpgError",
    "Recipient",
    "Sealer",
    "Signer",
    "clearsign",
    "detached_signature",
    "load_signer",
    "sealer",
    "sign_and_encrypt",
    "sign_encrypt_and_detach",
    "signer_public_key",
    "verify_detached",
]

T = TypeVar("T")
logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_MAX_KEY_FILE = 1 << 20
_FINGERPRINT = re.compile(r"[0-9A-F]{40}([0-9A-F]{24})?")
_SIG_CREATED_KEY = re.compile(
    r"^\[GNUPG:\] SIG_CREATED \S+ (?P<algo>\d+) \S+ \S+ \S+ (?P<fpr>[0-9A-Fa-f]+)", re.M
)
_SIG_CREATED = re.compile(r"^\[GNUPG:\] SIG_CREATED \S+ \S+ \S+ \S+ \S+ ([0-9A-Fa-f]+)", re.M)
_FAILURE_CODE = re.compile(r"^\[GNUPG:\] (?:FAILURE|ERROR) \S+ (\d+)", re.M)
# libgpg-error codes (low 16 bits of the codes in FAILURE/ERROR status lines).
_ERROR_REASONS = {
    9: "a public key is missing",
    11: "the signing key's passphrase was not accepted",
    17: "the signing key's secret part is missing",
    53: "a recipient key cannot be used for encryption",
    54: "the signing key cannot be used for signing",
    177: "the signing key needs a passphrase and none was given",
}
_LOOPBACK = ["--pinentry-mode", "loopback"]
_QUIET = ["--no-auto-key-locate", "--no-auto-key-retrieve"]


class GpgError(Exception):
    """A gpg operation failed; the message says what failed (never a passphrase or key)."""


@dataclass(frozen=True)
class Signer:
    """The mechanism's signing key: armored secret key, its passphrase, primary fingerprint."""

    secret_key_armored: str
    passphrase: str | None
    fingerprint: str

    def __repr__(self) -> str:  # keep key material and passphrase out of logs and tracebacks
        return f"Signer(fingerprint={self.fingerprint!r})"


@dataclass(frozen=True)
class Recipient:
    """A pinned, out-of-band verified recipient key."""

    fingerprint: str
    public_key_armored: str


# --------------------------------------------------------------------------- keyrings


def _import_secret(gpg: gnupg.GPG, armored: str) -> None:
    """Import secret key material without python-gnupg (which logs what it imports)."""
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [gpg.gpgbinary, "--homedir", gpg.gnupghome, "--batch", "--no-tty", "--import"],
            input=armored.encode("utf-8"),
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise GpgError(f"could not run gpg to import the signing key: {exc}") from None
    if proc.returncode != 0:
        raise GpgError("the signing key could not be imported (not an OpenPGP secret key?)")


def _import_public(gpg: gnupg.GPG, armored: str, fingerprint: str, what: str) -> None:
    result = gpg.import_keys(armored)
    imported = {fpr.upper() for fpr in (result.fingerprints or [])}
    if fingerprint.upper() not in imported:
        raise GpgError(f"the {what} key {fingerprint} could not be imported from its armored text")


def _passphrase(signer: Signer) -> str | None:
    """The passphrase for python-gnupg: None when empty (see module notes), validated."""
    passphrase = signer.passphrase or None
    if passphrase is not None and any(char in passphrase for char in "\r\n\0"):
        raise GpgError("the signing passphrase contains a line break or NUL character")
    return passphrase


def _mode_args(passphrase: str | None) -> list[str]:
    # python-gnupg adds loopback itself only when it sends a passphrase; without it a
    # protected key would wait for a pinentry instead of failing.
    return [] if passphrase is not None else list(_LOOPBACK)


# The agent re-protects an imported secret key with its own S2K count, which it first
# calibrates to ~100 ms of hashing: 1+ s for the first signature of every temporary keyring
# and 0.1-0.3 s for every later one. The copy it protects lives only in the private 0700
# keyring directory, which is deleted when the operation ends (the key file itself keeps its
# own protection), so the agent is told to use the smallest count instead.
_AGENT_CONF = "s2k-count 65536\n"


def _fast_agent(gpg: gnupg.GPG) -> None:
    """Configure the temporary keyring's agent before anything starts it (see _AGENT_CONF)."""
    conf = Path(gpg.gnupghome) / "gpg-agent.conf"
    if not conf.exists():
        conf.write_text(_AGENT_CONF, encoding="ascii")


def _signer_keyring(gpg: gnupg.GPG, signer: Signer) -> None:
    _check_fingerprint(signer.fingerprint, "signing")
    _fast_agent(gpg)
    _import_secret(gpg, signer.secret_key_armored)
    secret = {key["fingerprint"].upper() for key in gpg.list_keys(secret=True)}
    if signer.fingerprint.upper() not in secret:
        raise GpgError(f"the signing key file does not hold the secret key {signer.fingerprint}")


def _check_fingerprint(fingerprint: str, what: str) -> None:
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise GpgError(f"the {what} key fingerprint {fingerprint!r} is not a full fingerprint")


def _status_problem(stderr: str, fallback: str, *, passphrase_given: bool = True) -> str:
    """A short, human reason from gpg's status lines (they never contain passphrases)."""
    if not passphrase_given and "[GNUPG:] NEED_PASSPHRASE " in stderr:
        return "the signing key needs a passphrase and none was given"
    checks = (
        ("BAD_PASSPHRASE", "the signing key's passphrase was not accepted"),
        ("MISSING_PASSPHRASE", "the signing key needs a passphrase and none was given"),
        ("KEYEXPIRED", "a key has expired"),
        ("KEYREVOKED", "a key has been revoked"),
        (
            "INV_RECP",
            "a recipient key cannot be used for encryption (expired, revoked or "
            "without an encryption subkey)",
        ),
        ("INV_SGNR", "the signing key cannot be used for signing"),
        ("NO_PUBKEY", "a public key is missing"),
    )
    found = [reason for token, reason in checks if f"[GNUPG:] {token}" in stderr]
    for code in _FAILURE_CODE.findall(stderr):
        reason = _ERROR_REASONS.get(int(code) & 0xFFFF)
        if reason is not None:
            found.append(reason)
    return "; ".join(dict.fromkeys(found)) or fallback


def load_signer(key_file: Path, passphrase_file: Path | None) -> Signer:
    """Read the signing key (armored secret key) and its passphrase file; check they work.

    Raises :class:`GpgError` for a missing, unreadable or oversized file, a file that holds no
    secret key or several, or a passphrase the key does not accept.
    """
    armored = _read_text(key_file, "signing key")
    passphrase = None
    if passphrase_file is not None:
        passphrase = _read_text(passphrase_file, "signing passphrase").rstrip("\r\n") or None
    with temporary_keyring() as gpg:
        _fast_agent(gpg)
        _import_secret(gpg, armored)
        secret = gpg.list_keys(secret=True)
        if len(secret) != 1:
            raise GpgError(
                f"{key_file} must hold exactly one secret key (found {len(secret)}); "
                "export it with gpg --armor --export-secret-keys FINGERPRINT"
            )
        signer = Signer(armored, passphrase, secret[0]["fingerprint"].upper())
        _sign_bytes(gpg, b"portal signing key check\n", signer, clear=False)
    return signer


def _read_text(path: Path, what: str) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_KEY_FILE + 1)
    except FileNotFoundError:
        raise GpgError(f"the {what} file {path} does not exist") from None
    except OSError as exc:
        raise GpgError(f"the {what} file {path} cannot be read: {exc.strerror or exc}") from None
    if len(data) > _MAX_KEY_FILE:
        raise GpgError(f"the {what} file {path} is too large to be a key or passphrase")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise GpgError(f"the {what} file {path} is not text (expected ASCII armor)") from None


def signer_public_key(signer: Signer) -> str:
    """The armored public half of the signing key (for verifying its signatures)."""
    with temporary_keyring() as gpg:
        _signer_keyring(gpg, signer)
        armored = cast(str, gpg.export_keys(signer.fingerprint))
    if "BEGIN PGP PUBLIC KEY BLOCK" not in armored:
        raise GpgError("could not export the signing key's public half")
    return armored


# --------------------------------------------------------------------------- signing


def _sign_bytes(gpg: gnupg.GPG, data: bytes | BinaryIO, signer: Signer, *, clear: bool) -> bytes:
    passphrase = _passphrase(signer)
    stream = data if not isinstance(data, bytes) else _BytesReader(data)
    result = gpg.sign_file(
        stream,
        keyid=signer.fingerprint,
        passphrase=passphrase,
        clearsign=clear,
        detach=not clear,
        binary=False,
        extra_args=_mode_args(passphrase),
    )
    return _signature(result, passphrase)


def _signature(result: Any, passphrase: str | None) -> bytes:
    """The signature python-gnupg's ``sign_file`` made, or GpgError saying why there is none."""
    made_by = (getattr(result, "fingerprint", None) or "").upper()
    if result.returncode != 0 or not made_by or not result.data:
        raise GpgError(
            "signing failed: "
            + _status_problem(
                result.stderr or "",
                "gpg made no signature",
                passphrase_given=passphrase is not None,
            )
        )
    return cast(bytes, result.data)


class _BytesReader:
    """A minimal read()-only stream over bytes (python-gnupg only calls read)."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._pos + size
        chunk = bytes(self._data[self._pos : end])
        self._pos += len(chunk)
        return chunk


def detached_signature(path: Path, signer: Signer) -> bytes:
    """An ASCII-armored detached signature over the file at ``path`` (streamed, not loaded)."""
    with temporary_keyring() as gpg:
        _signer_keyring(gpg, signer)
        try:
            with path.open("rb") as handle:
                return _sign_bytes(gpg, cast(BinaryIO, handle), signer, clear=False)
        except OSError as exc:
            raise GpgError(f"cannot read {path.name} to sign it: {exc.strerror or exc}") from None


def clearsign(text: str, signer: Signer) -> str:
    """``text`` clearsigned (UTF-8) by the signing key."""
    with temporary_keyring() as gpg:
        gpg.encoding = "utf-8"
        _signer_keyring(gpg, signer)
        return _sign_bytes(gpg, text.encode("utf-8"), signer, clear=True).decode("utf-8")


def verify_detached(
    data_path: Path, signature: bytes, signer_public_armored: str, expected_fingerprint: str
) -> None:
    """Raise :class:`GpgError` unless ``signature`` is a good signature over the file at
    ``data_path`` made by the key whose primary fingerprint is ``expected_fingerprint``."""
    expected = "".join(expected_fingerprint.split()).upper()
    _check_fingerprint(expected, "expected signer")
    with temporary_keyring() as gpg:
        _import_public(gpg, signer_public_armored, expected, "signer's public")
        sig_path = Path(gpg.gnupghome) / "detached.sig"
        sig_path.write_bytes(signature)
        result = gpg.verify_file(str(sig_path), data_filename=str(data_path), extra_args=_QUIET)
    primary = (result.pubkey_fingerprint or result.fingerprint or "").upper()
    if not result.valid or result.status != "signature valid" or result.problems:
        raise GpgError(f"the signature over {data_path.name} is not good ({result.status})")
    if primary != expected:
        raise GpgError(
            f"the signature over {data_path.name} was made by {primary or 'an unknown key'}, "
            f"not by {expected}"
        )
    others = [
        info
        for info in (getattr(result, "sig_info", None) or {}).values()
        if (info.get("pubkey_fingerprint") or info.get("fingerprint") or "").upper() != expected
    ]
    if others:
        raise GpgError(f"the signature file over {data_path.name} holds other signatures too")


# --------------------------------------------------------------------------- sign + encrypt


def _set_pipe_size(fd: int) -> None:
    """Bigger pipes (1 MiB instead of 64 KiB): far fewer wake-ups per megabyte streamed."""
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setpipe is not None:
        with contextlib.suppress(OSError):  # capped by /proc/sys/fs/pipe-max-size
            fcntl.fcntl(fd, setpipe, _CHUNK)


class _Gpg:
    """One gpg process fed on stdin, writing its output straight into ``output`` (an open
    file: no pipe, no copy through Python); its status lines (``--status-fd 2``) are
    collected, and the passphrase goes through a pipe of its own (``--passphrase-fd``), never
    mixed with the data."""

    def __init__(
        self, home: str, args: Sequence[str], passphrase: str | None, output: BinaryIO
    ) -> None:
        gpg = shutil.which("gpg") or "gpg"
        argv = [gpg, "--homedir", home, "--batch", "--no-tty", "--status-fd", "2",
                "--pinentry-mode", "loopback", *_QUIET]  # fmt: skip
        pass_fds: tuple[int, ...] = ()
        secret_read = secret_write = -1
        if passphrase is not None:
            secret_read, secret_write = os.pipe()
            argv += ["--passphrase-fd", str(secret_read)]
            pass_fds = (secret_read,)
        try:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [*argv, *args],
                stdin=subprocess.PIPE,
                stdout=output,
                stderr=subprocess.PIPE,
                pass_fds=pass_fds,
                bufsize=0,
                env={**os.environ, "LC_MESSAGES": "C", "LANGUAGE": "C"},  # see _raise_no_space
            )
        except OSError as exc:
            if passphrase is not None:
                os.close(secret_write)
            raise GpgError(f"could not run gpg: {exc.strerror or exc}") from None
        finally:
            if passphrase is not None:
                os.close(secret_read)
        if passphrase is not None:
            # Unbuffered, inside the suppress: a gpg that exited already makes the write (not
            # a later flush on close) fail, and its status then says why (GpgError).
            with (
                contextlib.suppress(BrokenPipeError),
                os.fdopen(secret_write, "wb", buffering=0) as secret,
            ):
                secret.write(passphrase.encode("utf-8") + b"\n")
        assert self.process.stdin and self.process.stderr  # noqa: S101
        self.stdin = self.process.stdin
        _set_pipe_size(self.stdin.fileno())
        self.status = ""
        self.stderr_text = ""
        self._reader = threading.Thread(target=self._read_status, daemon=True)
        self._reader.start()

    def _read_status(self) -> None:
        stderr = self.process.stderr
        assert stderr is not None  # noqa: S101
        lines = [line.decode("utf-8", "replace") for line in stderr]
        self.status = "".join(line for line in lines if line.startswith("[GNUPG:] "))
        self.stderr_text = "".join(line for line in lines if not line.startswith("[GNUPG:] "))

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Write to gpg's stdin; raise _Cancelled when gpg has stopped reading."""
        try:
            self.stdin.write(data)
        except (BrokenPipeError, ValueError):
            raise _Cancelled from None
        return len(data)

    def finish(self) -> int:
        """Close stdin (gpg completes its output), wait, return gpg's exit status."""
        with contextlib.suppress(BrokenPipeError, ValueError):
            self.stdin.close()
        return self._wait()

    def kill(self) -> None:
        """Stop gpg before it completes anything (no signature over partial data)."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        with contextlib.suppress(BrokenPipeError, ValueError):
            self.stdin.close()
        self._wait()

    def _wait(self) -> int:
        code = self.process.wait()
        self._reader.join()
        if self.process.stderr is not None:
            self.process.stderr.close()
        return code


class _Cancelled(Exception):
    """gpg has stopped reading; the producer must stop writing."""


class _PlainOut:
    """The producer's binary stream: gpg's stdin."""

    def __init__(self, gpg: _Gpg) -> None:
        self._gpg = gpg

    def write(self, data: bytes | bytearray | memoryview) -> int:
        return self._gpg.write(data)

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True


class _Follower:
    """Hashes (sha256) the file gpg is writing, in a thread, as it grows: the ciphertext is
    read back from the page cache while gpg is still encrypting (the two overlap), into one
    reused buffer. :meth:`finish` (once gpg has exited) reads the rest and returns the state.
    """

    _POLL = 0.02  # seconds to wait at the current end of the file for gpg to write more

    def __init__(self, path: Path) -> None:
        self.digest = hashlib.sha256()
        self.size = 0
        self._fd = os.open(path, os.O_RDONLY)
        self._ended = threading.Event()
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="ciphertext-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        try:
            while True:
                ended = self._ended.is_set()  # before the read: then an empty read is the end
                length = os.readv(self._fd, [buffer])
                if length:
                    self.digest.update(view[:length])
                    self.size += length
                elif ended:
                    return
                else:
                    self._ended.wait(self._POLL)
        except OSError as exc:
            self._error = exc
        finally:
            os.close(self._fd)

    def finish(self) -> hashlib._Hash:
        """Once the writer is done: the sha256 state of the whole file."""
        self._ended.set()
        self._thread.join()
        if self._error is not None:
            raise GpgError(f"could not read the package file back: {self._error}") from (
                self._error
            )
        return self.digest


@dataclass(frozen=True)
class _Sealed:
    """What :func:`_stream` made: the producer's value, the ciphertext's sha256 state and
    size, and the (sub)key fingerprint and algorithm gpg signed with (from SIG_CREATED)."""

    value: Any
    digest: hashlib._Hash
    size: int
    signed_by: str
    algorithm: int


def sign_and_encrypt(
    write_plaintext: Callable[[BinaryIO], T],
    recipients: Sequence[Recipient],
    signer: Signer,
    out_path: Path,
) -> tuple[T, str, int]:
    """Stream what ``write_plaintext`` writes through ``gpg --sign --encrypt`` into ``out_path``.

    Returns (what ``write_plaintext`` returned, sha256 of the ciphertext, ciphertext size).
    Binary output, ``--compress-algo none``, one recipient per pinned fingerprint. On any
    failure nothing is left at ``out_path``: gpg failures raise :class:`GpgError`; an exception
    from ``write_plaintext`` propagates as it is (gpg is killed first, so it never signs the
    partial data).
    """
    value, digest, size, _ = _seal(write_plaintext, recipients, signer, out_path, detach=False)
    return value, digest, size


def sign_encrypt_and_detach(
    write_plaintext: Callable[[BinaryIO], T],
    recipients: Sequence[Recipient],
    signer: Signer,
    out_path: Path,
) -> tuple[T, str, int, bytes]:
    """:func:`sign_and_encrypt`, plus an armored detached signature over the ciphertext (the
    same bytes :func:`detached_signature` would sign, read once; see :meth:`Sealer.seal`)."""
    value, digest, size, signature = _seal(
        write_plaintext, recipients, signer, out_path, detach=True
    )
    assert signature is not None  # noqa: S101 - detach=True always signs
    return value, digest, size, signature


class Sealer:
    """One temporary keyring for a whole package: the signing key and the recipients are
    imported once, and the manifest signature and the sealed package are made in it (each
    new keyring costs an import and an agent start). Made by :func:`sealer`."""

    def __init__(self, gpg: gnupg.GPG, signer: Signer, recipients: Sequence[Recipient]) -> None:
        self._gpg = gpg
        self.signer = signer
        self.recipients = tuple(recipients)

    def detached_signature(self, path: Path) -> bytes:
        """An armored detached signature over the file at ``path`` (streamed, not loaded)."""
        try:
            with path.open("rb") as handle:
                return _sign_bytes(self._gpg, cast(BinaryIO, handle), self.signer, clear=False)
        except OSError as exc:
            raise GpgError(f"cannot read {path.name} to sign it: {exc.strerror or exc}") from None

    def sign_encrypt_and_detach(
        self, write_plaintext: Callable[[BinaryIO], T], out_path: Path
    ) -> tuple[T, str, int, bytes]:
        """See the module function :func:`sign_encrypt_and_detach`."""
        value, digest, size, signature = self.seal(write_plaintext, out_path, detach=True)
        assert signature is not None  # noqa: S101 - detach=True always signs
        return value, digest, size, signature

    def seal(
        self, write_plaintext: Callable[[BinaryIO], T], out_path: Path, *, detach: bool
    ) -> tuple[T, str, int, bytes | None]:
        """gpg writes the ciphertext into a temporary file beside ``out_path`` while a thread
        hashes it as it grows; the detached signature (``detach``) is then made from that
        hash state by the keyring's agent (:mod:`.agent_signature`: no second pass over the
        file), or, should the agent path fail, by ``gpg --detach-sign`` over the file."""
        passphrase = _passphrase(self.signer)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.")
        tmp_path = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                sealed = _stream(
                    self._gpg.gnupghome, write_plaintext, self.recipients, self.signer,
                    passphrase, cast(BinaryIO, handle), tmp_path,
                )  # fmt: skip
                signature = self._detach(sealed, tmp_path, passphrase) if detach else None
                os.fsync(handle.fileno())
            os.replace(tmp_path, out_path)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
        return sealed.value, sealed.digest.hexdigest(), sealed.size, signature

    def _detach(self, sealed: _Sealed, path: Path, passphrase: str | None) -> bytes:
        home = self._gpg.gnupghome
        try:
            key = signing_key(home, sealed.signed_by, sealed.algorithm)
            return sign_digest_state(home, key, sealed.digest, passphrase)
        except AgentSignatureUnavailable as exc:
            logger.warning("signing the package file with gpg instead of its agent: %s", exc)
        try:
            return self.detached_signature(path)
        except GpgError as exc:
            raise GpgError(f"signing the package file failed: {exc}") from None


@contextlib.contextmanager
def sealer(signer: Signer, recipients: Sequence[Recipient]) -> Iterator[Sealer]:
    """A :class:`Sealer` over a fresh temporary keyring, removed (agent ended) afterwards."""
    if not recipients:
        raise GpgError("there is no recipient key to encrypt to")
    for recipient in recipients:
        _check_fingerprint(recipient.fingerprint, "recipient")
    _passphrase(signer)  # refuse a bad passphrase before anything starts
    with temporary_keyring() as keyring:
        _signer_keyring(keyring, signer)
        for recipient in recipients:
            _import_public(
                keyring, recipient.public_key_armored, recipient.fingerprint, "recipient"
            )
        yield Sealer(keyring, signer, recipients)


def _seal(
    write_plaintext: Callable[[BinaryIO], T],
    recipients: Sequence[Recipient],
    signer: Signer,
    out_path: Path,
    *,
    detach: bool,
) -> tuple[T, str, int, bytes | None]:
    with sealer(signer, recipients) as keyring:
        return keyring.seal(write_plaintext, out_path, detach=detach)


def _stream(
    home: str,
    write_plaintext: Callable[[BinaryIO], T],
    recipients: Sequence[Recipient],
    signer: Signer,
    passphrase: str | None,
    handle: BinaryIO,
    path: Path,
) -> _Sealed:
    args = ["--trust-model", "always", "--compress-algo", "none", "--digest-algo", "SHA256",
            "--local-user", signer.fingerprint]  # fmt: skip
    for recipient in recipients:
        args += ["--recipient", recipient.fingerprint]
    follower = _Follower(path)
    try:
        encrypter = _Gpg(home, [*args, "--sign", "--encrypt"], passphrase, handle)
    except BaseException:
        follower.finish()
        raise
    try:
        value = write_plaintext(cast(BinaryIO, _PlainOut(encrypter)))
    except _Cancelled:
        value = None  # gpg stopped reading early: its status says why
        cancelled = True
    except BaseException:
        encrypter.kill()
        follower.finish()
        raise
    else:
        cancelled = False
    code = encrypter.finish()
    digest = follower.finish()
    if code != 0:
        _raise_no_space(encrypter.stderr_text, path)
    _check_encryption(code, encrypter.status, signer, cancelled=cancelled)
    created = _SIG_CREATED_KEY.search(encrypter.status)
    assert created is not None  # noqa: S101 - _check_encryption found it
    return _Sealed(value, digest, follower.size, created["fpr"].upper(), int(created["algo"]))


def _raise_no_space(messages: str, path: Path) -> None:
    """gpg, writing the package file itself, met a full disk (or quota): say so as an
    OSError chained under the GpgError, so :func:`portal.integrity.full.no_space` recognises
    it. gpg reports it only in words (``[stdout]: write error: No space left on device``, no
    status line), in English because its messages run in the C locale."""
    for code in (errno.ENOSPC, errno.EDQUOT):
        if f"write error: {os.strerror(code)}" in messages:
            error = OSError(code, os.strerror(code), path.name)
            raise GpgError(f"could not write the package file: {error}") from error


def _check_encryption(code: int, status: str, signer: Signer, *, cancelled: bool) -> None:
    if code != 0 or "[GNUPG:] END_ENCRYPTION" not in status:
        problem = _status_problem(
            status, f"gpg exited with status {code}", passphrase_given=signer.passphrase is not None
        )
        raise GpgError(f"encryption failed: {problem}")
    if cancelled:
        raise GpgError("gpg stopped reading before the package was complete")
    made_by = {match.upper() for match in _SIG_CREATED.findall(status)}
    if made_by != {signer.fingerprint.upper()}:
        raise GpgError("encryption finished but the package was not signed by the signing key")
