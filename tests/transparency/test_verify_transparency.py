"""``portal-verify`` on the transparency evidence of real packages (tests/support/packages.py's
build_package: real gpg, real bags), made here from an in-memory log signed with the example
keys: the genuine evidence verifies, with and without kept checkpoints; each bad input is its
own failure with its own exit code and words."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from portal import verify
from portal.verify import merkle
from portal.verify.results import (
    EXIT_CHECKPOINT_SIGNATURE,
    EXIT_LEAF_MISMATCH,
    EXIT_LOG_INCONSISTENT,
    EXIT_OK,
    EXIT_PROOF_SIZE,
    EXIT_PROOF_TRUNCATED,
    EXIT_USAGE,
)
from portal.verify.transparency import (
    CHECKPOINT_PATH,
    EVIDENCE_FORMAT,
    LEAVES_PATH,
    SIGNATURE_PATH,
)
from tests.support.packages import (
    AUTHORITY,
    SENDER,
    SENDER_FPR,
    BuiltPackage,
    FastSealer,
    build_package,
    keyring,
)
from tests.transparency.memory_log import MemoryLog

CODE = "PKG-2026-0001"
DECISION = "DEC-2026-0031"
ORIGIN = "portal.example.org/audit-log"
OTHER_KEY = "mechanism-archive"


def records(count: int, *, rewritten: int | None = None) -> list[bytes]:
    """Leaf records of ``count`` events; the package's are events 5, 6 and 9."""
    objects = {4: f"decision:{DECISION}", 5: f"package:{CODE}", 8: f"package:{CODE}"}
    out = []
    for i in range(count):
        detail = "rewritten" if i == rewritten else "original"
        out.append(
            merkle.leaf_record_bytes(
                {
                    "seq": i + 1,
                    "time": f"2026-03-01T09:{i % 60:02d}:00.000000+00:00",
                    "action": "package.create",
                    "object": objects.get(i, f"rfa:RFA-2026-{i:04d}"),
                    "event_sha256": hashlib.sha256(f"{i} {detail}".encode()).hexdigest(),
                }
            )
        )
    return out


def memory_log(leaves: list[bytes]) -> MemoryLog:
    log = MemoryLog()
    for leaf in leaves:
        log.append(leaf)
    return log


class Evidence:
    """The three files, from a log of ``size`` leaves, signed by ``signed_by``."""

    def __init__(self, sealer: FastSealer, tmp: Path, size: int = 12, *,
                 signed_by: str = SENDER, rewritten: int | None = None) -> None:  # fmt: skip
        self.leaves = records(size, rewritten=rewritten)
        self.log = memory_log(self.leaves)
        self.size = size
        self.head = merkle.Checkpoint(ORIGIN, size, self.log.root(size))
        tmp.mkdir(parents=True, exist_ok=True)
        self.text_file = tmp / "checkpoint.txt"
        self.text_file.write_bytes(self.head.text().encode())
        self.signature = sealer.detached(self.text_file, signed_by)
        (tmp / "checkpoint.txt.asc").write_bytes(self.signature)
        self.entries = [
            {
                "index": i,
                "leaf": self.leaves[i].decode(),
                "leaf_hash": merkle.b64(merkle.leaf_hash(self.leaves[i])),
                "tree_size": size,
                "inclusion_proof": [merkle.b64(h) for h in self.log.inclusion(i, size)],
            }
            for i in (4, 5, 8)
            if i < size
        ]

    def files(self) -> dict[str, bytes]:
        body = {"format": EVIDENCE_FORMAT, "checkpoint": CHECKPOINT_PATH, "leaves": self.entries}
        return {
            LEAVES_PATH: json.dumps(body).encode(),
            CHECKPOINT_PATH: self.head.text().encode(),
            SIGNATURE_PATH: self.signature,
        }

    def kept_json(self, path: Path) -> Path:
        path.write_text(
            json.dumps({"checkpoint": self.head.text(), "signature": self.signature.decode()})
        )
        return path


def package_with(sealer: FastSealer, dest: Path, files: dict[str, bytes]) -> BuiltPackage:
    def name_them(manifest: dict[str, Any]) -> None:
        for path, data in files.items():
            manifest["documents"].append(
                {"path": path, "title": "Transparency log", "size": len(data),
                 "sha256": hashlib.sha256(data).hexdigest(), "media_type": "text/plain"}
            )  # fmt: skip

    return build_package(dest, sealer=sealer, edit_manifest=name_them, extra_payload=files)


@pytest.fixture(scope="module")
def sealer() -> Iterator[FastSealer]:
    with FastSealer() as fast:
        yield fast


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    with keyring(secret=(AUTHORITY,), public=(SENDER,)) as path:
        yield path


Run = Callable[..., tuple[int, dict[str, Any]]]


@pytest.fixture
def run(home: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    def call(package: Path, *extra: str) -> tuple[int, dict[str, Any]]:
        capsys.readouterr()
        code = verify.main(
            [str(package), "--sender-fingerprint", SENDER_FPR, "--gnupghome", str(home),
             "--json", *extra]
        )  # fmt: skip
        report: dict[str, Any] = json.loads(capsys.readouterr().out)
        return code, report

    return call


def transparency_check(report: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in report["checks"] if c["name"] == "transparency")
    return found


def proof_file(path: Path, first: int, second: int, hashes: list[bytes]) -> Path:
    path.write_text(
        json.dumps({"first": first, "second": second, "proof": [merkle.b64(h) for h in hashes]})
    )
    return path


def test_genuine_evidence_verifies_with_and_without_kept_checkpoints(
    sealer: FastSealer, tmp_path: Path, run: Run
) -> None:
    now = Evidence(sealer, tmp_path / "now", 12)
    package = package_with(sealer, tmp_path / "p", now.files())
    code, report = run(package.path)
    assert code == EXIT_OK, report
    check = transparency_check(report)
    assert check["ok"] and not check["skipped"]
    assert "3 leaf record(s)" in check["detail"] and "of 12 leaves" in check["detail"]

    earlier = Evidence(sealer, tmp_path / "earlier", 7)  # the same history, seen at 7
    proof = proof_file(tmp_path / "c.json", 7, 12, now.log.consistency(7, 12))
    code, report = run(
        package.path, "--checkpoint", str(earlier.text_file), "--consistency-proof", str(proof)
    )
    assert code == EXIT_OK, report
    assert "kept checkpoint(s) of 7 leaves" in transparency_check(report)["detail"]
    later = Evidence(sealer, tmp_path / "later", 20)  # a newer head kept: the other way round
    proof = proof_file(tmp_path / "c2.json", 12, 20, later.log.consistency(12, 20))
    kept = later.kept_json(tmp_path / "head.json")
    code, report = run(package.path, "--checkpoint", str(kept), "--consistency-proof", str(proof))
    assert code == EXIT_OK, report


def test_a_package_without_evidence_is_skipped(
    sealer: FastSealer, tmp_path: Path, run: Run
) -> None:
    package = build_package(tmp_path / "p", sealer=sealer)
    code, report = run(package.path)
    assert code == EXIT_OK and transparency_check(report)["skipped"]


def test_a_checkpoint_signed_by_another_key(sealer: FastSealer, tmp_path: Path, run: Run) -> None:
    other = Evidence(sealer, tmp_path / "e", signed_by=OTHER_KEY)
    code, report = run(package_with(sealer, tmp_path / "p", other.files()).path)
    assert code == EXIT_CHECKPOINT_SIGNATURE
    assert "checkpoint signature" in report["message"] and "not the pinned" in report["message"]


def test_a_kept_checkpoint_signed_by_another_key(
    sealer: FastSealer, tmp_path: Path, run: Run
) -> None:
    now = Evidence(sealer, tmp_path / "now", 12)
    forged = Evidence(sealer, tmp_path / "forged", 7, signed_by=OTHER_KEY)
    proof = proof_file(tmp_path / "c.json", 7, 12, now.log.consistency(7, 12))
    package = package_with(sealer, tmp_path / "p", now.files())
    code, report = run(
        package.path, "--checkpoint", str(forged.text_file), "--consistency-proof", str(proof)
    )
    assert code == EXIT_CHECKPOINT_SIGNATURE and "kept checkpoint" in report["message"]


def test_a_proof_for_another_tree_size(sealer: FastSealer, tmp_path: Path, run: Run) -> None:
    evidence = Evidence(sealer, tmp_path / "e", 12)
    evidence.entries[1]["tree_size"] = 11
    evidence.entries[1]["inclusion_proof"] = [merkle.b64(h) for h in evidence.log.inclusion(5, 11)]
    code, report = run(package_with(sealer, tmp_path / "p", evidence.files()).path)
    assert code == EXIT_PROOF_SIZE
    assert "tree of 11 leaves; the checkpoint is of 12" in report["message"]


def test_a_truncated_proof(sealer: FastSealer, tmp_path: Path, run: Run) -> None:
    evidence = Evidence(sealer, tmp_path / "e", 12)
    evidence.entries[0]["inclusion_proof"] = evidence.entries[0]["inclusion_proof"][:-1]
    code, report = run(package_with(sealer, tmp_path / "p", evidence.files()).path)
    assert code == EXIT_PROOF_TRUNCATED and "truncated" in report["message"]


def test_a_leaf_not_matching(sealer: FastSealer, tmp_path: Path, run: Run) -> None:
    evidence = Evidence(sealer, tmp_path / "e", 12)
    leaf = evidence.entries[2]["leaf"].replace("09:08", "09:09")
    evidence.entries[2]["leaf"] = leaf
    code, report = run(package_with(sealer, tmp_path / "p", evidence.files()).path)
    assert code == EXIT_LEAF_MISMATCH and "does not hash to its leaf_hash" in report["message"]
    evidence.entries[2]["leaf_hash"] = merkle.b64(merkle.leaf_hash(leaf.encode()))  # and agrees
    code, report = run(package_with(sealer, tmp_path / "q", evidence.files()).path)
    assert code == EXIT_LEAF_MISMATCH and "is not included" in report["message"]


def test_leaves_of_another_package(sealer: FastSealer, tmp_path: Path, run: Run) -> None:
    evidence = Evidence(sealer, tmp_path / "e", 12)
    evidence.entries = evidence.entries[:1]  # the decision's leaf only
    code, report = run(package_with(sealer, tmp_path / "p", evidence.files()).path)
    assert code == EXIT_LEAF_MISMATCH and f"package:{CODE}" in report["message"]


def test_inconsistent_checkpoints_reveal_a_rewritten_history(
    sealer: FastSealer, tmp_path: Path, run: Run
) -> None:
    """The recipient kept the head of 7 leaves; the mechanism then rewrote event 3 and
    rebuilt the log: its new package verifies alone, but not against the kept head."""
    kept = Evidence(sealer, tmp_path / "kept", 7)
    rewritten = Evidence(sealer, tmp_path / "now", 12, rewritten=2)
    package = package_with(sealer, tmp_path / "p", rewritten.files())
    assert run(package.path)[0] == EXIT_OK
    proof = proof_file(tmp_path / "c.json", 7, 12, rewritten.log.consistency(7, 12))
    code, report = run(
        package.path, "--checkpoint", str(kept.text_file), "--consistency-proof", str(proof)
    )
    assert code == EXIT_LOG_INCONSISTENT and "rewritten" in report["message"]
    same_size = Evidence(sealer, tmp_path / "same", 12)  # a head of 12 kept, other root
    code, report = run(package.path, "--checkpoint", str(same_size.text_file))
    assert code == EXIT_LOG_INCONSISTENT and "different roots" in report["message"]


def test_consistency_proof_missing_or_for_other_sizes(
    sealer: FastSealer, tmp_path: Path, run: Run
) -> None:
    now = Evidence(sealer, tmp_path / "now", 12)
    kept = Evidence(sealer, tmp_path / "kept", 7)
    package = package_with(sealer, tmp_path / "p", now.files())
    code, report = run(package.path, "--checkpoint", str(kept.text_file))
    assert code == EXIT_USAGE and "first=7&second=12" in report["message"]
    proof = proof_file(tmp_path / "c.json", 6, 12, now.log.consistency(6, 12))
    code, report = run(
        package.path, "--checkpoint", str(kept.text_file), "--consistency-proof", str(proof)
    )
    assert code == EXIT_PROOF_SIZE and "6→12" in report["message"]
    short = proof_file(tmp_path / "d.json", 7, 12, now.log.consistency(7, 12)[:-1])
    code, report = run(
        package.path, "--checkpoint", str(kept.text_file), "--consistency-proof", str(short)
    )
    assert code == EXIT_PROOF_TRUNCATED
