"""The transparency log: the audit log made verifiable from outside, Certificate-Transparency
style (RFC 9162 Merkle tree, C2SP checkpoints signed with the mechanism's OpenPGP key).

- :mod:`.log` — leaves (the public digest of each audit event), appended from the audit log
  by the worker, and proofs from the stored subtrees;
- :mod:`.checkpoints` — signed checkpoints (worker only), stored and served;
- :mod:`.evidence` — a package's own leaves with their proofs, as files of its bag;
- :mod:`.views` — the public endpoint under ``/transparency``.

The arithmetic (hashes, proofs, checkpoint text) is :mod:`portal.verify.merkle`, shared with
``portal-verify``.
"""

from portal.transparency.checkpoints import CheckpointSigner, SigningUnavailable
from portal.transparency.evidence import EvidenceFile, EvidenceUnavailable, package_evidence
from portal.transparency.log import LogBroken, TransparencyError

__all__ = [
    "CheckpointSigner",
    "EvidenceFile",
    "EvidenceUnavailable",
    "LogBroken",
    "SigningUnavailable",
    "TransparencyError",
    "package_evidence",
]
