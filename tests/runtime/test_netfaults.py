"""Network faults around real transports: a ``--net`` spec applied to what a node sends."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from btob.faults import NetSpec, parse_net
from btob.runtime.netfaults import NetFaultTransport

from ..helpers import collect


class Wire:
    """The transport under the faults: records what reaches it, and when."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, int, bytes]] = []

    def send_nowait(self, dest: int, frame: bytes) -> bool:
        self.sent.append((trio.current_time(), dest, frame))
        return True

    async def receive(self) -> tuple[int, bytes]:
        await trio.sleep_forever()
        raise AssertionError("unreachable")


async def _send_through(net: NetSpec, frames: list[tuple[float, int]], *, member: int = 0,
                        seed: int = 1) -> tuple[NetFaultTransport, Wire, float]:
    """Send frame k to ``frames[k][1]`` at ``frames[k][0]`` seconds after the transport was
    made; returns once every delayed copy left (virtual time)."""
    wire = Wire()
    transport = NetFaultTransport(wire, net, member=member, seed=seed)
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(transport.run)
        for k, (at, dest) in enumerate(frames):
            await trio.sleep_until(start + at)
            assert transport.send_nowait(dest, b"frame %d" % k)  # a loss is silent
        await trio.sleep(10)  # virtual: longer than any delay of the spec
        nursery.cancel_scope.cancel()
    return transport, wire, start


SPEC = "loss=0.3,gst=5,dup=0.2,delay=0.01-0.05,jitter=0.02"
SCHEDULE = [(0.01 * k, 1 + k % 3) for k in range(60)] + [(6.0 + 0.01 * k, 1) for k in range(20)]


async def test_each_frames_fate_is_the_one_net_spec_route_draws(
        autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch) -> None:
    net = parse_net(SPEC, 4)
    asked: list[tuple[int, int, float, list[float]]] = []
    route = NetSpec.route

    def spy(self: NetSpec, rng: random.Random, source: int, dest: int,
            now: float) -> list[float]:
        fate = route(self, rng, source, dest, now)
        asked.append((source, dest, now, fate))
        return fate

    monkeypatch.setattr(NetSpec, "route", spy)
    transport, wire, start = await _send_through(net, SCHEDULE, member=0)
    assert [(source, dest) for source, dest, _, _ in asked] == [(0, d) for _, d in SCHEDULE]
    assert [now for _, _, now, _ in asked] == pytest.approx([at for at, _ in SCHEDULE])
    expected = sorted((start + at + delay, dest, b"frame %d" % k)
                      for k, ((at, dest), (_, _, _, fate)) in enumerate(zip(SCHEDULE, asked,
                                                                             strict=True))
                      for delay in fate)
    assert [(dest, frame) for _, dest, frame in sorted(wire.sent)] == [
        (dest, frame) for _, dest, frame in expected]
    assert [t for t, _, _ in sorted(wire.sent)] == pytest.approx([t for t, _, _ in expected])
    assert transport.dropped == sum(1 for *_, fate in asked if not fate)
    assert 0 < transport.dropped < len(SCHEDULE)  # some losses before GST, none after
    assert all(fate for _, _, now, fate in asked if now >= 5)
    assert any(len(fate) == 2 for *_, fate in asked)  # and duplicates


async def test_the_same_seed_and_member_give_the_same_fates(
        autojump_clock: trio.testing.MockClock) -> None:
    net = parse_net(SPEC, 4)

    async def fates(member: int, seed: int) -> list[tuple[float, int, bytes]]:
        _, wire, start = await _send_through(net, SCHEDULE, member=member, seed=seed)
        return sorted((round(t - start, 9), dest, frame) for t, dest, frame in wire.sent)

    first = await fates(0, 1)
    assert await fates(0, 1) == first
    assert await fates(0, 2) != first
    assert await fates(2, 1) != first  # every member draws its own links' fates


async def test_a_cut_link_loses_every_frame_and_the_others_get_theirs(
        autojump_clock: trio.testing.MockClock) -> None:
    net = parse_net("cut=0-100:0>1,delay=0.001-0.002", 3)
    transport, wire, _ = await _send_through(net, [(0.0, 1), (0.0, 2), (0.1, 1), (0.1, 2)])
    assert [dest for _, dest, _ in wire.sent] == [2, 2]
    assert transport.dropped == 2


async def test_network_faults_around_real_transports() -> None:
    import hashlib

    from btob import open_node
    from btob.crypto import KeyRegistry, SigningKey
    from btob.faults import parse_net
    from btob.runtime.config import ClusterConfig, MemberAddress
    from btob.runtime.netfaults import NetFaultTransport
    from btob.testing import MemoryNetwork

    n = 4
    keys = [SigningKey.from_seed(hashlib.sha256(b"net%d" % i).digest()) for i in range(n)]
    config = ClusterConfig(b"net", KeyRegistry(tuple(k.public_key() for k in keys)),
                           tuple(MemberAddress("memory", 1) for _ in range(n)))
    network = MemoryNetwork(n)
    net = parse_net("loss=0.2,gst=1,delay=0.001-0.01,dup=0.05,partition=0-0.5:0+1+2|3", n)
    wrappers = []
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            nodes = []
            for i in range(n):
                async def run(i: int = i, task_status=trio.TASK_STATUS_IGNORED) -> None:  # type: ignore[no-untyped-def]
                    def wrap(inner, i=i):  # type: ignore[no-untyped-def]
                        wrapped = NetFaultTransport(inner, net, member=i, seed=1)
                        wrappers.append(wrapped)
                        return wrapped
                    async with open_node(config, i, keys[i], transport=network.endpoints[i],
                                         transport_wrapper=wrap) as node:
                        nodes.append(node)
                        task_status.started()
                        await trio.sleep_forever()
                await nursery.start(run)
            nodes.sort(key=lambda node: node.id)
            for k in range(30):
                await nodes[k % 3].broadcast(b"n%d" % k)
            orders = [await collect(node, 30) for node in nodes]
            nursery.cancel_scope.cancel()
    assert all(order == orders[0] for order in orders)
    assert sum(w.dropped for w in wrappers) > 0  # the faults really bit


def test_the_simulator_decides_every_message_by_the_same_rule(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from btob import SimConfig, simulate

    calls: list[tuple[int, int]] = []
    route = NetSpec.route

    def spy(self: NetSpec, rng: random.Random, source: int, dest: int,
            now: float) -> list[float]:
        calls.append((source, dest))
        return route(self, rng, source, dest, now)

    monkeypatch.setattr(NetSpec, "route", spy)
    result = simulate(SimConfig(n=4, seed=1, messages=10, net=parse_net(SPEC, 4)))
    assert result.ok and result.complete
    assert len(calls) == result.messages_sent  # every message sent had its fate drawn there
