"""portal.verify.merkle against the transparency-dev/merkle test vectors (vendored, see
vectors/README.md): every inclusion and consistency probe verifies or fails as its ``wantErr``
says; the hashes, the roots of the RFC 6962 example tree, its proofs, and the accumulated
subtree-hash and inclusion-proof digests over every tree up to 130 leaves are reproduced."""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from portal.verify import merkle
from tests.transparency.memory_log import MemoryLog

VECTORS = Path(__file__).parent / "vectors" / "transparency-dev-merkle.json"


@cache
def vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text("utf-8"))
    return data


def _b64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def _proof(values: list[str] | None) -> list[bytes]:
    return [_b64(value) for value in values or []]


def test_the_vectors_name_their_source() -> None:
    source = vectors()["source"]
    assert source["repository"] == "https://github.com/transparency-dev/merkle"
    assert len(source["commit"]) == 40 and "Apache" in source["licence"]
    assert len(vectors()["inclusion"]) > 90 and len(vectors()["consistency"]) > 90


@pytest.mark.parametrize("path", sorted(vectors()["inclusion"]))
def test_inclusion_probe(path: str) -> None:
    probe = vectors()["inclusion"][path]
    try:
        merkle.verify_inclusion(
            probe["leafIdx"],
            probe["treeSize"],
            _b64(probe["leafHash"]),
            _proof(probe["proof"]),
            _b64(probe["root"]),
        )
        verified = True
    except merkle.ProofInvalid:
        verified = False
    assert verified is not probe["wantErr"], probe["desc"]


@pytest.mark.parametrize("path", sorted(vectors()["consistency"]))
def test_consistency_probe(path: str) -> None:
    probe = vectors()["consistency"][path]
    try:
        merkle.verify_consistency(
            probe["size1"],
            probe["size2"],
            _b64(probe["root1"]),
            _b64(probe["root2"]),
            _proof(probe["proof"]),
        )
        verified = True
    except merkle.ProofInvalid:
        verified = False
    assert verified is not probe["wantErr"], probe["desc"]


def test_hasher_vectors() -> None:
    for case in vectors()["hasher"]:
        want = bytes.fromhex(case["want_hex"])
        if "leaf_hex" in case:
            assert merkle.leaf_hash(bytes.fromhex(case["leaf_hex"])) == want, case["desc"]
        elif "left_hex" in case:
            got = merkle.node_hash(
                bytes.fromhex(case["left_hex"]), bytes.fromhex(case["right_hex"])
            )
            assert got == want, case["desc"]
        else:
            assert want == merkle.EMPTY_ROOT


def _example_tree() -> MemoryLog:
    log = MemoryLog()
    for leaf in vectors()["leaf_inputs_hex"]:
        log.append(bytes.fromhex(leaf))
    return log


def test_roots_of_the_rfc6962_example_tree() -> None:
    log = _example_tree()
    for size, want in enumerate(vectors()["root_hashes_hex"]):
        assert log.root(size) == bytes.fromhex(want)
        assert merkle.root_of(log.leaves[:size]) == bytes.fromhex(want)


def test_generated_proofs_equal_the_happy_path_vectors() -> None:
    """The happy paths are proofs over the example tree: ours are the same hashes."""
    log = _example_tree()
    happy = [(p, v) for p, v in vectors()["inclusion"].items() if p.endswith("happy-path.json")]
    for path, probe in happy:
        got = log.inclusion(probe["leafIdx"], probe["treeSize"])
        assert got == _proof(probe["proof"]), path
    happy = [(p, v) for p, v in vectors()["consistency"].items() if p.endswith("happy-path.json")]
    for path, probe in happy:
        if probe["size1"] == probe["size2"]:
            continue
        got = log.consistency(probe["size1"], probe["size2"])
        assert got == _proof(probe["proof"]), path


def _valid_subtree(start: int, end: int) -> bool:
    if start == 0 or start == end:
        return True
    length = end - start
    return start % (1 << (length - 1).bit_length()) == 0


def test_accumulated_subtree_vectors() -> None:
    """Every subtree hash and every inclusion proof within every subtree of a tree of 130
    leaves d[i] = bytes([i]), folded as transparency-dev/merkle's vectors_test.go does."""
    accumulated = vectors()["accumulated"]
    log = MemoryLog()
    for i in range(accumulated["max"]):
        log.append(bytes([i]))
    hashes, proofs = hashlib.sha256(), hashlib.sha256()
    get = log._get
    for end in range(accumulated["max"] + 1):
        for start in range(end + 1):
            if not _valid_subtree(start, end):
                continue
            root = merkle.EMPTY_ROOT if start == end else merkle.resolve([(start, end)], get)[0]
            hashes.update(f"[{start}, {end}) {root.hex()}\n".encode())
            for index in range(start, end):
                ranges = merkle.inclusion_ranges(index - start, end - start)
                shifted = [(a + start, b + start) for a, b in ranges]
                path = "".join(f" {h.hex()}" for h in merkle.resolve(shifted, get))
                proofs.update(f"{index} [{start}, {end}){path}\n".encode())
    assert hashes.hexdigest() == accumulated["subtree_hash"]
    assert proofs.hexdigest() == accumulated["subtree_inclusion"]
