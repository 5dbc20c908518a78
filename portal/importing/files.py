"""Files named by a bundle: resolved safely under ``--files`` and streamed, never loaded whole.

A name is accepted only when it is relative, has no ``..``, and resolves (following symlinks)
to a regular file inside the files directory. The file is then opened without following a
final symlink and checked again with ``fstat``, so a file swapped for a symlink or a FIFO after
the check is refused rather than read.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from portal.storage import CHUNK_SIZE, DigestMismatch, FileBlobStore, TooLarge

MAX_KEY_FILE_BYTES = 1024 * 1024


class FileProblem(ValueError):
    """A file the bundle names cannot be used; the message says why."""


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    new_blob: bool  # the blob store did not hold these bytes before


def resolve(root: Path, name: str) -> Path:
    """The real path of ``name`` under ``root`` (already resolved), or FileProblem."""
    candidate = root / name
    try:
        real = candidate.resolve(strict=True)
    except FileNotFoundError:
        raise FileProblem(f"file {name!r} not found in the --files directory") from None
    except (OSError, RuntimeError) as exc:  # symlink loops, permissions
        raise FileProblem(f"file {name!r} cannot be resolved: {exc.__class__.__name__}") from None
    if not real.is_relative_to(root):
        raise FileProblem(f"file {name!r} resolves outside the --files directory (symlink?)")
    if not real.is_file():
        raise FileProblem(f"file {name!r} is not a regular file")
    return real


def _open(real: Path, name: str) -> BinaryIO:
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise FileProblem(f"file {name!r} cannot be opened: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileProblem(f"file {name!r} is not a regular file")
    return os.fdopen(fd, "rb")


def store_file(
    real: Path, name: str, *, sha256: str, size: int | None, blobs: FileBlobStore | None
) -> StoredFile:
    """Stream the file into ``blobs`` checking its digest (and size, when given) on the way.

    With ``blobs`` None the file is only hashed: used once the bundle is already rejected, so
    no blob is written just to be deleted.
    """
    with _open(real, name) as handle:
        if blobs is None:
            return _hash_only(handle, name, sha256=sha256, size=size)
        on_disk = os.fstat(handle.fileno()).st_size
        if size is not None and on_disk != size:  # refused before a byte is stored
            raise FileProblem(f"file {name!r} is {on_disk} bytes, not the size given ({size})")
        existed = blobs.exists(sha256)
        try:
            info = blobs.put_stream(handle, expected_sha256=sha256, max_bytes=size)
        except DigestMismatch as exc:
            raise FileProblem(_mismatch(name, exc.actual, sha256)) from None
        except TooLarge:
            raise FileProblem(f"file {name!r} is larger than the size given ({size})") from None
    if size is not None and info.size != size:  # it changed while it was read
        if not existed:
            blobs.delete(info.sha256)
        raise FileProblem(f"file {name!r} is {info.size} bytes, not the size given ({size})")
    return StoredFile(sha256=info.sha256, size=info.size, new_blob=not existed)


def _hash_only(handle: BinaryIO, name: str, *, sha256: str, size: int | None) -> StoredFile:
    digest = hashlib.sha256()
    total = 0
    while chunk := handle.read(CHUNK_SIZE):
        digest.update(chunk)
        total += len(chunk)
    if digest.hexdigest() != sha256:
        raise FileProblem(_mismatch(name, digest.hexdigest(), sha256))
    if size is not None and total != size:
        raise FileProblem(f"file {name!r} is {total} bytes, not the size given ({size})")
    return StoredFile(sha256=sha256, size=total, new_blob=False)


def _mismatch(name: str, actual: str, expected: str) -> str:
    return f"file {name!r} has sha256 {actual}, not the sha256 given ({expected})"


def read_key_file(real: Path, name: str) -> str:
    """An armored public key file as text (small: at most ``MAX_KEY_FILE_BYTES``)."""
    with _open(real, name) as handle:
        data = handle.read(MAX_KEY_FILE_BYTES + 1)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise FileProblem(f"key file {name!r} is larger than {MAX_KEY_FILE_BYTES} bytes")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise FileProblem(f"key file {name!r} is not an ASCII-armored key") from None


def discard_blob(blobs: FileBlobStore, key: str) -> None:
    """Remove a blob this import created."""
    blobs.delete(key)
