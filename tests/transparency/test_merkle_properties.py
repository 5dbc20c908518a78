"""Every inclusion and consistency proof the log makes verifies, for random sizes; any change
to one (a flipped bit, a hash dropped or added, another index or size) fails. The stored-node
roots equal RFC 9162's recursive definition. Checkpoint text round-trips and bad text is
refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.verify import merkle
from tests.transparency.memory_log import MemoryLog, log_of

MAX = 300
LOG = log_of(MAX)

sizes = st.integers(min_value=1, max_value=MAX)


@st.composite
def leaf_in_tree(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(sizes)
    return draw(st.integers(min_value=0, max_value=size - 1)), size


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    second = draw(sizes)
    return draw(st.integers(min_value=1, max_value=second)), second


def _flip(proof: list[bytes], which: int, bit: int) -> list[bytes]:
    changed = list(proof)
    digest = bytearray(changed[which])
    digest[bit // 8] ^= 1 << (bit % 8)
    changed[which] = bytes(digest)
    return changed


@settings(max_examples=150, deadline=None)
@given(sizes)
def test_stored_roots_equal_the_rfc_definition(size: int) -> None:
    assert LOG.root(size) == merkle.root_of(LOG.leaves[:size])


@settings(max_examples=200, deadline=None)
@given(leaf_in_tree(), st.data())
def test_every_inclusion_proof_verifies_and_a_tampered_one_fails(
    case: tuple[int, int], data: st.DataObject
) -> None:
    index, size = case
    root, leaf = LOG.root(size), LOG.leaves[index]
    proof = LOG.inclusion(index, size)
    merkle.verify_inclusion(index, size, leaf, proof, root)
    with pytest.raises(merkle.ProofInvalid):
        merkle.verify_inclusion(index, size, merkle.leaf_hash(b"another leaf"), proof, root)
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        with pytest.raises(merkle.ProofInvalid) as flipped:
            merkle.verify_inclusion(index, size, leaf, _flip(proof, which, bit), root)
        assert flipped.value.kind == "root"
        with pytest.raises(merkle.ProofInvalid) as truncated:
            merkle.verify_inclusion(index, size, leaf, proof[:-1], root)
        assert truncated.value.kind == "length"
    with pytest.raises(merkle.ProofInvalid):
        merkle.verify_inclusion(index, size, leaf, [*proof, root], root)
    other = data.draw(st.integers(1, MAX))
    if other != size and index < other:
        with pytest.raises(merkle.ProofInvalid):
            merkle.verify_inclusion(index, other, leaf, proof, LOG.root(other))


@settings(max_examples=200, deadline=None)
@given(two_sizes(), st.data())
def test_every_consistency_proof_verifies_and_a_tampered_one_fails(
    case: tuple[int, int], data: st.DataObject
) -> None:
    first, second = case
    old, new = LOG.root(first), LOG.root(second)
    proof = LOG.consistency(first, second)
    merkle.verify_consistency(first, second, old, new, proof)
    if first == second:
        assert proof == []
        return
    which = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    with pytest.raises(merkle.ProofInvalid):
        merkle.verify_consistency(first, second, old, new, _flip(proof, which, bit))
    with pytest.raises(merkle.ProofInvalid) as truncated:
        merkle.verify_consistency(first, second, old, new, proof[:-1])
    assert truncated.value.kind == "length"
    rewritten = MemoryLog()  # the same leaves, but one of the first tree's changed
    changed = data.draw(st.integers(0, first - 1))
    for i in range(second):
        rewritten.append(f"leaf {i}".encode() if i != changed else b"rewritten")
    with pytest.raises(merkle.ProofInvalid) as inconsistent:
        merkle.verify_consistency(
            first, second, old, rewritten.root(second), rewritten.consistency(first, second)
        )
    assert inconsistent.value.kind == "root"


def test_checkpoint_text_round_trips() -> None:
    head = merkle.Checkpoint("portal.example.org/audit-log", 300, LOG.root(300))
    text = head.text()
    assert text.count("\n") == 3 and text.endswith("\n")
    assert merkle.Checkpoint.parse(text) == head


@pytest.mark.parametrize(
    "text",
    [
        "portal.example.org/audit-log\n300\n",  # no root
        "portal.example.org/audit-log\n0300\nAAAA\n",  # leading zero
        "portal example/log\n1\n" + merkle.b64(bytes(32)) + "\n",  # space in origin
        "portal.example.org/audit-log\n1\n" + merkle.b64(bytes(32)),  # no final newline
        "portal.example.org/audit-log\n1\n" + merkle.b64(bytes(31)) + "\n",  # short hash
        "portal.example.org/audit-log\n1\n" + merkle.b64(bytes(32)) + "\nextension\n",
    ],
)
def test_bad_checkpoint_text_is_refused(text: str) -> None:
    with pytest.raises(merkle.CheckpointInvalid):
        merkle.Checkpoint.parse(text)


def test_a_leaf_record_must_be_canonical() -> None:
    record = {
        "seq": 3,
        "time": "2026-03-01T09:30:00.000000+00:00",
        "action": "package.create",
        "object": "package:PKG-2026-0001",
        "event_sha256": "ab" * 32,
    }
    leaf = merkle.leaf_record_bytes(record)
    assert merkle.parse_leaf_record(leaf) == record
    with pytest.raises(ValueError, match="canonically"):
        merkle.parse_leaf_record(leaf.replace(b",", b", "))
    with pytest.raises(ValueError, match="exactly the fields"):
        merkle.parse_leaf_record(merkle.leaf_record_bytes(record)[:-1] + b',"actor":"x"}')
