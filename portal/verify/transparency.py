"""The package's place in the mechanism's transparency log, checked offline (``transparency``).

The bag carries ``data/transparency/leaves.json`` (the leaf records of the package's own
events, each with its inclusion proof), ``checkpoint.txt`` (a C2SP tlog-checkpoint) and
``checkpoint.txt.asc`` (its detached signature). This step checks that:

1. the checkpoint is well formed and signed by the pinned sender key;
2. every leaf record is a canonical record whose hash is the one given, for the event its
   index says (``seq = index + 1``), and its inclusion proof, for the checkpoint's tree size,
   leads to the checkpoint's root;
3. the leaves name this package (``package:<code>``) and the decision in its manifest;
4. for every checkpoint the recipient kept (``--checkpoint``; the JSON of the portal's
   ``/transparency/checkpoint`` endpoint, or a checkpoint text with its signature in
   ``FILE.asc`` beside it, such as an earlier package's ``data/transparency/checkpoint.txt``):
   it is signed by the pinned key, is of the same log (origin), and a consistency proof
   (``--consistency-proof``, the JSON of ``/transparency/proofs/consistency?first=M&second=N``)
   shows the smaller tree is a prefix of the larger — so the mechanism did not rewrite the
   history the recipient saw. Two heads of one size must have one root.

Standard library, python-gnupg and :mod:`portal.verify.merkle` only.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gnupg

from portal.verify.merkle import (
    Checkpoint,
    CheckpointInvalid,
    ProofInvalid,
    decode_hash,
    leaf_hash,
    parse_leaf_record,
    verify_consistency,
    verify_inclusion,
)
from portal.verify.results import (
    EXIT_CHECKPOINT_SIGNATURE,
    EXIT_LEAF_MISMATCH,
    EXIT_LOG_INCONSISTENT,
    EXIT_PROOF_SIZE,
    EXIT_PROOF_TRUNCATED,
    EXIT_TRANSPARENCY_INVALID,
    EXIT_USAGE,
    VerifyFailed,
)
from portal.verify.signatures import FailureCodes, SenderKey, check_detached

__all__ = [
    "CHECKPOINT_PATH",
    "EVIDENCE_FORMAT",
    "LEAVES_PATH",
    "SIGNATURE_PATH",
    "check_transparency",
]

EVIDENCE_FORMAT = "portal-transparency-evidence/1"
LEAVES_PATH = "data/transparency/leaves.json"
CHECKPOINT_PATH = "data/transparency/checkpoint.txt"
SIGNATURE_PATH = "data/transparency/checkpoint.txt.asc"
MAX_FILE = 16 * 1024 * 1024  # far above any real evidence, proof or checkpoint
_CODES = FailureCodes(wrong_signer=EXIT_CHECKPOINT_SIGNATURE, bad=EXIT_CHECKPOINT_SIGNATURE)
_PROOF_EXIT = {
    "length": EXIT_PROOF_TRUNCATED,
    "size": EXIT_PROOF_SIZE,
    "hash": EXIT_TRANSPARENCY_INVALID,
    "root": EXIT_LEAF_MISMATCH,
}


@dataclass(frozen=True)
class _Proof:
    first: int
    second: int
    hashes: tuple[bytes, ...]
    label: str


def _invalid(message: str) -> VerifyFailed:
    return VerifyFailed(EXIT_TRANSPARENCY_INVALID, message)


def _read_text(path: Path, what: str) -> str:
    try:
        if path.stat().st_size > MAX_FILE:
            raise _invalid(f"{what} is too large")
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid(f"{what} is not UTF-8 text") from None
    except OSError as exc:
        raise VerifyFailed(EXIT_USAGE, f"{what} cannot be read: {exc.strerror or exc}") from None


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(_read_text(path, what))
    except json.JSONDecodeError:
        raise _invalid(f"{what} is not JSON") from None


def _signed_checkpoint(
    gpg: gnupg.GPG, text_file: Path, signature: Path, sender: SenderKey, label: str
) -> Checkpoint:
    """The checkpoint in ``text_file``, its detached ``signature`` by the pinned key."""
    if not signature.is_file():
        raise VerifyFailed(EXIT_CHECKPOINT_SIGNATURE, f"{label} has no signature ({signature})")
    check_detached(
        gpg, signature, text_file, sender, role="checkpoint signature", label=label, codes=_CODES
    )
    try:
        return Checkpoint.parse(_read_text(text_file, label))
    except CheckpointInvalid as exc:
        raise _invalid(f"{label} is not a checkpoint: {exc}") from None


def _kept_checkpoint(gpg: gnupg.GPG, path: Path, sender: SenderKey) -> Checkpoint:
    """A checkpoint the recipient kept: the endpoint's JSON, or text with ``.asc`` beside."""
    label = f"the kept checkpoint {path.name}"
    raw = _read_text(path, label)
    if not raw.lstrip().startswith("{"):
        return _signed_checkpoint(gpg, path, path.with_name(path.name + ".asc"), sender, label)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        raise _invalid(f"{label} is not JSON") from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(key), str) for key in ("checkpoint", "signature")
    ):
        raise _invalid(f"{label} has no 'checkpoint' text and 'signature'")
    with tempfile.TemporaryDirectory(prefix="pv-ckpt-") as scratch:
        text_file, signature = Path(scratch) / "checkpoint.txt", Path(scratch) / "checkpoint.asc"
        text_file.write_bytes(data["checkpoint"].encode("utf-8"))
        signature.write_bytes(data["signature"].encode("utf-8"))
        return _signed_checkpoint(gpg, text_file, signature, sender, label)


def _hashes(values: object, what: str) -> tuple[bytes, ...]:
    if not isinstance(values, list):
        raise _invalid(f"{what} is not a list of hashes")
    try:
        return tuple(decode_hash(value, what) for value in values)
    except ValueError as exc:
        raise _invalid(str(exc)) from None


def _natural(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _invalid(f"{what} is not a whole number")
    return value


def _consistency_proof(path: Path) -> _Proof:
    label = f"the consistency proof {path.name}"
    data = _read_json(path, label)
    if not isinstance(data, dict):
        raise _invalid(f"{label} is not a JSON object")
    first = _natural(data.get("first"), f"{label}: 'first'")
    second = _natural(data.get("second"), f"{label}: 'second'")
    return _Proof(first, second, _hashes(data.get("proof"), f"{label}: 'proof'"), label)


def _check_leaf(entry: object, number: int, head: Checkpoint) -> Mapping[str, object]:
    """One leaf of the evidence, included under ``head``; its record."""
    where = f"leaf {number + 1} of {LEAVES_PATH}"
    if not isinstance(entry, dict):
        raise _invalid(f"{where} is not a JSON object")
    index = _natural(entry.get("index"), f"{where}: 'index'")
    size = _natural(entry.get("tree_size"), f"{where}: 'tree_size'")
    text = entry.get("leaf")
    if not isinstance(text, str):
        raise _invalid(f"{where} has no 'leaf' text")
    try:
        stated = decode_hash(entry.get("leaf_hash"), f"{where}: 'leaf_hash'")
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    proof = _hashes(entry.get("inclusion_proof"), f"{where}: 'inclusion_proof'")
    leaf = text.encode("utf-8")
    try:
        record = parse_leaf_record(leaf)
    except ValueError as exc:
        raise VerifyFailed(EXIT_LEAF_MISMATCH, f"{where} is not a leaf record: {exc}") from None
    if record["seq"] != index + 1:
        raise VerifyFailed(
            EXIT_LEAF_MISMATCH,
            f"{where} is audit event {record['seq']} but stands at index {index} "
            f"(event {index + 1})",
        )
    if leaf_hash(leaf) != stated:
        raise VerifyFailed(
            EXIT_LEAF_MISMATCH, f"{where} (event {record['seq']}) does not hash to its leaf_hash"
        )
    if size != head.size:
        raise VerifyFailed(
            EXIT_PROOF_SIZE,
            f"the inclusion proof of {where} is for a tree of {size} leaves; the checkpoint "
            f"is of {head.size}",
        )
    try:
        verify_inclusion(index, size, stated, proof, head.root)
    except ProofInvalid as exc:
        raise VerifyFailed(_PROOF_EXIT[exc.kind], f"{where} (event {index + 1}): {exc}") from None
    return record


def _evidence(
    gpg: gnupg.GPG, bag_dir: Path, sender: SenderKey, manifest: Mapping[str, Any]
) -> tuple[Checkpoint, list[Mapping[str, object]]]:
    head = _signed_checkpoint(
        gpg, bag_dir / CHECKPOINT_PATH, bag_dir / SIGNATURE_PATH, sender, CHECKPOINT_PATH
    )
    data = _read_json(bag_dir / LEAVES_PATH, LEAVES_PATH)
    if not isinstance(data, dict) or data.get("format") != EVIDENCE_FORMAT:
        raise _invalid(f"{LEAVES_PATH} is not in the format {EVIDENCE_FORMAT}")
    entries = data.get("leaves")
    if not isinstance(entries, list) or not entries:
        raise _invalid(f"{LEAVES_PATH} holds no leaves")
    records = [_check_leaf(entry, number, head) for number, entry in enumerate(entries)]
    objects = {record["object"] for record in records}
    wanted = [f"package:{manifest['package']['code']}", f"decision:{manifest['decision']['id']}"]
    missing = [name for name in wanted if name not in objects]
    if missing:
        raise VerifyFailed(
            EXIT_LEAF_MISMATCH,
            f"the leaves in {LEAVES_PATH} name no event of {' or '.join(missing)}: they are "
            "not this package's",
        )
    return head, records


def _consistent(head: Checkpoint, kept: Checkpoint, label: str, proofs: Sequence[_Proof]) -> str:
    """``kept`` and the package's ``head`` are of one history."""
    if kept.origin != head.origin:
        raise _invalid(f"{label} is of the log {kept.origin!r}, the package's of {head.origin!r}")
    if kept.size == head.size:
        if kept.root != head.root:
            raise VerifyFailed(
                EXIT_LOG_INCONSISTENT,
                f"{label} and the package's checkpoint are both of {head.size} leaves but "
                "have different roots: the log's history was rewritten",
            )
        return f"{kept.size} (the same checkpoint)"
    small, large = (kept, head) if kept.size < head.size else (head, kept)
    matching = [p for p in proofs if (p.first, p.second) == (small.size, large.size)]
    if not matching:
        given = ", ".join(f"{p.first}→{p.second}" for p in proofs)
        if proofs:
            raise VerifyFailed(
                EXIT_PROOF_SIZE,
                f"no consistency proof given is from {small.size} to {large.size} leaves (the "
                f"sizes of {label} and the package's checkpoint); given: {given}",
            )
        raise VerifyFailed(
            EXIT_USAGE,
            f"checking {label} needs a consistency proof from {small.size} to {large.size} "
            "leaves: fetch /transparency/proofs/consistency?first="
            f"{small.size}&second={large.size} from the portal and pass it with "
            "--consistency-proof",
        )
    proof = matching[0]
    try:
        verify_consistency(small.size, large.size, small.root, large.root, proof.hashes)
    except ProofInvalid as exc:
        code = EXIT_LOG_INCONSISTENT if exc.kind == "root" else _PROOF_EXIT[exc.kind]
        raise VerifyFailed(code, f"{label} against the package's checkpoint: {exc}") from None
    return str(kept.size)


def check_transparency(
    gpg: gnupg.GPG,
    bag_dir: Path,
    sender: SenderKey,
    manifest: Mapping[str, Any],
    kept: Sequence[Path] = (),
    consistency_proofs: Sequence[Path] = (),
) -> tuple[str, bool]:
    """Run the checks; the report's words and whether the step was skipped (a package made
    before the log, with nothing to check it against)."""
    if not (bag_dir / LEAVES_PATH).is_file():
        if kept:
            raise _invalid(
                f"the package carries no {LEAVES_PATH}, so the kept checkpoints cannot be "
                "checked against it"
            )
        return "not checked: the package carries no transparency log evidence", True
    head, records = _evidence(gpg, bag_dir, sender, manifest)
    proofs = [_consistency_proof(path) for path in consistency_proofs]
    sizes = [
        _consistent(head, _kept_checkpoint(gpg, path, sender), f"the kept checkpoint {path.name}",
                    proofs)
        for path in kept
    ]  # fmt: skip
    detail = (
        f"{len(records)} leaf record(s) of this package's events are included in the log "
        f"{head.origin} of {head.size} leaves, under a checkpoint signed by the pinned key"
    )
    if sizes:
        detail += f"; consistent with the kept checkpoint(s) of {', '.join(sizes)} leaves"
    return detail, False
