"""Export a released package for physical transfer (``portal package export PKG DIR``).

Writes ``PKG.tar.gpg``, ``PKG.tar.gpg.sig`` and a plain-text cover sheet into a directory
(a removable drive, say). All three are first written to temporary names in that directory
and fsynced, and the copied bytes re-hashed (a blob that no longer matches its digest is
refused before anything gets its final name); only then is each linked to its final name,
which fails instead of overwriting an existing file, the package file last. On any failure
the files this export made are removed again, so the directory holds all three or none; even
a kill or a pulled drive midway can only leave the sheet and the signature without the
package, never a package without its signature.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import audit
from portal.db import utcnow
from portal.eligibility.decision_pdf import _when
from portal.packages.downloads import effective_status
from portal.packages.models import Package
from portal.registry.models import Authority
from portal.registry.openpgp import grouped_fingerprint
from portal.rfa.models import Rfa
from portal.storage import BlobNotFound, FileBlobStore, fsync_dir

#: What os.link says on file systems without hard links (FAT, exFAT, some network shares).
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS})


class ExportRefused(Exception):
    """The export cannot be made; the message says why. Nothing was written."""


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class ExportResult:
    package: ExportedFile
    signature: ExportedFile
    cover: ExportedFile

    def remove(self) -> None:
        """Delete the exported files (when the export could not be recorded)."""
        for exported in (self.package, self.signature, self.cover):
            exported.path.unlink(missing_ok=True)


def file_names(code: str) -> tuple[str, str, str]:
    """The three files an export writes for package ``code``."""
    return f"{code}.tar.gpg", f"{code}.tar.gpg.sig", f"{code}-cover-sheet.txt"


def export_package(
    db: Session,
    blobs: FileBlobStore,
    code: str,
    directory: Path,
    *,
    actor: str,
    now: datetime | None = None,
) -> ExportResult:
    """Write the package, its detached signature and a cover sheet into ``directory``.

    Refused for a package that is not currently released (or whose download period has
    ended), without a signature, when ``directory`` is not a directory, or when any of the
    three files exists already. Audited in the caller's transaction (flushed, not committed).
    """
    moment = now or utcnow()
    package = db.scalar(select(Package).where(Package.code == code.strip()))
    if package is None:
        raise ExportRefused(f"there is no package {code}")
    status = effective_status(package, moment)
    if status != "released":
        raise ExportRefused(
            f"{package.code} is {status}, not released: only released packages can be exported"
        )
    if not package.file_sha256 or not package.signature_sha256:
        raise ExportRefused(f"{package.code} has no encrypted file or no detached signature")
    if not directory.is_dir():
        raise ExportRefused(f"{directory} is not an existing directory")
    names = file_names(package.code)
    targets = [directory / name for name in names]
    existing = [t.name for t in targets if t.exists() or t.is_symlink()]
    if existing:
        raise ExportRefused(
            f"{', '.join(existing)} already in {directory}; nothing was overwritten"
        )
    authority = db.get(Authority, package.authority_id)
    rfa = db.get(Rfa, package.rfa_id)
    staged: list[tuple[Path, Path]] = []  # (temporary file, final name)
    written: list[Path] = []
    try:
        cipher = _copy_blob(blobs, package.file_sha256, targets[0], staged)
        signature = _copy_blob(blobs, package.signature_sha256, targets[1], staged)
        text = cover_sheet(
            package,
            authority_name=authority.name if authority else "",
            authority_code=authority.code if authority else "",
            authority_country=authority.country if authority else "",
            rfa_code=rfa.code if rfa else "",
            files=(cipher, signature),
            exported_at=moment,
        )
        cover = _stage(targets[2], [text.encode("utf-8")], staged)
        for tmp, target in reversed(staged):  # the cover sheet, the signature, the package
            _place(tmp, target)
            written.append(target)
        fsync_dir(directory)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    finally:
        for tmp, _target in staged:
            tmp.unlink(missing_ok=True)
    audit.record(
        db,
        actor,
        "package.exported",
        f"package:{package.code}",
        {
            "directory": str(directory.resolve()),
            "files": {f.path.name: f.sha256 for f in (cipher, signature, cover)},
        },
        now=moment,
    )
    return ExportResult(package=cipher, signature=signature, cover=cover)


def cover_sheet(
    package: Package,
    *,
    authority_name: str,
    authority_code: str,
    authority_country: str,
    rfa_code: str,
    files: Iterable[ExportedFile],
    exported_at: datetime,
) -> str:
    """The plain-text sheet that travels with the files."""
    listed = list(files)
    fingerprint = package.signer_fingerprint or "(not recorded)"
    grouped = grouped_fingerprint(fingerprint)
    lines = [
        f"COVER SHEET - PACKAGE {package.code}",
        "",
        f"Package:            {package.code}",
        f"Request:            {rfa_code}",
        f"Addressed to:       {authority_name} ({authority_code}, {authority_country})",
        f"Released:           {_when(package.released_at)}",
        f"Exported:           {_when(exported_at)}",
        f"Signing key:        {grouped}",
        "",
        "Files (SHA-256, size in bytes):",
        *(f"  {f.sha256}  {f.path.name}  ({f.size})" for f in listed),
        "",
        "How to verify before opening:",
        "  1. Check the digests:   sha256sum " + " ".join(f.path.name for f in listed),
        "     and compare them with the list above (and with the portal's package page).",
        f"  2. Check the signature: gpg --verify {package.code}.tar.gpg.sig {package.code}.tar.gpg",
        "     It must be a good signature by the key whose fingerprint is given above;",
        "     compare the fingerprint with the one given to you out of band.",
        "  3. Decrypt with your authority's key, writing at most the package's size plus 1 MiB",
        "     (the portal's packages are not compressed; a file that decrypts to more is not one):",
        f"     gpg --max-output {_decryption_bound(package.code, listed)} "
        f"--output {package.code}.tar --decrypt {package.code}.tar.gpg",
        "     then extract the tar and validate the BagIt bag (bagit.py --validate).",
        "  4. Acknowledge receipt in the Sharing Portal.",
        "",
        "Do not share the material onward without the Mechanism's consent.",
    ]
    return "\n".join(lines) + "\n"


def _decryption_bound(code: str, files: list[ExportedFile]) -> int:
    """The most a genuine package decrypts to: its size plus 1 MiB (as portal-verify)."""
    size = next((f.size for f in files if f.path.name == f"{code}.tar.gpg"), 0)
    return size + 1024 * 1024


def _copy_blob(
    blobs: FileBlobStore, key: str, target: Path, staged: list[tuple[Path, Path]]
) -> ExportedFile:
    try:
        chunks = blobs.iter_chunks(key)
        exported = _stage(target, chunks, staged)
    except BlobNotFound:
        raise ExportRefused(f"the stored file for {target.name} is missing") from None
    if exported.sha256 != key:
        raise ExportRefused(
            f"the stored file for {target.name} does not match its digest (damaged); "
            "nothing was exported"
        )
    return exported


def _stage(target: Path, chunks: Iterable[bytes], staged: list[tuple[Path, Path]]) -> ExportedFile:
    """Write ``chunks`` to a temporary file beside ``target`` (listed in ``staged`` for the
    caller to place or remove); its digest and size, under ``target``'s name."""
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    tmp = Path(tmp_name)
    staged.append((tmp, target))
    with os.fdopen(fd, "wb") as out:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(tmp, 0o644)
    return ExportedFile(path=target, sha256=digest.hexdigest(), size=size)


def _place(tmp: Path, target: Path) -> None:
    """Give ``tmp`` the name ``target`` without ever replacing an existing file.

    A hard link does that atomically; file systems without hard links (FAT and exFAT
    drives) get a rename after a last check: only a file created in the instant between
    the check and the rename could be replaced."""
    try:
        os.link(tmp, target)
        return
    except FileExistsError:
        raise ExportRefused(f"{target.name} appeared meanwhile; nothing was overwritten") from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
    if target.exists() or target.is_symlink():
        raise ExportRefused(f"{target.name} appeared meanwhile; nothing was overwritten")
    os.rename(tmp, target)
