"""The deterministic simulator: n members, one seeded discrete-event network, virtual time.

Everything random (latency, loss, duplication, workload timing, payload bytes) is drawn from
``random.Random`` instances seeded from the run's seed, and ties in the event queue are
broken by insertion order, so the same configuration gives the same run, byte for byte.
Members are the real :class:`~btob._node.Member` cores with real Ed25519 signatures.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import random
import struct
from collections.abc import Callable, Mapping, Sequence

import attrs

from btob._brb import BRB_KINDS
from btob._checker import CheckReport, check
from btob._delivery import Delivery
from btob._errors import ConfigError
from btob._logs import BroadcastRecord, DeliveryRecord, LogDir, MemberInfo, RunInfo, write_log_dir
from btob._node import Member, MemberStatistics
from btob._quorum import Quorums
from btob._settings import Settings
from crypto import KeyRegistry, SigningKey, get_backend
from faults import FaultSpec, NetSpec

__all__ = ["SimConfig", "SimResult", "ViewChangeRecord", "simulate"]

VARIANTS = ("bb",)
"""Sequencer variants the simulator runs today (the others arrive with their issue)."""


@attrs.frozen(kw_only=True)
class SimConfig:
    """Everything that defines one simulated run; equal configs give identical runs."""

    n: int = 4
    f: int | None = None
    seed: int = 1
    messages: int = 100
    payload_size: int = 100
    rate: float = 2000.0
    """Payloads submitted per virtual second, across the whole cluster."""
    variant: str = "bb"
    brb: str = "bracha"
    faults: tuple[FaultSpec, ...] = ()
    net: NetSpec = attrs.field(factory=NetSpec)
    settings: Settings = attrs.field(factory=Settings)
    max_time: float = 60.0
    """Virtual seconds after which an unfinished run stops (and is marked incomplete)."""
    linger: float = 0.5
    """Virtual seconds the run goes on after every correct member delivered everything."""
    crypto_backend: str = "nacl"

    def __attrs_post_init__(self) -> None:
        quorums = Quorums.for_cluster(self.n, self.f)
        if self.messages < 0 or self.payload_size < 0 or self.rate <= 0:
            raise ConfigError("messages and payload size must be >= 0 and rate > 0")
        if self.payload_size > self.settings.payload_bytes_max:
            raise ConfigError(
                f"payload size {self.payload_size} exceeds {self.settings.payload_bytes_max}"
            )
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant {self.variant!r} is not available; choose bb")
        if self.brb not in BRB_KINDS:
            raise ConfigError(f"unknown BRB {self.brb!r}; choose one of {', '.join(BRB_KINDS)}")
        members = [spec.member for spec in self.faults]
        if len(set(members)) != len(members):
            raise ConfigError("at most one --fault per member")
        if any(not 0 <= m < self.n for m in members):
            raise ConfigError(f"fault member ids must lie in 0..{self.n - 1}")
        byzantine = sum(1 for spec in self.faults if spec.byzantine)
        if byzantine > quorums.f:
            raise ConfigError(f"{byzantine} Byzantine members exceed f={quorums.f}")

    @property
    def quorums(self) -> Quorums:
        """The cluster's thresholds."""
        return Quorums.for_cluster(self.n, self.f)


@attrs.frozen
class ViewChangeRecord:
    """One view change seen in a run, with its recovery time when the failure is known."""

    view: int
    sequencer: int
    installed_at: float
    """When the first correct member installed the view."""
    failed_at: float | None
    """When the previous view's sequencer crashed (0 for a silent one); None if unknown."""
    first_commit_at: float | None
    """The first delivery by a correct member after the view was installed."""

    @property
    def recovery_s(self) -> float | None:
        """Virtual time from the sequencer's failure to the next commit."""
        if self.failed_at is None or self.first_commit_at is None:
            return None
        return self.first_commit_at - self.failed_at


@attrs.frozen
class SimResult:
    """What a run produced: the logs, the checker's report and the counters."""

    config: SimConfig
    logs: LogDir
    report: CheckReport
    complete: bool
    virtual_time: float
    statistics: tuple[MemberStatistics, ...]
    crashed: tuple[int, ...]
    events: int
    view_changes: tuple[ViewChangeRecord, ...] = ()
    peak_state: Mapping[str, int] = attrs.field(factory=dict)
    """The largest size each kind of held state reached at any member, sampled every tick."""

    @property
    def messages_sent(self) -> int:
        """Frames sent by all members."""
        return sum(s.messages_sent for s in self.statistics)

    @property
    def bytes_sent(self) -> int:
        """Frame bytes sent by all members."""
        return sum(s.bytes_sent for s in self.statistics)

    @property
    def signatures_made(self) -> int:
        """Signatures produced by all members."""
        return sum(s.signatures_made for s in self.statistics)

    @property
    def signatures_verified(self) -> int:
        """Signature checks that reached the crypto backend (cache hits excluded)."""
        return sum(s.signatures_verified for s in self.statistics)

    @property
    def ok(self) -> bool:
        """True when the checker found no violation."""
        return self.report.ok


def _keys(seed: int, n: int) -> list[SigningKey]:
    return [
        SigningKey.from_seed(hashlib.sha256(f"btob-sim-key/{seed}/{i}".encode()).digest())
        for i in range(n)
    ]


def _payload(rng: random.Random, origin: int, counter: int, size: int) -> bytes:
    head = struct.pack(">II", origin, counter)
    body = rng.randbytes(max(0, size - len(head)))
    return (head + body)[: max(size, 0)] if size >= len(head) else head[:size]


class _Simulation:
    """One run's mutable state; :func:`simulate` is the public entry point."""

    def __init__(self, config: SimConfig, progress: Callable[[float, int], None] | None) -> None:
        self.config = config
        self.progress = progress
        n = config.n
        backend = get_backend(config.crypto_backend)
        keys = _keys(config.seed, n)
        registry = KeyRegistry(tuple(k.public_key(backend) for k in keys))
        cluster_id = f"sim-{config.seed}".encode()
        self.members = [
            Member(member=i, registry=registry, signing_key=keys[i], cluster_id=cluster_id,
                   f=config.f, brb=config.brb, settings=config.settings, backend=backend)
            for i in range(n)
        ]
        self.net_rng = random.Random(f"net/{config.seed}")
        self.work_rng = random.Random(f"work/{config.seed}")
        self.queue: list[tuple[float, int, int, int, bytes | None]] = []
        self.seq = 0
        self.now = 0.0
        self.crash_at = {s.member: float(s.params["at"]) for s in config.faults
                         if s.behaviour == "crash"}
        self.silent = {s.member for s in config.faults if s.behaviour == "silent"}
        self.from_origin = [[0] * n for _ in range(n)]
        self.view_installed: dict[int, float] = {}
        self.view_first_commit: dict[int, float] = {}
        self.peak_state: dict[str, int] = {}
        self.crashed: set[int] = set()
        self.broadcasts: list[list[BroadcastRecord]] = [[] for _ in range(n)]
        self.deliveries: list[list[DeliveryRecord]] = [[] for _ in range(n)]
        self.honest = [True] * n
        for spec in config.faults:
            if spec.byzantine:
                self.honest[spec.member] = False
        self.events = 0

    # event kinds
    _DELIVER, _TICK, _SUBMIT, _CRASH = range(4)

    def push(self, at: float, kind: int, member: int, data: bytes | None = None) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, kind, member, data))

    def run(self) -> SimResult:
        config = self.config
        settings = config.settings
        tick = min(settings.retransmit_interval_s, settings.status_interval_s) / 2
        for i in range(config.n):
            self.push(self.net_rng.uniform(0, tick), self._TICK, i)
        for member, at in sorted(self.crash_at.items()):
            self.push(at, self._CRASH, member)
        for k in range(config.messages):
            at = k / config.rate + self.work_rng.uniform(0, 0.5 / config.rate)
            self.push(at, self._SUBMIT, k % config.n)
        submissions_left = config.messages
        finished_at: float | None = None
        deadline = config.max_time
        while self.queue:
            at, _, kind, member, data = heapq.heappop(self.queue)
            if at > deadline:
                break
            self.now = at
            self.events += 1
            if finished_at is not None and at >= finished_at + config.linger:
                break
            if kind == self._CRASH:
                self.crashed.add(member)
                continue
            if member in self.crashed:
                if kind == self._SUBMIT:
                    submissions_left -= 1
                continue
            node = self.members[member]
            if kind == self._DELIVER:
                assert data is not None
                node.receive(data, at)
            elif kind == self._TICK:
                node.tick(at)
                self.push(at + tick, self._TICK, member)
                peak = self.peak_state
                for name, size in node.held_state().items():
                    if size > peak.get(name, -1):
                        peak[name] = size
            else:
                submissions_left -= 1
                origin_counter = len(self.broadcasts[member])
                payload = _payload(self.work_rng, member, origin_counter, config.payload_size)
                msg_id = node.submit(payload, at)
                self.broadcasts[member].append(
                    BroadcastRecord(str(msg_id), hashlib.sha256(payload).hexdigest())
                )
            delivered = self._flush(member)
            # Judge completion when deliveries happen, and on ticks once GST has passed
            # (a run may deliver everything before GST and then fall quiet).
            judge = (delivered or kind == self._TICK) and finished_at is None
            if judge and submissions_left == 0 and at >= config.net.gst and self._finished():
                finished_at = at
                deadline = min(deadline, at + config.linger)
            if delivered and self.progress is not None:
                self.progress(at, min(len(d) for i, d in enumerate(self.deliveries)
                                      if self._correct(i)) if self._any_correct() else 0)
        complete = finished_at is not None
        return self._result(complete)

    def _correct(self, member: int) -> bool:
        return self.honest[member] and member not in self.crashed

    def _any_correct(self) -> bool:
        return any(self._correct(i) for i in range(self.config.n))

    def _finished(self) -> bool:
        """Every correct member delivered every payload of every correct member, alike."""
        correct = [i for i in range(self.config.n) if self._correct(i)]
        expected = sum(len(self.broadcasts[i]) for i in correct)
        lengths = {len(self.deliveries[i]) for i in correct}
        if len(lengths) != 1:
            return False
        return all(sum(self.from_origin[i][o] for o in correct) == expected for i in correct)

    def _flush(self, member: int) -> bool:
        node = self.members[member]
        frames, deliveries = node.take_outputs()
        if self._correct(member):
            for installed in node.take_view_changes():
                self.view_installed.setdefault(installed.view, installed.at)
            if deliveries:
                for view, at in self.view_installed.items():
                    if view not in self.view_first_commit and self.now >= at:
                        self.view_first_commit[view] = self.now
        if member in self.silent:
            frames = []  # a silent member receives and computes, but never speaks
        net = self.config.net
        rng = self.net_rng
        for out in frames:
            dest = out.destination
            if dest in self.crashed or net.cut(member, dest, self.now):
                continue
            if self.now < net.gst and net.loss and rng.random() < net.loss:
                continue
            self.push(self.now + net.sample_delay(rng, self.now), self._DELIVER, dest, out.frame)
            if net.dup and rng.random() < net.dup:
                self.push(self.now + net.sample_delay(rng, self.now), self._DELIVER, dest,
                          out.frame)
        self._record(member, deliveries)
        return bool(deliveries)

    def _record(self, member: int, deliveries: Sequence[Delivery]) -> None:
        log = self.deliveries[member]
        counts = self.from_origin[member]
        for d in deliveries:
            counts[d.origin] += 1
            log.append(DeliveryRecord(d.index, str(d.msg_id), d.origin,
                                      hashlib.sha256(d.payload).hexdigest()))

    def _result(self, complete: bool) -> SimResult:
        config = self.config
        quorums = config.quorums
        members = {i: MemberInfo(honest=self.honest[i], crashed=i in self.crashed)
                   for i in range(config.n)}
        run = RunInfo(
            n=config.n, f=quorums.f, complete=complete, members=members,
            extra={
                "seed": config.seed, "variant": config.variant, "brb": config.brb,
                "messages": config.messages, "payload_size": config.payload_size,
                "faults": [str(s) for s in config.faults], "net": config.net.describe(),
                "virtual_time": round(self.now, 6),
            },
        )
        logs = LogDir(
            run=run,
            broadcasts={i: tuple(self.broadcasts[i]) for i in range(config.n)},
            deliveries={i: tuple(self.deliveries[i]) for i in range(config.n)},
        )
        return SimResult(
            config=config, logs=logs, report=check(logs), complete=complete,
            virtual_time=self.now, statistics=tuple(m.statistics() for m in self.members),
            crashed=tuple(sorted(self.crashed)), events=self.events,
            view_changes=self._view_change_records(), peak_state=dict(self.peak_state),
        )

    def _view_change_records(self) -> tuple[ViewChangeRecord, ...]:
        records = []
        for view, installed_at in sorted(self.view_installed.items()):
            previous = (view - 1) % self.config.n
            failed_at: float | None = None
            if previous in self.silent:
                failed_at = 0.0
            elif previous in self.crashed and self.crash_at[previous] <= installed_at:
                failed_at = self.crash_at[previous]
            records.append(ViewChangeRecord(
                view=view, sequencer=view % self.config.n, installed_at=installed_at,
                failed_at=failed_at, first_commit_at=self.view_first_commit.get(view),
            ))
        return tuple(records)


def simulate(
    config: SimConfig,
    *,
    log_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[float, int], None] | None = None,
) -> SimResult:
    """Run one deterministic simulation; write its logs to ``log_dir`` if given.

    ``progress(virtual_time, delivered)`` is called whenever the slowest correct member's
    delivery count may have changed. Raises :class:`ConfigError` for an invalid config.
    """
    result = _Simulation(config, progress).run()
    if log_dir is not None:
        logs = result.logs
        write_log_dir(log_dir, logs.run, logs.broadcasts, logs.deliveries)
    return result
