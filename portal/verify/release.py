"""The release statement checked against the package it releases (``portal-verify
--release-statement``, or ``<package>.release.asc`` found beside the package file).

A statement is the text :func:`portal.packages.release_statement.statement_text` makes,
clearsigned by the mechanism's signing key after the second legal officer released the
package. It must be signed by the pinned key (else exit 34), and name this package's code and
the SHA-256 of this very package file (else exit 33: a statement for another package).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gnupg

from portal.verify.clearsigned import read_clearsigned
from portal.verify.recall import sha256_of_file
from portal.verify.results import (
    EXIT_RELEASE_MISMATCH,
    EXIT_RELEASE_SIGNATURE,
    VerifyFailed,
    first_few,
)
from portal.verify.signatures import FailureCodes, SenderKey

__all__ = ["ReleaseStatement", "check_release", "parse_statement", "read_statement"]

SUFFIX = ".release.asc"
MAX_STATEMENT = 64 * 1024  # a statement is half a page
_CODES = FailureCodes(wrong_signer=EXIT_RELEASE_SIGNATURE, bad=EXIT_RELEASE_SIGNATURE)
_HEADING = "RELEASE STATEMENT\n"
_FIELDS = ("Package", "Package SHA-256", "Assembled by", "Released by", "Released at")


@dataclass(frozen=True)
class ReleaseStatement:
    """What a signed statement says, as far as the report needs it."""

    fields: dict[str, str]
    signature: str  # the report's words on its signature


def release_beside(package: Path) -> Path | None:
    """``<package>.release.asc`` beside the package file, when there."""
    beside = package.with_name(package.name + SUFFIX)
    return beside if beside.is_file() else None


def read_statement(gpg: gnupg.GPG, statement: Path, sender: SenderKey) -> ReleaseStatement:
    text, detail = read_clearsigned(
        gpg, statement, sender, what="release statement", limit=MAX_STATEMENT, codes=_CODES
    )
    return parse_statement(text, detail)


def parse_statement(text: str, signature: str) -> ReleaseStatement:
    """The ``Key: value`` lines of a statement's signed text (each key once)."""
    if not text.startswith(_HEADING):
        raise VerifyFailed(EXIT_RELEASE_MISMATCH, "the signed text is not a release statement")
    fields: dict[str, str] = {}
    for found in re.finditer(r"^([A-Z][A-Za-z0-9 -]*):[ ]+(\S.*)$", text, re.MULTILINE):
        if found[1] in fields:
            said = f"the release statement says {found[1]} twice"
            raise VerifyFailed(EXIT_RELEASE_MISMATCH, said)
        fields[found[1]] = found[2]
    missing = [name for name in _FIELDS if name not in fields]
    if missing:
        raise VerifyFailed(
            EXIT_RELEASE_MISMATCH, f"the release statement does not say: {', '.join(missing)}"
        )
    return ReleaseStatement(fields, signature)


def check_release(statement: ReleaseStatement, manifest: dict[str, Any], package: Path) -> str:
    """The statement releases this package file; returns what the report says."""
    problems: list[str] = []
    code = manifest["package"]["code"]
    said = statement.fields
    if said["Package"] != code:
        problems.append(f"it releases package {said['Package']}, this package is {code}")
    if said["Package SHA-256"] != sha256_of_file(package):
        problems.append(f"the SHA-256 it names is not that of this package file ({package.name})")
    if problems:
        raise VerifyFailed(
            EXIT_RELEASE_MISMATCH,
            f"the release statement is for another package: {first_few(problems)}",
        )
    return (
        f"{statement.signature}; {code} (this file) was assembled by {said['Assembled by']} "
        f"and released by {said['Released by']} on {said['Released at']}"
    )
