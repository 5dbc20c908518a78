"""A real RFC 3161 time-stamping authority for tests: OpenSSL's own (``openssl ts -reply``)
behind a small HTTP server on 127.0.0.1 (a free port, in a thread). Not a mock: every reply is
made and signed by OpenSSL with a TSA certificate made here.

:func:`running_tsa` makes a CA (self-signed, EC P-256) and a TSA certificate it issues
(extendedKeyUsage critical ``timeStamping``), writes an ``openssl ts`` configuration, and
serves ``POST /`` (a DER ``TimeStampReq``) with OpenSSL's reply. ``answer`` makes it misbehave
the ways a real TSA can: ``"garbage"`` (HTML instead of a reply), ``"http-error"`` (HTTP 503),
``"slow"`` (answers after ``delay`` seconds), ``"refuse"`` (OpenSSL itself refuses: the
configuration accepts SHA-384 only, so a SHA-256 request gets a rejection reply).
:meth:`LocalTsa.stamp` asks it directly (no HTTP) for a reply over any bytes.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

from portal.verify.timestamp import CHAIN_PATH, TOKEN_PATH

Answer = Literal["reply", "garbage", "http-error", "slow", "refuse"]
_MAX_QUERY = 64 * 1024

_CONFIG = """\
[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
serial = {dir}/serial
crypto_device = builtin
signer_cert = {dir}/tsa.pem
signer_key = {dir}/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1.1
other_policies = 1.3.6.1.4.1.99999.1.2
digests = {digests}
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Time Authority (fictional)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    time_stamping: bool,
) -> x509.Certificate:
    """A CA certificate (self-signed when ``issuer`` is None) or a TSA certificate."""
    now = datetime.now(UTC)
    issuer_name, issuer_key = issuer if issuer is not None else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=not time_stamping, path_length=None), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    )
    if time_stamping:
        usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
        builder = builder.add_extension(usage, critical=True)
        eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING])
        builder = builder.add_extension(eku, critical=True)
    else:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class LocalTsa:
    """OpenSSL's TSA with its own CA, served over HTTP on 127.0.0.1 (see the module notes)."""

    def __init__(self, directory: Path, *, name: str = "Test TSA", delay: float = 3.0) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.answer: Answer = "reply"
        self.delay = delay
        self.requests = 0
        self._lock = threading.Lock()
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _certificate(f"{name} Root CA", ca_key, None, time_stamping=False)
        tsa_key = ec.generate_private_key(ec.SECP256R1())
        tsa = _certificate(name, tsa_key, (ca.subject, ca_key), time_stamping=True)
        self.ca_file = self.dir / "ca.pem"
        self.ca_file.write_bytes(_pem(ca))
        (self.dir / "tsa.pem").write_bytes(_pem(tsa))
        key = tsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (self.dir / "tsa.key").write_bytes(key)
        (self.dir / "serial").write_text("01\n")
        for label, digests in (("tsa", "sha256, sha384, sha512"), ("refusing", "sha384")):
            config = _CONFIG.format(dir=self.dir, digests=digests)
            (self.dir / f"{label}.cnf").write_text(config)
        self.subject = tsa.subject.rfc4514_string()
        self.authorizations: list[str | None] = []  # the Authorization header of each POST
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/tsa"

    def reply(self, query: bytes, *, refusing: bool = False) -> bytes:
        """OpenSSL's reply to the DER request ``query``."""
        config = self.dir / ("refusing.cnf" if refusing else "tsa.cnf")
        with self._lock, tempfile.TemporaryDirectory(dir=self.dir) as work:
            query_file, reply_file = Path(work) / "query.tsq", Path(work) / "reply.tsr"
            query_file.write_bytes(query)
            subprocess.run(
                ["openssl", "ts", "-reply", "-config", str(config),
                 "-queryfile", str(query_file), "-out", str(reply_file)],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip
            self.requests += 1
            return reply_file.read_bytes()

    def stamp(self, data: bytes) -> bytes:
        """A reply over ``data`` (SHA-256, with the TSA's certificate), asked for directly."""
        request = TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256)
        return self.reply(request.build().as_bytes())

    def bag_files(self, data: bytes, *, chain: bytes | None = None) -> dict[str, bytes]:
        """The files a package carries when its manifest signature ``data`` is time-stamped
        by this TSA (the reply, and this TSA's CA unless ``chain`` is given), by bag path."""
        chain = self.ca_file.read_bytes() if chain is None else chain
        return {TOKEN_PATH: self.stamp(data), CHAIN_PATH: chain}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that gave up (the "slow" answer) is expected: no traceback."""


def _handler(tsa: LocalTsa) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= _MAX_QUERY:
                self.send_error(400, "a time-stamp request is expected")
                return
            query = self.rfile.read(length)
            tsa.authorizations.append(self.headers.get("Authorization"))
            if tsa.answer == "http-error":
                self.send_error(503, "Service Unavailable")
                return
            if tsa.answer == "slow":
                time.sleep(tsa.delay)
            if tsa.answer == "garbage":
                body, kind = b"<html><body>Service temporarily moved</body></html>", "html"
            else:
                body = tsa.reply(query, refusing=tsa.answer == "refuse")
                kind = "timestamp-reply"
            self.send_response(200)
            self.send_header("Content-Type", f"application/{kind}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def running_tsa(name: str = "Test TSA", *, delay: float = 3.0) -> Iterator[LocalTsa]:
    """A :class:`LocalTsa` in a private directory, stopped and removed on exit."""
    directory = Path(tempfile.mkdtemp(prefix="tsa-"))
    tsa = LocalTsa(directory, name=name, delay=delay)
    try:
        yield tsa
    finally:
        tsa.close()
        shutil.rmtree(directory, ignore_errors=True)
