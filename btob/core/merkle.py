"""Merkle trees over fixed-size chunks: a state's digest that lets each chunk be checked alone.

A snapshot travels in chunks of ``chunk_bytes`` (the last one shorter). Its root commits to
the number of chunks and, through domain-separated leaf and node hashes, to each chunk at its
position, so a receiver holding only the root can verify any chunk with its audit path
(``log2(count)`` sibling hashes) and refuse a bad one before it holds the rest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["MerkleTree", "chunk_count", "chunks_of", "merkle_proof", "merkle_proofs",
           "merkle_root", "root_from_path", "verify_chunk"]

_LEAF, _NODE, _ROOT = b"\x00", b"\x01", b"\x02"


def chunk_count(size: int, chunk_bytes: int) -> int:
    """How many chunks a state of ``size`` bytes has (at least one, for an empty state)."""
    return max(1, -(-size // chunk_bytes))


def chunks_of(data: bytes, chunk_bytes: int) -> list[bytes]:
    """``data`` cut into chunks of ``chunk_bytes`` (one empty chunk for empty data)."""
    return [data[i:i + chunk_bytes]
            for i in range(0, max(len(data), 1), chunk_bytes)] or [b""]


def _leaf(index: int, chunk: bytes) -> bytes:
    return hashlib.sha256(_LEAF + index.to_bytes(8, "big") + chunk).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Every level of the tree over leaf hashes, leaves first; an odd node is carried up."""
    level = leaves
    levels = [level]
    while len(level) > 1:
        level = [_node(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
        levels.append(level)
    return levels


def _path(levels: list[list[bytes]], index: int) -> tuple[bytes, ...]:
    """The audit path of leaf ``index``: the sibling hash at each level that has one."""
    path: list[bytes] = []
    position = index
    for level in levels[:-1]:
        sibling = position ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        position //= 2
    return tuple(path)


def _seal(count: int, top: bytes) -> bytes:
    return hashlib.sha256(_ROOT + count.to_bytes(8, "big") + top).digest()


def merkle_root(chunks: Sequence[bytes]) -> bytes:
    """The root over ``chunks`` (non-empty), committing to their number and order."""
    assert chunks, "a state has at least one chunk"
    return _seal(len(chunks), _levels([_leaf(i, c) for i, c in enumerate(chunks)])[-1][0])


def merkle_proof(chunks: Sequence[bytes], index: int) -> tuple[bytes, ...]:
    """The audit path of chunk ``index``: the sibling hash at each level that has one."""
    return _path(_levels([_leaf(i, c) for i, c in enumerate(chunks)]), index)


def root_from_path(count: int, index: int, chunk: bytes,
                   proof: Sequence[bytes]) -> bytes | None:
    """The root that ``chunk`` at ``index`` of ``count`` chunks with audit path ``proof``
    leads to, or None if the path has the wrong length for that place."""
    if not 0 <= index < count or count < 1:
        return None
    digest = _leaf(index, chunk)
    position, width = index, count
    steps = iter(proof)
    while width > 1:
        sibling = position ^ 1
        if sibling < width:
            step = next(steps, None)
            if step is None:
                return None
            digest = _node(step, digest) if position & 1 else _node(digest, step)
        position //= 2
        width = (width + 1) // 2
    if next(steps, None) is not None:
        return None
    return _seal(count, digest)


def merkle_proofs(chunks: Sequence[bytes], indices: Sequence[int]) -> list[tuple[bytes, ...]]:
    """The audit paths of several chunks, building the tree once."""
    levels = _levels([_leaf(i, c) for i, c in enumerate(chunks)])
    return [_path(levels, index) for index in indices]


def verify_chunk(root: bytes, count: int, index: int, chunk: bytes,
                 proof: Sequence[bytes]) -> bool:
    """True iff ``chunk`` is chunk ``index`` of the ``count`` chunks whose root is ``root``."""
    return root_from_path(count, index, chunk, proof) == root


class MerkleTree:
    """The tree over ``data`` cut in chunks of ``chunk_bytes``, kept whole so that serving k
    chunks costs k audit-path reads, not k rebuilds (:func:`merkle_proof` rebuilds the tree).

    Only the node hashes are kept (64 bytes per chunk); a chunk is sliced out of ``data``
    when asked for, so the tree never holds a second copy of the state.
    """

    def __init__(self, data: bytes, chunk_bytes: int) -> None:
        self.data = data
        """The state the tree is over (held, not copied)."""
        self.chunk_bytes = chunk_bytes
        self.count = chunk_count(len(data), chunk_bytes)
        """How many chunks the state has."""
        view = memoryview(data)
        self._levels = _levels([_leaf(i, bytes(view[i * chunk_bytes:(i + 1) * chunk_bytes]))
                                for i in range(self.count)])
        self.root = _seal(self.count, self._levels[-1][0])
        """The root, equal to ``merkle_root(chunks_of(data, chunk_bytes))``."""

    def chunk(self, index: int) -> bytes:
        """Chunk ``index`` (``0 <= index < count``)."""
        return self.data[index * self.chunk_bytes:(index + 1) * self.chunk_bytes]

    def proof(self, index: int) -> tuple[bytes, ...]:
        """The audit path of chunk ``index``, equal to :func:`merkle_proof`'s."""
        return _path(self._levels, index)
