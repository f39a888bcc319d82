"""Domain separation: the self-delimiting tag in front of every signed body."""

from __future__ import annotations

from typing import Any

import pytest

from btob.crypto import PROTOCOL_VERSION, CryptoError, domain_tag
from btob.crypto._domain import check_cluster_id


def test_domain_tag_layout() -> None:
    assert PROTOCOL_VERSION == 1
    assert domain_tag(b"ab", "c") == b"btob\x01\x00\x02ab\x01c"
    assert domain_tag(b"", "") == b"btob\x01\x00\x00\x00"
    assert domain_tag(b"x" * 64, "k" * 64) == b"btob\x01\x00\x40" + b"x" * 64 + b"\x40" + b"k" * 64


def test_domain_tags_are_unambiguous() -> None:
    assert domain_tag(b"ab", "c") != domain_tag(b"a", "bc")
    assert domain_tag(b"ab", "c") + b"body" != domain_tag(b"a", "bc") + b"body"
    tags = {domain_tag(c, k) for c in (b"", b"a", b"ab", b"b") for k in ("", "a", "ab", "b")}
    assert len(tags) == 16


@pytest.mark.parametrize(
    ("cluster_id", "kind"),
    [(b"x" * 65, "k"), (b"c", "k" * 65), (b"c", "caf\u00e9"), ("c", "k"), (b"c", b"k")],
)
def test_domain_tag_limits(cluster_id: Any, kind: Any) -> None:
    with pytest.raises(CryptoError):
        domain_tag(cluster_id, kind)


def test_the_tag_is_magic_version_and_length_prefixed_cluster_and_kind() -> None:
    cluster = bytes(range(40))
    tag = domain_tag(cluster, "ord.ready")
    assert tag[:4] == b"btob" and tag[4] == PROTOCOL_VERSION
    assert int.from_bytes(tag[5:7], "big") == 40 and tag[7:47] == cluster
    assert tag[47] == len("ord.ready") and tag[48:] == b"ord.ready"


def test_the_largest_cluster_id_and_kind_are_accepted() -> None:
    tag = domain_tag(b"c" * 64, "k" * 64)
    assert len(tag) == 4 + 1 + 2 + 64 + 1 + 64


def test_a_bytes_like_cluster_id_tags_as_its_bytes() -> None:
    assert domain_tag(bytearray(b"cl"), "k") == domain_tag(memoryview(b"cl"), "k") == \
        domain_tag(b"cl", "k")
    assert check_cluster_id(bytearray(b"cl")) == b"cl"
    assert type(check_cluster_id(memoryview(b"cl"))) is bytes


@pytest.mark.parametrize(("cluster_id", "match"), [
    (b"x" * 65, "at most 64 bytes, got 65"),
    ("text", "must be bytes, not str"),
    (None, "must be bytes, not NoneType"),
])
def test_check_cluster_id_says_what_is_wrong(cluster_id: Any, match: str) -> None:
    with pytest.raises(CryptoError, match=match):
        check_cluster_id(cluster_id)
