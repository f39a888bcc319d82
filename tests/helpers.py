"""Shared test helpers: deterministic keys and signing for a small cluster, members wired by
hand, reading a node's deliveries, and running btob as a process on free ports."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable

from btob import Delivery, Member, Node
from btob.core.wire import Message, Signed
from btob.crypto import KeyRegistry, Signer, SigningKey, Verifier
from btob.testing.ports import free_port_range

CLUSTER = b"test-cluster"

BTOB = [sys.executable, "-m", "btob"]
"""The btob command, run by this interpreter (as a separate process)."""


class Keys:
    """Deterministic keys for ``n`` members, their registry, signers and verifiers."""

    def __init__(self, n: int, cluster_id: bytes = CLUSTER) -> None:
        self.cluster_id = cluster_id
        self.keys = [SigningKey.from_seed(hashlib.sha256(b"key-%d" % i).digest())
                     for i in range(n)]
        self.registry = KeyRegistry(tuple(k.public_key() for k in self.keys))
        self.signers = [Signer(k, cluster_id=cluster_id) for k in self.keys]

    def sign(self, member: int, message: Message) -> Signed:
        """``message`` validly signed by ``member``."""
        return Signed.create(member, message, self.signers[member].sign)

    def verifier(self) -> Verifier:
        """A fresh verifier for this cluster."""
        return Verifier(self.registry, cluster_id=self.cluster_id)


class Router:
    """Members wired by hand, with a filter deciding which frames cross; time moves by ticks.

    ``allow(src, dst, message)`` returns False to drop a frame; ``stopped`` members neither
    send nor receive (crashed).
    """

    def __init__(self, keys: Keys, *, member_factory: Callable[..., Member] | None = None,
                 **settings: object) -> None:
        from btob import Settings

        n = len(keys.keys)
        make = member_factory or Member
        self.members = [
            make(member=i, registry=keys.registry, signing_key=keys.keys[i],
                 cluster_id=keys.cluster_id, settings=Settings(**settings))  # type: ignore[arg-type]
            for i in range(n)
        ]
        self.delivered: list[list[tuple[str, bytes]]] = [[] for _ in range(n)]
        self.deliveries: list[list[Delivery]] = [[] for _ in range(n)]
        """Each member's deliveries, whole (``delivered`` holds their ids and payloads)."""
        self.stopped: set[int] = set()
        self.now = 0.0
        self.allow: Callable[[int, int, Message], bool] = lambda src, dst, message: True

    def pump(self) -> None:
        """Deliver frames until the cluster is quiet (all at the current time)."""
        from btob.core.wire import decode_frame

        busy = True
        while busy:
            busy = False
            for i, member in enumerate(self.members):
                frames, deliveries = member.take_outputs()
                if i in self.stopped:
                    continue
                self.delivered[i] += [(str(d.msg_id), d.payload) for d in deliveries]
                self.deliveries[i] += deliveries
                for out in frames:
                    if out.destination in self.stopped:
                        continue
                    message = decode_frame(out.frame).parse().message
                    if not self.allow(i, out.destination, message):
                        continue
                    busy = True
                    self.members[out.destination].receive(out.frame, self.now)

    def advance(self, seconds: float, step: float = 0.05) -> None:
        """Tick every running member for ``seconds`` of virtual time, pumping in between."""
        end = self.now + seconds
        while self.now < end:
            self.now = round(self.now + step, 9)
            for i, member in enumerate(self.members):
                if i not in self.stopped:
                    member.tick(self.now)
            self.pump()


async def collect(node: Node, count: int) -> list[str]:
    """The ids of ``node``'s first ``count`` deliveries, as ``origin:counter`` text."""
    seen: list[str] = []
    async for delivery in node.deliveries():
        seen.append(str(delivery.msg_id))
        if len(seen) == count:
            return seen
    raise AssertionError("unreachable")


def free_base_port(n: int) -> int:
    """A port p such that p .. p+n-1 are free on loopback right now."""
    return free_port_range(n)
