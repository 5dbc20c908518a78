"""The content-addressed blob store."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.storage import (
    BlobNotFound,
    DigestMismatch,
    FileBlobStore,
    InvalidBlobKey,
    TooLarge,
    copy_hashed,
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


def test_copy_hashed_calls_then_once_every_byte_is_written() -> None:
    """``then`` (put_stream's fsync) runs after the last write, before the digest is final;
    what it raises ends the copy (the hashing thread stopped, not left behind)."""
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks and a partial one
    written = bytearray()
    seen_at_then: list[int] = []

    digest, size = copy_hashed(
        io.BytesIO(data), written.extend, then=lambda: seen_at_then.append(len(written))
    )

    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert seen_at_then == [len(data)]

    def full_disk() -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        copy_hashed(io.BytesIO(data), written.extend, then=full_disk)
    assert not any(thread.name == "sha256" for thread in threading.enumerate())
