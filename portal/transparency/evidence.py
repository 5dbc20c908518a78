"""A package's transparency evidence: the leaves of its own events, with their inclusion proofs
under a checkpoint signed for it, as three files of its bag.

- ``data/transparency/leaves.json``: :data:`EVIDENCE_FORMAT`, and per leaf its index, the leaf
  itself (the record's exact bytes, as text), its hash and its inclusion proof (base64) for
  the checkpoint's tree size;
- ``data/transparency/checkpoint.txt``: the checkpoint (C2SP tlog-checkpoint note text);
- ``data/transparency/checkpoint.txt.asc``: its detached signature by the signing key.

The leaves are those of the package's events (``package:<code>``: created, assembly started,
and any retry or failure before) and of the decision it rests on (``decision:<id>``): whatever
the audit log holds before the bag is sealed. ``portal-verify`` checks them offline
(:mod:`portal.verify.transparency`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from portal.db import transaction
from portal.transparency.checkpoints import CheckpointSigner, sign_checkpoint
from portal.transparency.log import TransparencyError, inclusion_proof, leaves_of_objects
from portal.verify.merkle import b64
from portal.verify.transparency import (
    CHECKPOINT_PATH,
    EVIDENCE_FORMAT,
    LEAVES_PATH,
    SIGNATURE_PATH,
)

if TYPE_CHECKING:
    from portal.state import PortalState

__all__ = [
    "CHECKPOINT_PATH",
    "EVIDENCE_FORMAT",
    "LEAVES_PATH",
    "SIGNATURE_PATH",
    "EvidenceFile",
    "EvidenceUnavailable",
    "package_evidence",
]


class EvidenceUnavailable(TransparencyError):
    """The evidence could not be made; the message says why (no content, no secret)."""


@dataclass(frozen=True)
class EvidenceFile:
    """A file to add to the bag: its path there, where it is now, what the manifest calls it."""

    path: str
    source: Path
    title: str
    media_type: str


def package_evidence(
    state: PortalState,
    package_code: str,
    decision_id: int | str,
    signer: CheckpointSigner,
    stage: Path,
) -> list[EvidenceFile]:
    """Sign a checkpoint of the log as it is now (its own transaction, committed) and write
    the package's evidence under ``stage/transparency``; the three files to add to the bag."""
    objects = [f"package:{package_code}", f"decision:{decision_id}"]
    with transaction(state.sessions) as db:
        checkpoint = sign_checkpoint(db, signer, base_url=state.settings.base_url)
        size = checkpoint.tree_size
        found = leaves_of_objects(db, objects, size)
        if not any(json.loads(entry.record)["object"] == objects[0] for entry in found):
            raise EvidenceUnavailable(
                f"the transparency log holds no event of package {package_code} yet"
            )
        leaves = [
            {
                "index": entry.index,
                "leaf": entry.record,
                "leaf_hash": b64(entry.leaf_hash),
                "tree_size": size,
                "inclusion_proof": [b64(h) for h in inclusion_proof(db, entry.index, size)],
            }
            for entry in found
        ]
        body, signature = checkpoint.body, checkpoint.signature
    folder = stage / "transparency"
    folder.mkdir(parents=True, exist_ok=True)
    evidence = {"format": EVIDENCE_FORMAT, "checkpoint": CHECKPOINT_PATH, "leaves": leaves}
    files = (
        (LEAVES_PATH, json.dumps(evidence, indent=1, ensure_ascii=False) + "\n", "leaves",
         "application/json"),
        (CHECKPOINT_PATH, body, "checkpoint", "text/plain"),
        (SIGNATURE_PATH, signature, "checkpoint signature", "application/pgp-signature"),
    )  # fmt: skip
    made = []
    for path, content, what, media_type in files:
        source = folder / path.rpartition("/")[2]
        source.write_bytes(content.encode("utf-8"))
        made.append(EvidenceFile(path, source, f"Transparency log: {what}", media_type))
    return made
