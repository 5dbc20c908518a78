"""Content-addressed blob store.

Blobs are named by the sha256 of their bytes and stored under
``root/ab/cd/abcd…``. Writes stream in chunks into a temporary file in the
same directory tree, are fsynced, and then renamed into place atomically, so
a crash never leaves a visible partial blob. Memory stays flat whatever the
size of the file. The sha256 of a write is computed in a thread of its own that reads the
bytes back from the file as they are written (:func:`write_hashed`), so the copy never waits for
the hash; the disk starts writing every few MiB instead of at the fsync, which starts as soon
as the last byte is written, while the hash may still be running. A put costs about what the
copy and its fsync cost, or the sha256 when that is longer.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import queue
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK_SIZE = 1024 * 1024
_BUFFERS = 4  # chunks in flight between the copy and the hashing thread (see copy_hashed)
_WRITEBACK = 32 * 1024 * 1024  # bytes written between two starts of the disk's writeback
_DIGEST = re.compile(r"[0-9a-f]{64}")


class StorageError(Exception):
    """Base class for blob store errors."""


class InvalidBlobKey(StorageError):
    """The key is not a lowercase hex sha256 digest."""


class BlobNotFound(StorageError):
    """No blob is stored under this key."""


class DigestMismatch(StorageError):
    """The bytes do not hash to the digest they were stored or announced under."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"sha256 mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class TooLarge(StorageError):
    """The stream is larger than the limit given to ``put_stream``."""


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    size: int


def file_sha256(path: Path, *, chunk_size: int = CHUNK_SIZE) -> tuple[str, int]:
    """The sha256 (hex) and size of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def copy_hashed(
    stream: BinaryIO,
    write: Callable[[memoryview], object],
    *,
    max_bytes: int | None = None,
) -> tuple[str, int]:
    """Copy ``stream`` to ``write`` (called with each chunk; it must not keep the view); the
    sha256 (hex) and size of the bytes.

    The sha256 runs in a thread of its own beside the copy: ``hashlib`` releases the GIL while
    it hashes a large buffer, so the digest is computed on the other core while this thread
    reads and writes, and the two overlap instead of adding up. The chunks travel through a
    small ring of reused buffers (``_BUFFERS`` of ``CHUNK_SIZE``: memory stays flat, and no
    fresh pages are faulted in per chunk); a buffer is read into again only once it has been
    hashed. Raises :class:`TooLarge` past ``max_bytes`` (the caller discards what was
    written); whatever ``write`` raises propagates (the thread is ended first).
    """
    free: queue.Queue[bytearray] = queue.Queue()
    for _ in range(_BUFFERS):
        free.put(bytearray(CHUNK_SIZE))
    filled: queue.Queue[tuple[bytearray, int] | None] = queue.Queue()
    digest = hashlib.sha256()

    def hash_filled() -> None:
        while (item := filled.get()) is not None:
            buffer, length = item
            digest.update(memoryview(buffer)[:length])
            free.put(buffer)

    hasher = threading.Thread(target=hash_filled, name="sha256", daemon=True)
    hasher.start()
    size = 0
    try:
        while True:
            buffer = free.get()
            length = _read_into(stream, buffer)
            if not length:
                break
            size += length
            if max_bytes is not None and size > max_bytes:
                raise TooLarge(f"larger than the limit of {max_bytes} bytes")
            write(memoryview(buffer)[:length])
            filled.put((buffer, length))
    finally:
        filled.put(None)
        hasher.join()
    return digest.hexdigest(), size


class _ReadBack:
    """Hashes (sha256) the file behind ``fd`` as it is written, in a thread: it reads back,
    from the page cache, what the writer has announced (:meth:`grown`), up to :meth:`finish`."""

    def __init__(self, fd: int) -> None:
        self.digest = hashlib.sha256()
        self._fd = fd
        self._written = 0
        self._ended = False
        self._error: OSError | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="sha256-read-back", daemon=True)
        self._thread.start()

    def grown(self, written: int) -> None:
        with self._changed:
            self._written = written
            self._changed.notify()

    def _run(self) -> None:
        buffer = bytearray(CHUNK_SIZE)
        view = memoryview(buffer)
        done = 0
        try:
            while True:
                with self._changed:
                    while not self._ended and self._written <= done:
                        self._changed.wait()
                    ended, written = self._ended, self._written
                while done < written:
                    length = os.preadv(self._fd, [view[: min(CHUNK_SIZE, written - done)]], done)
                    if not length:
                        raise OSError(errno.EIO, "the file is shorter than what was written")
                    self.digest.update(view[:length])
                    done += length
                if ended:
                    return
        except OSError as exc:
            self._error = exc

    def finish(self) -> str:
        """Once every byte is written (or the write failed): the sha256 (hex) of the file."""
        with self._changed:
            self._ended = True
            self._changed.notify()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.digest.hexdigest()


def _start_writeback() -> Callable[[int, int, int], object]:
    """``sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE)`` where the C library has
    it (Linux): the disk starts on those pages now, without waiting for them; elsewhere nothing
    (the fsync at the end writes them all)."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return lambda _fd, _offset, _length: None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return lambda fd, offset, length: function(fd, offset, length, 2)  # SYNC_FILE_RANGE_WRITE


_writeback = _start_writeback()


def write_hashed(stream: BinaryIO, fd: int, *, max_bytes: int | None = None) -> tuple[str, int]:
    """Copy ``stream`` into the new file ``fd`` and make it durable (fsync); the sha256 (hex)
    and size of the bytes written.

    The copy never waits for the hash (:class:`_ReadBack` reads the bytes back from the page
    cache in a thread of its own, on the other core: ``hashlib`` and ``preadv`` release the
    GIL), so it ends as soon as the disk has taken the bytes; every ``_WRITEBACK`` bytes the
    disk is told to start writing them, so the fsync after the last byte (which overlaps the
    end of the hash) has little left to do. The digest is that of the bytes in the file.
    Raises :class:`TooLarge` past ``max_bytes`` (the caller discards the file); an OSError of
    the copy, the fsync or the read-back propagates (the thread is ended first).
    """
    hashed = _ReadBack(fd)
    write = write_all(fd)
    buffer = bytearray(CHUNK_SIZE)
    size = started = 0
    try:
        while length := _read_into(stream, buffer):
            size += length
            if max_bytes is not None and size > max_bytes:
                raise TooLarge(f"larger than the limit of {max_bytes} bytes")
            write(memoryview(buffer)[:length])
            hashed.grown(size)
            if size - started >= _WRITEBACK:
                _writeback(fd, started, size - started)
                started = size
        os.fsync(fd)
    except BaseException:
        with contextlib.suppress(OSError):  # the copy's error is the one to report
            hashed.finish()
        raise
    return hashed.finish(), size


def write_all(fd: int) -> Callable[[memoryview], None]:
    """A ``write`` for :func:`copy_hashed` into the file descriptor ``fd`` (every byte)."""

    def write(data: memoryview) -> None:
        while data:
            data = data[os.write(fd, data) :]

    return write


def _read_into(stream: BinaryIO, buffer: bytearray) -> int:
    """Read up to ``len(buffer)`` bytes of ``stream`` into ``buffer``; 0 at the end."""
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        return int(readinto(buffer) or 0)
    data = stream.read(len(buffer))
    buffer[: len(data)] = data
    return len(data)


def check_key(key: str) -> str:
    """Return ``key`` when it is a lowercase sha256 hex digest; raise otherwise."""
    if not isinstance(key, str) or not _DIGEST.fullmatch(key):
        raise InvalidBlobKey(f"not a sha256 hex digest: {key!r:.80}")
    return key


class BlobStore(Protocol):
    """What the portal needs from a blob store (filesystem now; S3 could fill it)."""

    def put_stream(
        self, stream: BinaryIO, *, expected_sha256: str | None = None, max_bytes: int | None = None
    ) -> BlobInfo: ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def iter_chunks(self, key: str, *, verify: bool = False) -> Iterator[bytes]: ...

    def keys(self) -> Iterator[str]: ...

    def delete(self, key: str) -> None: ...


class FileBlobStore:
    """Blobs as files under a root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key[2:4] / key

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def put_stream(
        self, stream: BinaryIO, *, expected_sha256: str | None = None, max_bytes: int | None = None
    ) -> BlobInfo:
        """Store the stream's bytes; verify against ``expected_sha256`` when given.

        Nothing is stored when the digest does not match or the stream is too large.
        """
        if expected_sha256 is not None:
            check_key(expected_sha256)
        staging = self.root / "tmp"
        staging.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=staging, prefix="put-")
        tmp_path = Path(tmp_name)
        try:
            try:
                actual, size = write_hashed(stream, fd, max_bytes=max_bytes)
            finally:
                os.close(fd)
            if expected_sha256 is not None and actual != expected_sha256:
                raise DigestMismatch(expected_sha256, actual)
            final = self.path(actual)
            if final.exists():
                tmp_path.unlink()
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp_path, final)
                fsync_dir(final.parent)
            return BlobInfo(sha256=actual, size=size)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise

    def put_file(self, path: Path, sha256: str) -> BlobInfo:
        """Move the finished file at ``path`` into the store under ``sha256``, which the
        caller computed from the very bytes it wrote (so the file is not read again).

        The file is fsynced and renamed into place (atomic; when the blob exists already the
        file is just removed). Across filesystems it is copied by :meth:`put_stream`, which
        verifies the digest. ``path`` is gone afterwards in every case but an error.
        """
        check_key(sha256)
        final = self.path(sha256)
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
            size = os.fstat(handle.fileno()).st_size
        if final.exists():
            path.unlink()
            return BlobInfo(sha256=sha256, size=size)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, final)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            with path.open("rb") as handle:
                info = self.put_stream(handle, expected_sha256=sha256)
            path.unlink()
            return info
        fsync_dir(final.parent)
        return BlobInfo(sha256=sha256, size=size)

    def delete(self, key: str) -> None:
        """Remove a blob (no error when absent). Only for blobs nothing refers to, such as
        those written by an import that was then rejected."""
        self.path(key).unlink(missing_ok=True)

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Convenience for small blobs (demo files, notices)."""
        import io

        return self.put_stream(io.BytesIO(data))

    def iter_chunks(self, key: str, *, verify: bool = False) -> Iterator[bytes]:
        """Yield the blob in chunks; with ``verify`` raise DigestMismatch at the end if the
        bytes on disk no longer hash to the key (bit rot, tampering)."""
        path = self.path(key)
        digest = hashlib.sha256()
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        with handle:
            while chunk := handle.read(CHUNK_SIZE):
                if verify:
                    digest.update(chunk)
                yield chunk
        if verify and digest.hexdigest() != key:
            raise DigestMismatch(key, digest.hexdigest())

    def read_bytes(self, key: str, *, verify: bool = True) -> bytes:
        """Whole blob in memory: only for small blobs."""
        return b"".join(self.iter_chunks(key, verify=verify))

    def verify(self, key: str) -> None:
        """Re-hash a stored blob; raise DigestMismatch or BlobNotFound."""
        for _ in self.iter_chunks(key, verify=True):
            pass

    def keys(self) -> Iterator[str]:
        """Every stored key, in sorted order."""
        if not self.root.exists():
            return
        for path in sorted(self.root.glob("??/??/*")):
            if path.is_file() and _DIGEST.fullmatch(path.name):
                yield path.name


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new entry in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def human_size(num_bytes: int) -> str:
    """``1536`` -> ``"1.5 KB"``; binary multiples, as upload dialogs show sizes."""
    if num_bytes < 1024:
        return "1 byte" if num_bytes == 1 else f"{num_bytes} bytes"
    value = float(num_bytes)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            break
    text = f"{value:.1f}".removesuffix(".0")
    return f"{text} {unit}"
