"""The bag's ``data/manifest.json``: its JSON Schema, and whether it and the bag name the same
files with the same digests and sizes."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import bagit

from portal.packages.assembly.manifest import (
    MANIFEST_PATH,
    SIGNATURE_PATH,
    ManifestInvalid,
    parse_manifest,
    record_paths,
)
from portal.verify.results import EXIT_MANIFEST_INVALID, VerifyFailed, first_few
from portal.verify.timestamp import CHAIN_PATH, TOKEN_PATH

__all__ = ["cross_check", "read_manifest"]


def read_manifest(bag_dir: Path) -> dict[str, Any]:
    """The bag's manifest, checked against its JSON Schema."""
    path = bag_dir / MANIFEST_PATH
    if not path.is_file():
        raise VerifyFailed(EXIT_MANIFEST_INVALID, f"the bag has no {MANIFEST_PATH}")
    try:
        return parse_manifest(path.read_bytes())
    except ManifestInvalid as exc:
        raise VerifyFailed(EXIT_MANIFEST_INVALID, str(exc)) from None


def cross_check(bag: bagit.Bag, bag_dir: Path, manifest: Mapping[str, Any], pinned: str) -> str:
    """The manifest and the bag name the same files with the same digests and sizes."""
    digests = {
        unicodedata.normalize("NFC", path.replace(os.sep, "/")): hashes.get("sha256")
        for path, hashes in bag.payload_entries().items()
    }
    problems: list[str] = []
    if manifest["package"]["code"] != bag_dir.name:
        problems.append(
            f"the manifest names package {manifest['package']['code']}, the bag is {bag_dir.name}"
        )
    if manifest["signing_key_fingerprint"] != pinned:
        problems.append(
            "the manifest names signing key "
            f"{manifest['signing_key_fingerprint']}, not the key that signed the package"
        )
    named: set[str] = set()
    entries = [("item " + e["code"], e) for e in manifest["items"]]
    entries += [("document " + repr(e["title"]), e) for e in manifest["documents"]]
    for label, entry in entries:
        path = entry["path"]
        named.add(path)
        if path not in digests:
            problems.append(f"{label}: {path} is not in the bag")
        elif digests[path] != entry["sha256"]:
            problems.append(f"{label}: {path} has a different SHA-256 in the bag")
        elif (bag_dir / path).stat().st_size != entry["size"]:
            problems.append(f"{label}: {path} has a different size in the bag")
    named.update(path for _, path in record_paths(manifest))  # checked by portal.verify.records
    unnamed = {MANIFEST_PATH, SIGNATURE_PATH, TOKEN_PATH, CHAIN_PATH}  # made after the manifest
    for path in sorted(set(digests) - named - unnamed):
        problems.append(f"{path} is in the bag but not in the manifest")
    if problems:
        raise VerifyFailed(
            EXIT_MANIFEST_INVALID, f"the manifest does not match the bag: {first_few(problems)}"
        )
    return f"{len(entries)} files named by the manifest match the bag, and nothing else is in it"
