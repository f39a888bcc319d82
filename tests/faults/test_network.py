"""Network fault specifications: cuts, isolation and clogged links."""

from __future__ import annotations

import pytest

from btob import ConfigError, SimConfig, simulate
from btob.faults import Cut, NetSpec, Partition, parse_net


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


# -- parsing --------------------------------------------------------------------------------


def test_every_key_parses_into_the_spec() -> None:
    net = parse_net("loss=0.1,dup=0.05,delay=0.002-0.01,dist=exp,gst=2,jitter=0.03,"
                    "partition=0.5-1:0+1|2,isolate=1-2:3,cut=0-1:0>1,clog=2-3:1+2>0:0.5", 4)
    assert (net.loss, net.dup, net.delay_min, net.delay_max, net.distribution, net.gst,
            net.pre_gst_delay) == (0.1, 0.05, 0.002, 0.01, "exp", 2.0, 0.03)
    assert net.partitions == (
        Partition(0.5, 1.0, (frozenset({0, 1}), frozenset({2}), frozenset({3}))),
        Partition(1.0, 2.0, (frozenset({3}), frozenset({0, 1, 2}))))
    assert net.cuts == (Cut(0.0, 1.0, frozenset({0}), frozenset({1})),
                        Cut(2.0, 3.0, frozenset({1, 2}), frozenset({0}), 0.5))
    assert parse_net(net.describe(), 4) == net
    assert parse_net("", 4) == NetSpec()
    assert parse_net("delay=0.003", 4).delay_max == 0.003  # one value: a fixed latency


@pytest.mark.parametrize(("text", "reason"), [
    ("loss=2,gst=1", "--net loss: 2 is outside 0..0.95"),
    ("loss=0.1", "loss needs a gst"),
    ("dup=x", "--net dup: 'x' is not a number"),
    ("gst=nan", "--net gst: nan is outside"),
    ("delay=0.05-0.01", "--net delay: '0.05-0.01' has its bounds reversed"),
    ("dist=normal", "--net dist: 'normal' is not uniform or exp"),
    ("wobble=1", "--net: unknown key 'wobble'"),
    ("loss", "--net: 'loss' is not key=value"),
    ("partition=0-1", "expected START-END:A+B|C+D"),
    ("partition=0-1:0+1|1+2", "ids must be distinct and in 0..3"),
    ("partition=0-1:0+9", "ids must be distinct and in 0..3"),
    ("partition=0-1:a+b", "groups are ids joined by +"),
    ("isolate=0-1", "expected START-END:ID"),
    ("cut=0-1:0+1", "expected SOURCES>DESTS"),
    ("cut=0-1", "expected START-END:A+B>C+D"),
    ("cut=0-1:0>7", "ids must lie in 0..3"),
    ("clog=0-1:0>1", "--net clog='0-1:0>1': needs a delay, START-END:A>B:SECONDS"),
    ("clog=0-1:0>1:", "needs a delay"),
    ("clog=0-1:0>1:0", "--net clog: 0 is outside"),
])
def test_every_mistake_names_the_key_or_value(text: str, reason: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_net(text, 4)
    assert reason in str(exc.value)


# -- what a link does -----------------------------------------------------------------------


class Draws:
    """A stand-in for random.Random that answers with scripted values."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)
        self.asked: list[str] = []

    def random(self) -> float:
        self.asked.append("random")
        return self.values.pop(0)

    def uniform(self, low: float, high: float) -> float:
        self.asked.append("uniform")
        return low + (high - low) * self.values.pop(0)

    def expovariate(self, rate: float) -> float:
        self.asked.append("expovariate")
        return self.values.pop(0)


def test_partitions_separate_groups_during_their_span_only() -> None:
    net = parse_net("partition=1-2:0+1", 4)  # 2 and 3 form the other group
    assert net.cut(0, 2, 1.0) and net.cut(3, 1, 1.5) and not net.cut(0, 1, 1.5)
    assert not net.cut(2, 3, 1.5)
    assert not net.cut(0, 2, 0.99) and not net.cut(0, 2, 2.0)  # [start, end)


def test_a_message_is_lost_only_before_gst_and_with_probability_loss() -> None:
    net = parse_net("loss=0.3,gst=1,delay=0.01-0.02", 4)
    assert net.route(Draws(0.29), 0, 1, 0.5) == []  # drawn under loss: lost
    kept = Draws(0.31, 0.5)
    assert net.route(kept, 0, 1, 0.5) == [pytest.approx(0.015)]
    after = Draws(0.5)  # after GST no loss is drawn at all
    assert net.route(after, 0, 1, 1.0) == [pytest.approx(0.015)] and after.asked == ["uniform"]


def test_a_cut_message_draws_nothing_and_a_duplicated_one_arrives_twice() -> None:
    net = parse_net("dup=0.5,cut=0-1:0>1,delay=0.01-0.02", 4)
    cut = Draws()
    assert net.route(cut, 0, 1, 0.5) == [] and cut.asked == []
    assert net.route(Draws(0.4, 0.0, 1.0), 1, 0, 0.5) == [pytest.approx(0.01),
                                                          pytest.approx(0.02)]
    assert net.route(Draws(0.6, 0.0), 1, 0, 0.5) == [pytest.approx(0.01)]


def test_delays_follow_the_distribution_jitter_before_gst_and_clogged_links() -> None:
    uniform = parse_net("delay=0.01-0.03,gst=1,jitter=0.1,clog=0-5:0>1:0.5", 4)
    assert uniform.sample_delay(Draws(0.5, 0.5), 2.0, 0, 2) == pytest.approx(0.02)  # after GST
    assert uniform.sample_delay(Draws(0.5, 0.5), 0.5, 0, 2) == pytest.approx(0.07)  # + jitter
    assert uniform.sample_delay(Draws(0.5), 2.0, 0, 1) == pytest.approx(0.52)  # clogged
    assert uniform.sample_delay(Draws(0.5), 2.0, 1, 0) == pytest.approx(0.02)  # one way
    exp = parse_net("delay=0.01-0.03,dist=exp", 4)
    assert exp.sample_delay(Draws(0.005), 0.0) == pytest.approx(0.015)
    assert exp.sample_delay(Draws(5.0), 0.0) == pytest.approx(0.03)  # capped at the maximum
