"""The BagIt tar writer: bags validated by the LoC ``bagit`` library, refusals, flat memory."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tracemalloc
from pathlib import Path

import bagit
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.packages.assembly.bag import (
    BagEntry,
    BagError,
    BagSummary,
    safe_payload_name,
    write_bag_tar,
)

INFO = {
    "Bagging-Date": "2026-03-04",
    "Source-Organization": "The Mechanism — Registry",
    "External-Identifier": "PKG-2026-0001",
}


class WriteOnly:
    """A non-seekable output (like a pipe): write and flush only, counting and hashing."""

    def __init__(self) -> None:
        self.size = 0
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.size += len(data)
        self.digest.update(data)
        return len(data)

    def flush(self) -> None:
        pass


def _files(tmp_path: Path) -> list[BagEntry]:
    src = tmp_path / "src"
    src.mkdir()
    (src / "statement.pdf").write_bytes(b"%PDF-1.7 fake but bytes are bytes\n" * 100)
    (src / "photo.jpg").write_bytes(os.urandom(70_000))
    (src / "empty.txt").write_bytes(b"")
    return [
        BagEntry("data/items/ITM-000001/statement.pdf", src / "statement.pdf"),
        BagEntry("data/items/ITM-000002/photo.jpg", src / "photo.jpg"),
        BagEntry("data/items/ITM-000003/empty.txt", src / "empty.txt"),
        BagEntry("data/manifest.json", src / "empty.txt"),
    ]


def _extract(tar_bytes: bytes, dest: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        tar.extractall(dest, filter="data")


def test_bag_round_trip_validates_with_bagit(tmp_path: Path) -> None:
    entries = _files(tmp_path)
    out = io.BytesIO()
    summary = write_bag_tar(out, "PKG-2026-0001", entries, INFO)

    _extract(out.getvalue(), tmp_path / "x")
    bag = bagit.Bag(str(tmp_path / "x" / "PKG-2026-0001"))
    bag.validate()  # complete, checksums, Payload-Oxum
    assert bag.version_info == (1, 0)
    assert bag.info["Source-Organization"] == INFO["Source-Organization"]
    assert bag.info["Bagging-Date"] == "2026-03-04"
    assert isinstance(summary, BagSummary)
    sizes = [entry.source.stat().st_size for entry in entries]
    assert summary.payload_oxum == f"{sum(sizes)}.4" == bag.info["Payload-Oxum"]
    assert [path for path, _, _ in summary.files] == [entry.path for entry in entries]
    for (path, digest, size), entry in zip(summary.files, entries, strict=True):
        assert digest == hashlib.sha256(entry.source.read_bytes()).hexdigest()
        assert size == entry.source.stat().st_size
        assert bag.entries[path]["sha256"] == digest


def test_tampered_payload_fails_bagit_validation(tmp_path: Path) -> None:
    out = io.BytesIO()
    write_bag_tar(out, "PKG-1", _files(tmp_path), INFO)
    _extract(out.getvalue(), tmp_path / "x")
    target = tmp_path / "x" / "PKG-1" / "data" / "items" / "ITM-000002" / "photo.jpg"
    data = bytearray(target.read_bytes())
    data[100] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(tmp_path / "x" / "PKG-1")).validate()


def test_member_order_and_deterministic_headers(tmp_path: Path) -> None:
    entries = _files(tmp_path)
    first, second = io.BytesIO(), io.BytesIO()
    write_bag_tar(first, "PKG-1", entries, INFO)
    write_bag_tar(second, "PKG-1", entries, INFO)
    assert first.getvalue() == second.getvalue()
    assert len(first.getvalue()) % tarfile.RECORDSIZE == 0

    with tarfile.open(fileobj=io.BytesIO(first.getvalue())) as tar:
        members = tar.getmembers()
    files = [m.name for m in members if m.isfile()]
    assert files[0] == "PKG-1/bagit.txt"
    assert files[-3:] == [
        "PKG-1/bag-info.txt",
        "PKG-1/manifest-sha256.txt",
        "PKG-1/tagmanifest-sha256.txt",
    ]
    for member in members:
        assert member.name.startswith("PKG-1")
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mtime == 1772582400  # 2026-03-04T00:00:00Z
        assert member.mode == (0o755 if member.isdir() else 0o644)
        assert member.isdir() or member.isfile()


def test_writes_to_a_non_seekable_stream(tmp_path: Path) -> None:
    entries = _files(tmp_path)
    sink = WriteOnly()
    write_bag_tar(sink, "PKG-1", entries, INFO)  # type: ignore[arg-type]
    reference = io.BytesIO()
    write_bag_tar(reference, "PKG-1", entries, INFO)
    assert sink.digest.hexdigest() == hashlib.sha256(reference.getvalue()).hexdigest()


@pytest.mark.parametrize(
    "path",
    [
        "../x",
        "data/../x",
        "items/x.pdf",
        "data",
        "data/",
        "data//x",
        "/data/x",
        "data/100%.pdf",
        "data/é.pdf",
        "data/.hidden",
        "data/a b.pdf",
        "data/a\nb",
        "data/x\\y",
    ],
)
def test_refuses_bad_paths(tmp_path: Path, path: str) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    with pytest.raises(BagError, match="bag path"):
        write_bag_tar(io.BytesIO(), "PKG-1", [BagEntry(path, source)], INFO)


def test_refuses_duplicates_and_file_inside_file(tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    for paths in (
        ["data/a.pdf", "data/a.pdf"],
        ["data/A.pdf", "data/a.pdf"],
        ["data/a", "data/a/b"],
    ):
        out = io.BytesIO()
        with pytest.raises(BagError):
            write_bag_tar(out, "PKG-1", [BagEntry(p, source) for p in paths], INFO)
        assert out.getvalue() == b""  # refused before a byte was written


def test_refuses_non_regular_and_missing_sources(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    real = tmp_path / "real"
    real.write_bytes(b"x")
    (tmp_path / "link").symlink_to(real)
    os.mkfifo(tmp_path / "fifo")
    for name, message in [
        ("dir", "not a regular file"),
        ("link", "cannot read"),
        ("fifo", "not a regular file"),
        ("missing", "cannot read"),
    ]:
        with pytest.raises(BagError, match=message):
            write_bag_tar(io.BytesIO(), "PKG-1", [BagEntry("data/x", tmp_path / name)], INFO)


def test_refuses_bytes_that_differ_from_the_registered_digest(tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"the registered bytes were different")
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(BagError, match="registered sha256"):
        write_bag_tar(io.BytesIO(), "PKG-1", [BagEntry("data/f", source, wrong)], INFO)
    right = hashlib.sha256(source.read_bytes()).hexdigest()
    write_bag_tar(io.BytesIO(), "PKG-1", [BagEntry("data/f", source, right)], INFO)


@pytest.mark.parametrize(
    ("name", "info"),
    [
        ("../PKG", INFO),
        ("PKG/1", INFO),
        ("", INFO),
        ("PKG-1", {"Bagging-Date": "4 March 2026"}),
        ("PKG-1", {"Payload-Oxum": "1.1"}),
        ("PKG-1", {"Bad Label": "x"}),
        ("PKG-1", {"Contact-Name": "two\nlines"}),
        ("PKG-1", {"Contact-Name": " padded"}),
    ],
)
def test_refuses_bad_bag_names_and_info(tmp_path: Path, name: str, info: dict[str, str]) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    out = io.BytesIO()
    with pytest.raises(BagError):
        write_bag_tar(out, name, [BagEntry("data/f", source)], info)
    assert out.getvalue() == b""


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("100%.pdf", "100.pdf"),
        ("a\x00b.txt", "ab.txt"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("CON", "CON_"),
        ("con.txt", "con_.txt"),
        ("Déclaration témoin.PDF", "Declaration_temoin.pdf"),
        ("証言.pdf", "file.pdf"),
        ("..", "file"),
        ("", "file"),
        (".htaccess", "file.htaccess"),
    ],
)
def test_safe_payload_name(hostile: str, expected: str) -> None:
    assert safe_payload_name(hostile) == expected


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=300))
def test_any_name_becomes_a_valid_bag_path(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    safe = safe_payload_name(name)
    assert safe and safe.isascii() and "%" not in safe and not safe.startswith(".")
    assert len(safe) <= 100
    source = tmp_path_factory.mktemp("n") / "f"
    source.write_bytes(b"x")
    write_bag_tar(io.BytesIO(), "PKG-1", [BagEntry(f"data/items/ITM-1/{safe}", source)], INFO)


def test_memory_stays_flat_for_a_64_mb_payload(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        block = os.urandom(1 << 20)
        for _ in range(64):
            handle.write(block)
    sink = WriteOnly()
    tracemalloc.start()
    try:
        summary = write_bag_tar(sink, "PKG-1", [BagEntry("data/big.bin", big)], INFO)  # type: ignore[arg-type]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary.payload_oxum == f"{64 << 20}.1"
    assert sink.size > 64 << 20
    assert peak < 8 * 1024 * 1024, peak


# --------------------------------------------------------------------------- observers


class Recorder:
    """A FileObserver keeping what it saw; ``stop_at`` makes close() raise for that file."""

    def __init__(self, path: str, log: list[tuple[str, bytes]], stop: bool) -> None:
        self.path, self.log, self.stop, self.data = path, log, stop, bytearray()

    def feed(self, chunk: bytes) -> None:
        self.data += chunk

    def close(self) -> None:
        self.log.append((self.path, bytes(self.data)))
        if self.stop:
            raise RuntimeError(f"stop at {self.path}")


def test_an_observer_sees_every_payload_byte_once_in_order(tmp_path: Path) -> None:
    entries = _files(tmp_path)
    log: list[tuple[str, bytes]] = []
    write_bag_tar(
        WriteOnly(),  # type: ignore[arg-type]
        "PKG-2026-0001",
        entries,
        INFO,
        chunk_size=4096,  # several chunks per file
        observe=lambda entry: Recorder(entry.path, log, stop=False),
    )
    assert log == [(entry.path, entry.source.read_bytes()) for entry in entries]


def test_an_observer_that_raises_stops_the_bag(tmp_path: Path) -> None:
    entries = _files(tmp_path)
    log: list[tuple[str, bytes]] = []
    out = io.BytesIO()
    with pytest.raises(RuntimeError, match=r"stop at data/items/ITM-000002/photo\.jpg"):
        write_bag_tar(
            out,
            "PKG-2026-0001",
            entries,
            INFO,
            observe=lambda entry: Recorder(entry.path, log, stop=entry.path.endswith(".jpg")),
        )
    assert [path for path, _ in log] == [entries[0].path, entries[1].path]  # nothing after
    assert b"empty.txt" not in out.getvalue() and b"bag-info.txt" not in out.getvalue()


def test_more_entries_go_in_after_the_payload_and_the_bag_validates(tmp_path: Path) -> None:
    entries = _files(tmp_path)
    payload, late = entries[:3], entries[3:]
    asked: list[int] = []

    def more() -> list[BagEntry]:
        asked.append(1)
        return late

    out = io.BytesIO()
    summary = write_bag_tar(out, "PKG-2026-0001", payload, INFO, more=more)
    assert asked == [1]
    assert [path for path, _, _ in summary.files] == [entry.path for entry in entries]
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        names = [name for name in tar.getnames() if "/data/" in name and "." in name]
    assert names[-1] == "PKG-2026-0001/data/manifest.json"
    _extract(out.getvalue(), tmp_path / "x")
    bagit.Bag(str(tmp_path / "x" / "PKG-2026-0001")).validate()


def test_more_entries_are_checked_like_the_others(tmp_path: Path) -> None:
    entries = _files(tmp_path)
    with pytest.raises(BagError, match="duplicate bag path"):
        write_bag_tar(io.BytesIO(), "PKG-2026-0001", entries, INFO, more=lambda: entries[:1])
