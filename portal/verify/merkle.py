"""RFC 9162 Merkle trees, proofs and C2SP checkpoints: the arithmetic of the transparency log.

Used by the portal (:mod:`portal.transparency`, which builds the log) and by ``portal-verify``
(which checks a package's evidence offline), so it needs the standard library only.

Hashing (RFC 9162 §2.1.1): a leaf hash is ``SHA-256(0x00 || leaf)``, an interior node
``SHA-256(0x01 || left || right)``, the empty tree's root ``SHA-256()``. The root of ``n > 1``
leaves splits them at ``k``, the largest power of two smaller than ``n``.

Every subtree those splits make, ``[start, end)``, starts at a multiple of the smallest power
of two at least as large as ``end - start``; so it is a run of *complete* subtrees, one per
bit of its size from the highest (:func:`range_nodes`), each a node ``(level, index)`` covering
leaves ``[index * 2**level, (index + 1) * 2**level)``. A log that stores every complete node
answers any proof with O(log² n) look-ups and no rehashing of leaves: the proofs here are
planned as lists of ranges (:func:`inclusion_ranges`, :func:`consistency_ranges`) and
resolved by a function that returns node hashes (:func:`resolve`).

Proof verification follows RFC 9162 §2.1.3.2 and §2.1.4.2, and agrees with the
transparency-dev/merkle test vectors (tests/transparency/vectors/).

A checkpoint is the note text of C2SP tlog-checkpoint: the origin, the tree size in decimal,
the base64 root hash, each on its own line ending in a newline; the portal signs it with a
detached armoured OpenPGP signature instead of a note signature line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "EMPTY_ROOT",
    "LEAF_FIELDS",
    "Checkpoint",
    "CheckpointInvalid",
    "Node",
    "ProofInvalid",
    "b64",
    "consistency_ranges",
    "decode_hash",
    "inclusion_proof_length",
    "inclusion_ranges",
    "leaf_hash",
    "leaf_record_bytes",
    "node_hash",
    "parse_leaf_record",
    "range_nodes",
    "resolve",
    "root_from_inclusion",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
#: The fields of a leaf record, the public digest of one audit event (see portal.transparency).
LEAF_FIELDS = ("action", "event_sha256", "object", "seq", "time")
_ORIGIN = re.compile(r"[^\s+]{1,255}")
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")
_HEX64 = re.compile(r"[0-9a-f]{64}")

Node = tuple[int, int]  # (level, index): leaves [index << level, (index + 1) << level)


class ProofInvalid(ValueError):
    """A proof does not verify. ``kind`` says how: ``"size"`` (malformed sizes or index),
    ``"length"`` (too few or too many hashes: truncated or padded), ``"hash"`` (a hash
    of the wrong length), ``"root"`` (it leads to
    another root)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class CheckpointInvalid(ValueError):
    """A checkpoint's text is not a C2SP tlog-checkpoint."""


# --------------------------------------------------------------------------- hashing


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over the given leaf hashes, straight from RFC 9162's definition (for tests and
    small trees; a stored log uses :func:`resolve`)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    k = _split(len(leaf_hashes))
    return node_hash(root_of(leaf_hashes[:k]), root_of(leaf_hashes[k:]))


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def decode_hash(text: object, what: str) -> bytes:
    """A base64 SHA-256 hash (raises ValueError naming ``what`` otherwise)."""
    if not isinstance(text, str):
        raise ValueError(f"{what} is not a base64 string")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError(f"{what} is not valid base64") from None
    if len(raw) != HASH_SIZE:
        raise ValueError(f"{what} is {len(raw)} bytes long, not {HASH_SIZE}")
    return raw


# --------------------------------------------------------------------------- leaf records


def leaf_record_bytes(record: Mapping[str, object]) -> bytes:
    """The leaf: canonical JSON (sorted keys, no spaces, UTF-8) of the five public fields."""
    if set(record) != set(LEAF_FIELDS):
        raise ValueError(f"a leaf record has exactly the fields {', '.join(LEAF_FIELDS)}")
    return json.dumps(
        dict(record), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def parse_leaf_record(leaf: bytes) -> dict[str, object]:
    """The record a leaf holds; ValueError unless it is one, written canonically."""
    try:
        record = json.loads(leaf.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("the leaf is not JSON") from None
    if not isinstance(record, dict) or set(record) != set(LEAF_FIELDS):
        raise ValueError(f"the leaf record must have exactly the fields {', '.join(LEAF_FIELDS)}")
    seq, digest = record["seq"], record["event_sha256"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError("the leaf record's seq is not a positive integer")
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise ValueError("the leaf record's event_sha256 is not 64 lowercase hex digits")
    if not all(isinstance(record[name], str) for name in ("action", "object", "time")):
        raise ValueError("the leaf record's action, object and time must be strings")
    if leaf_record_bytes(record) != leaf:
        raise ValueError("the leaf record is not written canonically")
    return record


# --------------------------------------------------------------------------- planning proofs


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[Node]:
    """The complete subtrees making up ``[start, end)``, left to right (a subtree of the
    splits: ``start`` a multiple of the power of two at or above ``end - start``)."""
    nodes: list[Node] = []
    position, size = start, end - start
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            nodes.append((level, position >> level))
            position += 1 << level
    return nodes


def _fold(hashes: Sequence[bytes]) -> bytes:
    """The root of consecutive complete subtrees (as :func:`range_nodes` lists them)."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.3.1 PATH(index, D[0:size]), as the ranges whose roots it lists."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    return ranges[::-1]  # RFC order: from the leaf up


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.4.1 PROOF(first, D[0:second]), as the ranges whose roots it lists."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from {first} leaves to {second}")
    ranges: list[tuple[int, int]] = []

    def subproof(m: int, start: int, end: int, complete: bool) -> None:
        n = end - start
        if m == n:
            if not complete:
                ranges.append((start, end))
            return
        k = _split(n)
        if m <= k:
            subproof(m, start, start + k, complete)
            ranges.append((start + k, end))
        else:
            subproof(m - k, start + k, end, False)
            ranges.append((start, start + k))

    subproof(first, 0, second, True)
    return ranges


def resolve(
    ranges: Iterable[tuple[int, int]], nodes: Callable[[set[Node]], Mapping[Node, bytes]]
) -> list[bytes]:
    """The roots of ``ranges``, from one call of ``nodes`` (the stored complete subtrees
    asked for, by ``(level, index)``)."""
    planned = [range_nodes(start, end) for start, end in ranges]
    found = nodes({node for plan in planned for node in plan})
    return [_fold([found[node] for node in plan]) for plan in planned]


# --------------------------------------------------------------------------- verifying


def _hash_sizes(*hashes: bytes) -> None:
    if any(len(digest) != HASH_SIZE for digest in hashes):
        raise ProofInvalid("hash", f"a hash is not {HASH_SIZE} bytes long")


def inclusion_proof_length(index: int, size: int) -> int:
    """How many hashes the inclusion proof of leaf ``index`` in a tree of ``size`` has."""
    return len(inclusion_ranges(index, size))


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2: the root that ``proof`` leads to from leaf hash ``leaf``."""
    if not 0 <= index < size:
        raise ProofInvalid("size", f"leaf {index} is not in a tree of {size} leaves")
    _hash_sizes(leaf, *proof)
    expected = inclusion_proof_length(index, size)
    if len(proof) != expected:
        raise ProofInvalid(
            "length",
            f"the inclusion proof has {len(proof)} hashes; leaf {index} of a tree of {size} "
            f"needs {expected} (truncated or padded)",
        )
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`ProofInvalid` unless ``proof`` shows leaf hash ``leaf`` at ``index``
    in the tree of ``size`` leaves whose root is ``root``."""
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofInvalid(
            "root", f"leaf {index} is not included in the tree of {size} leaves with this root"
        )


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2: raise :class:`ProofInvalid` unless ``proof`` shows the tree of
    ``first`` leaves (root ``first_root``) is a prefix of the one of ``second``."""
    if not 0 <= first <= second:
        raise ProofInvalid("size", f"no consistency proof from {first} leaves to {second}")
    _hash_sizes(*proof)  # (roots are compared as given)
    if first == 0:
        raise ProofInvalid("size", "a consistency proof from the empty tree proves nothing")
    if first == second:
        if proof:
            raise ProofInvalid("length", "two checkpoints of one size need an empty proof")
        if first_root != second_root:
            raise ProofInvalid("root", f"two different roots for the same {first} leaves")
        return
    expected = len(consistency_ranges(first, second))
    if len(proof) != expected:
        raise ProofInvalid(
            "length",
            f"the consistency proof has {len(proof)} hashes; from {first} leaves to {second} "
            f"it needs {expected} (truncated or padded)",
        )
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of two: the first root starts the path
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofInvalid("length", "the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != first_root or sr != second_root:
        raise ProofInvalid(
            "root",
            f"the tree of {first} leaves is not a prefix of the tree of {second} leaves "
            "(the log was rewritten, or the proof is for other trees)",
        )


# --------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog-checkpoint: the log's origin, its size and its root hash."""

    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        """The note text, exactly the bytes that are signed (three lines, each ending
        in a newline; no extension lines)."""
        return f"{self.origin}\n{self.size}\n{b64(self.root)}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Read a checkpoint's note text; extension lines are refused (the portal writes
        none, and a signer's extensions would go unchecked)."""
        if not text.endswith("\n"):
            raise CheckpointInvalid("a checkpoint ends with a newline")
        lines = text[:-1].split("\n")
        if len(lines) != 3:
            raise CheckpointInvalid(
                f"a checkpoint has three lines (origin, size, root hash), not {len(lines)}"
            )
        origin, size, root = lines
        if not _ORIGIN.fullmatch(origin):
            raise CheckpointInvalid("the checkpoint's origin is empty or has spaces or '+'")
        if not _SIZE.fullmatch(size):
            raise CheckpointInvalid("the checkpoint's tree size is not a decimal number")
        try:
            digest = decode_hash(root, "the checkpoint's root hash")
        except ValueError as exc:
            raise CheckpointInvalid(str(exc)) from None
        if b64(digest) != root:
            raise CheckpointInvalid("the checkpoint's root hash is not canonical base64")
        return cls(origin, int(size), digest)
