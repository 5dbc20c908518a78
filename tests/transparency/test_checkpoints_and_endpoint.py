"""Checkpoints signed outside the web process and served by the public endpoint, on both
databases: the worker's step signs one only when the log grew, with the example signing key
(real gpg); the endpoint serves it as JSON and as raw text with a signature gpg accepts, and
the proofs and leaves, to anyone, rate-limited; bad input gets a 400 or 404 in JSON, never a
500."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.config import Settings
from portal.state import build_state
from portal.transparency import checkpoints, log
from portal.transparency.models import TransparencyCheckpoint
from portal.transparency.views import RATE_LIMIT
from portal.verify import merkle
from tests.support.package_world import signing_settings
from tests.support.packages import SENDER, SENDER_FPR, keyring
from tests.transparency.test_log import record_events

pytest_plugins = ["tests.support.auth"]


@pytest.fixture
def signed_app(make_app, settings: Settings, engine) -> Flask:  # type: ignore[no-untyped-def]
    """A portal whose log has 12 events under a checkpoint signed by the worker's step."""
    state = build_state(signing_settings(settings), engine=engine)
    record_events(state.sessions, 12)
    issued = checkpoints.issue_checkpoint(state)
    assert issued is not None and issued.tree_size == 12
    assert checkpoints.issue_checkpoint(state) is None  # nothing new: nothing signed
    app: Flask = make_app()
    return app


def gpg_accepts(body: bytes, signature: bytes, tmp: Path) -> bool:
    (tmp / "c.txt").write_bytes(body)
    (tmp / "c.txt.asc").write_bytes(signature)
    with keyring(public=(SENDER,)) as home:
        done = subprocess.run(
            ["gpg", "--homedir", str(home), "--status-fd", "1", "--verify",
             str(tmp / "c.txt.asc"), str(tmp / "c.txt")],
            capture_output=True, check=False,
        )  # fmt: skip
    return done.returncode == 0 and f"VALIDSIG {SENDER_FPR}".encode() in done.stdout


def test_the_worker_signs_a_checkpoint_the_endpoint_serves(
    signed_app: Flask, tmp_path: Path
) -> None:
    client = signed_app.test_client()
    head = client.get("/transparency/checkpoint")
    assert head.status_code == 200, head.get_data(as_text=True)
    data = head.get_json()
    parsed = merkle.Checkpoint.parse(data["checkpoint"])
    assert parsed.size == data["tree_size"] == 12
    assert parsed.origin == checkpoints.DEFAULT_ORIGIN
    assert merkle.b64(parsed.root) == data["root_hash"]
    assert data["signer_fingerprint"] == SENDER_FPR
    text = client.get("/transparency/checkpoint.txt")
    assert text.mimetype == "text/plain" and text.get_data(as_text=True) == data["checkpoint"]
    asc = client.get("/transparency/checkpoints/12.txt.asc").data
    assert asc.startswith(b"-----BEGIN PGP SIGNATURE-----")
    assert gpg_accepts(text.data, asc, tmp_path)
    assert not gpg_accepts(text.data.replace(b"12\n", b"13\n"), asc, tmp_path)
    assert client.get("/transparency/checkpoints/12").get_json() == data

    proof = client.get("/transparency/proofs/inclusion?index=5&size=12").get_json()
    leaf = proof["leaf"].encode()
    assert merkle.b64(merkle.leaf_hash(leaf)) == proof["leaf_hash"]
    merkle.verify_inclusion(
        5, 12, merkle.leaf_hash(leaf),
        [base64.b64decode(h) for h in proof["inclusion_proof"]], parsed.root,
    )  # fmt: skip
    by_hash = client.get(
        "/transparency/proofs/inclusion", query_string={"leaf_hash": proof["leaf_hash"]}
    ).get_json()
    assert by_hash["index"] == 5 and by_hash["inclusion_proof"] == proof["inclusion_proof"]

    leaves = client.get("/transparency/leaves?start=0&count=5000").get_json()
    assert leaves["tree_size"] == 12 and len(leaves["leaves"]) == 12
    assert "private detail" not in str(leaves)
    assert client.get("/transparency/leaves/3").get_json()["index"] == 3


def test_consistency_proofs_join_checkpoints(
    signed_app: Flask,
    settings: Settings,
    engine,  # type: ignore[no-untyped-def]
) -> None:
    client = signed_app.test_client()
    old = merkle.Checkpoint.parse(client.get("/transparency/checkpoint.txt").get_data(True))
    state = build_state(signing_settings(settings), engine=engine)
    record_events(state.sessions, 9, first=12)
    issued = checkpoints.issue_checkpoint(state)
    assert issued is not None and issued.tree_size == 21
    new = merkle.Checkpoint.parse(client.get("/transparency/checkpoint.txt").get_data(True))
    proof = client.get("/transparency/proofs/consistency?first=12&second=21").get_json()
    hashes = [base64.b64decode(h) for h in proof["proof"]]
    merkle.verify_consistency(12, 21, old.root, new.root, hashes)
    assert client.get("/transparency/checkpoints/12").status_code == 200  # old ones stay


BAD = [
    ("/transparency/proofs/inclusion?index=12&size=12", 404),
    ("/transparency/proofs/inclusion?index=-1&size=12", 400),
    ("/transparency/proofs/inclusion?index=abc", 400),
    ("/transparency/proofs/inclusion?index=1&size=13", 404),
    ("/transparency/proofs/inclusion?index=1&size=99999999999999999999", 400),
    ("/transparency/proofs/inclusion?leaf_hash=nonsense", 400),
    ("/transparency/proofs/inclusion?leaf_hash=" + "ab" * 32, 404),
    ("/transparency/proofs/inclusion", 400),
    ("/transparency/proofs/consistency?first=0&second=12", 404),
    ("/transparency/proofs/consistency?first=12&second=5", 400),
    ("/transparency/proofs/consistency?second=5", 400),
    ("/transparency/checkpoints/13", 404),
    ("/transparency/checkpoints/13.txt", 404),
    ("/transparency/leaves/12", 404),
    ("/transparency/leaves?start=x", 400),
]


def test_bad_requests_are_refused_in_json(signed_app: Flask) -> None:
    client = signed_app.test_client()
    for path, status in BAD:
        answer = client.get(path)
        assert answer.status_code == status, path
        assert answer.is_json and answer.get_json()["error"], path


def test_no_checkpoint_yet_is_a_404(client: FlaskClient) -> None:
    for path in (
        "/transparency/checkpoint",
        "/transparency/checkpoint.txt",
        "/transparency/proofs/consistency?first=1",
        "/transparency/leaves",
    ):
        assert client.get(path).status_code == 404, path  # fmt: skip


def test_the_endpoint_is_rate_limited_per_address(client: FlaskClient) -> None:
    allowed = int(RATE_LIMIT.split()[0])
    codes = [client.get("/transparency/checkpoint").status_code for _ in range(allowed + 1)]
    assert codes[:allowed] == [404] * allowed and codes[-1] == 429


def test_checkpoints_are_only_written_by_signing(
    settings: Settings,
    engine,  # type: ignore[no-untyped-def]
) -> None:
    """The origin comes from the base URL on the first checkpoint, then stays."""
    state = build_state(
        signing_settings(settings).with_overrides(base_url="https://portal.example.org/share/"),
        engine=engine,
    )
    record_events(state.sessions, 2)
    first = checkpoints.issue_checkpoint(state)
    assert first is not None and first.origin == "portal.example.org/share/audit-log"
    moved = build_state(state.settings.with_overrides(base_url="https://elsewhere.example"),
                        engine=engine)  # fmt: skip
    record_events(moved.sessions, 1, first=2)
    second = checkpoints.issue_checkpoint(moved)
    assert second is not None and second.origin == first.origin
    with state.sessions() as db:
        assert db.query(TransparencyCheckpoint).count() == 2
        assert log.tree_size(db) == 3
