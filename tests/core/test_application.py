"""An application run by the members: fed the total order, snapshotted at checkpoints, its
root certified - and a member whose application diverges stops."""

from __future__ import annotations

import hashlib

import pytest

from btob import Delivery, Member, StateDiverged
from btob.sim.simulator import SimConfig, simulate


class Tally:
    """A deterministic application: a running hash of what it was fed, and a count."""

    def __init__(self, salt: bytes = b"") -> None:
        self.salt = salt
        self.digest = bytes(32)
        self.count = 0
        self.restored: list[bytes] = []

    def apply(self, delivery: Delivery) -> None:
        self.digest = hashlib.sha256(self.digest + delivery.payload).digest()
        self.count += 1

    def snapshot(self) -> bytes:
        return self.salt + self.digest + self.count.to_bytes(8, "big")

    def restore(self, snapshot: bytes) -> None:
        self.restored.append(snapshot)
        self.digest, self.count = snapshot[:32], int.from_bytes(snapshot[32:], "big")


def test_every_member_applies_every_delivery_and_certifies_the_same_state() -> None:
    apps: dict[int, Tally] = {}

    def member(**kwargs: object) -> Member:
        app = apps[kwargs["member"]] = Tally()  # type: ignore[index]
        return Member(**kwargs, app=app)  # type: ignore[arg-type]

    result = simulate(SimConfig(n=4, seed=2, messages=120), member_factory=member)
    assert result.ok and result.complete
    assert {a.count for a in apps.values()} == {120}
    assert len({a.digest for a in apps.values()}) == 1
    stable = [s.stable_checkpoint for s in result.statistics]
    assert min(stable) > 0  # the state roots agreed: checkpoints became stable


def test_a_member_whose_application_differs_stops_with_state_diverged() -> None:
    def member(**kwargs: object) -> Member:
        salt = b"!" if kwargs["member"] == 3 else b""  # not deterministic across members
        return Member(**kwargs, app=Tally(salt))  # type: ignore[arg-type]

    with pytest.raises(StateDiverged, match="member 3's state at slot 16 differs"):
        simulate(SimConfig(n=4, seed=2, messages=120), member_factory=member)
