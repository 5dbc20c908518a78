"""Tar extraction safety: the decrypted tar is checked over its headers before a single byte is
extracted, so a hostile archive cannot write outside the bag or fill the disk.

Refused: absolute paths, ``..``, empty or ``.`` components, backslashes and control characters,
links, devices, FIFOs and sparse files, more than one top-level directory, duplicate names (after
NFC and case folding), a name that is both a file and a directory, payload files that
``manifest-sha256.txt`` does not announce, and payloads larger than ``Payload-Oxum`` says (each
file and in total). The tag files are read into memory only up to a bound.
"""

from __future__ import annotations

import re
import tarfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from portal.verify.results import EXIT_BAG_INVALID, EXIT_UNSAFE_ARCHIVE, Passed, VerifyFailed

__all__ = ["extract"]

_OXUM = re.compile(r"(\d+)\.(\d+)")
_MAX_TAG_FILE = 64 << 20  # tag files are read into memory before anything is trusted
_PAYLOAD_DIR = "data"


@dataclass(frozen=True)
class _Archive:
    top: str  # the single top-level directory: the bag's name
    members: tuple[tarfile.TarInfo, ...]
    payload_bytes: int
    payload_files: int


def _unsafe(message: str) -> VerifyFailed:
    return VerifyFailed(EXIT_UNSAFE_ARCHIVE, f"unsafe archive: {message}")


def _member_kind(member: tarfile.TarInfo) -> str | None:
    """None for a regular file or a directory; otherwise what it is (and why it is refused)."""
    if member.issym():
        return f"a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "a device file"
    if member.isfifo():
        return "a FIFO"
    if member.issparse():
        return "a sparse file"
    if member.isreg() or member.isdir():
        return None
    return f"an entry of unsupported type {member.type!r}"


def _check_name(name: str) -> list[str]:
    if not name:
        raise _unsafe("an entry has an empty name")
    if name.startswith("/"):
        raise _unsafe(f"{name!r} is an absolute path")
    if "\\" in name or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise _unsafe(f"{name!r} contains a backslash or a control character")
    parts = name.split("/")
    if ".." in parts:
        raise _unsafe(f"{name!r} climbs out of the bag with '..'")
    if any(part in ("", ".") for part in parts):
        raise _unsafe(f"{name!r} has an empty or '.' path component")
    return parts


def _scan(tar: tarfile.TarFile) -> tuple[str, list[tarfile.TarInfo]]:
    """First pass, over the headers only: names, types, one top directory, no duplicates."""
    top: str | None = None
    members: list[tarfile.TarInfo] = []
    seen: set[str] = set()
    files: set[str] = set()
    dirs: set[str] = set()
    for member in tar:
        parts = _check_name(member.name)
        kind = _member_kind(member)
        if kind is not None:
            raise _unsafe(f"{member.name!r} is {kind}")
        if top is None:
            top = parts[0]
        elif parts[0] != top:
            raise _unsafe(f"{member.name!r} is outside the bag directory {top!r}")
        if member.isreg() and len(parts) < 2:
            raise _unsafe(f"{member.name!r} is a file outside the bag directory")
        key = unicodedata.normalize("NFC", member.name).casefold()
        if key in seen:
            raise _unsafe(f"{member.name!r} appears twice in the archive")
        seen.add(key)
        (files if member.isreg() else dirs).add(key)
        dirs.update("/".join(parts[:i]).casefold() for i in range(1, len(parts)))
        members.append(member)
    if top is None:
        raise _unsafe("the archive is empty")
    clash = files & dirs
    if clash:
        raise _unsafe(f"{sorted(clash)[0]!r} is both a file and a directory")
    return top, members


def _bound_tag_file(member: tarfile.TarInfo) -> None:
    if member.size > _MAX_TAG_FILE:
        raise _unsafe(f"the tag file {member.name!r} is larger than {_MAX_TAG_FILE} bytes")


def _read_tag_file(tar: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    _bound_tag_file(member)
    stream = tar.extractfile(member)
    if stream is None:  # not a regular file; _scan refused those already
        raise _unsafe(f"{member.name!r} is not a regular file")
    with stream:
        raw = stream.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise VerifyFailed(EXIT_BAG_INVALID, f"{member.name} is not UTF-8 text") from None


def _manifest_paths(text: str) -> set[str]:
    """Payload paths named by a manifest-sha256.txt (RFC 8493 2.1.3 percent-encoding undone)."""
    paths: set[str] = set()
    for line in text.splitlines():
        if not line.strip():
            continue
        _digest, _, path = line.partition(" ")
        path = path.lstrip(" *").replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")
        paths.add(unicodedata.normalize("NFC", path))
    return paths


def _announced(
    tar: tarfile.TarFile, top: str, members: Sequence[tarfile.TarInfo]
) -> tuple[int, int, set[str]]:
    """Payload-Oxum (bytes, files) and the payload paths of manifest-sha256.txt."""
    by_name = {member.name: member for member in members}
    info = by_name.get(f"{top}/bag-info.txt")
    manifest = by_name.get(f"{top}/manifest-sha256.txt")
    if info is None or manifest is None:
        missing = "bag-info.txt" if info is None else "manifest-sha256.txt"
        raise VerifyFailed(EXIT_BAG_INVALID, f"the bag has no {missing}")
    oxum = None
    for line in _read_tag_file(tar, info).splitlines():
        label, _, value = line.partition(":")
        if label.strip().lower() == "payload-oxum":
            oxum = _OXUM.fullmatch(value.strip())
    if oxum is None:
        raise VerifyFailed(EXIT_BAG_INVALID, "bag-info.txt has no valid Payload-Oxum")
    return int(oxum[1]), int(oxum[2]), _manifest_paths(_read_tag_file(tar, manifest))


def _check_sizes(tar: tarfile.TarFile, top: str, members: Sequence[tarfile.TarInfo]) -> _Archive:
    """Every payload file is announced by manifest-sha256.txt, and sizes stay within
    Payload-Oxum (each file and in total) before a single byte is extracted."""
    oxum_bytes, oxum_files, announced = _announced(tar, top, members)
    total = count = 0
    prefix = f"{top}/"
    for member in members:
        if not member.isreg():
            continue
        relative = member.name[len(prefix) :]
        if relative.split("/")[0] != _PAYLOAD_DIR:
            _bound_tag_file(member)
            continue
        if unicodedata.normalize("NFC", relative) not in announced:
            raise _unsafe(f"{member.name!r} is not announced in manifest-sha256.txt")
        if member.size > oxum_bytes:
            raise _unsafe(
                f"{member.name!r} is {member.size} bytes, more than the whole payload "
                f"announced by Payload-Oxum ({oxum_bytes} bytes)"
            )
        total += member.size
        count += 1
        if total > oxum_bytes or count > oxum_files:
            raise _unsafe(
                f"the payload exceeds what Payload-Oxum announces ({oxum_bytes} bytes in "
                f"{oxum_files} files)"
            )
    return _Archive(top, tuple(members), total, count)


def extract(tar_path: Path, dest: Path) -> Passed[Path]:
    """Check the tar (two passes over its headers), extract it into ``dest``; the bag
    directory passes, with what was checked."""
    try:
        with tarfile.open(tar_path, mode="r:") as tar:
            top, members = _scan(tar)
            archive = _check_sizes(tar, top, members)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=archive.members, filter="data")
            else:  # Python < 3.11.4: our own checks above are the only guard
                tar.extractall(dest, members=archive.members)  # noqa: S202 - members checked
    except tarfile.FilterError as exc:
        raise _unsafe(str(exc)) from None
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise _unsafe(f"the decrypted content is not a readable tar archive ({exc})") from None
    bag = dest / archive.top
    for member in archive.members:
        if member.isreg() and (dest / member.name).stat().st_size != member.size:
            raise _unsafe(f"{member.name!r} did not extract to its announced size")
    if not bag.is_dir():
        raise _unsafe("the archive holds no bag directory")
    return Passed(
        bag,
        f"{len(archive.members)} entries, no absolute paths, '..', links, devices or duplicate "
        f"names; {archive.payload_files} payload files, {archive.payload_bytes} bytes, within "
        "what Payload-Oxum and manifest-sha256.txt announce",
    )
