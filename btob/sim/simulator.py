"""The deterministic simulator: n members, one seeded discrete-event network, virtual time.

Everything random (latency, loss, duplication, workload timing, payload bytes) is drawn from
``random.Random`` instances seeded from the run's seed, and ties in the event queue are
broken by insertion order, so the same configuration gives the same run, byte for byte.
Members are the real :class:`~btob.Member` cores with real Ed25519 signatures, and a faulty
member is the same :class:`~btob.faults._driver.FaultyCore` the Trio runtime drives, with
time counted from the start of the run.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import random
import shlex
import struct
from collections.abc import Callable, Mapping, Sequence

import attrs

from btob._errors import ConfigError, MemberCrashed, WireError
from btob.core.clients import ClientAdmission
from btob.core.clientwire import Notice, decode_request
from btob.core.delivery import CLIENT_ORIGIN, Delivery
from btob.core.dissemination import BRB_KINDS
from btob.core.durable import DurableState
from btob.core.member import CountersUnknown, Member, MemberStatistics, RequestRefused
from btob.core.proposers import view_leader
from btob.core.quorum import Quorums
from btob.core.settings import VOTE_MODES, Settings
from btob.core.variants import VARIANTS
from btob.core.wire import Signed, decode_frame
from btob.crypto import Backend, KeyRegistry, Signer, SigningKey, Verifier, get_backend
from btob.faults import AdversarySpec, FaultSpec, NetSpec
from btob.faults._adversary import Coalition, make_coalition
from btob.faults._clients import (
    ClientActions,
    ClientContext,
    ClientFault,
    ClientFaultSpec,
    make_client_fault,
)
from btob.faults._driver import FaultEffects, FaultyCore, coalition_core, faulty_core
from btob.sim.checker import CheckReport, check
from btob.sim.clients import ClientStatistics, SimClient
from btob.sim.invariants import VoteMonitor
from btob.sim.logs import (
    BroadcastRecord,
    ClientInfo,
    DeliveryRecord,
    LogDir,
    MemberInfo,
    RunInfo,
    write_log_dir,
)

__all__ = [
    "PHASES", "MemberFactory", "Restart", "SimConfig", "SimResult", "ViewChangeRecord",
    "replay_command", "simulate",
]

MemberFactory = Callable[..., Member]
"""Builds one member from :class:`~btob.Member`'s keyword arguments; :class:`~btob.Member`
itself by default, or a deliberately broken one from :mod:`btob.testing.breaks`."""


PHASES = ("before-commit", "after-commit", "mid-send", "after-send")
"""Where in a step a :class:`Restart` crashes its member, in the driver contract's order:
before the step's durable changes are committed; after, before any frame leaves; after
half of its frames left; after all of them left, before its deliveries reach the
application."""


@attrs.frozen
class Restart:
    """An honest member that crashes and comes back from its durable state.

    It crashes while taking its ``step``-th input (counted from 1), at ``phase`` (one of
    :data:`PHASES`): with ``before-commit`` the step is lost whole; the later phases commit
    the step's durable changes first, and then let none, half or all of its frames leave;
    its deliveries never reach the application. It is down for ``down_s`` virtual seconds
    (everything sent to it meanwhile is lost), then a fresh member restores the committed
    state and runs on. ``committed=True`` is short for ``phase="after-commit"``.
    """

    member: int
    step: int
    down_s: float = 0.2
    committed: bool = False
    wiped: bool = False
    """The member comes back with an empty disk (its data directory was deleted)."""
    phase: str = attrs.field(default="")

    def __attrs_post_init__(self) -> None:
        phase = self.phase or ("after-commit" if self.committed else "before-commit")
        if phase not in PHASES:
            raise ConfigError(f"restart phase {phase!r}: choose one of {', '.join(PHASES)}")
        object.__setattr__(self, "phase", phase)
        object.__setattr__(self, "committed", phase != "before-commit")

    @property
    def frames_sent(self) -> str:
        """How many of the step's frames leave before the crash: none, half or all."""
        return {"mid-send": "half", "after-send": "all"}.get(self.phase, "none")

    def __str__(self) -> str:
        wiped = "/wiped" if self.wiped else ""
        return f"{self.member}@{self.step}/{self.phase}/{self.down_s:g}s{wiped}"

    @classmethod
    def parse(cls, text: str) -> Restart:
        """A restart from ``MEMBER@STEP[/PHASE][/DOWNs][/wiped]`` (what ``str`` writes; PHASE
        one of :data:`PHASES`); :class:`ConfigError` naming the text if it is not one."""
        head, *parts = text.strip().split("/")
        member, sep, step = head.partition("@")
        options: dict[str, object] = {}
        try:
            for part in parts:
                if part in PHASES:
                    options["phase"] = part
                elif part == "wiped":
                    options["wiped"] = True
                elif part.endswith("s"):
                    options["down_s"] = float(part[:-1])
                    if not options["down_s"] > 0:  # type: ignore[operator]
                        raise ValueError(part)
                else:
                    raise ValueError(part)
            if not sep or int(step) < 1 or int(member) < 0:
                raise ValueError(head)
            return cls(int(member), int(step), **options)  # type: ignore[arg-type]
        except ValueError:
            raise ConfigError(
                f"--restart {text!r}: expected MEMBER@STEP[/{'|/'.join(PHASES)}]"
                f"[/DOWNs][/wiped], e.g. 1@200/after-commit/0.5s") from None


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
    votes: str = attrs.field(default=attrs.Factory(lambda self: self.settings.votes,
                                                   takes_self=True))
    """How ordering votes travel (:attr:`Settings.votes`: ``all`` or ``linear``); by default
    the ``settings``' mode. Given, it is the run's: ``settings`` becomes the same settings with
    this mode, so every member (and every faulty core) runs with ``settings.votes == votes``
    (``attrs.evolve`` copies ``votes`` too: change the mode through it, not ``settings``)."""
    max_time: float = 60.0
    """Virtual seconds after which an unfinished run stops (and is marked incomplete)."""
    linger: float = 0.5
    """Virtual seconds the run goes on after every correct member delivered everything."""
    crypto_backend: str = "nacl"
    restarts: tuple[Restart, ...] = ()
    """Honest members that crash and restart from their durable state (at most one each)."""
    adversary: AdversarySpec | None = None
    """A coordinated adversary: f members act as one under this strategy, with the network
    on their side until its ``until`` (see :mod:`btob.faults._adversary`)."""
    clients: int = 0
    """Clients outside the cluster (:mod:`btob.sim.clients`), besides the members' own
    ``messages``; each has a key derived from the seed."""
    client_requests: int = 20
    """Requests each honest client makes (one after another, ``client_in_flight`` at a time)."""
    client_in_flight: int = 1
    """Requests an honest client keeps waiting at a time (1: closed loop); at most the
    cluster's ``client_window``."""
    client_faults: tuple[ClientFaultSpec, ...] = ()
    """Byzantine clients (:mod:`btob.faults._clients`), by client id."""
    open_clients: bool = False
    """The cluster admits any client key; else it lists the clients' keys."""
    client_retry_s: float = 0.3
    """Virtual seconds a client waits for a receipt before it tries one more member."""
    client_give_up_s: float = 5.0
    """Virtual seconds after which a client gives a request up and goes on."""

    def __attrs_post_init__(self) -> None:
        quorums = Quorums.for_cluster(self.n, self.f)
        restarting = [r.member for r in self.restarts]
        if len(set(restarting)) != len(restarting) or any(
                not 0 <= m < self.n for m in restarting):
            raise ConfigError(f"restarts name distinct members in 0..{self.n - 1}")
        if set(restarting) & {spec.member for spec in self.faults}:
            raise ConfigError("a restarting member is honest: it cannot also have a fault")
        if self.messages < 0 or self.payload_size < 0 or self.rate <= 0:
            raise ConfigError("messages and payload size must be >= 0 and rate > 0")
        if self.payload_size > self.settings.payload_bytes_max:
            raise ConfigError(
                f"payload size {self.payload_size} exceeds {self.settings.payload_bytes_max}"
            )
        if self.variant not in VARIANTS:
            raise ConfigError(
                f"variant {self.variant!r} is not available; choose {', '.join(VARIANTS)}"
            )
        if self.brb not in BRB_KINDS:
            raise ConfigError(f"unknown BRB {self.brb!r}; choose one of {', '.join(BRB_KINDS)}")
        if self.votes not in VOTE_MODES:
            raise ConfigError(f"unknown vote mode {self.votes!r}; choose one of "
                              f"{', '.join(VOTE_MODES)}")
        if self.settings.votes != self.votes:  # one mode per run, the one the config names
            object.__setattr__(self, "settings", attrs.evolve(self.settings, votes=self.votes))
        members = [spec.member for spec in self.faults]
        if len(set(members)) != len(members):
            raise ConfigError("at most one --fault per member")
        if any(not 0 <= m < self.n for m in members):
            raise ConfigError(f"fault member ids must lie in 0..{self.n - 1}")
        byzantine = sum(1 for spec in self.faults if spec.byzantine)
        if byzantine > quorums.f:
            raise ConfigError(f"{byzantine} Byzantine members exceed f={quorums.f}")
        if self.adversary is not None:
            if self.faults or self.restarts:
                raise ConfigError("an adversary picks the faulty members itself: it does not "
                                  "combine with --fault or --restart")
            if quorums.f < 1:
                raise ConfigError(f"adversary {self.adversary}: n={self.n} tolerates no "
                                  f"faulty member")
        if self.clients < 0 or self.client_requests < 0:
            raise ConfigError("clients and client requests must be >= 0")
        if not 1 <= self.client_in_flight <= self.settings.client_window:
            raise ConfigError(f"client in-flight {self.client_in_flight} must lie in "
                              f"1..{self.settings.client_window} (the client window)")
        if not (self.client_retry_s > 0 and self.client_give_up_s > 0):
            raise ConfigError("client retry and give-up times must be > 0")
        faulty_clients = [spec.client for spec in self.client_faults]
        if len(set(faulty_clients)) != len(faulty_clients) or any(
                not 0 <= c < self.clients for c in faulty_clients):
            raise ConfigError(f"client faults name distinct clients in 0..{self.clients - 1}")

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
    latencies: tuple[float, ...] = ()
    """Virtual seconds from submission to delivery, per (correct member, honest payload)."""
    fault_effects: Mapping[int, FaultEffects] = attrs.field(factory=dict)
    """What each faulty member's fault did, by member (proof that it took effect)."""
    steps: tuple[int, ...] = ()
    """Inputs each member took (the steps a :class:`Restart` counts)."""
    lost_with_disk: Mapping[int, int] = attrs.field(factory=dict)
    """Payloads a wiped member had accepted that no peer had seen: gone with its disk."""
    transfers: Mapping[int, int] = attrs.field(factory=dict)
    """State transfers each member made (its log below the snapshot is a donor's)."""
    restarted: Mapping[int, float] = attrs.field(factory=dict)
    """When each restarting member came back (absent: it never crashed)."""
    adversary: Mapping[str, object] = attrs.field(factory=dict)
    """The coordinated adversary's roles and what it did (``holds``: honest frames it held
    back; ``losses``: honest frames it lost; ``rewrites``: its members' frames it changed or
    kept); empty without one."""
    redelivery_mismatches: tuple[str, ...] = ()
    """Deliveries a restarted member made again that differ from what it delivered before
    at the same index, or that skip an index (each one a broken durability promise)."""

    vote_violations: tuple[str, ...] = ()
    """Broken invariants on what honest members signed (:mod:`btob.sim.invariants`): one
    member's two votes for one instance, or two honest READYs that disagree."""
    client_statistics: Mapping[int, ClientStatistics] = attrs.field(factory=dict)
    """What each honest client did and got back, by client id."""
    client_faults: Mapping[int, ClientFault] = attrs.field(factory=dict)
    """Each Byzantine client, by client id (its ``stats`` say what it did)."""
    client_drops: Mapping[int, Mapping[str, int]] = attrs.field(factory=dict)
    """Committed client requests each member did not deliver, by reason
    (:attr:`btob.core.clients.ClientLog.dropped`); empty without clients."""

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
        """True when the checker found no violation, no restarted member delivered
        differently the second time, and honest members' votes kept their invariants."""
        return self.report.ok and not self.redelivery_mismatches and not self.vote_violations


def _keys(seed: int, n: int) -> list[SigningKey]:
    return [
        SigningKey.from_seed(hashlib.sha256(f"btob-sim-key/{seed}/{i}".encode()).digest())
        for i in range(n)
    ]


def _client_keys(seed: int, clients: int, kind: str = "client") -> list[SigningKey]:
    return [
        SigningKey.from_seed(hashlib.sha256(f"btob-sim-{kind}/{seed}/{j}".encode()).digest())
        for j in range(clients)
    ]


def _payload(rng: random.Random, origin: int, counter: int, size: int) -> bytes:
    head = struct.pack(">II", origin, counter)
    body = rng.randbytes(max(0, size - len(head)))
    return (head + body)[: max(size, 0)] if size >= len(head) else head[:size]


class _Simulation:
    """One run's mutable state; :func:`simulate` is the public entry point."""

    # event kinds (_REQUEST: a client's frame reaches a member; _TO_CLIENT: a member's
    # frame reaches a client; _CLIENT: a client's timer)
    _DELIVER, _TICK, _SUBMIT, _CRASH, _RESTART, _REQUEST, _TO_CLIENT, _CLIENT = range(8)

    def __init__(self, config: SimConfig, progress: Callable[[float, int], None] | None,
                 member_factory: MemberFactory = Member) -> None:
        self.config = config
        self.progress = progress
        n = config.n
        backend = get_backend(config.crypto_backend)
        keys = _keys(config.seed, n)
        registry = KeyRegistry(tuple(k.public_key(backend) for k in keys))
        cluster_id = f"sim-{config.seed}".encode()
        client_keys = _client_keys(config.seed, config.clients)
        self.client_public = [k.public_key(backend) for k in client_keys]
        extra: dict[str, object] = {}
        if config.clients:
            extra["clients"] = ClientAdmission(frozenset(self.client_public),
                                               open=config.open_clients)

        def member(i: int) -> Member:
            return member_factory(member=i, registry=registry, signing_key=keys[i],
                                  cluster_id=cluster_id, f=config.f, brb=config.brb,
                                  variant=config.variant, settings=config.settings,
                                  backend=backend, **extra)

        self._make_member = member
        self.durable = [DurableState.EMPTY] * n
        self.steps = [0] * n
        self.restart_plan = {r.member: r for r in config.restarts}
        self.down: set[int] = set()
        self.restarted: dict[int, float] = {}
        self.mismatches: list[str] = []
        self.transfers: dict[int, int] = {}
        self.lost_with_disk: dict[int, int] = {}
        specs = {spec.member: spec for spec in config.faults}
        self.coalition: Coalition | None = None
        self._routed: tuple[bytes, Signed] | None = None
        # The monitor's own verifier: no cache, so no cache rule of the members' is trusted.
        checker = Verifier(registry, cluster_id=cluster_id, backend=backend,
                           cache_entries_max=0)
        self.votes = VoteMonitor(n=n, quorum=(n + config.quorums.f) // 2 + 1,
                                 verify=checker.verify)
        if config.adversary is not None:
            self.coalition = make_coalition(config.adversary, n, config.quorums.f,
                                            seed=config.seed, settings=config.settings)
        self.cores: list[Member | FaultyCore] = []
        for i in range(n):
            spec = specs.get(i)
            if self.coalition is not None and i in self.coalition.members:
                self.cores.append(coalition_core(
                    self.coalition, i, lambda i=i: member(i),  # type: ignore[misc]
                    signing_key=keys[i], cluster_id=cluster_id, seed=config.seed,
                    backend=backend))
            elif spec is None:
                self.cores.append(member(i))
            else:  # the same fault driver as the Trio runtime's, on virtual time from 0
                self.cores.append(faulty_core(
                    spec, lambda i=i: member(i), n=n, signing_key=keys[i],  # type: ignore[misc]
                    cluster_id=cluster_id, settings=config.settings, seed=config.seed,
                    backend=backend,
                ))
        self.net_rng = random.Random(f"net/{config.seed}")
        self.work_rng = random.Random(f"work/{config.seed}")
        self.queue: list[tuple[float, int, int, int, int, bytes | None]] = []
        self.seq = 0
        self.now = 0.0
        self.silent = {s.member for s in config.faults if s.behaviour == "silent"}
        self.crashed: set[int] = set()
        self.crashed_at: dict[int, float] = {}
        self.broadcasts: list[list[BroadcastRecord]] = [[] for _ in range(n)]
        self.deliveries: list[list[DeliveryRecord]] = [[] for _ in range(n)]
        self.honest = [True] * n
        for spec in config.faults:
            if spec.byzantine:
                self.honest[spec.member] = False
        for i in self.coalition.members if self.coalition is not None else ():
            self.honest[i] = False
        self.events = 0
        self.from_origin = [[0] * n for _ in range(n)]
        self.view_installed: dict[int, float] = {}
        self.view_first_commit: dict[int, float] = {}
        self.peak_state: dict[str, int] = {}
        self.submitted_at: dict[str, float] = {}
        self.latencies: list[float] = []
        self.client_rng = random.Random(f"clients/{config.seed}")
        self.clients: list[SimClient | ClientFault] = []
        self._make_clients(client_keys, registry, cluster_id, backend)
        self.client_of = {key: j for j, key in enumerate(self.client_public)}

    def _make_clients(self, keys: list[SigningKey], registry: KeyRegistry, cluster_id: bytes,
                      backend: Backend) -> None:
        """The run's clients: honest ones, and the Byzantine ones of ``client_faults``."""
        config = self.config
        verifier = Verifier(registry, cluster_id=cluster_id, backend=backend,
                            cache_entries_max=0)
        specs = {spec.client: spec for spec in config.client_faults}
        honest_keys = [self.client_public[j] for j in range(config.clients) if j not in specs]
        outsiders = _client_keys(config.seed, config.clients, "outsider")
        frame_bytes_max = max(1 << 20, 4 * config.settings.batch_bytes_max)
        for j, key in enumerate(keys):
            signer = Signer(key, cluster_id=cluster_id, backend=backend)
            spec = specs.get(j)
            if spec is None:
                self.clients.append(SimClient(
                    j, public_key=self.client_public[j], sign=signer.sign, n=config.n,
                    quorums=config.quorums, requests=config.client_requests,
                    in_flight=config.client_in_flight, payload_size=config.payload_size,
                    retry_s=config.client_retry_s, give_up_s=config.client_give_up_s,
                    rng=random.Random(f"client/{config.seed}/{j}"),
                    verify_member=verifier.verify, frame_bytes_max=frame_bytes_max))
                continue
            outsider = Signer(outsiders[j], cluster_id=cluster_id, backend=backend)
            self.clients.append(make_client_fault(spec, ClientContext(
                client=j, n=config.n, window=config.settings.client_window,
                public_key=self.client_public[j], sign=signer.sign,
                rng=random.Random(f"client-fault/{config.seed}/{j}"),
                outsider_key=outsider.public_key, outsider_sign=outsider.sign,
                honest_keys=honest_keys, honest_frames=self._honest_frames)))

    def _honest_frames(self) -> list[bytes]:
        """The request frames honest clients hold receipts for, in the order accepted."""
        return [frame for client in self.clients if isinstance(client, SimClient)
                for frame in client.accepted_frames]

    def push(self, at: float, kind: int, member: int, source: int = -1,
             data: bytes | None = None) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, kind, member, source, data))

    def run(self) -> SimResult:
        config = self.config
        settings = config.settings
        tick = min(settings.retransmit_interval_s, settings.status_interval_s) / 2
        for i in range(config.n):
            self.push(self.net_rng.uniform(0, tick), self._TICK, i)
        crash_times = sorted((core.crash_time, core.member) for core in self.cores
                             if isinstance(core, FaultyCore) and core.crash_time is not None)
        for at, member in crash_times:
            self.push(at, self._CRASH, member)
        for k in range(config.messages):
            at = k / config.rate + self.work_rng.uniform(0, 0.5 / config.rate)
            self.push(at, self._SUBMIT, k % config.n)
        for j in range(len(self.clients)):
            self.push(self.client_rng.uniform(0, 0.01), self._CLIENT, j, -1)
        submissions_left = config.messages
        finished_at: float | None = None
        deadline = config.max_time
        while self.queue:
            event = heapq.heappop(self.queue)
            at, _, kind, member, source, data = event
            if finished_at is not None and at >= finished_at + config.linger:
                if self._finished():
                    break
                # Something moved during the linger (say a Byzantine origin's payload reached
                # some members): the run is not quiescent yet, so it goes on.
                finished_at, deadline = None, config.max_time
            if at > deadline:
                break
            self.now = at
            self.events += 1
            if kind == self._TO_CLIENT or kind == self._CLIENT:
                self._client_event(kind, member, source, data, at)
                continue
            core = self.cores[member]
            if kind == self._CRASH:
                assert isinstance(core, FaultyCore)
                if core.check_crash(at):
                    self._crash(member)
                continue
            if kind == self._RESTART:
                self._restart(member)
                continue
            if member in self.crashed or member in self.down:
                if kind == self._TICK and member in self.down:
                    self.push(at + tick, self._TICK, member)
                if kind == self._SUBMIT:
                    submissions_left -= 1
                continue  # a client's request to a down member is lost with it
            if isinstance(core, FaultyCore):
                ready = core.ready_at(at)
                if core.crashed:  # its clock reached a crash
                    self._crash(member)
                    submissions_left -= kind == self._SUBMIT
                    continue
                if ready > at:
                    # Paused or busy: the event waits, in order, for the member to be free.
                    self.push(ready, kind, member, source, data)
                    continue
            if kind == self._SUBMIT:
                submissions_left -= 1
            delivered = self._step(kind, core, member, source, data, at, tick)
            judge = (delivered or kind == self._TICK) and finished_at is None
            if judge and submissions_left == 0 and at >= config.net.gst and self._finished():
                finished_at = at
                deadline = min(deadline, at + config.linger)
            if kind == self._TICK:
                peak = self.peak_state
                for name, size in core.held_state().items():
                    if size > peak.get(name, -1):
                        peak[name] = size
            if delivered and self.progress is not None:
                self.progress(at, min(len(d) for i, d in enumerate(self.deliveries)
                                      if self._correct(i)) if self._any_correct() else 0)
        complete = finished_at is not None
        return self._result(complete)

    def _step(self, kind: int, core: Member | FaultyCore, member: int, source: int,
              data: bytes | None, at: float, tick: float) -> bool:
        """Apply one event to one member and send what it produced; True if it delivered."""
        self.steps[member] += 1
        if kind == self._TICK:
            self.push(at + tick, self._TICK, member)  # ticks go on across a restart
        if kind == self._DELIVER:
            assert data is not None
            core.receive(data, at, source=source)
        elif kind == self._TICK:
            core.tick(at)
        elif kind == self._REQUEST:
            assert data is not None
            try:
                core.submit_request(data, at)
            except RequestRefused as exc:
                self._refused(member, source, data, str(exc))
            except MemberCrashed:
                pass  # a Byzantine core stopped on its own lies while taking it
        else:
            origin_counter = len(self.broadcasts[member])
            payload = _payload(self.work_rng, member, origin_counter, self.config.payload_size)
            try:
                msg_id = core.submit(payload, at)
            except MemberCrashed:
                pass  # a Byzantine core stopped on its own lies while taking it: not broadcast
            except CountersUnknown:
                pass  # a member back with an empty disk takes payloads once it knows its ids
            else:
                delivered = self._flush(member, core)
                plan = self.restart_plan.get(member)
                if member in self.down and plan is not None and not plan.committed:
                    return delivered  # lost before it was durable: never accepted
                self.submitted_at[str(msg_id)] = at
                self.broadcasts[member].append(
                    BroadcastRecord(str(msg_id), hashlib.sha256(payload).hexdigest())
                )
                return delivered
        return self._flush(member, core)

    def _client_event(self, kind: int, client: int, source: int, data: bytes | None,
                      at: float) -> None:
        """A member's frame reaching a client, or a client's timer (``source``: its token;
        -1 starts the client)."""
        actor = self.clients[client]
        if kind == self._TO_CLIENT:
            assert data is not None
            actions = actor.on_frame(source, data, at)
        elif source == -1:
            actions = actor.start(at)
        else:
            actions = actor.on_timer(source, at)
        self._client_actions(client, actions)

    def _client_actions(self, client: int, actions: ClientActions) -> None:
        for member, frame in actions.sends:
            delay = self.config.net.sample_delay(self.client_rng, self.now)
            self.push(self.now + delay, self._REQUEST, member, client, frame)
        for at, token in actions.timers:
            self.push(at, self._CLIENT, client, token)

    def _to_client(self, member: int, client: int, frame: bytes) -> None:
        delay = self.config.net.sample_delay(self.client_rng, self.now)
        self.push(self.now + delay, self._TO_CLIENT, client, member, frame)

    def _refused(self, member: int, client: int, frame: bytes | None, reason: str) -> None:
        """A member that did not take a request tells its client so (a NOTICE naming the
        request, or session and seq 0 if the frame names none); a down member says nothing."""
        if member in self.down or member in self.crashed or frame is None:
            return
        try:
            request, _, _ = decode_request(frame,
                                           frame_bytes_max=self.config.settings.request_bytes_max)
            session, number = request.session, request.seq
        except WireError:
            session, number = 0, 0
        self._to_client(member, client, Notice(session, number, reason).to_frame())

    def _client_outputs(self, member: int, core: Member | FaultyCore) -> None:
        """RECEIPTs and NOTICEs the member made, to the clients they are for."""
        take = getattr(core, "take_client_outputs", None)
        if take is None:
            return
        for key, frame in take():
            client = self.client_of.get(key)
            if client is not None:
                self._to_client(member, client, frame)

    def _clients_done(self) -> bool:
        return all(client.done for client in self.clients)

    def _correct(self, member: int) -> bool:
        return self.honest[member] and member not in self.crashed

    def _any_correct(self) -> bool:
        return any(self._correct(i) for i in range(self.config.n))

    def _finished(self) -> bool:
        """Every correct member delivered every payload of every correct member, alike."""
        correct = [i for i in range(self.config.n) if self._correct(i)]
        expected = sum(len(self.broadcasts[i]) for i in correct)
        lengths = {len(self.deliveries[i]) for i in correct}
        if len(lengths) != 1 or not self._clients_done():
            return False
        return all(sum(self.from_origin[i][o] for o in correct) == expected for i in correct)

    def _flush(self, member: int, core: Member | FaultyCore) -> bool:
        """Commit what a member must keep, then send what it produced and record its
        deliveries (the driver contract); or crash it there, if a restart is due."""
        changes = core.take_durable()
        if self.honest[member]:
            self.votes.observe_durable(member, changes)
        plan = self.restart_plan.get(member)
        if plan is not None and plan.step == self.steps[member] and member not in self.restarted:
            if plan.committed:
                self.durable[member] = self.durable[member].apply(changes)
            frames, _ = core.take_outputs()  # its deliveries never reach the application
            getattr(core, "take_client_outputs", list)()  # nor its receipts a client
            left = {"none": 0, "half": len(frames) // 2, "all": len(frames)}[plan.frames_sent]
            for out in frames[:left]:  # the rest is lost with the crash
                self._send(member, out.destination, out.frame, out.delay_s)
            self.down.add(member)
            self.restarted[member] = self.now + plan.down_s
            self.push(self.now + plan.down_s, self._RESTART, member)
            return False
        self.durable[member] = self.durable[member].apply(changes)
        frames, deliveries = core.take_outputs()
        if self._correct(member):
            for installed in core.take_view_changes():
                self.view_installed.setdefault(installed.view, installed.at)
            if deliveries:
                for view, at in self.view_installed.items():
                    if view not in self.view_first_commit and self.now >= at:
                        self.view_first_commit[view] = self.now
        for out in frames:
            self._send(member, out.destination, out.frame, out.delay_s)
        if self.clients:
            self._client_outputs(member, core)
        self._record(member, deliveries)
        jumped = getattr(core, "transferred_to", None)
        if jumped is not None and jumped > len(self.deliveries[member]):
            self._transferred(member, jumped)
        if isinstance(core, FaultyCore) and core.crashed:
            self._crash(member)
        return bool(deliveries)

    def _forget_lost_payloads(self, member: int) -> None:
        """A wiped disk takes with it the payloads its member had accepted but no peer had
        seen yet: they were never broadcast as far as anyone can tell, and the run is not
        expected to deliver them (every payload some peer had seen still must be)."""
        seen = 0
        for i, core in enumerate(self.cores):
            if i != member and isinstance(core, Member) and i not in self.down:
                seen = max(seen, core.known_counters(member)[1])
        kept = [b for b in self.broadcasts[member] if int(b.msg_id.split(":")[1]) < seen]
        self.lost_with_disk[member] = len(self.broadcasts[member]) - len(kept)
        self.broadcasts[member] = kept

    def _transferred(self, member: int, upto: int) -> None:
        """A member that fetched a snapshot skips the deliveries below it: they are in the
        certified state. Its log takes them from a correct member that made them (the
        checker then judges it like everyone else); a skip with no transfer is a failure."""
        log = self.deliveries[member]
        core = self.cores[member]
        jumped = getattr(core, "transferred_to", None)
        donors = [self.deliveries[i] for i in range(self.config.n)
                  if i != member and self._correct(i) and len(self.deliveries[i]) >= upto]
        if jumped is None or jumped < upto or not donors:
            self.mismatches.append(f"member {member} skipped from index {len(log)} to {upto}")
            return
        for record in donors[0][len(log):upto]:
            log.append(record)
            if record.origin != CLIENT_ORIGIN:
                self.from_origin[member][record.origin] += 1
        self.transfers[member] = self.transfers.get(member, 0) + 1

    def _restart(self, member: int) -> None:
        """A fresh member resumes from what the crashed one committed."""
        core = self._make_member(member)
        if self.restart_plan[member].wiped:
            self.durable[member] = DurableState.EMPTY
            self._forget_lost_payloads(member)
        core.restore(self.durable[member], self.now)
        self.cores[member] = core
        self.down.discard(member)
        self._flush(member, core)

    def _crash(self, member: int) -> None:
        self.crashed.add(member)
        self.crashed_at.setdefault(member, self.now)

    def _send(self, source: int, dest: int, frame: bytes, extra: float) -> None:
        """Put one frame on the simulated network."""
        if self.honest[source]:
            self.votes.observe(source, frame)
        if dest in self.crashed or dest in self.down or not 0 <= dest < self.config.n:
            return
        coalition = self.coalition
        if coalition is not None and self.honest[source] and self.now < coalition.until:
            # The adversary schedules the network before its GST: it may hold a frame back
            # or lose it. A member sends one frame object to everyone: decode it once.
            if self._routed is None or self._routed[0] is not frame:
                self._routed = (frame, decode_frame(frame).parse())
            held = coalition.route(source, dest, self._routed[1], self.now)
            if held is None:
                return  # lost before GST
            extra += held
        for delay in self.config.net.route(self.net_rng, source, dest, self.now):
            self.push(self.now + extra + delay, self._DELIVER, dest, source, frame)

    def _record(self, member: int, deliveries: Sequence[Delivery]) -> None:
        log = self.deliveries[member]
        counts = self.from_origin[member]
        correct = self._correct(member)
        for d in deliveries:
            record = DeliveryRecord(d.index, str(d.msg_id), d.origin,
                                    hashlib.sha256(d.payload).hexdigest(),
                                    slot=d.slot if d.slot >= 0 else None)
            if not self.honest[member]:
                pass  # a Byzantine core's log is its own business (the checker ignores it)
            elif d.index < len(log):  # a restarted member delivers its log above the snapshot again
                if log[d.index] != record:
                    self.mismatches.append(f"member {member} delivered {record} again at "
                                           f"index {d.index}, where it had {log[d.index]}")
                continue
            elif d.index > len(log):
                self._transferred(member, d.index)
            if d.origin != CLIENT_ORIGIN:
                counts[d.origin] += 1
            submitted = self.submitted_at.get(str(d.msg_id))
            if correct and submitted is not None:
                self.latencies.append(self.now - submitted)
            log.append(record)

    def _result(self, complete: bool) -> SimResult:
        config = self.config
        quorums = config.quorums
        members = {i: MemberInfo(honest=self.honest[i],
                                 crashed=i in self.crashed or i in self.down)
                   for i in range(config.n)}
        run = RunInfo(
            n=config.n, f=quorums.f, complete=complete, members=members,
            extra={
                "seed": config.seed, "variant": config.variant, "brb": config.brb,
                "votes": config.votes,
                "messages": config.messages, "payload_size": config.payload_size,
                "faults": [str(s) for s in config.faults], "net": config.net.describe(),
                "virtual_time": round(self.now, 6),
                **({} if self.coalition is None else {"adversary": self.coalition.describe()}),
                **({} if not config.clients else {
                    "client_requests": config.client_requests,
                    "client_faults": [str(s) for s in config.client_faults]}),
            },
            clients={j: ClientInfo(honest=client.honest, key=self.client_public[j].hex())
                     for j, client in enumerate(self.clients)},
        )
        honest_clients = {j: c for j, c in enumerate(self.clients) if isinstance(c, SimClient)}
        logs = LogDir(
            run=run,
            broadcasts={i: tuple(self.broadcasts[i]) for i in range(config.n)},
            deliveries={i: tuple(self.deliveries[i]) for i in range(config.n)},
            client_broadcasts={j: tuple(c.broadcasts) for j, c in honest_clients.items()},
            receipts={j: tuple(c.receipts) for j, c in honest_clients.items()},
        )
        statistics = tuple(c.statistics() for c in self.cores)
        wiped = {r.member for r in config.restarts if r.wiped}
        for holder in statistics:
            if self.honest[holder.member]:
                # Evidence is two conflicting messages validly signed by one member; an
                # honest member signs none (one that lost its disk forgot what it signed).
                self.votes.convicted(holder.member, [
                    m for m in holder.evidence if self.honest[m] and m not in wiped])
        return SimResult(
            config=config, logs=logs, report=check(logs), complete=complete,
            virtual_time=self.now, statistics=statistics,
            crashed=tuple(sorted(self.crashed)), events=self.events,
            view_changes=self._view_change_records(), peak_state=dict(self.peak_state),
            latencies=tuple(self.latencies),
            fault_effects={c.member: c.effects() for c in self.cores
                           if isinstance(c, FaultyCore)},
            steps=tuple(self.steps), restarted=dict(self.restarted),
            transfers=dict(self.transfers), lost_with_disk=dict(self.lost_with_disk),
            redelivery_mismatches=tuple(self.mismatches),
            vote_violations=tuple(self.votes.violations),
            adversary={} if self.coalition is None else {
                **self.coalition.describe(), "holds": self.coalition.holds,
                "losses": self.coalition.losses,
                "rewrites": self.coalition.rewrites},
            client_statistics={j: c.statistics for j, c in honest_clients.items()},
            client_drops={} if not self.clients else {
                i: _client_drops(core) for i, core in enumerate(self.cores)},
            client_faults={j: c for j, c in enumerate(self.clients)
                           if isinstance(c, ClientFault)},
        )

    def _view_change_records(self) -> tuple[ViewChangeRecord, ...]:
        records = []
        for view, installed_at in sorted(self.view_installed.items()):
            previous = view_leader(view - 1, self.config.n)
            failed_at: float | None = None
            if previous in self.silent:
                failed_at = 0.0
            elif previous in self.crashed and self.crashed_at[previous] <= installed_at:
                failed_at = self.crashed_at[previous]
            records.append(ViewChangeRecord(
                view=view, sequencer=view_leader(view, self.config.n), installed_at=installed_at,
                failed_at=failed_at, first_commit_at=self.view_first_commit.get(view),
            ))
        return tuple(records)


def _client_drops(core: Member | FaultyCore) -> dict[str, int]:
    """What a member's client rules dropped (the wrapped member's, for a faulty one)."""
    member = core.core if isinstance(core, FaultyCore) else core
    log = getattr(member, "_log", None)  # the delivery log holds the client rules
    clients = getattr(log, "clients", None)
    return dict(sorted(getattr(clients, "dropped", {}).items()))


def replay_command(config: SimConfig) -> str:
    """The ``btob sim`` command line that replays ``config``."""
    parts = ["btob", "sim", "--n", str(config.n), "--seed", str(config.seed),
             "--messages", str(config.messages), "--brb", config.brb]
    if config.variant != "bb":
        parts += ["--variant", config.variant]
    if config.votes != "all":
        parts += ["--votes", config.votes]
    if config.f is not None:
        parts += ["--f", str(config.f)]
    if config.payload_size != 100:
        parts += ["--payload-size", str(config.payload_size)]
    if config.rate != 2000.0:
        parts += ["--rate", f"{config.rate:g}"]
    for spec in config.faults:
        parts += ["--fault", str(spec)]
    if config.net != NetSpec():
        parts += ["--net", config.net.describe()]
    if config.max_time != 60.0:
        parts += ["--max-time", f"{config.max_time:g}"]
    for restart in config.restarts:
        parts += ["--restart", str(restart)]
    if config.adversary is not None:
        parts += ["--adversary", str(config.adversary)]
    if config.clients:
        parts += ["--clients", str(config.clients)]
        defaults = SimConfig()
        if config.client_requests != defaults.client_requests:
            parts += ["--client-requests", str(config.client_requests)]
        if config.client_in_flight != defaults.client_in_flight:
            parts += ["--client-in-flight", str(config.client_in_flight)]
        for client_spec in config.client_faults:
            parts += ["--client-fault", str(client_spec)]
        if config.open_clients:
            parts.append("--open-clients")
        if config.client_retry_s != defaults.client_retry_s:
            parts += ["--client-retry", f"{config.client_retry_s:g}"]
        if config.client_give_up_s != defaults.client_give_up_s:
            parts += ["--client-give-up", f"{config.client_give_up_s:g}"]
    default = Settings()
    for field in attrs.fields(Settings):
        if field.name == "votes":
            continue  # --votes above
        value = getattr(config.settings, field.name)
        if value != getattr(default, field.name):
            parts += ["--setting", f"{field.name}={value:g}" if isinstance(value, float)
                      else f"{field.name}={value}"]
    return shlex.join(parts)


def simulate(
    config: SimConfig,
    *,
    log_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[float, int], None] | None = None,
    member_factory: MemberFactory = Member,
) -> SimResult:
    """Run one deterministic simulation; write its logs to ``log_dir`` if given.

    ``progress(virtual_time, delivered)`` is called whenever the slowest correct member's
    delivery count may have changed; ``member_factory`` builds every member (a test kit
    injects broken ones through it). Raises :class:`ConfigError` for an invalid config.
    """
    result = _Simulation(config, progress, member_factory).run()
    if log_dir is not None:
        logs = result.logs
        write_log_dir(log_dir, logs.run, logs.broadcasts, logs.deliveries,
                      client_broadcasts=logs.client_broadcasts, receipts=logs.receipts)
    return result
