"""Trusted time: an RFC 3161 time-stamp over the manifest signature, from the configured
time-stamping authority (TSA), put in the bag beside it.

With ``PORTAL_TSA_URL`` set, assembly sends the TSA a request over the bytes of
``data/manifest.json.asc`` (SHA-256, a fresh nonce, the TSA's certificate asked for) by HTTP
POST, checks the reply with the verifier's own judgement
(:func:`portal.verify.timestamp.check_token`: granted, unaltered, over these bytes, answering
this request, signed by a time-stamping certificate that chains to ``PORTAL_TSA_CA_FILE``) and
adds two files to the bag: the reply (``data/manifest.json.asc.tsr``) and the CA certificates
(``data/tsa-chain.pem``), which is what ``openssl ts -verify`` needs. A TSA that cannot be
reached in time, answers with an HTTP error, garbage, a refusal or a reply that does not check
fails the package with :class:`TimestampFailed` saying which: a configured TSA never yields a
package without a time-stamp. Without ``PORTAL_TSA_URL`` packages are not time-stamped.
"""

from __future__ import annotations

import base64
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

from portal.config import Settings
from portal.verify.timestamp import (
    CHAIN_PATH,
    MAX_TOKEN_BYTES,
    TOKEN_PATH,
    TimeStamp,
    TokenProblem,
    check_token,
    read_certificates,
)

__all__ = ["TimestampFailed", "Tsa", "load_tsa", "request_token", "time_stamp_files"]

logger = logging.getLogger(__name__)

_QUERY_TYPE = "application/timestamp-query"
_REPLY_TYPE = "application/timestamp-reply"


class TimestampFailed(Exception):
    """No usable time-stamp; ``reason`` says why in plain words (no secret in it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Tsa:
    """The configured TSA: where it answers, and the CA certificates its replies chain to."""

    url: str
    roots: tuple[x509.Certificate, ...]
    timeout: float

    @property
    def name(self) -> str:
        """The TSA's address without credentials or query, for messages."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"

    @property
    def chain_pem(self) -> bytes:
        return b"".join(cert.public_bytes(Encoding.PEM) for cert in self.roots)


def load_tsa(settings: Settings) -> Tsa | None:
    """The TSA of ``settings`` (None when none is configured); TimestampFailed when its CA
    file is missing or holds no certificate."""
    if settings.tsa_url is None:
        return None
    path = settings.tsa_ca_file
    if path is None:
        raise TimestampFailed(
            "PORTAL_TSA_URL is set but PORTAL_TSA_CA_FILE is not: the time-stamping "
            "authority's CA certificates are needed to check its replies."
        )
    try:
        roots = read_certificates(path.read_bytes())
    except OSError as exc:
        raise TimestampFailed(
            f"The TSA's CA file {path} cannot be read: {exc.strerror or exc}."
        ) from None
    except ValueError as exc:
        raise TimestampFailed(f"The TSA's CA file {path} holds {exc}.") from None
    return Tsa(settings.tsa_url, tuple(roots), float(settings.tsa_timeout))


def request_token(tsa: Tsa, data: bytes) -> tuple[bytes, TimeStamp]:
    """Ask ``tsa`` for a time-stamp over ``data``; the reply as received and what it says."""
    request = TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256).build()
    reply = _post(tsa, request.as_bytes())
    try:
        stamp = check_token(reply, data, tsa.roots, nonce=request.nonce)
    except TokenProblem as problem:
        raise TimestampFailed(
            f"{tsa.name} answered with an unusable reply: {problem.reason}."
        ) from None
    logger.info("time-stamped by %s at %s", stamp.tsa, stamp.when)
    return reply, stamp


def _post(tsa: Tsa, query: bytes) -> bytes:
    """POST ``query``; credentials in the URL (``https://user:password@host/``) are sent as
    HTTP Basic authentication, never in the URL, and never named in a reason."""
    parts = urlsplit(tsa.url)
    headers = {"Content-Type": _QUERY_TYPE, "Accept": _REPLY_TYPE}
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    netloc = parts.netloc.rpartition("@")[2]
    url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    request = urllib.request.Request(  # noqa: S310 - http(s) only (checked in portal.config)
        url, data=query, method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=tsa.timeout) as response:  # noqa: S310
            reply: bytes = response.read(MAX_TOKEN_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise TimestampFailed(f"{tsa.name} answered HTTP {exc.code} {exc.reason}.") from None
    except (urllib.error.URLError, OSError) as exc:  # refused, DNS, TLS, timed out
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise TimestampFailed(
            f"{tsa.name} could not be reached (timeout {tsa.timeout:g} s): {reason or 'timed out'}."
        ) from None
    if len(reply) > MAX_TOKEN_BYTES:
        raise TimestampFailed(f"{tsa.name} answered with more than {MAX_TOKEN_BYTES} bytes.")
    return reply


def time_stamp_files(tsa: Tsa, signature_file: Path, stage: Path) -> list[tuple[str, Path]]:
    """Time-stamp the manifest signature ``signature_file``; the two files for the bag (the
    reply and the TSA's CA certificates), written in ``stage``, by their bag paths."""
    reply, _ = request_token(tsa, signature_file.read_bytes())
    token_file, chain_file = stage / "manifest.json.asc.tsr", stage / "tsa-chain.pem"
    token_file.write_bytes(reply)
    chain_file.write_bytes(tsa.chain_pem)
    return [(TOKEN_PATH, token_file), (CHAIN_PATH, chain_file)]
