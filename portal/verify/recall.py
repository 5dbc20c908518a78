"""A recall notice checked against the package it recalls (``portal-verify --recall``).

A notice is the text :func:`portal.packages.assembly.documents.recall_notice_text` makes,
clearsigned by the mechanism (read by :mod:`portal.verify.clearsigned`).

It applies to the verified package when it names the package's code and, when it gives one,
the SHA-256 of the package file; and every item it withdraws is an item of the manifest with
the same path and SHA-256.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gnupg

from portal.verify.clearsigned import read_clearsigned
from portal.verify.results import (
    EXIT_BAD_SIGNATURE,
    EXIT_RECALL_MISMATCH,
    EXIT_WRONG_SIGNER,
    VerifyFailed,
    first_few,
)
from portal.verify.signatures import FailureCodes, SenderKey

__all__ = ["RecallNotice", "check_recall", "parse_notice", "read_notice"]

MAX_NOTICE = 256 * 1024  # a notice is a page of text; one withdrawing 500 items is ~150 KB
_CODES = FailureCodes(wrong_signer=EXIT_WRONG_SIGNER, bad=EXIT_BAD_SIGNATURE)
_PACKAGE = re.compile(r"^Package:\s+(\S+)$", re.MULTILINE)
_PACKAGE_SHA = re.compile(r"^Package SHA-256:\s+([0-9a-f]{64})$", re.MULTILINE)
_ITEM = re.compile(
    r"^Withdrawn item: (\S+)\n  Title:.*\n  Path:\s+(\S+)\n  SHA-256:\s+([0-9a-f]{64})$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class WithdrawnItem:
    code: str
    path: str
    sha256: str


@dataclass(frozen=True)
class RecallNotice:
    """What a signed notice says, as far as a machine needs it."""

    package_code: str
    package_sha256: str | None  # None: a notice from before item-level recalls
    items: tuple[WithdrawnItem, ...]  # empty: the whole package is recalled
    signature: str  # the report's words on its signature


def read_notice(gpg: gnupg.GPG, notice: Path, sender: SenderKey) -> RecallNotice:
    """The signed text of ``notice``, its signature judged against the pinned key."""
    text, detail = read_clearsigned(
        gpg, notice, sender, what="recall notice", limit=MAX_NOTICE, codes=_CODES
    )
    return parse_notice(text, detail)


def parse_notice(text: str, signature: str) -> RecallNotice:
    """The package and the withdrawn items a notice's signed text names."""
    if not text.startswith("RECALL NOTICE\n"):
        raise VerifyFailed(EXIT_RECALL_MISMATCH, "the signed text is not a recall notice")
    package = _PACKAGE.search(text)
    if package is None:
        raise VerifyFailed(EXIT_RECALL_MISMATCH, "the recall notice names no package")
    digest = _PACKAGE_SHA.search(text)
    items = tuple(WithdrawnItem(*found.groups()) for found in _ITEM.finditer(text))
    if text.count("Withdrawn item:") != len(items):
        raise VerifyFailed(
            EXIT_RECALL_MISMATCH, "the recall notice names a withdrawn item it does not describe"
        )
    return RecallNotice(package.group(1), digest.group(1) if digest else None, items, signature)


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_recall(notice: RecallNotice, manifest: dict[str, Any], package: Path) -> str:
    """The notice applies to this package and its items; returns what the report says."""
    problems: list[str] = []
    code = manifest["package"]["code"]
    if notice.package_code != code:
        problems.append(f"it recalls package {notice.package_code}, this package is {code}")
    if notice.package_sha256 is not None and notice.package_sha256 != sha256_of_file(package):
        problems.append(f"the package file's SHA-256 is not the one it names for {code}")
    held = {item["code"]: item for item in manifest["items"]}
    for item in notice.items:
        entry = held.get(item.code)
        if entry is None:
            problems.append(f"it withdraws {item.code}, which is not in the package")
        elif entry["path"] != item.path or entry["sha256"] != item.sha256:
            problems.append(f"{item.code} is not at the path or with the SHA-256 it names")
    if problems:
        raise VerifyFailed(
            EXIT_RECALL_MISMATCH,
            f"the recall notice does not apply to this package: {first_few(problems)}",
        )
    if not notice.items:
        return f"{notice.signature}; it recalls the whole package {code}"
    names = ", ".join(f"{i.code} ({i.path})" for i in notice.items)
    kept = len(held) - len(notice.items)
    return (
        f"{notice.signature}; it withdraws {len(notice.items)} item(s) of {code}: {names}; "
        f"the other {kept} item(s) remain shareable under their conditions"
    )
