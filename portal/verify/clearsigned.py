"""Reading a clearsigned text (a recall notice, a release statement) and judging its
signature against the pinned key.

Only the signed text is read (gpg gives it back with the signature's status; nothing
outside the signature counts), and only a cleartext-signed message is accepted: a binary or
compressed OpenPGP message could make gpg write far more than it reads before its signature
is known.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gnupg

from portal.verify.results import VerifyFailed
from portal.verify.signatures import GPG_OFFLINE, FailureCodes, SenderKey, judge_signature

__all__ = ["CLEARSIGNED", "read_clearsigned"]

CLEARSIGNED = b"-----BEGIN PGP SIGNED MESSAGE-----"


def read_clearsigned(
    gpg: gnupg.GPG, path: Path, sender: SenderKey, *, what: str, limit: int, codes: FailureCodes
) -> tuple[str, str]:
    """The signed text of ``path`` (called ``what`` in messages) and the report's words on
    its signature; VerifyFailed with ``codes.bad`` when it is not a clearsigned text of at
    most ``limit`` bytes, or as :func:`judge_signature` says."""
    if path.stat().st_size > limit:
        raise VerifyFailed(codes.bad, f"{path.name} is too large to be a {what}")
    data = path.read_bytes()
    if not data.lstrip().startswith(CLEARSIGNED):
        raise VerifyFailed(
            codes.bad,
            f"{path.name} is not a clearsigned {what} (it must start with {CLEARSIGNED.decode()})",
        )
    # gpg refuses a second plaintext after the clearsigned text; --max-output bounds the one
    # it gives back (held in memory) whatever the file holds.
    bounded = [*GPG_OFFLINE, "--max-output", str(limit)]
    result: Any = gpg.decrypt(data, extra_args=bounded)
    detail = judge_signature(result, sender, f"the {what} {path.name}", codes)
    return result.data.decode("utf-8", errors="replace"), detail
