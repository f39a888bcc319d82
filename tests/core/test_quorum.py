"""Quorum arithmetic for every n from 4 to 31 and every f < n/3."""

from __future__ import annotations

import pytest

from btob import ConfigError, Quorums
from btob.core.quorum import default_faults

CASES = [(n, f) for n in range(4, 32) for f in range(0, n) if 3 * f < n]


@pytest.mark.parametrize(("n", "f"), CASES)
def test_thresholds_are_safe_and_live(n: int, f: int) -> None:
    q = Quorums.for_cluster(n, f)
    # Two quorums share at least f+1 members, so at least one honest member.
    assert 2 * q.quorum - n >= f + 1
    # The correct members alone form a quorum, and can deliver under Bracha.
    assert q.quorum <= n - f
    assert q.deliver <= n - f
    # f+1 votes hold one honest vote; 2f+1 hold f+1 honest ones.
    assert q.one_honest - f == 1
    assert q.deliver - f == f + 1
    # No smaller quorum would intersect safely: q is the least such threshold.
    assert 2 * (q.quorum - 1) - n < f + 1


@pytest.mark.parametrize("n", range(4, 32))
def test_default_f_is_the_largest_tolerable(n: int) -> None:
    q = Quorums.for_cluster(n)
    assert q.f == default_faults(n) == (n - 1) // 3
    assert 3 * q.f + 1 <= n < 3 * (q.f + 1) + 1
    if n == 3 * q.f + 1:
        assert q.quorum == 2 * q.f + 1


@pytest.mark.parametrize(("n", "f"), [(3, 1), (6, 2), (0, None), (4, -1), (31, 11)])
def test_unsafe_configurations_are_refused(n: int, f: int | None) -> None:
    with pytest.raises(ConfigError):
        Quorums.for_cluster(n, f)
