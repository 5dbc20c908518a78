"""Decryption with a bound on what it writes: compressed data is refused unless allowed, and
never more than ``max_bytes`` of plaintext reach the disk.

Why: an OpenPGP message may hold compressed data, and 1,454 bytes of bzip2 expand to 1 GiB.
The portal writes its packages uncompressed (``--compress-algo none``), so the plaintext of a
genuine package is never larger than the package file; the default bound is that size plus a
margin.

How: gpg writes the plaintext to a pipe, and this module writes it to the file, counting; the
chunk that would cross the bound is not written, gpg is killed at once and the partial file is
deleted. gpg runs with ``-vv``, which makes it list every packet on stderr as it parses it (the
listing of ``--list-packets``), in order with its status lines: a ``:compressed packet:`` line
always comes before the ``PLAINTEXT`` status that precedes the first plaintext byte, so nothing
of a refused compressed message is written. gpg's own ``--max-output`` is set too, as a second
guard.
"""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import gnupg

from portal.verify.results import EXIT_CANNOT_DECRYPT, EXIT_OUTPUT_LIMIT, VerifyFailed

__all__ = ["MARGIN", "OutputLimit", "decrypt_bounded", "default_limit"]

MARGIN = 1 << 20  # above the package's size: headers, and a safety margin
_CHUNK = 1 << 20
_COMPRESSED = ":compressed packet:"
_GPG_LIMIT = "exceeded --max-output limit"
_PLAINTEXT_WAIT = 60.0  # seconds from gpg's first output byte to its PLAINTEXT status


@dataclass(frozen=True)
class OutputLimit:
    """How much decrypted data may be written, and whether it may have been compressed."""

    max_bytes: int
    allow_compressed: bool = False


def default_limit(package: Path) -> OutputLimit:
    """The bound for a package the portal made: uncompressed, so no larger than the file."""
    return OutputLimit(package.stat().st_size + MARGIN)


class _Watch:
    """Reads gpg's stderr: status lines into the python-gnupg result, and why to stop."""

    def __init__(self, result: Any, limit: OutputLimit, process: subprocess.Popen[bytes]) -> None:
        self.result = result
        self.limit = limit
        self.process = process
        self.compressed = False
        self.refusal: str | None = None
        self.plaintext = threading.Event()  # PLAINTEXT seen, or stderr closed

    def stop(self, why: str) -> None:
        if self.refusal is None:
            self.refusal = why
        self.process.kill()

    def run(self, stderr: IO[bytes]) -> None:
        try:
            for raw in stderr:
                self._line(raw.decode("utf-8", errors="replace").rstrip("\n"))
        finally:
            self.plaintext.set()

    def _line(self, line: str) -> None:
        if line.startswith("[GNUPG:] "):
            keyword, _, value = line[9:].partition(" ")
            self.result.handle_status(keyword, value)
            if keyword == "PLAINTEXT":
                self.plaintext.set()
        elif line.startswith(_COMPRESSED):
            self.compressed = True
            if not self.limit.allow_compressed:
                self.stop(
                    "the package holds compressed data, which the portal never writes "
                    "(--allow-compressed with --max-output accepts it)"
                )
        elif _GPG_LIMIT in line:
            self.stop(_too_large(self.limit))


def _too_large(limit: OutputLimit) -> str:
    return (
        f"the decrypted content is larger than the bound of {limit.max_bytes} bytes (--max-output)"
    )


def _command(gpg: gnupg.GPG, package: Path, limit: OutputLimit, extra: list[str]) -> list[str]:
    args = ["-vv", "--max-output", str(limit.max_bytes + 1), *extra]
    return list(gpg.make_args([*args, "--decrypt", "--output", "-", str(package)], False))


def _pump(stdout: IO[bytes], plaintext: Path, watch: _Watch) -> None:
    """Copy gpg's output into ``plaintext`` while it stays within the bound."""
    written = 0
    with plaintext.open("xb") as out:
        while chunk := stdout.read(_CHUNK):
            if written == 0 and not watch.plaintext.wait(_PLAINTEXT_WAIT):
                watch.stop("gpg wrote data it did not announce as the package's content")
            if watch.refusal is not None:
                return
            if written + len(chunk) > watch.limit.max_bytes:
                watch.stop(_too_large(watch.limit))
                return
            out.write(chunk)
            written += len(chunk)


def decrypt_bounded(
    gpg: gnupg.GPG, package: Path, plaintext: Path, limit: OutputLimit, extra_args: list[str]
) -> Any:
    """Decrypt ``package`` into the new file ``plaintext`` within ``limit``; return gpg's
    result (python-gnupg's ``Crypt``, whose signature fields the caller judges).

    Raises VerifyFailed with EXIT_OUTPUT_LIMIT when it stops for compression or size (the
    partial file deleted), and with EXIT_CANNOT_DECRYPT when gpg cannot decrypt.
    """
    result: Any = gnupg.Crypt(gpg)
    with subprocess.Popen(  # noqa: S603 - gpg, with the arguments built above
        _command(gpg, package, limit, extra_args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=gpg.env,
    ) as process:
        if process.stdout is None or process.stderr is None:  # pragma: no cover - PIPEs
            raise OSError("gpg's output pipes could not be opened")
        watch = _Watch(result, limit, process)
        reader = threading.Thread(target=watch.run, args=(process.stderr,), daemon=True)
        reader.start()
        try:
            _pump(process.stdout, plaintext, watch)
        except BaseException:  # a full disk, an interrupt: gpg goes, and what was written
            watch.stop("interrupted")
            plaintext.unlink(missing_ok=True)
            raise
        finally:
            process.stdout.close()
            process.wait()
            reader.join()
    result.returncode = process.returncode
    if watch.refusal is not None:
        plaintext.unlink(missing_ok=True)
        raise VerifyFailed(
            EXIT_OUTPUT_LIMIT,
            f"decryption stopped, nothing decrypted was kept: {watch.refusal}",
        )
    if not result.ok:
        plaintext.unlink(missing_ok=True)
        raise VerifyFailed(EXIT_CANNOT_DECRYPT, _cannot_decrypt(result))
    return result


def _cannot_decrypt(result: Any) -> str:
    if result.status == "no secret key":
        reason = (
            "none of the keys it is encrypted to has its secret key in your keyring "
            "(is it addressed to another authority?)"
        )
    else:
        reason = f"gpg reports: {result.status or 'unknown error'}"
    return f"the package cannot be decrypted: {reason}"
