"""Merkle trees over chunks: the root commits to the count, the order and every byte, each
chunk verifies alone with its audit path, and the kept tree agrees with the functions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btob.core.merkle import (
    MerkleTree,
    chunk_count,
    chunks_of,
    merkle_proof,
    merkle_root,
    verify_chunk,
)

CB = 8


def _data(size: int) -> bytes:
    return bytes((i * 13 + 5) % 256 for i in range(size))


def test_chunking_cuts_whole_chunks_and_a_shorter_last_one() -> None:
    assert chunks_of(b"", CB) == [b""]
    assert chunks_of(_data(8), CB) == [_data(8)]
    assert [len(c) for c in chunks_of(_data(20), CB)] == [8, 8, 4]
    assert b"".join(chunks_of(_data(20), CB)) == _data(20)
    assert [chunk_count(size, CB) for size in (0, 1, 8, 9, 16, 17)] == [1, 1, 1, 2, 2, 3]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 7, 8, 9, 17, 33])
def test_every_chunk_verifies_with_its_proof_and_nothing_else_does(count: int) -> None:
    chunks = chunks_of(_data((count - 1) * CB + 3), CB)
    assert len(chunks) == count
    root = merkle_root(chunks)
    for index, chunk in enumerate(chunks):
        proof = merkle_proof(chunks, index)
        assert verify_chunk(root, count, index, chunk, proof)
        assert not verify_chunk(root, count, index, chunk + b"x", proof)
        assert not verify_chunk(root, count + 1, index, chunk, proof)
        if count > 1:
            assert not verify_chunk(root, count, (index + 1) % count, chunk, proof)
            assert not verify_chunk(root, count, index, chunk, proof[:-1])
        assert not verify_chunk(root, count, index, chunk, (*proof, bytes(32)))
    assert not verify_chunk(root, count, count, chunks[0], merkle_proof(chunks, 0))
    assert not verify_chunk(root, 0, 0, chunks[0], ())


def test_the_root_commits_to_the_number_and_order_of_chunks() -> None:
    a, b = b"a" * CB, b"b" * CB
    assert merkle_root([a, b]) != merkle_root([b, a])
    assert merkle_root([a, b]) != merkle_root([a, b, b""])
    assert merkle_root([a]) != merkle_root([a, a])
    assert merkle_root([b""]) != merkle_root([b"", b""])


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 64, 65, 200])
def test_the_kept_tree_agrees_with_the_functions(size: int) -> None:
    data = _data(size)
    chunks = chunks_of(data, CB)
    tree = MerkleTree(data, CB)
    assert tree.count == len(chunks) == chunk_count(size, CB)
    assert tree.root == merkle_root(chunks)
    for index, chunk in enumerate(chunks):
        assert tree.chunk(index) == chunk
        assert tree.proof(index) == merkle_proof(chunks, index)
    assert tree.data is data  # held, not copied


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 40))
def test_any_state_and_chunk_size_round_trips_through_its_proofs(data: bytes,
                                                                 chunk_bytes: int) -> None:
    tree = MerkleTree(data, chunk_bytes)
    pieces = [tree.chunk(i) for i in range(tree.count)]
    assert b"".join(pieces) == data
    assert all(verify_chunk(tree.root, tree.count, i, piece, tree.proof(i))
               for i, piece in enumerate(pieces))
