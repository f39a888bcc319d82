"""Quorum arithmetic for every n from 4 to 31 and every f < n/3."""

from __future__ import annotations

import pytest

from btob import ConfigError, Quorums
from btob.core.quorum import default_faults

CASES = [(n, f) for n in range(4, 32) for f in range(0, n) if 3 * f < n]


@pytest.mark.parametrize(("n", "f"), CASES)
def test_thresholds_are_safe_and_live(n: int, f: int) -> None:
    q = Quorums.for_cluster(n, f)
    assert (q.n, q.f) == (n, f)  # the thresholds say which cluster they are for
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


@pytest.mark.parametrize("n", [1, 2, 3])
def test_clusters_too_small_for_a_fault_tolerate_none(n: int) -> None:
    """One to three members are a valid cluster with f = 0 (a quorum is then a majority or
    more), not a configuration error."""
    assert default_faults(n) == 0
    q = Quorums.for_cluster(n)
    assert (q.n, q.f, q.quorum, q.one_honest, q.deliver) == (n, 0, n // 2 + 1, 1, 1)


@pytest.mark.parametrize(("n", "f", "message"), [
    (3, 1, "n=3 members tolerate at most f=0 faults, got f=1"),
    (6, 2, "n=6 members tolerate at most f=1 faults, got f=2"),
    (31, 11, "n=31 members tolerate at most f=10 faults, got f=11"),
    (0, None, "a cluster needs at least 1 member, got n=0"),
    (-2, 0, "a cluster needs at least 1 member, got n=-2"),
    (4, -1, "f must be >= 0, got f=-1"),
])
def test_unsafe_configurations_are_refused(n: int, f: int | None, message: str) -> None:
    # The message names the rule that was broken: an operator reads it to fix the config.
    with pytest.raises(ConfigError) as refused:
        Quorums.for_cluster(n, f)
    assert str(refused.value) == message


def test_no_cluster_of_fewer_than_one_member_has_a_fault_bound() -> None:
    with pytest.raises(ConfigError, match=r"^a cluster needs at least 1 member, got n=0$"):
        default_faults(0)
