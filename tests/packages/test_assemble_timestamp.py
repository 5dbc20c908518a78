"""Trusted time at assembly: with a time-stamping authority configured, the manifest
signature gets an RFC 3161 time-stamp from it, or the package fails saying why — never a
package without one. The TSA is real: OpenSSL's ``openssl ts -reply`` behind a local HTTP
server (tests/support/tsa.py).
"""

from __future__ import annotations

import base64
import tarfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import bagit
import pytest
from sqlalchemy import Engine

from portal.config import ConfigError, Settings
from portal.db import utcnow
from portal.packages.assembly.assemble import AssemblyFailed, assemble_package
from portal.packages.assembly.manifest import MANIFEST_PATH, SIGNATURE_PATH
from portal.packages.assembly.timestamp import TimestampFailed, Tsa, load_tsa, request_token
from portal.state import PortalState, build_state
from portal.verify.timestamp import CHAIN_PATH, TOKEN_PATH, check_token, read_certificates
from tests.packages.test_assemble import (
    blob_keys,
    open_package,
    package_row,
    staging_leftovers,
)
from tests.support.package_world import build_world, new_package, signing_settings
from tests.support.tsa import Answer, LocalTsa, running_tsa


@pytest.fixture(scope="module")
def tsa() -> Iterator[LocalTsa]:
    with running_tsa(delay=2.5) as local:
        yield local


@pytest.fixture(autouse=True)
def answering(tsa: LocalTsa) -> Iterator[None]:
    tsa.answer = "reply"
    yield
    tsa.answer = "reply"


def stamping(settings: Settings, tsa: LocalTsa, **more: object) -> Settings:
    return signing_settings(settings).with_overrides(
        **{"tsa_url": tsa.url, "tsa_ca_file": tsa.ca_file, **more}
    )


def world_package(state: PortalState) -> int:
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer)
    return new_package(state, world)


def test_a_tsa_that_fails_fails_the_package_and_a_retry_is_time_stamped(
    settings: Settings, engine: Engine, tsa: LocalTsa, tmp_path: Path
) -> None:
    state = build_state(stamping(settings, tsa), engine=engine)
    package_id = world_package(state)
    before = blob_keys(state)

    tsa.answer = "http-error"
    with pytest.raises(AssemblyFailed) as failed:
        assemble_package(state, package_id)
    assert failed.value.reason == (
        f"The manifest signature could not be time-stamped: {tsa.url} answered HTTP 503 "
        "Service Unavailable."
    )
    package = package_row(state, package_id)
    assert (package.status, package.failure_reason) == ("failed", failed.value.reason)
    assert blob_keys(state) == before  # nothing signed is kept without its time-stamp
    assert staging_leftovers(state) == []

    tsa.answer = "reply"
    asked = tsa.requests
    assemble_package(state, package_id)
    package = package_row(state, package_id)
    assert (package.status, package.failure_reason) == ("assembled", None)
    assert tsa.requests == asked + 1

    bag_dir = open_package(state, package, tmp_path)
    bagit.Bag(str(bag_dir)).validate()  # the reply and the chain are payload, with checksums
    with tarfile.open(tmp_path / "package.tar") as tar:
        names = [m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()]
    data_files = [name for name in names if name.startswith("data/")]
    assert data_files[-4:] == [MANIFEST_PATH, SIGNATURE_PATH, TOKEN_PATH, CHAIN_PATH]
    roots = read_certificates((bag_dir / CHAIN_PATH).read_bytes())
    assert roots == read_certificates(tsa.ca_file.read_bytes())
    stamp = check_token(
        (bag_dir / TOKEN_PATH).read_bytes(), (bag_dir / SIGNATURE_PATH).read_bytes(), roots
    )
    assert stamp.tsa == tsa.subject
    assert abs(stamp.time - utcnow()) < timedelta(minutes=5)


@pytest.mark.parametrize(
    ("ca", "words"),
    [
        ("missing", "cannot be read: No such file or directory"),
        ("not-pem", "holds not one or more PEM certificates"),
    ],
)
def test_an_unusable_tsa_ca_file_fails_before_any_work(
    settings: Settings, engine: Engine, tsa: LocalTsa, tmp_path: Path, ca: str, words: str
) -> None:
    path = tmp_path / "ca.pem"
    if ca == "not-pem":
        path.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    state = build_state(stamping(settings, tsa, tsa_ca_file=path), engine=engine)
    package_id = world_package(state)
    asked = tsa.requests
    with pytest.raises(AssemblyFailed, match=f"The TSA's CA file {path} {words}"):
        assemble_package(state, package_id)
    assert package_row(state, package_id).status == "failed"
    assert tsa.requests == asked


# --------------------------------------------------------------------------- the client


def client(tsa: LocalTsa, ca_file: Path | None = None, timeout: float = 1.0) -> Tsa:
    roots = read_certificates((ca_file or tsa.ca_file).read_bytes())
    return Tsa(tsa.url, tuple(roots), timeout)


def test_a_good_reply_is_checked_and_kept_as_received(tsa: LocalTsa) -> None:
    reply, stamp = request_token(client(tsa), b"signature bytes")
    assert check_token(reply, b"signature bytes", client(tsa).roots) == stamp
    assert stamp.hash_name == "SHA-256" and stamp.tsa == tsa.subject


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ("garbage", "answered with an unusable reply: it is not a readable time-stamp reply"),
        ("http-error", "answered HTTP 503 Service Unavailable."),
        ("slow", "could not be reached (timeout 1 s): timed out."),
        (
            "refuse",
            "answered with an unusable reply: the TSA did not grant it (status 2: Message "
            "digest algorithm is not supported)",
        ),
    ],
)
def test_each_way_a_tsa_fails_is_said(tsa: LocalTsa, answer: Answer, words: str) -> None:
    tsa.answer = answer
    with pytest.raises(TimestampFailed) as failed:
        request_token(client(tsa), b"signature bytes")
    assert failed.value.reason.startswith(f"{tsa.url} {words}")


def test_a_tsa_that_is_down(tsa: LocalTsa) -> None:
    down = Tsa("http://127.0.0.1:9/tsa", client(tsa).roots, 1.0)
    with pytest.raises(TimestampFailed, match=r"^http://127.0.0.1:9/tsa could not be reached"):
        request_token(down, b"signature bytes")


def test_a_reply_by_a_tsa_outside_the_configured_ca_is_refused(tsa: LocalTsa) -> None:
    refused = pytest.raises(TimestampFailed, match="does not chain to a trusted CA")
    with running_tsa("Other TSA") as other, refused:
        request_token(client(tsa, other.ca_file), b"signature bytes")


def test_credentials_in_the_url_are_sent_as_basic_auth_and_named_nowhere(
    tsa: LocalTsa,
) -> None:
    port = tsa.url.split(":")[2].split("/")[0]
    secret = Tsa(f"http://mech%40nism:s3cret@127.0.0.1:{port}/tsa?key=k3y", client(tsa).roots, 1.0)
    request_token(secret, b"x")
    assert tsa.authorizations[-1] == "Basic " + base64.b64encode(b"mech@nism:s3cret").decode()
    tsa.answer = "http-error"
    with pytest.raises(TimestampFailed) as failed:
        request_token(secret, b"x")
    assert "s3cret" not in failed.value.reason and "k3y" not in failed.value.reason
    assert failed.value.reason.startswith(f"http://127.0.0.1:{port}/tsa answered HTTP 503")


# --------------------------------------------------------------------------- configuration


def test_no_tsa_configured_means_no_time_stamp(settings: Settings) -> None:
    assert load_tsa(settings) is None


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"PORTAL_TSA_URL": "https://tsa.example/"}, "PORTAL_TSA_URL needs PORTAL_TSA_CA_FILE"),
        ({"PORTAL_TSA_URL": "file:///etc/passwd", "PORTAL_TSA_CA_FILE": "ca.pem"}, "http://"),
        ({"PORTAL_TSA_URL": "https://", "PORTAL_TSA_CA_FILE": "ca.pem"}, "http://"),
        ({"PORTAL_TSA_TIMEOUT": "0"}, "PORTAL_TSA_TIMEOUT must be 1 to 300 seconds"),
        ({"PORTAL_TSA_TIMEOUT": "soon"}, "PORTAL_TSA_TIMEOUT must be a whole number"),
    ],
)
def test_tsa_settings_are_checked_at_start(env: dict[str, str], words: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        Settings.from_env({"PORTAL_INSTANCE_DIR": str(tmp_path), **env})


def test_tsa_settings_are_read(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "PORTAL_INSTANCE_DIR": str(tmp_path),
            "PORTAL_TSA_URL": "https://tsa.example/rfc3161",
            "PORTAL_TSA_CA_FILE": str(tmp_path / "ca.pem"),
            "PORTAL_TSA_TIMEOUT": "20",
        }
    )
    assert settings.tsa_url == "https://tsa.example/rfc3161"
    assert settings.tsa_ca_file == tmp_path / "ca.pem"
    assert settings.tsa_timeout == 20
    assert Settings.from_env({"PORTAL_INSTANCE_DIR": str(tmp_path)}).tsa_timeout == 10
