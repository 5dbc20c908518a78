"""Where a package is decrypted and extracted while it is checked.

The decrypted tar goes to a private temporary directory, removed at the end. With ``--out``, the
bag is extracted there, but only through a staging directory named as what it holds
(``.unverified-*``): the bag gets its own name once every check passed, so even a kill midway
never leaves an unverified bag that looks like a verified one. Unless the bag was kept, ``--out``
is emptied again (or removed, when the verifier created it): it keeps only verified bags.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Workspace", "workspace"]


@dataclass
class Workspace:
    """The temporary directory and, with ``out``, the staging directory inside ``out``."""

    work: Path
    out: Path | None
    _staging: Path | None = field(default=None, init=False)
    kept: bool = field(default=False, init=False)

    @property
    def plaintext(self) -> Path:
        """Where the decrypted tar is written."""
        return self.work / "package.tar"

    def staging(self) -> Path:
        """A new directory to extract the bag into."""
        if self.out is None:
            self._staging = self.work / "extracted"
        else:
            self._staging = Path(tempfile.mkdtemp(dir=self.out, prefix=".unverified-"))
        return self._staging

    def keep(self, bag_dir: Path) -> Path | None:
        """The bag verified: move it into ``out`` under its own name and say where it is
        (None without ``out``: it goes with the temporary directory)."""
        if self.out is None or self._staging is None:
            return None
        verified = self.out / bag_dir.name
        os.replace(bag_dir, verified)
        self._staging.rmdir()
        self.kept = True
        return verified


@contextmanager
def workspace(out: Path | None) -> Iterator[Workspace]:
    """A fresh :class:`Workspace`; on leaving, the temporary directory is removed and, unless
    the bag was kept, ``out`` is emptied (or removed, when it did not exist before)."""
    created_out = out is not None and not out.exists()
    space = Workspace(Path(tempfile.mkdtemp(prefix="portal-verify-")), out)
    try:
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        yield space
    finally:
        if not space.kept and out is not None and out.is_dir():
            _clear(out, created_out)
        shutil.rmtree(space.work, ignore_errors=True)


def _clear(directory: Path, created: bool) -> None:
    """Undo what was extracted into ``directory``; remove it when the verifier created it."""
    if created:
        shutil.rmtree(directory, ignore_errors=True)
        return
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
