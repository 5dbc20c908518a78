"""What a verification produces: the exit codes, the typed failure a step raises, and the
record of the checks run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_BAD_SIGNATURE = 10
EXIT_WRONG_SIGNER = 11
EXIT_CANNOT_DECRYPT = 12
EXIT_BAG_INVALID = 13
EXIT_MANIFEST_INVALID = 14
EXIT_UNSAFE_ARCHIVE = 15
EXIT_RECALL_MISMATCH = 16
EXIT_OUTPUT_LIMIT = 17  # decryption stopped: compressed data, or more than the bound
# Signing-key rotation (portal.verify.transition) and revocation.
EXIT_TRANSITION_ONE_SIGNATURE = 30  # a transition statement signed by only one of its keys
EXIT_TRANSITION_INVALID = 31  # a transition statement malformed, badly signed, or forked
EXIT_KEY_REVOKED = 32  # a signing key (pinned, successor or signer) is revoked in the keyring
# The RFC 3161 time-stamp of the manifest signature (portal.verify.timestamp)
EXIT_TIMESTAMP_MISSING = 33  # --tsa-ca given, but the package carries no time-stamp
EXIT_TIMESTAMP_CORRUPT = 34  # unreadable, not granted, or its signature does not verify
EXIT_TIMESTAMP_OTHER_BYTES = 35  # a time-stamp over other bytes than the manifest signature
EXIT_TIMESTAMP_UNTRUSTED = 36  # its TSA does not chain to --tsa-ca (or the bag's chain)

# The transparency log (portal.verify.transparency; issue 20, part 2).
EXIT_CHECKPOINT_SIGNATURE = 37  # a checkpoint not signed (validly) by the pinned sender key
EXIT_PROOF_SIZE = 38  # a proof for another tree size than the checkpoint's
EXIT_PROOF_TRUNCATED = 39  # a proof with too few (or too many) hashes
EXIT_LEAF_MISMATCH = 40  # a leaf record not matching its hash, not included, or not this package's
EXIT_LOG_INCONSISTENT = 41  # two checkpoints of one log that no consistency proof joins
EXIT_TRANSPARENCY_INVALID = 42  # evidence missing or malformed, or a checkpoint of another log

# Issue 20, the package's own evidence (43-47):
EXIT_DECISION_RECORD = 43  # the decision record is missing, altered or disagrees
EXIT_DECISION_SIGNATURE = 44  # its detached signature is missing, bad or by another key
EXIT_ITEM_INDEX = 45  # the item index is missing, altered or disagrees with the manifest
EXIT_RELEASE_MISMATCH = 46  # the release statement is for another package (code or SHA-256)
EXIT_RELEASE_SIGNATURE = 47  # the release statement is unsigned, altered or by another key

T = TypeVar("T")


class VerifyFailed(Exception):
    """A check failed: the exit code and one sentence a person can read."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message


def first_few(problems: Sequence[str], shown: int = 3) -> str:
    """The first ``shown`` problems, joined, and how many more there are: one readable line."""
    more = f" (and {len(problems) - shown} more)" if len(problems) > shown else ""
    return "; ".join(problems[:shown]) + more


@dataclass(frozen=True)
class Passed(Generic[T]):
    """A step that passed: what later steps need from it, and what the report says of it."""

    value: T
    detail: str
    skipped: bool = False


@dataclass(frozen=True)
class Check:
    """One step of the verification, as reported."""

    name: str
    ok: bool
    detail: str
    skipped: bool = False


@dataclass
class Outcome:
    """The whole verification: the checks run, the exit code and the package summary."""

    package: Path
    sender_fingerprint: str
    checks: list[Check] = field(default_factory=list)
    exit_code: int = EXIT_OK
    message: str = ""
    manifest: dict[str, Any] | None = None
    signature_checked: bool = False
    extracted_to: Path | None = None
    timestamp: dict[str, Any] | None = None  # the TSA's word on the manifest signature

    @property
    def ok(self) -> bool:
        return self.exit_code == EXIT_OK
