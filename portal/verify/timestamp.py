"""The RFC 3161 time-stamp over the manifest signature, checked offline.

When the mechanism has a time-stamping authority (TSA), the bag carries the TSA's reply over
the bytes of ``data/manifest.json.asc`` (:data:`TOKEN_PATH`) and the TSA's certificate chain
as the mechanism configured it (:data:`CHAIN_PATH`). The token says *when* the signature
existed, on the word of a third party rather than the mechanism's own clock.

:func:`check_token` is the one judgement, used by the worker on each reply it receives and by
``portal-verify``; each way a token can fail is a :class:`TokenProblem` of its own kind:

- ``corrupt``: not a readable time-stamp reply, not granted, or its signature does not verify;
- ``other_bytes``: a good token, but its message imprint is not the hash of the bytes given;
- ``untrusted``: its TSA certificate does not chain to the trusted CA certificates, or is not
  a time-stamping certificate (extended key usage ``timeStamping``, critical).

Only the standard library, ``cryptography`` and ``rfc3161-client`` are used here (the
verifier is installed on its own).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from rfc3161_client import (
    PKIStatus,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from portal.verify.results import (
    EXIT_TIMESTAMP_CORRUPT,
    EXIT_TIMESTAMP_MISSING,
    EXIT_TIMESTAMP_OTHER_BYTES,
    EXIT_TIMESTAMP_UNTRUSTED,
    Passed,
    VerifyFailed,
)

__all__ = [
    "CHAIN_PATH",
    "MAX_TOKEN_BYTES",
    "STAMPED_PATH",
    "TOKEN_PATH",
    "TimeStamp",
    "TokenProblem",
    "check_bag_timestamp",
    "check_token",
    "read_certificates",
]

#: What the token is over: the manifest's detached signature.
STAMPED_PATH = "data/manifest.json.asc"
TOKEN_PATH = "data/manifest.json.asc.tsr"  # noqa: S105 - a time-stamp token, not a secret
CHAIN_PATH = "data/tsa-chain.pem"
MAX_TOKEN_BYTES = 1 << 20  # a reply is a few kilobytes, with its certificates

_HASHES: dict[str, tuple[str, Callable[[bytes], Any]]] = {
    "2.16.840.1.101.3.4.2.1": ("SHA-256", hashlib.sha256),
    "2.16.840.1.101.3.4.2.2": ("SHA-384", hashlib.sha384),
    "2.16.840.1.101.3.4.2.3": ("SHA-512", hashlib.sha512),
}
# OpenSSL's reasons when the CMS signature itself is wrong (not the chain): the token was
# altered after the TSA signed it.
_DAMAGED = ("signature failure", "digest failure", "unable to parse", "malformed")

Kind = Literal["corrupt", "other_bytes", "untrusted"]


class TokenProblem(Exception):
    """The token cannot be accepted; ``kind`` says which way, ``reason`` in plain words."""

    def __init__(self, kind: Kind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class TimeStamp:
    """What a good token says."""

    time: datetime  # the TSA's time (genTime), UTC
    tsa: str  # the subject of the TSA's certificate (RFC 4514)
    serial: int
    hash_name: str

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat(),
            "tsa": self.tsa,
            "serial": self.serial,
            "hash": self.hash_name,
        }

    @property
    def when(self) -> str:
        return self.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def read_certificates(data: bytes) -> list[x509.Certificate]:
    """The PEM certificates in ``data``; ValueError when there is none or one is damaged."""
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ValueError("not one or more PEM certificates") from None


def check_token(
    token: bytes,
    stamped: bytes,
    roots: Sequence[x509.Certificate],
    *,
    nonce: int | None = None,
) -> TimeStamp:
    """The time-stamp reply ``token`` over ``stamped``, its TSA chaining to ``roots`` (and,
    with ``nonce``, answering the request that had it); :class:`TokenProblem` otherwise."""
    reply, algorithm, imprint = _parse(token)
    name, hasher = _HASHES.get(algorithm, ("", None))
    if hasher is None:
        raise TokenProblem("corrupt", f"it uses a hash this verifier does not accept ({algorithm})")
    if nonce is not None and reply.tst_info.nonce != nonce:
        raise TokenProblem("other_bytes", "it answers another request (its nonce differs)")
    verifier = VerifierBuilder(roots=list(roots)).build()
    try:
        verifier.verify(reply, imprint)  # the CMS signature and the chain, at the TSA's time
        signer = _signer_subject(reply)
    except ValueError as exc:  # a part read only now (the signed data) is malformed
        first = str(exc).split(":", 1)[0] or "unreadable"
        raise TokenProblem("corrupt", f"it is not a readable time-stamp reply ({first})") from None
    except VerificationError as exc:
        text = str(exc)
        if any(words in text.lower() for words in _DAMAGED):
            raise TokenProblem("corrupt", "its signature does not verify (altered)") from None
        raise TokenProblem("untrusted", _untrusted(text)) from None
    if imprint != hasher(stamped).digest():
        raise TokenProblem(
            "other_bytes", f"it is over other bytes (its {name} imprint is not of these)"
        )
    return TimeStamp(
        time=reply.tst_info.gen_time.astimezone(UTC),
        tsa=signer,
        serial=reply.tst_info.serial_number,
        hash_name=name,
    )


def _parse(token: bytes) -> tuple[TimeStampResponse, str, bytes]:
    """The reply, its imprint's hash algorithm (dotted OID) and imprint; corrupt otherwise."""
    if not token:
        raise TokenProblem("corrupt", "it is empty")
    try:
        reply = decode_timestamp_response(token)
        status = reply.status
        if status != PKIStatus.GRANTED:
            words = "; ".join(s.rstrip(".") for s in reply.status_string) or "no reason given"
            raise TokenProblem("corrupt", f"the TSA did not grant it (status {status}: {words})")
        imprint = reply.tst_info.message_imprint
        return reply, imprint.hash_algorithm.dotted_string, imprint.message
    except ValueError as exc:
        first = str(exc).split(":", 1)[0] or "unreadable"
        raise TokenProblem("corrupt", f"it is not a readable time-stamp reply ({first})") from None


def _signer_subject(reply: TimeStampResponse) -> str:
    """The subject of the certificate that signed the token (found by issuer and serial)."""
    signer = next(iter(reply.signed_data.signer_infos))
    for der in reply.signed_data.certificates:
        cert = x509.load_der_x509_certificate(der)
        if cert.issuer == signer.issuer and cert.serial_number == signer.serial_number:
            return cert.subject.rfc4514_string()
    return signer.issuer.rfc4514_string()  # not reached: verify() found it


def _untrusted(text: str) -> str:
    if "EKU" in text:
        return "its signer is not a time-stamping certificate (" + text.rstrip(".") + ")"
    detail = text.split('data: "', 1)[1].split('"', 1)[0] if 'data: "' in text else text
    return f"its TSA certificate does not chain to a trusted CA ({detail})"


# --------------------------------------------------------------------------- the bag


def check_bag_timestamp(bag_dir: Path, tsa_ca: Path | None) -> Passed[TimeStamp | None]:
    """The step of ``portal-verify``: the bag's token over ``data/manifest.json.asc``, its
    TSA chaining to the recipient's ``tsa_ca`` when given, else to the bag's chain.

    A bag without a token passes as skipped (the mechanism had no TSA configured), unless
    the recipient gave ``tsa_ca``: then they expect one, and its absence is a failure.
    """
    token_file = bag_dir / TOKEN_PATH
    if not token_file.is_file():
        if tsa_ca is not None:
            raise VerifyFailed(
                EXIT_TIMESTAMP_MISSING,
                f"you gave --tsa-ca, but the package carries no time-stamp ({TOKEN_PATH})",
            )
        return Passed(
            None,
            f"not time-stamped: the bag has no {TOKEN_PATH} (the mechanism had no time-stamping "
            "authority configured)",
            skipped=True,
        )
    roots, source = _roots(bag_dir, tsa_ca)
    if token_file.stat().st_size > MAX_TOKEN_BYTES:
        raise VerifyFailed(EXIT_TIMESTAMP_CORRUPT, f"{TOKEN_PATH} is too large to be a time-stamp")
    try:
        stamp = check_token(token_file.read_bytes(), (bag_dir / STAMPED_PATH).read_bytes(), roots)
    except TokenProblem as problem:
        raise VerifyFailed(_EXIT_CODES[problem.kind], _failure(problem, source)) from None
    return Passed(
        stamp,
        f"{STAMPED_PATH} existed at {stamp.when} on the word of the time-stamping authority "
        f"{stamp.tsa} (RFC 3161, {stamp.hash_name}, serial {stamp.serial}); its certificate "
        f"chains to {source}",
    )


_EXIT_CODES: dict[Kind, int] = {
    "corrupt": EXIT_TIMESTAMP_CORRUPT,
    "other_bytes": EXIT_TIMESTAMP_OTHER_BYTES,
    "untrusted": EXIT_TIMESTAMP_UNTRUSTED,
}


def _failure(problem: TokenProblem, source: str) -> str:
    if problem.kind == "corrupt":
        return f"the time-stamp {TOKEN_PATH} is damaged: {problem.reason}"
    if problem.kind == "other_bytes":
        return f"the time-stamp {TOKEN_PATH} is not of {STAMPED_PATH}: {problem.reason}"
    return f"the time-stamp {TOKEN_PATH} is by an untrusted TSA: {problem.reason}; checked {source}"


def _roots(bag_dir: Path, tsa_ca: Path | None) -> tuple[list[x509.Certificate], str]:
    """The trusted CA certificates and, for the report, where they came from."""
    if tsa_ca is not None:
        path, source = tsa_ca, f"the CA you gave (--tsa-ca {tsa_ca})"
    else:
        path = bag_dir / CHAIN_PATH
        source = (
            f"the chain the bag carries ({CHAIN_PATH}: it names the TSA the mechanism used; "
            "give the TSA's CA certificate, obtained independently, with --tsa-ca to trust the "
            "time without trusting the mechanism)"
        )
        if not path.is_file():
            raise VerifyFailed(
                EXIT_TIMESTAMP_UNTRUSTED,
                f"the bag has a time-stamp but no {CHAIN_PATH}: give the TSA's CA certificate "
                "with --tsa-ca",
            )
    try:
        return read_certificates(path.read_bytes()), source
    except ValueError as exc:
        raise VerifyFailed(EXIT_TIMESTAMP_UNTRUSTED, f"{path} holds {exc}") from None
