"""Signing-key transition statements: how the mechanism hands its signing role to a new key,
and how ``portal-verify`` follows the chain from the fingerprint a recipient pinned.

A statement is one line of canonical JSON (:mod:`portal.canonical`)::

    {"effective_at":"2027-01-04T09:00:00.000000+00:00","new_fingerprint":"…",
     "old_fingerprint":"…","reason":"scheduled rotation",
     "type":"sharing-portal/signing-key-transition","version":1}

in ``NAME.json``, with ``NAME.json.asc`` beside it: one armoured detached signature block holding
two signatures over the statement, one by the old key and one by the new (``gpg --verify`` prints
two VALIDSIG lines). The portal makes them (``portal keys rotate-signing``) and publishes them on
its ``/signing-key`` page; this module is the one definition of the format for both sides.

Following the chain: from the pinned key, each statement whose old key is the last key reached
adds its new key; the old key then vouches only for signatures made before ``effective_at``.
Statements that do not continue the chain are ignored (said in the report), but every statement
given must be valid: signed by both of its keys (one signature only is its own failure,
:data:`EXIT_TRANSITION_ONE_SIGNATURE`), by keys not revoked, and no key may hand over twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gnupg

from portal.canonical import NotCanonical, canonical_json_bytes
from portal.verify.results import (
    EXIT_KEY_REVOKED,
    EXIT_TRANSITION_INVALID,
    EXIT_TRANSITION_ONE_SIGNATURE,
    Passed,
    VerifyFailed,
)
from portal.verify.signatures import (
    GPG_OFFLINE,
    SenderKey,
    format_fingerprint,
    keyring_entry,
    normalise_fingerprint,
    revoked_words,
)

__all__ = [
    "SIGNATURE_SUFFIX",
    "STATEMENT_TYPE",
    "StatementInvalid",
    "Transition",
    "follow_chain",
    "parse_statement",
    "read_transition",
    "statement_bytes",
]

STATEMENT_TYPE = "sharing-portal/signing-key-transition"
STATEMENT_VERSION = 1
SIGNATURE_SUFFIX = ".asc"
MAX_REASON = 500
_MAX_STATEMENT = 16 * 1024
_MAX_SIGNATURE = 64 * 1024
_FIELDS = {"type", "version", "old_fingerprint", "new_fingerprint", "effective_at", "reason"}


class StatementInvalid(ValueError):
    """Not a transition statement; the message says why."""


@dataclass(frozen=True)
class Transition:
    """What a statement says: ``old`` hands over to ``new`` at ``effective_at``."""

    old: str
    new: str
    effective_at: datetime
    reason: str
    source: str = ""  # the file it came from, for the report

    @property
    def effective_timestamp(self) -> int:
        return int(self.effective_at.timestamp())


def statement_bytes(old: str, new: str, effective_at: datetime, reason: str) -> bytes:
    """The canonical statement (what both keys sign); raises StatementInvalid for bad input."""
    value = {
        "type": STATEMENT_TYPE,
        "version": STATEMENT_VERSION,
        "old_fingerprint": old,
        "new_fingerprint": new,
        "effective_at": effective_at,
        "reason": reason,
    }
    try:
        data = canonical_json_bytes(value)
    except NotCanonical as exc:
        raise StatementInvalid(str(exc)) from None
    parse_statement(data)  # one definition of what is valid
    return data


def parse_statement(data: bytes) -> Transition:
    """The statement in ``data``: canonical JSON with exactly the fields above."""
    try:
        value: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise StatementInvalid("it is not JSON") from None
    if not isinstance(value, dict) or set(value) != _FIELDS:
        raise StatementInvalid(f"it must be a JSON object with exactly {sorted(_FIELDS)}")
    if value["type"] != STATEMENT_TYPE or value["version"] != STATEMENT_VERSION:
        raise StatementInvalid(f"it is not a {STATEMENT_TYPE} statement, version 1")
    try:
        old = normalise_fingerprint(str(value["old_fingerprint"]))
        new = normalise_fingerprint(str(value["new_fingerprint"]))
        moment = datetime.fromisoformat(str(value["effective_at"]))
    except ValueError as exc:
        raise StatementInvalid(str(exc)) from None
    reason = value["reason"]
    if moment.tzinfo is None:
        raise StatementInvalid("effective_at has no time zone")
    if old == new or old != value["old_fingerprint"] or new != value["new_fingerprint"]:
        raise StatementInvalid("the fingerprints must be two different full fingerprints")
    if not isinstance(reason, str) or not 0 < len(reason) <= MAX_REASON:
        raise StatementInvalid(f"the reason must be text of 1 to {MAX_REASON} characters")
    if canonical_json_bytes(value) != data:
        raise StatementInvalid("it is not in canonical form (it was altered or re-encoded)")
    return Transition(old, new, moment.astimezone(UTC), reason)


# --------------------------------------------------------------------------- checking


@dataclass
class _Signature:
    """One signature of a detached block, from gpg's status lines (NEWSIG starts each)."""

    signer: str | None = None  # VALIDSIG's primary fingerprint
    keyid: str | None = None
    missing_key: bool = False
    revoked: bool = False
    bad: bool = False


def _signatures(status: str) -> list[_Signature]:
    found: list[_Signature] = []
    for line in status.splitlines():
        if not line.startswith("[GNUPG:] "):
            continue
        keyword, *fields = line[9:].split()
        if keyword == "NEWSIG" or not found:
            found.append(_Signature())
            if keyword == "NEWSIG":
                continue
        current = found[-1]
        if keyword == "VALIDSIG" and fields:
            current.signer = fields[-1].upper()
        elif keyword in {"REVKEYSIG", "KEYREVOKED"}:
            current.revoked = True
            current.keyid = fields[0] if fields and keyword == "REVKEYSIG" else current.keyid
        elif keyword == "NO_PUBKEY":
            current.missing_key, current.keyid = True, fields[0] if fields else None
        elif keyword in {"BADSIG", "ERRSIG", "EXPSIG"}:
            current.bad = True
            current.keyid = fields[0] if fields else current.keyid
    return found


def read_transition(gpg: gnupg.GPG, path: Path) -> Transition:
    """The statement in ``path``, checked: well formed and signed by both of its keys (the
    signatures in ``path`` + ``.asc``), neither revoked. Raises VerifyFailed."""
    name = path.name
    signature = path.with_name(name + SIGNATURE_SUFFIX)
    if not path.is_file() or not signature.is_file():
        raise VerifyFailed(
            EXIT_TRANSITION_INVALID,
            f"the transition statement {name} needs its signatures beside it, in {signature.name}",
        )
    if path.stat().st_size > _MAX_STATEMENT or signature.stat().st_size > _MAX_SIGNATURE:
        raise VerifyFailed(EXIT_TRANSITION_INVALID, f"{name} is too large to be a statement")
    try:
        statement = replace(parse_statement(path.read_bytes()), source=name)
    except StatementInvalid as exc:
        raise VerifyFailed(
            EXIT_TRANSITION_INVALID, f"{name} is not a valid transition statement: {exc}"
        ) from None
    with signature.open("rb") as stream:
        result = gpg.verify_file(stream, data_filename=str(path), extra_args=GPG_OFFLINE)
    _judge_both(_signatures(str(result.stderr or "")), statement)
    return statement


def _judge_both(signatures: list[_Signature], statement: Transition) -> None:
    name = statement.source
    what = f"the transition statement {name}"
    both = {statement.old: "old", statement.new: "new"}
    for sig in signatures:
        if sig.revoked:
            raise VerifyFailed(EXIT_KEY_REVOKED, revoked_words(what, sig.signer or "?"))
        if sig.missing_key:
            missing = next((f for f in both if f.endswith(str(sig.keyid).upper())), None)
            whose = f"the {both[missing]} key {format_fingerprint(missing)}" if missing else ""
            raise VerifyFailed(
                EXIT_TRANSITION_INVALID,
                f"{what} is signed by {whose or 'key ' + str(sig.keyid)}, which is not in your "
                "keyring: import it (the portal's /signing-key page gives every key it used)",
            )
        if sig.bad or sig.signer is None:
            raise VerifyFailed(EXIT_TRANSITION_INVALID, f"{what} has a bad signature")
    signers = [sig.signer for sig in signatures]
    strangers = [s for s in signers if s not in both]
    if strangers:
        raise VerifyFailed(
            EXIT_TRANSITION_INVALID,
            f"{what} is signed by key {format_fingerprint(str(strangers[0]))}, which it does "
            "not name",
        )
    if set(signers) != set(both):
        present = next((both[s] for s in signers if s), "")
        said = f"is signed only by the {present} key" if present else "has no signature"
        raise VerifyFailed(
            EXIT_TRANSITION_ONE_SIGNATURE,
            f"{what} {said}: a key hands over only with a statement signed by both the old and "
            "the new key",
        )


def follow_chain(gpg: gnupg.GPG, pinned: SenderKey, paths: Sequence[Path]) -> Passed[SenderKey]:
    """The pinned key with its successors, from the transition statements in ``paths``."""
    statements = [read_transition(gpg, path) for path in paths]
    by_old: dict[str, Transition] = {}
    for statement in statements:
        earlier = by_old.setdefault(statement.old, statement)
        if earlier is not statement:
            raise VerifyFailed(
                EXIT_TRANSITION_INVALID,
                f"the key {format_fingerprint(statement.old)} hands over twice ({earlier.source}"
                f" and {statement.source}): a fork in the chain means one of them is not the "
                "mechanism's",
            )
    chain: list[SenderKey] = []
    current = pinned
    reached = {pinned.fingerprint}
    last = 0
    while (step := by_old.pop(current.fingerprint, None)) is not None:
        if step.new in reached:
            raise VerifyFailed(
                EXIT_TRANSITION_INVALID, f"{step.source} hands back to a key already in the chain"
            )
        if step.effective_timestamp <= last:
            raise VerifyFailed(EXIT_TRANSITION_INVALID, f"{step.source} is dated out of order")
        last = step.effective_timestamp
        handed = replace(current, handed_over_at=step.effective_timestamp, successors=())
        if chain:
            chain[-1] = handed
        else:
            pinned = handed
        successor = keyring_entry(gpg, step.new)
        if successor is None:  # cannot happen: its signature was just checked
            raise VerifyFailed(EXIT_TRANSITION_INVALID, f"{step.new} is not in your keyring")
        chain.append(successor)
        reached.add(step.new)
        current = successor
    result = replace(pinned, successors=tuple(chain))
    keys = " -> ".join(format_fingerprint(key.fingerprint) for key in (pinned, *chain))
    ignored = f"; {len(by_old)} statement(s) not on this chain ignored" if by_old else ""
    detail = f"{len(statements)} transition statement(s) checked; keys accepted: {keys}{ignored}"
    return Passed(result, detail)
