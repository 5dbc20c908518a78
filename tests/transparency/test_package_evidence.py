"""A real package (the assembler, real gpg, the example keys, both databases) carries the leaf
records of its decision and assembly events with inclusion proofs under a checkpoint signed in
its keyring, and portal-verify accepts them. When the mechanism later rewrites an old audit
event and rebuilds the chain and the log, a recipient who holds this package's checkpoint
detects it from a later head and the consistency proof the portal serves."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select, update

from portal.audit import GENESIS_HASH, AuditEvent, event_hash
from portal.config import Settings
from portal.packages.assembly.assemble import assemble_package
from portal.packages.assembly.manifest import parse_manifest
from portal.packages.models import Package
from portal.state import PortalState, build_state
from portal.transparency import checkpoints, log
from portal.transparency.models import (
    TransparencyCheckpoint,
    TransparencyLeaf,
    TransparencyNode,
)
from portal.verify import merkle
from portal.verify.results import EXIT_LOG_INCONSISTENT, EXIT_OK
from portal.verify.transparency import CHECKPOINT_PATH, LEAVES_PATH
from tests.support.package_world import make_world, new_package, signing_settings
from tests.support.packages import SENDER_FPR, keyring


@pytest.fixture
def state(settings: Settings, engine: Engine) -> Iterator[PortalState]:
    yield build_state(signing_settings(settings), engine=engine)


def portal_verify(package: Path, home: Path, *extra: str) -> tuple[int, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "portal.verify", str(package), "--sender-fingerprint",
         SENDER_FPR, "--gnupghome", str(home), "--json", *extra],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.returncode, json.loads(done.stdout)


def rewrite_history(state: PortalState, seq: int) -> None:
    """What someone with write access to the database would do: change an old event's
    details, recompute the whole chain, and rebuild the log from the rewritten rows."""
    with state.sessions() as db:
        db.execute(update(AuditEvent).where(AuditEvent.seq == seq).values(details='{"was":"x"}'))
        prev = GENESIS_HASH
        for event in db.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all():
            new = event_hash(prev, event.seq, event.occurred_at, event.actor, event.action,
                             event.target, event.details)  # fmt: skip
            db.execute(
                update(AuditEvent)
                .where(AuditEvent.seq == event.seq)
                .values(prev_hash=prev, hash=new)
                .execution_options(synchronize_session=False)
            )
            prev = new
        for table in (TransparencyCheckpoint, TransparencyNode, TransparencyLeaf):
            db.execute(delete(table))
        db.commit()


def test_a_package_carries_verifying_evidence_and_a_rewrite_is_detected(
    state: PortalState, tmp_path: Path
) -> None:
    world = make_world(state)
    package_id = new_package(state, world)
    assemble_package(state, package_id)
    with state.sessions() as db:
        package = db.get(Package, package_id)
        assert package is not None and package.file_sha256 and package.signature_sha256
        code, file_sha, sig_sha = package.code, package.file_sha256, package.signature_sha256
    target = tmp_path / f"{code}.tar.gpg"
    target.write_bytes(state.blobs.path(file_sha).read_bytes())
    (tmp_path / f"{code}.tar.gpg.sig").write_bytes(state.blobs.read_bytes(sig_sha))
    out = tmp_path / "bag"
    with keyring(secret=("NWU-NL",), public=("mechanism-signing",)) as home:
        status, report = portal_verify(target, home, "--out", str(out))
        assert status == EXIT_OK, report
        check = next(c for c in report["checks"] if c["name"] == "transparency")  # type: ignore[union-attr]
        assert check["ok"] and not check["skipped"], check
        bag = out / code
        evidence = json.loads((bag / LEAVES_PATH).read_text())
        objects = [json.loads(leaf["leaf"])["object"] for leaf in evidence["leaves"]]
        manifest = parse_manifest((bag / "data/manifest.json").read_bytes())
        assert f"package:{code}" in objects
        assert f"decision:{manifest['decision']['id']}" in objects
        assert "user:" not in (bag / LEAVES_PATH).read_text()  # no actor, no details
        assert any(d["path"] == LEAVES_PATH for d in manifest["documents"])
        kept = bag / CHECKPOINT_PATH  # its .asc lies beside it in the bag
        old = merkle.Checkpoint.parse(kept.read_text())

        rewrite_history(state, seq=2)
        issued = checkpoints.issue_checkpoint(state)
        assert issued is not None and issued.tree_size >= old.size
        later = tmp_path / "later.json"  # as GET /transparency/checkpoint gives it
        later.write_text(json.dumps({"checkpoint": issued.body, "signature": issued.signature}))
        with state.sessions() as db:
            hashes = log.consistency_proof(db, old.size, issued.tree_size)
        proof = tmp_path / "proof.json"
        proof.write_text(
            json.dumps({"first": old.size, "second": issued.tree_size,
                        "proof": [merkle.b64(h) for h in hashes]})
        )  # fmt: skip
        status, report = portal_verify(
            target, home, "--checkpoint", str(later), "--consistency-proof", str(proof)
        )
        assert status == EXIT_LOG_INCONSISTENT, report
        assert "rewritten" in str(report["message"])
        status, report = portal_verify(target, home, "--checkpoint", str(kept))
        assert status == EXIT_OK, report  # its own checkpoint, kept: the same head
