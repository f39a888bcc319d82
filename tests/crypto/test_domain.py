"""Domain separation: the self-delimiting tag in front of every signed body."""

from __future__ import annotations

from typing import Any

import pytest

from btob.crypto import PROTOCOL_VERSION, CryptoError, domain_tag


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
