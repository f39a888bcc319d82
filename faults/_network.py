"""Network fault specifications for the simulator: ``--net key=value,...``."""

from __future__ import annotations

import math
import random

import attrs

from btob._errors import ConfigError

__all__ = ["Cut", "NetSpec", "Partition", "parse_net"]


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


@attrs.frozen
class Cut:
    """Between ``start`` and ``end``, messages from ``sources`` to ``dests`` are lost
    (one way: an asymmetric partition)."""

    start: float
    end: float
    sources: frozenset[int]
    dests: frozenset[int]
    delay: float = 0.0
    """If positive, the link is clogged instead: messages wait this much longer."""

    def applies(self, a: int, b: int, now: float) -> bool:
        """True if the link a -> b is affected at ``now``."""
        return self.start <= now < self.end and a in self.sources and b in self.dests


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
    cuts: tuple[Cut, ...] = ()
    """One-way cuts (delay 0) and clogged links (delay > 0)."""

    def sample_delay(self, rng: random.Random, now: float, source: int = -1,
                     dest: int = -1) -> float:
        """Latency of one message sent at ``now`` from ``source`` to ``dest``."""
        low, high = self.delay_min, self.delay_max
        if self.distribution == "exp":
            # shifted exponential with mean in the middle of the range, capped at the maximum
            delay = min(high, low + rng.expovariate(1.0 / max((high - low) / 2, 1e-9)))
        else:
            delay = rng.uniform(low, high)
        if now < self.gst and self.pre_gst_delay > 0:
            delay += rng.uniform(0.0, self.pre_gst_delay)
        for clog in self.cuts:
            if clog.delay and clog.applies(source, dest, now):
                delay += clog.delay
        return delay

    def route(self, rng: random.Random, source: int, dest: int, now: float) -> list[float]:
        """The fate of one message sent from ``source`` to ``dest`` at ``now`` (seconds since
        the run or the node started): the delay of each copy that arrives - none if it is cut
        or lost, two if it is duplicated. The simulator and the runtime's network faults both
        ask this, so a ``--net`` spec means the same in both, draw for draw."""
        if self.cut(source, dest, now):
            return []
        if now < self.gst and self.loss and rng.random() < self.loss:
            return []
        copies = 2 if self.dup and rng.random() < self.dup else 1
        return [self.sample_delay(rng, now, source, dest) for _ in range(copies)]

    def cut(self, a: int, b: int, now: float) -> bool:
        """True if a partition or a one-way cut drops a message from ``a`` to ``b`` at ``now``."""
        if any(p.separates(a, b, now) for p in self.partitions):
            return True
        return any(not c.delay and c.applies(a, b, now) for c in self.cuts)

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
        for c in self.cuts:
            link = "+".join(map(str, sorted(c.sources))) + ">" + "+".join(map(str, sorted(c.dests)))
            key = "clog" if c.delay else "cut"
            tail = f":{c.delay:g}" if c.delay else ""
            parts.append(f"{key}={c.start:g}-{c.end:g}:{link}{tail}")
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


def _members(text: str, n: int, what: str) -> frozenset[int]:
    try:
        members = frozenset(int(m) for m in text.split("+"))
    except ValueError:
        raise ConfigError(f"--net {what}: {text!r} is not ids joined by +") from None
    if any(not 0 <= m < n for m in members):
        raise ConfigError(f"--net {what}: ids must lie in 0..{n - 1}")
    return members


def _cut(key: str, value: str, n: int) -> Cut:
    span, sep, rest = value.partition(":")
    if not sep:
        raise ConfigError(f"--net {key}={value!r}: expected START-END:A+B>C+D")
    start, end = _range(key, span)
    link, _, delay_text = rest.partition(":")
    sources, arrow, dests = link.partition(">")
    if not arrow:
        raise ConfigError(f"--net {key}={value!r}: expected SOURCES>DESTS")
    if key == "clog" and not delay_text:
        raise ConfigError(f"--net clog={value!r}: needs a delay, START-END:A>B:SECONDS")
    delay = _float(key, delay_text, lo=1e-9) if key == "clog" else 0.0
    return Cut(start, end, _members(sources, n, key), _members(dests, n, key), delay)


def _isolate(value: str, n: int) -> Partition:
    span, sep, member = value.partition(":")
    if not sep:
        raise ConfigError(f"--net isolate={value!r}: expected START-END:ID")
    start, end = _range("isolate", span)
    alone = _members(member, n, "isolate")
    return Partition(start, end, (alone, frozenset(range(n)) - alone))


def parse_net(text: str, n: int) -> NetSpec:
    """Parse ``key=value,...`` with keys loss, dup, delay (A-B), dist (uniform|exp), gst,
    jitter (extra delay before GST), partition (START-END:A+B|C+D), isolate (START-END:ID),
    cut (one way, START-END:A+B>C) and clog (START-END:A>B+C:SECONDS); the last four repeat.

    Raises :class:`ConfigError` naming the bad key or value.
    """
    fields: dict[str, object] = {}
    partitions: list[Partition] = []
    cuts: list[Cut] = []
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
        elif key == "isolate":
            partitions.append(_isolate(value, n))
        elif key in ("cut", "clog"):
            cuts.append(_cut(key, value, n))
        else:
            raise ConfigError(
                f"--net: unknown key {key!r}; known: loss, dup, delay, dist, gst, jitter, "
                "partition, isolate, cut, clog"
            )
    if fields.get("loss") and "gst" not in fields:
        raise ConfigError("--net: loss needs a gst (loss only happens before GST)")
    return NetSpec(partitions=tuple(partitions), cuts=tuple(cuts), **fields)  # type: ignore[arg-type]
