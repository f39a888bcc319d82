"""Network fault specifications: cuts, isolation and clogged links."""

from __future__ import annotations

from btob import SimConfig, simulate
from btob.faults import parse_net


def test_network_cut_isolate_and_clog() -> None:
    n = 4
    net = parse_net("cut=0-0.5:0>1+2+3,isolate=0.6-1:3,clog=0-1:1>2:0.2", n)
    assert net.cut(0, 1, 0.1) and not net.cut(1, 0, 0.1)  # one way
    assert net.cut(3, 0, 0.7) and net.cut(0, 3, 0.7) and not net.cut(0, 1, 0.7)
    import random

    rng = random.Random(1)
    assert net.sample_delay(rng, 0.5, 1, 2) >= 0.2 > net.sample_delay(rng, 0.5, 2, 1)
    assert "cut=0-0.5:0>1+2+3" in net.describe() and "clog=0-1:1>2:0.2" in net.describe()
    result = simulate(SimConfig(n=n, seed=2, messages=100, rate=100.0, net=net))
    assert result.ok and result.complete
