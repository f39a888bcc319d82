"""Merkle trees over chunks: every chunk verifies alone, and nothing else does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from btob.core.merkle import chunk_count, chunks_of, merkle_proof, merkle_root, verify_chunk


@pytest.mark.parametrize("size", [0, 1, 4, 5, 9, 10, 16, 17, 40, 85])
def test_every_chunk_verifies_with_its_proof_and_the_count(size: int) -> None:
    data = bytes(range(256)) * 2
    data = data[:size]
    chunks = chunks_of(data, 5)
    assert b"".join(chunks) == data and len(chunks) == chunk_count(size, 5)
    root = merkle_root(chunks)
    for index, chunk in enumerate(chunks):
        proof = merkle_proof(chunks, index)
        assert verify_chunk(root, len(chunks), index, chunk, proof)
        assert not verify_chunk(root, len(chunks), index, chunk + b"!", proof)
        assert not verify_chunk(root, len(chunks) + 1, index, chunk, proof)
        assert not verify_chunk(root, len(chunks), index, chunk, (*proof, bytes(32)))
        if proof:
            assert not verify_chunk(root, len(chunks), index, chunk, proof[:-1])
        if len(chunks) > 1:
            other = (index + 1) % len(chunks)
            assert not verify_chunk(root, len(chunks), other, chunk, proof)


def test_the_root_commits_to_count_order_and_content() -> None:
    chunks = [b"a", b"b", b"c"]
    root = merkle_root(chunks)
    assert merkle_root([b"b", b"a", b"c"]) != root
    assert merkle_root([b"a", b"b", b"c", b""]) != root  # an empty tail chunk counts
    assert merkle_root([b"a", b"b", b"d"]) != root
    assert merkle_root([b"ab", b"c"]) != root


def test_an_index_outside_the_tree_never_verifies() -> None:
    chunks = [b"a", b"b"]
    root = merkle_root(chunks)
    assert not verify_chunk(root, 2, 2, b"a", merkle_proof(chunks, 0))
    assert not verify_chunk(root, 2, -1, b"a", merkle_proof(chunks, 0))
    assert not verify_chunk(root, 0, 0, b"a", ())


@given(st.binary(max_size=300), st.integers(1, 40))
def test_any_data_in_any_chunk_size_round_trips(data: bytes, size: int) -> None:
    chunks = chunks_of(data, size)
    root = merkle_root(chunks)
    assert all(verify_chunk(root, len(chunks), i, c, merkle_proof(chunks, i))
               for i, c in enumerate(chunks))
