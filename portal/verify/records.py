"""The package's own evidence (manifest schema 3): the signed decision record and the item
index, each checked against the verified manifest, each failing with its own exit code.

- ``decision_record``: the file the manifest names is in the bag with the SHA-256 and size it
  gives (exit 30 otherwise), reads as a decision record, was made for this package, and
  agrees with the manifest's decision, policy and items (each shared under it);
- ``decision_signature``: its detached signature is good and by the pinned key (exit 31);
- ``item_index``: both index files are in the bag as the manifest names them, hold the same
  rows, and agree with the manifest's items (exit 32).

Manifests of schema versions 1 and 2 have none of these: the steps say so and are skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gnupg

from portal.canonical import canonical_json, sha256_hex
from portal.packages.assembly.decision_record import (
    RecordInvalid,
    disagreements,
    parse_decision_record,
)
from portal.packages.assembly.item_index import IndexInvalid, index_disagreements, read_index
from portal.verify.results import (
    EXIT_DECISION_RECORD,
    EXIT_DECISION_SIGNATURE,
    EXIT_ITEM_INDEX,
    VerifyFailed,
    first_few,
)
from portal.verify.signatures import FailureCodes, SenderKey, check_detached

__all__ = ["check_decision_record", "check_decision_signature", "check_item_index"]

_SIGNATURE = FailureCodes(wrong_signer=EXIT_DECISION_SIGNATURE, bad=EXIT_DECISION_SIGNATURE)


def not_in(manifest: Mapping[str, Any]) -> str | None:
    """Why a manifest has no such records (None: it has them)."""
    if "decision_record" in manifest:
        return None
    return f"not in this package (manifest schema version {manifest['schema_version']})"


def _file(bag_dir: Path, entry: Mapping[str, Any], what: str, code: int) -> bytes:
    """The bytes of the file ``entry`` names, as the manifest says them."""
    path: Path = bag_dir / entry["path"]
    if not path.is_file():
        raise VerifyFailed(code, f"the bag has no {entry['path']} ({what})")
    data = path.read_bytes()
    if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise VerifyFailed(
            code, f"{entry['path']} ({what}) is not the file the signed manifest names: altered"
        )
    return data


def check_decision_record(bag_dir: Path, manifest: Mapping[str, Any]) -> str:
    entry = manifest["decision_record"]
    data = _file(bag_dir, entry, "the decision record", EXIT_DECISION_RECORD)
    try:
        record = parse_decision_record(data)
    except RecordInvalid as exc:
        raise VerifyFailed(EXIT_DECISION_RECORD, f"{entry['path']}: {exc}") from None
    problems = disagreements(record, manifest)
    files, revision = record["policy"].get("files"), record["policy"]["revision"]
    if isinstance(files, dict) and sha256_hex(canonical_json(files)) != revision:
        problems.append("its policy files do not hash to its policy revision")
    if problems:
        raise VerifyFailed(
            EXIT_DECISION_RECORD,
            f"the decision record does not match this package: {first_few(problems)}",
        )
    items = record["items"]
    officers = ", ".join(str(name) for name in record["decision"].get("deciding_officers", []))
    return (
        f"{entry['path']} is decision {record['decision']['id']} of "
        f"{record['decision']['decided_at']} (by {officers or 'no officer named'}), policy "
        f"{record['policy']['id']} revision {record['policy']['revision'][:12]}...; it shares "
        f"all {len(items)} item(s) of the package"
    )


def check_decision_signature(
    gpg: gnupg.GPG, bag_dir: Path, manifest: Mapping[str, Any], sender: SenderKey
) -> str:
    entry = manifest["decision_record"]
    signature = bag_dir / entry["signature_path"]
    if not signature.is_file():
        raise VerifyFailed(EXIT_DECISION_SIGNATURE, f"the bag has no {entry['signature_path']}")
    return check_detached(
        gpg,
        signature,
        bag_dir / entry["path"],
        sender,
        role="decision record signature",
        label=entry["signature_path"],
        codes=_SIGNATURE,
    )


def check_item_index(bag_dir: Path, manifest: Mapping[str, Any]) -> str:
    index = manifest["item_index"]
    csv_bytes = _file(bag_dir, index["csv"], "the item index", EXIT_ITEM_INDEX)
    json_bytes = _file(bag_dir, index["json"], "the item index", EXIT_ITEM_INDEX)
    try:
        code, rows = read_index(csv_bytes, json_bytes)
    except IndexInvalid as exc:
        raise VerifyFailed(EXIT_ITEM_INDEX, f"the item index: {exc}") from None
    problems = index_disagreements(code, rows, manifest)
    if problems:
        raise VerifyFailed(
            EXIT_ITEM_INDEX, f"the item index does not match the manifest: {first_few(problems)}"
        )
    return (
        f"{index['csv']['path']} and {index['json']['path']} list the {len(rows)} item(s) of "
        "the manifest, with the same digests"
    )
