"""An in-memory log for tests: the server's own append (portal.transparency.log._append) over a
dict of nodes, and its proofs through portal.verify.merkle.resolve."""

from __future__ import annotations

from portal.transparency.log import _append
from portal.verify.merkle import (
    EMPTY_ROOT,
    Node,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    resolve,
)


class MemoryLog:
    def __init__(self) -> None:
        self.nodes: dict[Node, bytes] = {}
        self.frontier: dict[int, bytes] = {}
        self.leaves: list[bytes] = []

    def append(self, leaf: bytes) -> bytes:
        digest = leaf_hash(leaf)
        for row in _append(self.frontier, len(self.leaves), digest):
            self.nodes[(int(str(row["level"])), int(str(row["node_index"])))] = bytes.fromhex(
                str(row["hash"])
            )
        self.leaves.append(digest)
        return digest

    def _get(self, wanted: set[Node]) -> dict[Node, bytes]:
        return {node: self.nodes[node] for node in wanted}

    def root(self, size: int) -> bytes:
        return EMPTY_ROOT if size == 0 else resolve([(0, size)], self._get)[0]

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return resolve(inclusion_ranges(index, size), self._get)

    def consistency(self, first: int, second: int) -> list[bytes]:
        return resolve(consistency_ranges(first, second), self._get)


def log_of(count: int) -> MemoryLog:
    log = MemoryLog()
    for i in range(count):
        log.append(f"leaf {i}".encode())
    return log
