"""The content-addressed blob store."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.storage import (
    BlobNotFound,
    DigestMismatch,
    FileBlobStore,
    InvalidBlobKey,
    TooLarge,
    write_hashed,
)


class GeneratedStream(io.RawIOBase):
    """``size`` pseudo-random-ish bytes produced on the fly, never held in memory."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.counter = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.remaining)
        block = hashlib.sha256(str(self.counter).encode()).digest() * (n // 32 + 1)
        buffer[:n] = block[:n]
        self.remaining -= n
        self.counter += 1
        return n


def _hash_generated(size: int) -> str:
    digest = hashlib.sha256()
    stream = GeneratedStream(size)
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


def test_put_and_read_back(store: FileBlobStore) -> None:
    info = store.put_bytes(b"statement of witness W-01")
    assert info.sha256 == hashlib.sha256(b"statement of witness W-01").hexdigest()
    assert info.size == 25
    assert store.exists(info.sha256)
    assert store.read_bytes(info.sha256) == b"statement of witness W-01"
    assert list(store.keys()) == [info.sha256]


def test_same_content_is_stored_once(store: FileBlobStore) -> None:
    first = store.put_bytes(b"same")
    second = store.put_bytes(b"same")
    assert first == second
    assert list(store.keys()) == [first.sha256]


def test_expected_digest_mismatch_stores_nothing(store: FileBlobStore) -> None:
    with pytest.raises(DigestMismatch):
        store.put_stream(io.BytesIO(b"tampered"), expected_sha256="0" * 64)
    assert list(store.keys()) == []
    assert list((store.root / "tmp").iterdir()) == []


def test_too_large_stores_nothing(store: FileBlobStore) -> None:
    with pytest.raises(TooLarge):
        store.put_stream(io.BytesIO(b"x" * 100), max_bytes=99)
    assert list(store.keys()) == []
    assert list((store.root / "tmp").iterdir()) == []


@pytest.mark.parametrize(
    "key",
    ["", "abc", "../" + "a" * 61, "A" * 64, "g" * 64, "a" * 63, "a" * 65, "a" * 63 + "/"],
)
def test_refuses_keys_that_are_not_digests(store: FileBlobStore, key: str) -> None:
    with pytest.raises(InvalidBlobKey):
        store.path(key)
    with pytest.raises(InvalidBlobKey):
        store.put_stream(io.BytesIO(b"x"), expected_sha256=key)


def test_missing_blob(store: FileBlobStore) -> None:
    with pytest.raises(BlobNotFound):
        store.read_bytes("a" * 64)


def test_verify_on_read_detects_corruption(store: FileBlobStore) -> None:
    info = store.put_bytes(b"original bytes")
    path = store.path(info.sha256)
    os.chmod(path, 0o600)
    path.write_bytes(b"corrupted bytes")
    assert store.read_bytes(info.sha256, verify=False) == b"corrupted bytes"
    with pytest.raises(DigestMismatch):
        store.read_bytes(info.sha256, verify=True)
    with pytest.raises(DigestMismatch):
        store.verify(info.sha256)


def test_large_stream_keeps_memory_flat(store: FileBlobStore) -> None:
    size = 64 * 1024 * 1024
    expected = _hash_generated(size)
    tracemalloc.start()
    try:
        info = store.put_stream(GeneratedStream(size), expected_sha256=expected)  # type: ignore[arg-type]
        peak_write = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        chunks: Iterator[bytes] = store.iter_chunks(info.sha256, verify=True)
        total = sum(len(chunk) for chunk in chunks)
        peak_read = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.size == size == total
    assert peak_write < 8 * 1024 * 1024, peak_write
    assert peak_read < 8 * 1024 * 1024, peak_read


@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=5000))
def test_any_bytes_round_trip(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    store = FileBlobStore(tmp_path_factory.mktemp("blobs"))
    info = store.put_bytes(data)
    assert store.read_bytes(info.sha256) == data
    assert info.sha256 == hashlib.sha256(data).hexdigest()


def test_delete(store: FileBlobStore) -> None:
    info = store.put_bytes(b"to be removed")
    store.delete(info.sha256)
    assert not store.exists(info.sha256)
    store.delete(info.sha256)  # absent: no error
    with pytest.raises(InvalidBlobKey):
        store.delete("../../etc/passwd")


def test_put_file_moves_an_already_hashed_file_in(store: FileBlobStore, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    digest = hashlib.sha256(data).hexdigest()
    staged = tmp_path / "staged.bin"
    staged.write_bytes(data)
    inode = staged.stat().st_ino

    info = store.put_file(staged, digest)

    assert (info.sha256, info.size) == (digest, len(data))
    assert not staged.exists()
    assert store.path(digest).stat().st_ino == inode  # renamed, not copied
    store.verify(digest)
    again = tmp_path / "again.bin"  # already stored: the new file is just dropped
    again.write_bytes(data)
    assert store.put_file(again, digest) == info and not again.exists()
    with pytest.raises(InvalidBlobKey):
        store.put_file(tmp_path / "whatever", "not-a-digest")
    with pytest.raises(FileNotFoundError):
        store.put_file(tmp_path / "missing", hashlib.sha256(b"x").hexdigest())
    assert list(store.keys()) == [digest]


def test_file_sha256_reads_in_chunks(tmp_path: Path) -> None:
    from portal.storage import file_sha256

    data = b"evidence " * 1000
    path = tmp_path / "f"
    path.write_bytes(data)
    assert file_sha256(path, chunk_size=7) == (hashlib.sha256(data).hexdigest(), len(data))


class _FailingStream(io.BytesIO):
    """Its bytes, then an error (a client that went away mid-upload)."""

    def readinto(self, buffer: Any) -> int:
        length = super().readinto(buffer)
        if not length:
            raise OSError(5, "Input/output error")
        return length


def _no_read_back_thread() -> bool:
    return not any(thread.name == "sha256-read-back" for thread in threading.enumerate())


def test_write_hashed_hashes_what_the_file_holds(tmp_path: Path) -> None:
    """Several chunks and a partial one, read back from the file by the hashing thread."""
    data = os.urandom(3 * 1024 * 1024 + 17)
    fd = os.open(tmp_path / "blob", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        assert write_hashed(io.BytesIO(data), fd) == (hashlib.sha256(data).hexdigest(), len(data))
    finally:
        os.close(fd)
    assert (tmp_path / "blob").read_bytes() == data
    assert _no_read_back_thread()


def test_write_hashed_errors_end_the_hashing_thread(tmp_path: Path) -> None:
    """An error of the copy propagates as it is; so does one of the read-back (here a pipe,
    which cannot be read back); no thread is left behind."""
    fd = os.open(tmp_path / "blob", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with pytest.raises(OSError, match="Input/output error"):
            write_hashed(_FailingStream(os.urandom(2 * 1024 * 1024)), fd)
        with pytest.raises(TooLarge):
            write_hashed(io.BytesIO(b"x" * 100), fd, max_bytes=99)
    finally:
        os.close(fd)
    assert _no_read_back_thread()
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(OSError) as raised:
            write_hashed(io.BytesIO(b"bytes that go into a pipe"), write_end)
        assert raised.value.errno in {errno.ESPIPE, errno.EINVAL}
    finally:
        os.close(read_end)
        os.close(write_end)
    assert _no_read_back_thread()
