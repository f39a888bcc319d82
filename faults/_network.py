"""Network fault specifications for the simulator: ``--net key=value,...``."""

from __future__ import annotations

import math
import random

import attrs

from crypto._errors import ConfigError

__all__ = ["NetSpec", "Partition", "parse_net"]


@attrs.frozen
class Partition:
    """Between ``start`` and ``end`` (virtual seconds) only members of one group can talk."""

    start: float
    end: float
    groups: tuple[frozenset[int], ...]

    def separates(self, a: int, b: int, now: float) -> bool:
        """True if a message from ``a`` to ``b`` sent at ``now`` is cut."""
        if not self.start <= now < self.end:
            return False
        return not any(a in g and b in g for g in self.groups)


@attrs.frozen(kw_only=True)
class NetSpec:
    """Link behaviour: loss and extra delay before GST, duplication, latency, partitions.

    Before ``gst`` a message is lost with probability ``loss`` and may wait an extra random
    ``0..pre_gst_delay`` seconds (so reordering is heavy); after GST links are timely: no loss,
    latency within the ``delay`` distribution.
    """

    loss: float = 0.0
    dup: float = 0.0
    delay_min: float = 0.001
    delay_max: float = 0.005
    distribution: str = "uniform"
    gst: float = 0.0
    pre_gst_delay: float = 0.0
    partitions: tuple[Partition, ...] = ()

    def sample_delay(self, rng: random.Random, now: float) -> float:
        """Latency of one message sent at ``now``."""
        low, high = self.delay_min, self.delay_max
        if self.distribution == "exp":
            # shifted exponential with mean in the middle of the range, capped at the maximum
            delay = min(high, low + rng.expovariate(1.0 / max((high - low) / 2, 1e-9)))
        else:
            delay = rng.uniform(low, high)
        if now < self.gst and self.pre_gst_delay > 0:
            delay += rng.uniform(0.0, self.pre_gst_delay)
        return delay

    def cut(self, a: int, b: int, now: float) -> bool:
        """True if a partition separates ``a`` from ``b`` at ``now``."""
        return any(p.separates(a, b, now) for p in self.partitions)

    def describe(self) -> str:
        """The spec in ``--net`` syntax."""
        parts = [f"delay={self.delay_min:g}-{self.delay_max:g}"]
        if self.distribution != "uniform":
            parts.append(f"dist={self.distribution}")
        for key in ("loss", "dup", "gst"):
            value = getattr(self, key)
            if value:
                parts.append(f"{key}={value:g}")
        if self.pre_gst_delay:
            parts.append(f"jitter={self.pre_gst_delay:g}")
        for p in self.partitions:
            groups = "|".join("+".join(str(m) for m in sorted(g)) for g in p.groups)
            parts.append(f"partition={p.start:g}-{p.end:g}:{groups}")
        return ",".join(parts)


def _float(key: str, value: str, *, lo: float = 0.0, hi: float = math.inf) -> float:
    try:
        parsed = float(value)
    except ValueError:
        raise ConfigError(f"--net {key}: {value!r} is not a number") from None
    if not lo <= parsed <= hi or math.isnan(parsed):
        raise ConfigError(f"--net {key}: {value} is outside {lo:g}..{hi:g}")
    return parsed


def _range(key: str, value: str) -> tuple[float, float]:
    low_text, sep, high_text = value.partition("-")
    low = _float(key, low_text)
    high = _float(key, high_text) if sep else low
    if high < low:
        raise ConfigError(f"--net {key}: {value!r} has its bounds reversed")
    return low, high


def _partition(value: str, n: int) -> Partition:
    span, sep, groups_text = value.partition(":")
    if not sep:
        raise ConfigError(f"--net partition={value!r}: expected START-END:A+B|C+D")
    start, end = _range("partition", span)
    groups: list[frozenset[int]] = []
    seen: set[int] = set()
    for group_text in groups_text.split("|"):
        try:
            members = frozenset(int(m) for m in group_text.split("+"))
        except ValueError:
            raise ConfigError(f"--net partition={value!r}: groups are ids joined by +") from None
        if any(not 0 <= m < n for m in members) or members & seen:
            raise ConfigError(f"--net partition={value!r}: ids must be distinct and in 0..{n-1}")
        seen |= members
        groups.append(members)
    rest = frozenset(range(n)) - seen
    if rest:
        groups.append(rest)  # members not named form one group of their own
    return Partition(start, end, tuple(groups))


def parse_net(text: str, n: int) -> NetSpec:
    """Parse ``key=value,...`` with keys loss, dup, delay (A-B), dist (uniform|exp), gst,
    jitter (extra delay before GST) and partition (START-END:A+B|C+D, repeatable).

    Raises :class:`ConfigError` naming the bad key or value.
    """
    fields: dict[str, object] = {}
    partitions: list[Partition] = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--net: {item!r} is not key=value")
        if key == "loss":
            fields["loss"] = _float(key, value, hi=0.95)
        elif key == "dup":
            fields["dup"] = _float(key, value, hi=1.0)
        elif key == "delay":
            fields["delay_min"], fields["delay_max"] = _range(key, value)
        elif key == "dist":
            if value not in ("uniform", "exp"):
                raise ConfigError(f"--net dist: {value!r} is not uniform or exp")
            fields["distribution"] = value
        elif key == "gst":
            fields["gst"] = _float(key, value)
        elif key == "jitter":
            fields["pre_gst_delay"] = _float(key, value)
        elif key == "partition":
            partitions.append(_partition(value, n))
        else:
            raise ConfigError(
                f"--net: unknown key {key!r}; known: loss, dup, delay, dist, gst, jitter, partition"
            )
    if fields.get("loss") and "gst" not in fields:
        raise ConfigError("--net: loss needs a gst (loss only happens before GST)")
    return NetSpec(partitions=tuple(partitions), **fields)  # type: ignore[arg-type]
