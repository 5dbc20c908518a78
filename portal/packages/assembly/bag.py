"""A BagIt bag (RFC 8493) written straight into a tar stream.

The bag never exists on disk: payload files are copied into the tar in chunks and hashed
(sha256) as they pass, so every byte is read once; the tag files (``bag-info.txt``,
``manifest-sha256.txt``, ``tagmanifest-sha256.txt``) come last, when the digests are known.
``bagit.make_bag`` is never used (it moves files in place and changes the working directory);
the ``bagit`` library only validates bags in the tests and in the recipient's verifier.

Tar headers are deterministic: PAX format, uid/gid 0, no user or group names, mode 0644 for
files and 0755 for directories, mtime = midnight UTC of the bagging date. The output stream
may be a pipe (nothing here seeks or calls ``tell``). When :class:`BagError` is raised the
bytes already written are garbage and must be discarded by the caller.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import tarfile
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from portal.storage import copy_hashed

__all__ = [
    "BAGIT_TXT",
    "BagDigestMismatch",
    "BagEntry",
    "BagError",
    "BagSummary",
    "FileObserver",
    "safe_payload_name",
    "write_bag_tar",
]

BAGIT_TXT = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
_FILE_MODE = 0o644
_DIR_MODE = 0o755

# Bag paths: "data/" then components of letters, digits, ".", "_" and "-"; the same rule as the
# manifest schema, so anything the bag accepts the manifest accepts too.
_COMPONENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}")
_BAG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,63}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_RESERVED_LABELS = frozenset({"payload-oxum", "bagging-date"})
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
_MAX_STEM = 80
_MAX_SUFFIX = 10


class BagError(Exception):
    """The bag cannot be written as asked; the message says which entry and why."""


class BagDigestMismatch(BagError):
    """A file's bytes differ from the sha256 it was registered with (bit rot, tampering)."""

    def __init__(self, path: str, expected: str, actual: str) -> None:
        super().__init__(
            f"the file for {path!r} does not match its registered sha256 "
            f"(expected {expected}, read {actual})"
        )
        self.path = path
        self.expected = expected


@dataclass(frozen=True)
class BagEntry:
    """One payload file: its bag-relative path and the file on disk that holds its bytes."""

    path: str  # "data/...", ASCII-safe, NFC, no "%"
    source: Path
    expected_sha256: str | None = None  # refuse the bag if the streamed bytes differ


class FileObserver(Protocol):
    """Sees the bytes of one payload file as they are bagged (see :func:`write_bag_tar`)."""

    def feed(self, chunk: bytes) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BagSummary:
    """What went into the bag: its name, Payload-Oxum and (path, sha256, size) per payload file."""

    name: str
    payload_oxum: str
    files: tuple[tuple[str, str, int], ...]


# --------------------------------------------------------------------------- names


def safe_payload_name(name: str) -> str:
    """Turn an untrusted original filename into a safe, ASCII, single-component name.

    Keeps the (lower-cased) extension; drops any directory part, control and formatting
    characters (RTL overrides...), accents (transliterated), and everything outside
    ``[A-Za-z0-9._-]``; never returns an empty name, a dot-file or a Windows device name.
    """
    base = re.split(r"[/\\]", name)[-1]
    decomposed = unicodedata.normalize("NFKD", base)
    kept = "".join(
        char
        for char in decomposed
        if not unicodedata.combining(char) and unicodedata.category(char)[0] != "C"
    )
    ascii_only = re.sub(r"[^A-Za-z0-9._-]+", "_", kept.encode("ascii", "ignore").decode())
    ascii_only = re.sub(r"_{2,}", "_", ascii_only).strip("_- ")
    stem, dot, suffix = ascii_only.rpartition(".")
    if not dot or not re.fullmatch(rf"[A-Za-z0-9]{{1,{_MAX_SUFFIX}}}", suffix):
        stem, suffix = ascii_only, ""
    stem = re.sub(r"\.+", "_", stem).strip("._-")[:_MAX_STEM].rstrip("._-") or "file"
    if stem.upper() in _WINDOWS_RESERVED:
        stem += "_"
    return f"{stem}.{suffix.lower()}" if suffix else stem


def _check_path(path: str) -> None:
    if unicodedata.normalize("NFC", path) != path or not path.isascii():
        raise BagError(f"bag path {path!r} must be plain ASCII")
    parts = path.split("/")
    if parts[0] != "data" or len(parts) < 2:
        raise BagError(f"bag path {path!r} must be inside data/")
    if not all(_COMPONENT.fullmatch(part) for part in parts[1:]) or ".." in parts:
        raise BagError(
            f"bag path {path!r} may contain only letters, digits, '.', '_' and '-' "
            "in non-empty components"
        )
    if len(path) > 1000:
        raise BagError(f"bag path {path[:40]!r}... is too long")


def _check_entries(entries: Sequence[BagEntry]) -> None:
    seen: set[str] = set()
    for entry in entries:
        _check_path(entry.path)
        folded = entry.path.casefold()
        if folded in seen:
            raise BagError(f"duplicate bag path {entry.path!r}")
        seen.add(folded)
        if entry.expected_sha256 is not None and not re.fullmatch(
            r"[0-9a-f]{64}", entry.expected_sha256
        ):
            raise BagError(f"expected sha256 of {entry.path!r} is not a sha256 hex digest")
    for folded in seen:  # a file may not also be a directory of another entry
        parts = folded.split("/")
        for depth in range(2, len(parts)):
            if "/".join(parts[:depth]) in seen:
                raise BagError(f"bag path {folded!r} lies inside another payload file")


# --------------------------------------------------------------------------- bag-info


def _bagging_date(bag_info: Mapping[str, str]) -> date:
    raw = bag_info.get("Bagging-Date")
    if raw is None:
        return datetime.now(UTC).date()
    if not _DATE.fullmatch(raw):
        raise BagError(f"Bagging-Date must be YYYY-MM-DD, not {raw!r}")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BagError(f"Bagging-Date {raw!r} is not a date") from None


def _bag_info_text(bag_info: Mapping[str, str], bagging: date, oxum: str) -> str:
    lines = [f"Bagging-Date: {bagging.isoformat()}", f"Payload-Oxum: {oxum}"]
    for label, value in bag_info.items():
        if label == "Bagging-Date":
            continue
        if not _LABEL.fullmatch(label) or label.casefold() in _RESERVED_LABELS:
            raise BagError(f"bag-info label {label!r} is not allowed")
        if any(unicodedata.category(char)[0] == "C" for char in value) or value != value.strip():
            raise BagError(f"bag-info value of {label!r} contains control characters or padding")
        lines.append(f"{label}: {value}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- tar writing


class _Limited:
    """Reads of ``handle`` of at most ``chunk`` bytes that stop after ``size`` bytes (the
    size the tar header gave)."""

    def __init__(self, handle: io.RawIOBase, size: int, chunk: int) -> None:
        self._handle, self._left, self._chunk = handle, size, chunk

    def readinto(self, buffer: bytearray) -> int:
        if not self._left:
            return 0
        view = memoryview(buffer)[: min(len(buffer), self._left, self._chunk)]
        length = self._handle.readinto(view) or 0
        self._left -= length
        return length


class _TarOut:
    """Writes tar members to a non-seekable stream, counting bytes for the padding."""

    def __init__(self, out: BinaryIO, mtime: int) -> None:
        self.out = out
        self.mtime = mtime
        self.written = 0
        self.dirs: set[str] = set()

    def _write(self, data: bytes | memoryview) -> None:
        self.out.write(data)
        self.written += len(data)

    def _info(self, name: str, kind: bytes, size: int, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.size = size
        info.mode = mode
        info.mtime = self.mtime
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    def _header(self, info: tarfile.TarInfo) -> None:
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict"))

    def ensure_dirs(self, path: str) -> None:
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            if directory not in self.dirs:
                self.dirs.add(directory)
                self._header(self._info(directory, tarfile.DIRTYPE, 0, _DIR_MODE))

    def _pad(self, size: int) -> None:
        remainder = size % _BLOCK
        if remainder:
            self._write(b"\0" * (_BLOCK - remainder))

    def add_bytes(self, path: str, data: bytes) -> None:
        self.ensure_dirs(path)
        self._header(self._info(path, tarfile.REGTYPE, len(data), _FILE_MODE))
        self._write(data)
        self._pad(len(data))

    def add_file(
        self, path: str, entry: BagEntry, chunk_size: int, observer: FileObserver | None
    ) -> tuple[str, int]:
        """Copy ``entry.source`` into the tar in chunks, hashing (and showing them to
        ``observer``) as it goes; (sha256, size)."""
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(entry.source, flags)
        except OSError as exc:
            raise BagError(
                f"cannot read the file for {entry.path!r}: {exc.strerror or exc}"
            ) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise BagError(f"the file for {entry.path!r} is not a regular file")
        with os.fdopen(fd, "rb", buffering=0) as handle:
            size = st.st_size
            self.ensure_dirs(path)
            self._header(self._info(path, tarfile.REGTYPE, size, _FILE_MODE))

            def write(chunk: memoryview) -> None:
                if observer is not None:
                    observer.feed(bytes(chunk))  # the view's buffer is reused: a copy
                self._write(chunk)

            actual, copied = copy_hashed(_Limited(handle, size, chunk_size), write)  # type: ignore[arg-type]
            if copied < size:
                raise BagError(f"the file for {entry.path!r} shrank while it was bagged")
            if handle.read(1):
                raise BagError(f"the file for {entry.path!r} grew while it was bagged")
        if observer is not None:
            observer.close()
        self._pad(size)
        if entry.expected_sha256 is not None and actual != entry.expected_sha256:
            raise BagDigestMismatch(entry.path, entry.expected_sha256, actual)
        return actual, size

    def close(self) -> None:
        self._write(b"\0" * (2 * _BLOCK))
        remainder = self.written % _RECORD
        if remainder:
            self._write(b"\0" * (_RECORD - remainder))


def write_bag_tar(
    out: BinaryIO,
    bag_name: str,
    entries: Sequence[BagEntry],
    bag_info: Mapping[str, str],
    *,
    chunk_size: int = 1 << 20,
    observe: Callable[[BagEntry], FileObserver | None] | None = None,
    more: Callable[[], Sequence[BagEntry]] | None = None,
) -> BagSummary:
    """Write the bag ``bag_name`` as a tar to ``out``; return what went in.

    ``observe`` (optional) is asked for an observer of each payload file as it starts; the
    observer sees every chunk of it as it passes (the single read) and is closed at its
    end; whatever it raises stops the bag and propagates as it is. ``more`` (optional) is
    called once the payload files given are in; the entries it returns go in after them
    (files made meanwhile, such as documents describing the payload).

    Members: ``<bag_name>/bagit.txt``, the payload files in the order given, then
    ``bag-info.txt`` (Bagging-Date, Payload-Oxum, then ``bag_info``'s other fields in order),
    ``manifest-sha256.txt`` and ``tagmanifest-sha256.txt``. ``bag_info`` may set
    ``Bagging-Date`` (YYYY-MM-DD; default today, UTC), which also fixes every member's mtime.
    Raises :class:`BagError` for a bad name, path, label, value or source file, or a payload
    whose bytes differ from ``expected_sha256``.
    """
    if not _BAG_NAME.fullmatch(bag_name):
        raise BagError(f"bag name {bag_name!r} must be letters, digits, '.', '_' or '-'")
    if chunk_size < 1:
        raise BagError("chunk_size must be positive")
    _check_entries(entries)
    bagging = _bagging_date(bag_info)
    _bag_info_text(bag_info, bagging, "0.0")  # refuse bad fields before writing anything
    mtime = int(datetime(bagging.year, bagging.month, bagging.day, tzinfo=UTC).timestamp())
    tar = _TarOut(out, mtime)

    tags: list[tuple[str, str]] = []

    def add_tag(name: str, text: str) -> None:
        data = text.encode("utf-8")
        tar.add_bytes(f"{bag_name}/{name}", data)
        tags.append((name, hashlib.sha256(data).hexdigest()))

    add_tag("bagit.txt", BAGIT_TXT)
    files: list[tuple[str, str, int]] = []

    def add(batch: Sequence[BagEntry]) -> None:
        for entry in batch:
            observer = observe(entry) if observe is not None else None
            digest, size = tar.add_file(f"{bag_name}/{entry.path}", entry, chunk_size, observer)
            files.append((entry.path, digest, size))

    add(entries)
    if more is not None:
        late = list(more())
        _check_entries([*entries, *late])
        add(late)
    oxum = f"{sum(size for _, _, size in files)}.{len(files)}"
    add_tag("bag-info.txt", _bag_info_text(bag_info, bagging, oxum))
    add_tag("manifest-sha256.txt", "".join(f"{digest}  {path}\n" for path, digest, _ in files))
    tar.add_bytes(
        f"{bag_name}/tagmanifest-sha256.txt",
        "".join(f"{digest}  {name}\n" for name, digest in tags).encode("utf-8"),
    )
    tar.close()
    out.flush()
    return BagSummary(name=bag_name, payload_oxum=oxum, files=tuple(files))
